// The sync flows. Each one reads both sides, works out what has to change, writes only that, and
// classifies every record that could not be synced:
//   - refused for good (a 4xx validation error, a missing reference): dead-lettered, the other
//     records go on, and the record is retried only once its content changes;
//   - anything else (a 5xx, a network error, throttling beyond the retry budget): the cycle fails
//     (exit 1) and the record is picked up again by the next cycle (the watermark does not move).
//
// Linkage fields (canonical names in brackets):
//   Account.ERP_Customer_Id__c [erp_customer_id]   <- NetSuite customer id
//   customer.custentity_syncert_crm_id [crm_id]    <- Salesforce Account id
//   customer.externalId = "acct-<Account id>"      (this connector's own upsert key)
//   Product2.ERP_Item_Id__c [erp_item_id]           <- NetSuite inventory item id
//   salesOrder.externalId = "opp-<Opportunity id>", salesOrder.custbody_syncert_crm_id [crm_id]
//   Opportunity.ERP_Order_Id__c [erp_order_id]      <- NetSuite order number (tranId)

import { Dec, sameNumber } from "./decimal.mjs";
import { soqlString, collectionError } from "./salesforce.mjs";
import { suiteqlString } from "./netsuite.mjs";
import { chunks, fingerprint, forEachLimited } from "./support.mjs";

const RECORDS_AHEAD = 8; // records worked on at once (requests in flight are capped per system)
const IDS_PER_QUERY = 100; // ids in one IN (...) list

export const ACCOUNT_PREFIX = "acct-";
export const ORDER_PREFIX = "opp-";

/** Everything a flow needs, and where it reports what went wrong. */
export class Context {
  constructor({ crm, erp, state, deadLetters }) {
    Object.assign(this, { crm, erp, state, deadLetters });
    this.failures = []; // transient failures: the cycle exits non-zero
  }

  /** Dead-letter a record the target refused for good, and remember which content was refused
   * (under `key`, the record id unless one record can be refused at two steps). */
  giveUp(flow, sourceSystem, id, fp, reason, key = id) {
    this.deadLetters.add(flow, sourceSystem, id, reason);
    this.state.flow(flow).givenUp[key] = fp;
    process.stderr.write(`${flow}: gave up on ${sourceSystem} record ${id}: ${reason}\n`);
  }

  /** A record that failed for a reason that may go away: retried next cycle, the cycle fails. */
  fail(flow, id, error) {
    this.failures.push(`${flow} ${id}: ${error.message}`);
    process.stderr.write(`${flow}: ${id} failed, will retry next cycle: ${error.message}\n`);
  }

  /** True when this content of the record was dead-lettered already: don't send it again. */
  givenUp(flow, key, fp) {
    return this.state.flow(flow).givenUp[key] === fp;
  }

  /** Route an error to giveUp (permanent) or fail (transient). */
  handle(flow, sourceSystem, id, fp, error) {
    if (error.permanent) this.giveUp(flow, sourceSystem, id, fp, error.message);
    else this.fail(flow, id, error);
  }
}

// -- items and inventory: ERP inventory items -> CRM products (+ a standard price book entry) -------

/**
 * `items`: name, SKU, list price, active (= not discontinued) and a standard price book entry.
 * `inventory`: quantity available. Reads every item and product each cycle (two paged queries) and
 * writes only the products whose values differ, so a quiet cycle writes nothing.
 */
