// NetSuite SuiteTalk REST client (the ERP side): token-based authentication (OAuth 1.0a,
// HMAC-SHA256, signed afresh for every attempt), record upserts by external id, SuiteQL with
// paging, 429 + Retry-After honoured, and at most 4 requests in flight (a NetSuite account's
// concurrency limit is 5 on developer/sandbox accounts; staying below it leaves room for others).

import crypto from "node:crypto";
import { Endpoint, HttpError, parseJson } from "./http.mjs";
import { toJson } from "./decimal.mjs";

const PAGE = 1000; // SuiteQL rows per page (NetSuite's maximum)

/** RFC 3986 percent-encoding, the only encoding OAuth 1.0a accepts (encodeURIComponent leaves !'()*). */
export function rfc3986(value) {
  return encodeURIComponent(String(value)).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * The OAuth 1.0a `Authorization` header for one request (RFC 5849 section 3.4, as NetSuite verifies it):
 *   base string = METHOD & enc(scheme://host[:port]/path) & enc(sorted "k=v" of query + oauth_* params)
 *   signature   = base64(HMAC-SHA256(enc(consumer secret) & enc(token secret), base string))
 * The realm (the account id) is sent but not signed. JSON bodies are not part of the signature
 * (only form bodies are) and NetSuite does not expect an oauth_body_hash, so none is sent.
 */
export function oauth1Header(method, url, creds, { nonce, timestamp } = {}) {
  const target = new URL(url);
  const oauth = {
    oauth_consumer_key: creds.consumerKey,
    oauth_token: creds.tokenId,
    oauth_signature_method: "HMAC-SHA256",
    oauth_timestamp: String(timestamp ?? Math.floor(Date.now() / 1000)),
    oauth_nonce: nonce ?? crypto.randomBytes(16).toString("hex"),
    oauth_version: "1.0",
  };
  const params = [...target.searchParams.entries(), ...Object.entries(oauth)]
    .map(([key, value]) => [rfc3986(key), rfc3986(value)])
    .sort(([k1, v1], [k2, v2]) => (k1 < k2 ? -1 : k1 > k2 ? 1 : v1 < v2 ? -1 : v1 > v2 ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`)
    .join("&");
  // URL.host is lower case and omits the default port, as the base string URI requires
  const baseUri = `${target.protocol}//${target.host}${target.pathname}`;
  const base = [method.toUpperCase(), rfc3986(baseUri), rfc3986(params)].join("&");
  const key = `${rfc3986(creds.consumerSecret)}&${rfc3986(creds.tokenSecret)}`;
  const signature = crypto.createHmac("sha256", key).update(base).digest("base64");
  const fields = { realm: creds.realm, ...oauth, oauth_signature: signature };
  return "OAuth " + Object.entries(fields).map(([k, v]) => `${k}="${rfc3986(v)}"`).join(", ");
}

export class NetSuite {
  constructor(env) {
    this.baseUrl = env.SYNCERT_ERP_URL.replace(/\/+$/, "");
    this.creds = {
      // NetSuite realms are the account id in upper case with "_" for "-" (1234567_SB1)
      realm: env.SYNCERT_ERP_ACCOUNT.toUpperCase().replace(/-/g, "_"),
      consumerKey: env.SYNCERT_ERP_CONSUMER_KEY,
      consumerSecret: env.SYNCERT_ERP_CONSUMER_SECRET,
      tokenId: env.SYNCERT_ERP_TOKEN_ID,
      tokenSecret: env.SYNCERT_ERP_TOKEN_SECRET,
    };
    this.endpoint = new Endpoint({ system: "erp", maxInFlight: 4 });
    this.calls = 0;
  }

  /** One REST call; returns {status, headers, body}. Throws HttpError on 4xx/5xx (after retries). */
  async call(method, path, { query = "", body, headers = {}, idempotent = method !== "POST" } = {}) {
    const url = `${this.baseUrl}${path}${query ? `?${query}` : ""}`;
    const response = await this.endpoint.request(method, {
      describe: `${method} ${path}`,
      idempotent,
      // signed inside the slot, right before sending: a fresh nonce and timestamp per attempt
      prepare: () => ({
        url,
        headers: {
          Authorization: oauth1Header(method, url, this.creds),
          ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
          ...headers,
        },
        body: body === undefined ? undefined : toJson(body),
      }),
      isThrottled: (r) => r.status === 429,
    });
    this.calls += 1;
    const parsed = parseJson(response.text);
    if (response.status >= 400) {
      const detail = parsed?.["o:errorDetails"]?.[0];
      throw new HttpError("erp", method, url, response.status, parsed,
                          detail ? `${detail["o:errorCode"]}: ${detail.detail}` : response.text.slice(0, 300));
    }
    return { status: response.status, headers: response.headers, body: parsed };
  }

  /** Every row of a SuiteQL query (pages of up to 1000 until hasMore is false; a page may be smaller). */
  async suiteql(q) {
    const rows = [];
    for (let offset = 0; ; offset = rows.length) {
      // a SuiteQL POST only reads: safe to resend after a lost answer
      const { body } = await this.call("POST", "/services/rest/query/v1/suiteql", {
        query: `limit=${PAGE}&offset=${offset}`, body: { q }, headers: { Prefer: "transient" }, idempotent: true,
      });
      rows.push(...body.items.map(({ links, ...row }) => row));
      if (!body.hasMore) return rows;
    }
  }

  /** Create or update the record whose externalId is `externalId`; returns its internal id. */
  async upsert(type, externalId, record) {
    const { headers } = await this.call("PUT", `/services/rest/record/v1/${type}/eid:${rfc3986(externalId)}`,
                                        { body: record });
    return idFromLocation(headers.location);
  }

  async update(type, id, record) {
    await this.call("PATCH", `/services/rest/record/v1/${type}/${rfc3986(id)}`, { body: record });
  }

  async get(type, id, fields = null) {
    const query = fields ? `fields=${rfc3986(fields.join(","))}` : "";
    return (await this.call("GET", `/services/rest/record/v1/${type}/${rfc3986(id)}`, { query })).body;
  }
}

/** A NetSuite create or upsert answers 204 with `Location: .../record/v1/<type>/<id>`. */
function idFromLocation(location) {
  const id = location?.split("/").pop();
  if (!id) throw new Error(`the ERP answered without a Location header (${location})`);
  return id;
}

/** A SuiteQL string literal. */
export function suiteqlString(value) {
  return `'${String(value).replace(/'/g, "''")}'`;
}
