// HTTP plumbing shared by both vendor clients: one transport (node:http / node:https, so a private
// CA can be trusted on Node 18 too), a cap on requests in flight, and retries that honour
// Retry-After with exponential backoff and equal jitter.
//
// Why not global fetch? On Node 18 fetch cannot be given a CA bundle at run time
// (NODE_EXTRA_CA_CERTS is read only at process start), and an https.Agent with `ca` can.

import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import tls from "node:tls";
import { parseExactJson } from "./decimal.mjs";

const REQUEST_TIMEOUT_MS = 30_000;

/** An HTTP answer the caller has to deal with (after retries). `permanent`: retrying cannot help. */
export class HttpError extends Error {
  constructor(system, method, url, status, body, detail) {
    super(`${system} ${method} ${new URL(url).pathname} -> ${status}: ${detail}`);
    this.system = system;
    this.status = status;
    this.body = body;
    this.detail = detail;
  }

  /** A refusal of the record itself (validation, unknown reference...): dead-letter it, don't retry. */
  get permanent() {
    return this.status >= 400 && this.status < 500 && ![401, 403, 408, 409, 423, 429].includes(this.status);
  }
}

/** Counting semaphore: at most `limit` holders at a time, served in arrival order. */
export class Semaphore {
  constructor(limit) {
    this.free = limit;
    this.waiting = [];
  }

  async acquire() {
    if (this.free > 0) {
      this.free -= 1;
      return;
    }
    await new Promise((resolve) => this.waiting.push(resolve));
  }

  release() {
    const next = this.waiting.shift();
    if (next) next();
    else this.free += 1;
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let agents = null;

/** Keep-alive agents; with SYNCERT_CA_BUNDLE the run's CA is trusted on top of the usual roots. */
function agentsFor() {
  if (!agents) {
    const bundle = process.env.SYNCERT_CA_BUNDLE;
    const ca = bundle ? [...tls.rootCertificates, fs.readFileSync(bundle, "utf8")] : undefined;
    agents = {
      "http:": new http.Agent({ keepAlive: true }),
      "https:": new https.Agent({ keepAlive: true, ...(ca ? { ca } : {}) }),
    };
  }
  return agents;
}

/** One HTTP exchange. Resolves {status, headers, text}; rejects only on network errors. */
export function send(method, url, headers = {}, body = undefined) {
  const target = new URL(url);
  const transport = target.protocol === "https:" ? https : http;
  const payload = body === undefined ? undefined : Buffer.from(body, "utf8");
  return new Promise((resolve, reject) => {
    const request = transport.request(target, {
      method,
      agent: agentsFor()[target.protocol],
      headers: { Accept: "application/json", ...headers, ...(payload ? { "Content-Length": payload.length } : {}) },
      timeout: REQUEST_TIMEOUT_MS,
    }, (response) => {
      const chunks = [];
      response.on("data", (chunk) => chunks.push(chunk));
      response.on("end", () => resolve({
        status: response.statusCode, headers: response.headers, text: Buffer.concat(chunks).toString("utf8"),
      }));
      response.on("error", reject);
    });
    request.on("timeout", () => request.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    request.on("error", reject);
    request.end(payload);
  });
}

/**
 * A vendor endpoint with its own limits. `attempt(token)` style hooks let the vendor clients add
 * authentication per attempt (a fresh OAuth 1.0a nonce, the current bearer token).
 */
export class Endpoint {
  constructor({ system, maxInFlight, maxAttempts = 8, maxFailedAttempts = 4, baseDelayMs = 500,
                maxDelayMs = 30_000, maxRetryAfterMs = 60_000 }) {
    this.system = system;
    this.slots = new Semaphore(maxInFlight);
    this.maxAttempts = maxAttempts; // throttled answers: the service is up, just busy
    this.maxFailedAttempts = maxFailedAttempts; // network errors and 5xx: don't hammer a sick service
    this.maxRetryAfterMs = maxRetryAfterMs; // a longer wait (a daily quota) is left to a later cycle
    this.baseDelayMs = baseDelayMs;
    this.maxDelayMs = maxDelayMs;
    this.pausedUntil = 0; // set by a Retry-After: nobody sends to this system before then
  }

  /**
   * Send with retries.
   *   prepare()          -> {url, headers, body}: called for every attempt, inside the slot
   *   isThrottled(resp)  -> true for "over a limit, come back after Retry-After"
   *   onUnauthorized(resp) -> true when credentials were renewed and the request may be resent
   *   idempotent         -> network errors and 5xx are retried only for idempotent requests (a lost
   *                         answer to a create could otherwise create twice)
   */
  async request(method, { prepare, isThrottled, onUnauthorized, idempotent, describe }) {
    let renewals = 0, failedAttempts = 0;
    for (let attempt = 1; ; attempt += 1) {
      const wait = this.pausedUntil - Date.now();
      if (wait > 0) await sleep(wait);
      let response, failure;
      await this.slots.acquire();
      try {
        // Renewed credentials are used in the same slot: the resend does not queue behind others.
        for (;;) {
          const { url, headers, body } = await prepare();
          try {
            response = await send(method, url, headers, body);
          } catch (error) {
            failure = error;
            break;
          }
          if (response.status === 401 && renewals < 2 && onUnauthorized && (await onUnauthorized(response))) {
            renewals += 1;
            continue;
          }
          break;
        }
      } finally {
        this.slots.release();
      }
      if (failure || (response.status >= 500 && idempotent)) {
        failedAttempts += 1;
        if (failure && (!idempotent || failedAttempts >= this.maxFailedAttempts || untrusted(failure))) throw failure;
        if (!failure && failedAttempts >= this.maxFailedAttempts) return response;
        await sleep(this.#backoff(failedAttempts));
        continue;
      }
      const retryAfterMs = retryAfterToMs(response.headers["retry-after"]);
      if (isThrottled(response) && attempt < this.maxAttempts && retryAfterMs <= this.maxRetryAfterMs) {
        // Retry-After is a floor; the backoff grows with every attempt and the jitter spreads the
        // retries of concurrent requests so they don't all come back in the same millisecond.
        const delay = Math.max(retryAfterMs, this.#backoff(attempt)) + Math.random() * 250;
        this.pausedUntil = Math.max(this.pausedUntil, Date.now() + retryAfterMs);
        process.stderr.write(`${this.system}: throttled (${response.status}), retrying ${describe} in ` +
                             `${Math.round(delay)} ms\n`);
        await sleep(delay);
        continue;
      }
      return response;
    }
  }

  #backoff(attempt) {
    // "equal jitter": half of base * 2^(attempt-1) (capped) for sure, the other half at random. Full jitter
    // could draw three near-zero waits in a row and give up on a one-second outage.
    const step = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
    return step / 2 + Math.random() * (step / 2);
  }
}

/** A certificate that does not verify: no retry cures it, and nothing may be sent to that server. */
function untrusted(error) {
  return /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/.test(error.code ?? "");
}

/** Retry-After in milliseconds: delta-seconds or an HTTP date; 1 s when absent or unreadable. */
export function retryAfterToMs(value) {
  if (value === undefined) return 1000;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : 1000;
}

/** A response body: JSON with exact numbers (Dec), or null when there is none or it is not JSON. */
export function parseJson(text) {
  if (!text) return null;
  try {
    return parseExactJson(text);
  } catch {
    return null;
  }
}