export async function syncProducts(ctx, { items: withItems, inventory: withInventory }) {
  const { crm, erp } = ctx;
  const flow = withItems ? "items" : "inventory";
  const items = await erp.suiteql(
    "SELECT id, itemid, displayname, baseprice, quantityavailable, isinactive FROM item");
  const products = await crm.query("SELECT Id, Name, ProductCode, IsActive, List_Price__c, " +
                                   "Quantity_Available__c, ERP_Item_Id__c FROM Product2");
  const byItemId = new Map(products.filter((p) => p.ERP_Item_Id__c).map((p) => [p.ERP_Item_Id__c, p]));
  // a product created in the CRM by hand with the item's SKU is adopted rather than duplicated
  const unlinkedBySku = new Map(products.filter((p) => !p.ERP_Item_Id__c && p.ProductCode)
    .map((p) => [p.ProductCode, p]));

  const updates = [], creates = [], productIdOf = new Map();
  for (const item of items) {
    const wanted = {};
    if (withItems) {
      wanted.Name = item.displayname || item.itemid;
      wanted.ProductCode = item.itemid;
      wanted.IsActive = item.isinactive !== "T"; // SuiteQL booleans are "T" / "F"
      wanted.List_Price__c = item.baseprice == null ? null : Dec.of(item.baseprice);
    }
    if (withInventory) wanted.Quantity_Available__c = item.quantityavailable == null ? null
      : Dec.of(item.quantityavailable);
    const existing = byItemId.get(item.id) ?? unlinkedBySku.get(item.itemid);
    if (!existing) {
      const record = { attributes: { type: "Product2" }, ERP_Item_Id__c: item.id, ...wanted };
      if (withItems && !ctx.givenUp(flow, item.id, fingerprint(record))) creates.push({ item, record });
      continue;
    }
    productIdOf.set(item.id, existing.Id);
    const changed = Object.fromEntries(Object.entries(wanted).filter(([field, value]) => !same(existing[field], value)));
    if (!existing.ERP_Item_Id__c) changed.ERP_Item_Id__c = item.id;
    const record = { attributes: { type: "Product2" }, Id: existing.Id, ...changed };
    if (Object.keys(changed).length && !ctx.givenUp(flow, item.id, fingerprint(record))) {
      updates.push({ item, record });
    }
  }
  const written = [
    ...zip(updates, await crm.collection("update", updates.map((u) => u.record))),
    // upsert by ERP_Item_Id__c: resending after a lost answer cannot create a second product
    ...zip(creates, await crm.collection("upsert", creates.map((c) => c.record),
                                         { type: "Product2", externalIdField: "ERP_Item_Id__c" })),
  ];
  for (const [{ item, record }, result] of written) {
    if (result.success) productIdOf.set(item.id, result.id);
    else ctx.giveUp(flow, "erp", item.id, fingerprint(record), `CRM refused the product: ${collectionError(result)}`);
  }
  const entries = withItems ? await syncPriceBookEntries(ctx, items, productIdOf) : 0;
  return `${items.length} items, ${updates.length} products updated, ${creates.length} created, ` +
         `${entries} price book entries written`;
}

/** One standard price book entry per product, at the item's base price. */
async function syncPriceBookEntries(ctx, items, productIdOf) {
  const { crm } = ctx;
  const [standard] = await crm.query("SELECT Id FROM Pricebook2 WHERE IsStandard = true");
  if (!standard) throw new Error("the CRM has no standard price book");
  const existing = await crm.query("SELECT Id, Product2Id, UnitPrice, IsActive FROM PricebookEntry " +
                                   `WHERE Pricebook2Id = ${soqlString(standard.Id)}`);
  const entryOf = new Map(existing.map((e) => [e.Product2Id, e]));
  const updates = [], creates = [];
  for (const item of items) {
    const productId = productIdOf.get(item.id);
    if (!productId || item.baseprice == null) continue; // no product yet, or nothing to price
    const price = Dec.of(item.baseprice), active = item.isinactive !== "T";
    const entry = entryOf.get(productId);
    const record = entry
      ? { attributes: { type: "PricebookEntry" }, Id: entry.Id, UnitPrice: price, IsActive: active }
      : { attributes: { type: "PricebookEntry" }, Pricebook2Id: standard.Id, Product2Id: productId,
          UnitPrice: price, IsActive: active };
    if (ctx.givenUp("items", `entry:${item.id}`, fingerprint(record))) continue;
    if (!entry) creates.push({ item, record });
    else if (!same(entry.UnitPrice, price) || entry.IsActive !== active) updates.push({ item, record });
  }
  const written = [...zip(updates, await crm.collection("update", updates.map((u) => u.record))),
                   ...zip(creates, await crm.collection("create", creates.map((c) => c.record)))];
  for (const [{ item, record }, result] of written) {
    if (!result.success) {
      ctx.giveUp("items", "erp", item.id, fingerprint(record),
                 `CRM refused the price book entry: ${collectionError(result)}`, `entry:${item.id}`);
    }
  }
  return written.length;
}

