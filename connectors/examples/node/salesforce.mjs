// Salesforce REST client (the CRM side): OAuth 2.0 client credentials, bearer token renewed on
// 401 INVALID_SESSION_ID, SOQL with nextRecordsUrl paging, sObject Collections (composite/sobjects)
// for writes in batches of 200, 403 REQUEST_LIMIT_EXCEEDED retried after Retry-After.

import { Endpoint, HttpError, parseJson } from "./http.mjs";
import { toJson } from "./decimal.mjs";

const API_VERSION = "v62.0";
const COLLECTION_LIMIT = 200; // records per composite/sobjects call (the API's maximum)

/** Records per composite/sobjects call: SYNC_CRM_BATCH_SIZE (1-200, default 200). Smaller batches
 * hold fewer row locks at once (fewer UNABLE_TO_LOCK_ROW under concurrent CRM automation). */
function batchSize(env) {
  const wanted = Number.parseInt(env.SYNC_CRM_BATCH_SIZE ?? "", 10);
  return Number.isInteger(wanted) && wanted >= 1 ? Math.min(wanted, COLLECTION_LIMIT) : COLLECTION_LIMIT;
}

export class Salesforce {
  constructor(env) {
    this.loginUrl = env.SYNCERT_CRM_URL.replace(/\/+$/, "");
    this.clientId = env.SYNCERT_CRM_CLIENT_ID;
    this.clientSecret = env.SYNCERT_CRM_CLIENT_SECRET;
    this.instanceUrl = null;
    this.token = null;
    this.login = null; // the login in progress, shared by every request that needs it
    this.endpoint = new Endpoint({ system: "crm", maxInFlight: 4 });
    // Logins go through their own slot: a request that holds an API slot while it waits for a new
    // token must not wait for a free API slot too (four of them doing that would deadlock).
    this.loginEndpoint = new Endpoint({ system: "crm", maxInFlight: 1 });
    this.batchSize = batchSize(env);
    this.calls = 0;
  }

  /** One login at a time; every request that hit the expired token waits for the same new one. */
  async #ensureToken(expired = null) {
    if (this.token && this.token !== expired) return this.token;
    if (!this.login) {
      this.login = this.#logIn().finally(() => {
        this.login = null;
      });
    }
    return this.login;
  }

  async #logIn() {
    const basic = Buffer.from(`${this.clientId}:${this.clientSecret}`).toString("base64");
    const response = await this.loginEndpoint.request("POST", {
      describe: "login",
      idempotent: true,
      prepare: () => ({
        url: `${this.loginUrl}/services/oauth2/token`,
        headers: { Authorization: `Basic ${basic}`, "Content-Type": "application/x-www-form-urlencoded" },
        body: "grant_type=client_credentials",
      }),
      isThrottled: isLimitExceeded,
    });
    this.calls += 1;
    const body = parseJson(response.text);
    if (response.status !== 200 || !body?.access_token) {
      // the error body is an OAuth error code and description: no secret in it
      throw new HttpError("crm", "POST", `${this.loginUrl}/services/oauth2/token`, response.status, body,
                          `login failed: ${body?.error ?? ""} ${body?.error_description ?? ""}`.trim());
    }
    this.instanceUrl = (body.instance_url || this.loginUrl).replace(/\/+$/, "");
    this.token = body.access_token;
    return this.token;
  }

  /** An API call under /services/data/vXX.X (or a path or URL from nextRecordsUrl). JSON in and out. */
  async call(method, path, body = undefined, { idempotent = method !== "POST" } = {}) {
    await this.#ensureToken();
    const fullPath = this.#pathOf(path);
    let used = null;
    const response = await this.endpoint.request(method, {
      describe: `${method} ${fullPath.split("?")[0]}`,
      idempotent,
      prepare: async () => {
        used = await this.#ensureToken();
        const headers = { Authorization: `Bearer ${used}` };
        if (body !== undefined) headers["Content-Type"] = "application/json";
        return { url: this.instanceUrl + fullPath, headers, body: body === undefined ? undefined : toJson(body) };
      },
      isThrottled: isLimitExceeded,
      onUnauthorized: async (answer) => {
        const errors = parseJson(answer.text);
        if (!Array.isArray(errors) || errors[0]?.errorCode !== "INVALID_SESSION_ID") return false;
        await this.#ensureToken(used); // logs in again unless another request already did
        return true;
      },
    });
    this.calls += 1;
    const parsed = parseJson(response.text);
    if (response.status >= 400) {
      const first = Array.isArray(parsed) ? parsed[0] : parsed;
      throw new HttpError("crm", method, this.instanceUrl + fullPath, response.status, parsed,
                          first ? `${first.errorCode ?? first.error}: ${first.message ?? first.error_description}`
                                : response.text.slice(0, 300));
    }
    return parsed;
  }

  /** The path to request: a link may be a path or a full URL, which must stay on the instance (the token goes
   * with the request). */
  #pathOf(path) {
    if (/^https?:\/\//i.test(path)) {
      const url = new URL(path);
      if (url.origin !== new URL(this.instanceUrl).origin) {
        throw new Error(`salesforce: refusing to follow a link to another host, ${url.origin}`);
      }
      return url.pathname + url.search;
    }
    return path.startsWith("/services/") ? path : `/services/data/${API_VERSION}${path}`;
  }

  /** Every record a SOQL query selects (follows nextRecordsUrl). */
  async query(soql) {
    let page = await this.call("GET", `/query?q=${encodeURIComponent(soql)}`);
    const records = [...page.records];
    while (!page.done && page.nextRecordsUrl) {
      page = await this.call("GET", page.nextRecordsUrl);
      records.push(...page.records);
    }
    return records;
  }

  /**
   * Write records with sObject Collections, allOrNone false (one bad record does not sink the
   * others), up to 200 records per call (SYNC_CRM_BATCH_SIZE); batches go out concurrently, within
   * the cap on requests in flight. Returns one result per record, in order: {success, id, errors}.
   *   kind: "create" (POST), "update" (PATCH, records carry Id), or "upsert" (PATCH by external id)
   */
  async collection(kind, records, { type, externalIdField } = {}) {
    const batches = [];
    for (let start = 0; start < records.length; start += this.batchSize) {
      batches.push(records.slice(start, start + this.batchSize));
    }
    const answers = await Promise.all(batches.map((batch) => {
      const body = { allOrNone: false, records: batch };
      if (kind === "create") return this.call("POST", "/composite/sobjects", body, { idempotent: false });
      if (kind === "update") return this.call("PATCH", "/composite/sobjects", body);
      return this.call("PATCH", `/composite/sobjects/${type}/${externalIdField}`, body);
    }));
    return answers.flat();
  }
}

function isLimitExceeded(response) {
  if (response.status === 429) return true;
  if (response.status !== 403) return false;
  const errors = parseJson(response.text);
  return Array.isArray(errors) && errors.some((e) => e.errorCode === "REQUEST_LIMIT_EXCEEDED");
}

/** A SOQL string literal. */
export function soqlString(value) {
  return `'${String(value).replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/** The message of a failed collection result. */
export function collectionError(result) {
  const error = result?.errors?.[0];
  return error ? `${error.statusCode}: ${error.message}` : "unknown error";
}
