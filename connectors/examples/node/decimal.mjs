// Exact decimal numbers for money and quantities: a BigInt of units and a scale (number of
// digits after the point). 22.50 is {units: 2250n, scale: 2}. No binary floating point is ever
// used for arithmetic, so 25.00 x 4 x (100 - 10) / 100 is exactly 90.00.
//
// Vendor JSON carries money as JSON numbers. JSON.parse turns them into doubles, and Node 18 has no
// way to see the original digits, so `Dec.of(199.99)` goes through String(199.99) === "199.99":
// the shortest text that round-trips, which is the original text for any value with at most 15
// significant digits (every amount a currency field can hold in practice).

export class Dec {
  constructor(units, scale) {
    this.units = units; // BigInt
    this.scale = scale; // integer >= 0
  }

  /** From a string ("12.5", "-3", "1e-7"), a JS number, a bigint or a Dec; null/undefined -> null. */
  static of(value) {
    if (value === null || value === undefined || value === "") return null;
    if (value instanceof Dec) return value;
    if (typeof value === "bigint") return new Dec(value, 0);
    const text = typeof value === "number" ? String(value) : String(value).trim();
    const match = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
    if (!match || (match[2] === "" && (match[3] ?? "") === "")) throw new Error(`not a decimal number: ${text}`);
    const [, sign, whole, fraction = "", exponent = "0"] = match;
    let units = BigInt((whole || "0") + fraction);
    let scale = fraction.length - Number(exponent);
    if (scale < 0) {
      units *= 10n ** BigInt(-scale);
      scale = 0;
    }
    return new Dec(sign === "-" ? -units : units, scale);
  }

  static #align(a, b) {
    const scale = Math.max(a.scale, b.scale);
    return [a.units * 10n ** BigInt(scale - a.scale), b.units * 10n ** BigInt(scale - b.scale), scale];
  }

  add(other) {
    const [a, b, scale] = Dec.#align(this, Dec.of(other));
    return new Dec(a + b, scale);
  }

  sub(other) {
    const [a, b, scale] = Dec.#align(this, Dec.of(other));
    return new Dec(a - b, scale);
  }

  mul(other) {
    const o = Dec.of(other);
    return new Dec(this.units * o.units, this.scale + o.scale);
  }

  /** Exact division by a power of ten (e.g. percent -> fraction): just moves the point. */
  shift(digits) {
    return new Dec(this.units, this.scale + digits);
  }

  cmp(other) {
    const [a, b] = Dec.#align(this, Dec.of(other));
    return a < b ? -1 : a > b ? 1 : 0;
  }

  eq(other) {
    return other !== null && other !== undefined && this.cmp(other) === 0;
  }

  /** Plain decimal text with at least `minScale` fraction digits and no needless trailing zeros. */
  toString(minScale = 0) {
    let { units, scale } = this;
    while (scale > minScale && units % 10n === 0n) {
      units /= 10n;
      scale -= 1;
    }
    const negative = units < 0n;
    let digits = (negative ? -units : units).toString().padStart(scale + 1, "0");
    if (scale > 0) digits = `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
    return (negative ? "-" : "") + digits;
  }

  // JSON.stringify would otherwise see an object; see toJson() for how it becomes a bare number.
  toJSON() {
    return `${RAW_MARK}${this.toString()}${RAW_MARK}`;
  }
}

const RAW_MARK = "\u2063dec\u2063"; // invisible separator: never in real data next to a number

/** True when two values are the same number (either may be a JSON number, a string or a Dec). */
export function sameNumber(a, b) {
  if (a === null || a === undefined || b === null || b === undefined) return (a ?? null) === (b ?? null);
  return Dec.of(a).eq(Dec.of(b));
}

/**
 * JSON text in which every Dec is written as an exact JSON number (12.50, not "12.50" and not the
 * double nearest to it). Both simulated vendors read fractional JSON numbers as exact decimals.
 */
export function toJson(value) {
  return JSON.stringify(value).replace(new RegExp(`"${RAW_MARK}(-?[0-9]+(?:\\.[0-9]+)?)${RAW_MARK}"`, "g"), "$1");
}