// -- accounts: CRM accounts -> ERP customers, exactly once, with the customer id written back -------

const ACCOUNT_FIELDS = ["Id", "Name", "Phone", "BillingStreet", "BillingCity", "BillingState", "BillingPostalCode",
  "BillingCountry", "ShippingStreet", "ShippingCity", "ShippingState", "ShippingPostalCode", "ShippingCountry",
  "ERP_Customer_Id__c", "SystemModstamp"];

/** The NetSuite customer body for an account (CRM-owned fields only). */
function customerFor(account) {
  const body = { companyName: account.Name, phone: account.Phone ?? null, custentity_syncert_crm_id: account.Id };
  const addresses = [["Billing", true], ["Shipping", false]].flatMap(([prefix, billing]) => {
    const address = compact({ addr1: account[`${prefix}Street`], city: account[`${prefix}City`],
                              state: account[`${prefix}State`], zip: account[`${prefix}PostalCode`],
                              country: account[`${prefix}Country`] ? { id: account[`${prefix}Country`] } : null });
    return Object.keys(address).length
      ? [{ defaultBilling: billing, defaultShipping: !billing, addressBookAddress: address }] : [];
  });
  if (addresses.length) body.addressBook = { items: addresses };
  return body;
}

/**
 * New accounts (no ERP customer id) and accounts changed since the watermark are upserted:
 *   - the account names its customer (ERP_Customer_Id__c): that customer is updated;
 *   - a customer already claims the account (crm_id, or our external id): it is updated and linked;
 *   - otherwise PUT customer/eid:acct-<id> creates it (idempotent: a retry or a rerun after a crash
 *     between the create and the write-back finds the same customer).
 * Then ERP_Customer_Id__c is written back, 200 accounts per call.
 */
