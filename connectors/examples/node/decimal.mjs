// Exact decimal numbers for money and quantities: a BigInt of units and a scale (number of
// digits after the point). 22.50 is {units: 2250n, scale: 2}. No binary floating point is ever
// used, neither for arithmetic (25.00 x 4 x (100 - 10) / 100 is exactly 90.00) nor for reading
// and writing JSON: parseExactJson() turns every JSON number into a Dec from its own digits, and
// toJson() writes every Dec as a bare JSON number with exactly its digits.

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

const RAW_MARK = "\u2063dec\u2063"; // U+2063 (invisible separator): not found in real data

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

// A JSON string literal (skipped as is) or a JSON number (captured).
const JSON_TOKEN = /"(?:[^"\\]|\\.)*"|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;

/**
 * JSON.parse, but every number becomes a Dec built from its digits as written (199.99 stays
 * 199.99, 0.1 + 0.2 questions never arise). Node 18 has no access to a number's source text in
 * JSON.parse, so numbers are first turned into marked strings, then back into Decs by the reviver.
 */
export function parseExactJson(text) {
  const marked = text.replace(JSON_TOKEN, (token, number) => (number === undefined ? token : `"${RAW_MARK}${number}"`));
  return JSON.parse(marked, (key, value) => (
    typeof value === "string" && value.startsWith(RAW_MARK) ? Dec.of(value.slice(RAW_MARK.length)) : value));
}
