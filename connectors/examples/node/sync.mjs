#!/usr/bin/env node
// One sync cycle between Salesforce (CRM) and NetSuite (ERP), as syncert's command mode runs it:
//   node sync.mjs        (working directory: this folder; configuration: SYNCERT_* variables)
// Exit 0: the cycle is done (records refused for good are in $SYNCERT_DEAD_LETTER).
// Exit 1: something failed that a later cycle may fix; nothing is marked done that was not.
// Exit 2: the environment is incomplete.
// Credentials are read from the environment and never printed.

import fs from "node:fs";
import { Salesforce } from "./salesforce.mjs";
import { NetSuite } from "./netsuite.mjs";
import { Context, syncOrders, syncProducts } from "./flows.mjs";
import { syncAccounts, syncContacts } from "./customers.mjs";
import { syncCredit, syncInvoices } from "./standing.mjs";
import { DeadLetters, State } from "./support.mjs";

const REQUIRED = ["SYNCERT_CRM_URL", "SYNCERT_CRM_CLIENT_ID", "SYNCERT_CRM_CLIENT_SECRET", "SYNCERT_ERP_URL",
  "SYNCERT_ERP_ACCOUNT", "SYNCERT_ERP_CONSUMER_KEY", "SYNCERT_ERP_CONSUMER_SECRET", "SYNCERT_ERP_TOKEN_ID",
  "SYNCERT_ERP_TOKEN_SECRET"];

/** The flows this connector runs: the `flows` list of connector.toml beside this file. */
function declaredFlows() {
  const manifest = fs.readFileSync(new URL("./connector.toml", import.meta.url), "utf8");
  const list = /^\s*flows\s*=\s*\[([^\]]*)\]/m.exec(manifest);
  return new Set(list ? [...list[1].matchAll(/"([a-z_]+)"/g)].map((m) => m[1]) : []);
}

async function main() {
  const env = process.env;
  const missing = REQUIRED.filter((name) => !env[name]);
  if (missing.length) {
    process.stderr.write(`sync: missing environment variables: ${missing.join(", ")}\n`);
    return 2;
  }
  const flows = declaredFlows();
  const state = new State(env.SYNCERT_STATE_DIR);
  const ctx = new Context({ crm: new Salesforce(env), erp: new NetSuite(env), state,
                            deadLetters: new DeadLetters(env.SYNCERT_DEAD_LETTER) });

  // Order matters: products and accounts before orders (an order needs its account's ERP customer and
  // its products' ERP items), accounts before contacts (a contact belongs to its account's customer),
  // orders before credit (a new order can put its customer on hold) and before invoices.
  const has = (...names) => names.some((name) => flows.has(name));
  const steps = [];
  if (has("items", "inventory")) {
    steps.push([flows.has("items") ? "items" : "inventory",
                () => syncProducts(ctx, { items: flows.has("items"), inventory: flows.has("inventory") })]);
  }
  if (has("accounts")) steps.push(["accounts", () => syncAccounts(ctx)]);
  if (has("contacts")) steps.push(["contacts", () => syncContacts(ctx)]);
  if (has("orders")) steps.push(["orders", () => syncOrders(ctx)]);
  if (has("credit")) steps.push(["credit", () => syncCredit(ctx)]);
  if (has("invoices", "payments")) {
    steps.push([flows.has("invoices") ? "invoices" : "payments",
                () => syncInvoices(ctx, { invoices: flows.has("invoices"), payments: flows.has("payments") })]);
  }

  const started = Date.now();
  for (const [name, run] of steps) {
    try {
      process.stdout.write(`${name}: ${await run()}\n`);
    } catch (error) {
      // a whole flow failed (a query after all retries, the CRM login...): the next cycle redoes it
      ctx.failures.push(`${name}: ${error.message}`);
      process.stderr.write(`${name}: flow failed: ${error.message}\n`);
    } finally {
      state.save(); // what succeeded stays done even if a later flow fails
    }
  }
  process.stdout.write(`cycle: ${ctx.crm.calls} CRM and ${ctx.erp.calls} ERP calls, ` +
                       `${ctx.deadLetters.count} dead-lettered, ${ctx.failures.length} failed, ` +
                       `${((Date.now() - started) / 1000).toFixed(2)} s\n`);
  return ctx.failures.length ? 1 : 0;
}

main().then((code) => {
  process.exitCode = code;
}, (error) => {
  process.stderr.write(`sync: ${error?.stack ?? error}\n`);
  process.exitCode = 1;
});