export async function syncAccounts(ctx) {
  const { crm, erp } = ctx;
  const st = ctx.state.flow("accounts");
  st.synced ??= {};
  const where = st.watermark ? ` WHERE ERP_Customer_Id__c = null OR SystemModstamp >= ${st.watermark}` : "";
  const accounts = await crm.query(`SELECT ${ACCOUNT_FIELDS.join(", ")} FROM Account${where}`);

  const todo = [];
  for (const account of accounts) {
    const body = customerFor(account), fp = fingerprint(body);
    const known = st.synced[account.Id];
    if (known && known.fp === fp && known.customer === account.ERP_Customer_Id__c) continue; // nothing new
    if (ctx.givenUp("accounts", account.Id, fp)) continue; // refused before, unchanged since
    todo.push({ account, body, fp });
  }

  // customers that already claim one of the unlinked accounts
  const claims = new Map();
  const unlinked = todo.filter((t) => !t.account.ERP_Customer_Id__c).map((t) => t.account.Id);
  for (const ids of chunks(unlinked, IDS_PER_QUERY)) {
    const rows = await erp.suiteql("SELECT id, externalid, custentity_syncert_crm_id FROM customer WHERE " +
      `custentity_syncert_crm_id IN (${ids.map(suiteqlString).join(", ")}) OR ` +
      `externalid IN (${ids.map((id) => suiteqlString(ACCOUNT_PREFIX + id)).join(", ")})`);
    for (const row of rows) {
      const accountId = row.externalid?.startsWith(ACCOUNT_PREFIX) ? row.externalid.slice(ACCOUNT_PREFIX.length)
        : row.custentity_syncert_crm_id;
      claims.set(accountId, [...(claims.get(accountId) ?? []), row]);
    }
  }

  const linked = []; // {account, customerId, fp}
  let created = 0, updated = 0;
  await forEachLimited(todo, RECORDS_AHEAD, async ({ account, body, fp }) => {
    try {
      let customerId = account.ERP_Customer_Id__c;
      const claimants = claims.get(account.Id) ?? [];
      if (!customerId && claimants.length > 1) {
        // prefer the customer this connector created; two foreign claims are a data problem
        const ours = claimants.find((c) => c.externalid === ACCOUNT_PREFIX + account.Id);
        if (!ours) {
          ctx.giveUp("accounts", "crm", account.Id, fp, `ERP customers ${claimants.map((c) => c.id).join(", ")} ` +
                     "all claim this account; link one of them by hand (ERP_Customer_Id__c)");
          return;
        }
        customerId = ours.id;
      } else if (!customerId && claimants.length === 1) {
        customerId = claimants[0].id;
      }
      if (customerId) {
        await erp.update("customer", customerId, body);
        updated += 1;
      } else {
        customerId = await erp.upsert("customer", ACCOUNT_PREFIX + account.Id, body);
        created += 1;
      }
      linked.push({ account, customerId, fp });
    } catch (error) {
      ctx.handle("accounts", "crm", account.Id, fp, error);
    }
  });

  const writeBacks = linked.filter(({ account, customerId }) => account.ERP_Customer_Id__c !== customerId);
  const results = await crm.collection("update", writeBacks.map(({ account, customerId }) => (
    { attributes: { type: "Account" }, Id: account.Id, ERP_Customer_Id__c: customerId })));
  const failedWriteBacks = new Set();
  for (const [{ account, customerId, fp }, result] of zip(writeBacks, results)) {
    if (result.success) continue;
    failedWriteBacks.add(account.Id);
    ctx.giveUp("accounts", "crm", account.Id, fp,
               `ERP customer ${customerId} is synced but the CRM refused its id: ${collectionError(result)}`);
  }
  for (const { account, customerId, fp } of linked) {
    if (!failedWriteBacks.has(account.Id)) {
      st.synced[account.Id] = { customer: customerId, fp };
      delete st.givenUp[account.Id];
    }
  }
  if (!ctx.failures.some((f) => f.startsWith("accounts "))) {
    // only a clean pass moves the watermark: a failed record is read again next cycle
    st.watermark = newest(accounts.map((a) => a.SystemModstamp), st.watermark);
  }
  return `${accounts.length} accounts read, ${created} customers created, ${updated} updated, ` +
         `${writeBacks.length - failedWriteBacks.size} linked back`;
}

// -- orders: a Closed Won opportunity -> exactly one ERP sales order ---------------------------------

/** NetSuite orderStatus id -> Opportunity.Commitment_Status__c */
function commitmentOf(orderStatus) {
  // A: pending approval (e.g. credit hold) -> submitted, waiting; every later status (B pending
  // fulfillment, D partially fulfilled, F pending billing, G billed, H closed) has committed.
  return orderStatus === "A" ? "Submitted" : "Committed";
}

/**
 * Closed Won opportunities without an ERP order (or not yet Committed) are handled each cycle:
 *   1. find orders already made for them (externalId opp-<id>, or crm_id): never a second one;
 *   2. create the missing ones with PUT salesOrder/eid:opp-<id> (idempotent), lines priced at the
 *      line's unit price less its percentage discount, computed exactly;
 *   3. write the order number and the commitment status back to the opportunity.
 * Lines are taken when the order is created; later changes to a won deal are not propagated.
 */
