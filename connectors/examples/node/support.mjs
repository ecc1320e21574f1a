// Small helpers: the state file, the dead-letter file, fingerprints and a bounded worker pool.

import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";

/**
 * The state kept across cycles in $SYNCERT_STATE_DIR/state.json:
 *   accounts.watermark   SystemModstamp of the newest account seen by a cycle that had no failure
 *   accounts.synced      account id -> {customer, fp}: what was last written to the ERP for it
 *   <flow>.givenUp       record id -> fp of the content that was dead-lettered (retried once it changes)
 * Losing the file is harmless: the next cycle re-reads everything and upserts are idempotent.
 */
export class State {
  constructor(dir) {
    this.file = dir ? path.join(dir, "state.json") : null;
    this.data = { version: 1 };
    if (this.file && fs.existsSync(this.file)) {
      try {
        this.data = JSON.parse(fs.readFileSync(this.file, "utf8"));
      } catch (error) {
        process.stderr.write(`state: ${this.file} is unreadable (${error.message}); starting afresh\n`);
      }
    }
  }

  /** The (mutable) state object of one flow. */
  flow(name) {
    this.data[name] ??= {};
    this.data[name].givenUp ??= {};
    return this.data[name];
  }

  save() {
    if (!this.file) return;
    const temporary = `${this.file}.${process.pid}.tmp`;
    fs.writeFileSync(temporary, JSON.stringify(this.data));
    fs.renameSync(temporary, this.file); // atomic: a killed cycle leaves the previous state intact
  }
}

/** Appends one JSON line per record given up on: {"flow","source_system","source_id","reason"}. */
export class DeadLetters {
  constructor(file) {
    this.file = file;
    this.count = 0;
  }

  add(flow, sourceSystem, sourceId, reason) {
    const line = JSON.stringify({ flow, source_system: sourceSystem, source_id: sourceId, reason }) + "\n";
    if (this.file) fs.appendFileSync(this.file, line);
    else process.stderr.write(`dead letter (no SYNCERT_DEAD_LETTER set): ${line}`);
    this.count += 1;
  }
}

/** A short, stable hash of a JSON-able value (what we sent, to know when a record changed). */
export function fingerprint(value) {
  return crypto.createHash("sha256").update(JSON.stringify(value)).digest("base64url").slice(0, 22);
}

/** Run `work(item)` for every item, `limit` at a time. The HTTP layer caps requests in flight anyway;
 * this only keeps a few records ahead of it instead of starting thousands of promises at once. */
export async function forEachLimited(items, limit, work) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next];
      next += 1;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export function chunks(list, size) {
  const out = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

export function zip(a, b) {
  return a.map((x, i) => [x, b[i]]);
}

/** A text value as sent to the other system: blank (missing, null or "") is null, never "" or "null". */
export function blank(value) {
  return value === undefined || value === null || value === "" ? null : value;
}