export async function syncOrders(ctx) {
  const { crm, erp } = ctx;
  const st = ctx.state.flow("orders");
  const opportunities = await crm.query("SELECT Id, AccountId, Name, ERP_Order_Id__c, Commitment_Status__c " +
    "FROM Opportunity WHERE StageName = 'Closed Won' AND (ERP_Order_Id__c = null OR " +
    "Commitment_Status__c != 'Committed')");
  if (!opportunities.length) return "no won deal to sync";

  // orders already made for these deals: under our key, pointing at the deal (crm_id), or carrying
  // the number the deal already shows (an order made by someone else)
  const orderOf = new Map(); // opportunity id -> {id, tranid, orderstatus}
  for (const part of chunks(opportunities, IDS_PER_QUERY)) {
    const ids = part.map((o) => o.Id);
    const numbers = part.map((o) => o.ERP_Order_Id__c).filter(Boolean);
    const rows = await erp.suiteql("SELECT id, tranid, orderstatus, externalid, custbody_syncert_crm_id " +
      "FROM transaction WHERE type = 'SalesOrd' AND (" +
      `externalid IN (${ids.map((id) => suiteqlString(ORDER_PREFIX + id)).join(", ")}) OR ` +
      `custbody_syncert_crm_id IN (${ids.map(suiteqlString).join(", ")})` +
      (numbers.length ? ` OR tranid IN (${numbers.map(suiteqlString).join(", ")})` : "") + ")");
    const rank = (row, opp) => (row.externalid === ORDER_PREFIX + opp.Id ? 3
      : row.custbody_syncert_crm_id === opp.Id ? 2 : row.tranid === opp.ERP_Order_Id__c ? 1 : 0);
    for (const opp of part) {
      const best = rows.filter((row) => rank(row, opp) > 0).sort((a, b) => rank(b, opp) - rank(a, opp))[0];
      if (best) orderOf.set(opp.Id, best);
    }
  }

  const toCreate = opportunities.filter((o) => !orderOf.has(o.Id));
  let created = 0, waiting = 0;
  if (toCreate.length) {
    const bodies = await orderBodies(ctx, toCreate);
    await forEachLimited(toCreate, RECORDS_AHEAD, async (opportunity) => {
      const planned = bodies.get(opportunity.Id);
      if (planned.wait) {
        waiting += 1;
        process.stderr.write(`orders: ${opportunity.Id} waits: ${planned.wait}\n`);
        return;
      }
      const fp = fingerprint(planned.problem ?? planned.body);
      if (ctx.givenUp("orders", opportunity.Id, fp)) return;
      if (planned.problem) {
        ctx.giveUp("orders", "crm", opportunity.Id, fp, planned.problem);
        return;
      }
      try {
        const id = await erp.upsert("salesOrder", ORDER_PREFIX + opportunity.Id, planned.body);
        const order = await erp.get("salesOrder", id, ["tranId", "orderStatus"]);
        orderOf.set(opportunity.Id, { id, tranid: order.tranId, orderstatus: order.orderStatus?.id });
        delete st.givenUp[opportunity.Id];
        created += 1;
      } catch (error) {
        ctx.handle("orders", "crm", opportunity.Id, fp, error);
      }
    });
  }

  const writeBacks = [];
  for (const opportunity of opportunities) {
    const order = orderOf.get(opportunity.Id);
    if (!order) continue;
    const wanted = { ERP_Order_Id__c: order.tranid, Commitment_Status__c: commitmentOf(order.orderstatus) };
    const record = { attributes: { type: "Opportunity" }, Id: opportunity.Id, ...wanted };
    if ((opportunity.ERP_Order_Id__c !== wanted.ERP_Order_Id__c
         || opportunity.Commitment_Status__c !== wanted.Commitment_Status__c)
        && !ctx.givenUp("orders", `writeback:${opportunity.Id}`, fingerprint(record))) {
      writeBacks.push({ opportunity, record });
    }
  }
  const results = await crm.collection("update", writeBacks.map((w) => w.record));
  for (const [{ opportunity, record }, result] of zip(writeBacks, results)) {
    if (!result.success) {
      ctx.giveUp("orders", "crm", opportunity.Id, fingerprint(record),
                 `the CRM refused the order number: ${collectionError(result)}`, `writeback:${opportunity.Id}`);
    }
  }
  return `${opportunities.length} won deals open, ${created} orders created, ${writeBacks.length} written back` +
         (waiting ? `, ${waiting} waiting for their account` : "");
}

/**
 * The salesOrder body of each opportunity, or why there is none:
 *   {body} | {problem} (permanent: dead-lettered) | {wait} (the account is not in the ERP yet).
 */
async function orderBodies(ctx, opportunities) {
  const { crm } = ctx;
  const ids = opportunities.map((o) => o.Id);
  const lines = [], accounts = new Map(), products = new Map();
  for (const part of chunks(ids, IDS_PER_QUERY)) {
    lines.push(...await crm.query("SELECT Id, OpportunityId, Product2Id, Quantity, UnitPrice, Discount FROM " +
      `OpportunityLineItem WHERE OpportunityId IN (${part.map(soqlString).join(", ")})`));
  }
  const accountIds = [...new Set(opportunities.map((o) => o.AccountId).filter(Boolean))];
  for (const part of chunks(accountIds, IDS_PER_QUERY)) {
    for (const a of await crm.query("SELECT Id, ERP_Customer_Id__c FROM Account WHERE Id IN " +
                                    `(${part.map(soqlString).join(", ")})`)) accounts.set(a.Id, a);
  }
  const productIds = [...new Set(lines.map((l) => l.Product2Id))];
  for (const part of chunks(productIds, IDS_PER_QUERY)) {
    for (const p of await crm.query("SELECT Id, ProductCode, ERP_Item_Id__c FROM Product2 WHERE Id IN " +
                                    `(${part.map(soqlString).join(", ")})`)) products.set(p.Id, p);
  }

  const bodies = new Map();
  for (const opportunity of opportunities) {
    const own = lines.filter((l) => l.OpportunityId === opportunity.Id).sort((a, b) => (a.Id < b.Id ? -1 : 1));
    const account = accounts.get(opportunity.AccountId);
    const unmapped = own.filter((l) => !products.get(l.Product2Id)?.ERP_Item_Id__c);
    if (!opportunity.AccountId || !account) {
      bodies.set(opportunity.Id, { problem: "the won deal has no account" });
    } else if (!own.length) {
      bodies.set(opportunity.Id, { problem: "the won deal has no products (line items)" });
    } else if (unmapped.length) {
      bodies.set(opportunity.Id, { problem: "products not sold through the ERP (no ERP item id): " +
        unmapped.map((l) => products.get(l.Product2Id)?.ProductCode ?? l.Product2Id).join(", ") });
    } else if (!account.ERP_Customer_Id__c) {
      bodies.set(opportunity.Id, { wait: `account ${account.Id} has no ERP customer yet` });
    } else {
      bodies.set(opportunity.Id, { body: {
        entity: { id: account.ERP_Customer_Id__c },
        custbody_syncert_crm_id: opportunity.Id,
        memo: opportunity.Name,
        item: { items: own.map((line) => ({
          item: { id: products.get(line.Product2Id).ERP_Item_Id__c },
          quantity: Dec.of(line.Quantity),
          rate: discounted(line.UnitPrice, line.Discount),
        })) },
      } });
    }
  }
  return bodies;
}

/** unit price x (100 - discount %) / 100, exactly (25.00 at 10 % -> 22.5; 199.99 at 15 % -> 169.9915).
 * Not rounded: the ERP rounds quantity x rate to the cent, as the CRM rounds the line total. */
export function discounted(unitPrice, discountPercent) {
  return Dec.of(unitPrice).mul(Dec.of(100).sub(Dec.of(discountPercent ?? 0))).shift(2);
}

// -- small helpers ---------------------------------------------------------------------------------

function same(current, wanted) {
  if (wanted instanceof Dec || typeof current === "number") return sameNumber(current, wanted);
  return (current ?? null) === (wanted ?? null);
}

function compact(object) {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== null && v !== undefined && v !== ""));
}

function zip(a, b) {
  return a.map((x, i) => [x, b[i]]);
}

/** The latest of Salesforce datetimes ("2026-01-31T10:00:00.000+0000"), as a SOQL literal (…Z). */
function newest(values, previous) {
  const literal = (v) => v.replace(/\+0000$/, "Z").replace(/([+-]\d\d)(\d\d)$/, "$1:$2");
  return values.filter(Boolean).map(literal)
    .reduce((best, v) => (best === undefined || Date.parse(v) > Date.parse(best) ? v : best), previous);
}
