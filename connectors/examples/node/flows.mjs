// The sync flows' shared context, and the flows around products and orders (customers.mjs holds
// accounts and contacts, standing.mjs credit, invoices and payments). Each flow reads both sides,
// works out what has to change, writes only that, and classifies every record that could not be synced:
//   - refused for good (a 4xx validation error, a missing reference): dead-lettered, the other
//     records go on, and the record is retried only once its content changes;
//   - anything else (a 5xx, a network error, throttling beyond the retry budget): the cycle fails
//     (exit 1) and the record is picked up again by the next cycle (the watermark does not move).
//
// Linkage fields (canonical names in brackets):
//   Account.ERP_Customer_Id__c [erp_customer_id]   <- NetSuite customer id (see customers.mjs)
//   Product2.ERP_Item_Id__c [erp_item_id]           <- NetSuite inventory item id
//   salesOrder.externalId = "opp-<Opportunity id>", salesOrder.custbody_syncert_crm_id [crm_id]
//   Opportunity.ERP_Order_Id__c [erp_order_id]      <- NetSuite order number (tranId)

import { Dec, sameNumber } from "./decimal.mjs";
import { soqlString, collectionError } from "./salesforce.mjs";
import { suiteqlString } from "./netsuite.mjs";
import { chunks, fingerprint, forEachLimited, zip } from "./support.mjs";

export const RECORDS_AHEAD = 8; // records worked on at once (requests in flight are capped per system)
export const IDS_PER_QUERY = 100; // ids in one IN (...) list

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

// -- orders: a Closed Won opportunity -> exactly one ERP sales order ---------------------------------

/** NetSuite orderStatus id -> Opportunity.Commitment_Status__c */
function commitmentOf(orderStatus) {
  // A: pending approval (e.g. credit hold): submitted, waiting. H: closed without being fulfilled.
  // B pending fulfillment, D partially fulfilled, F pending billing, G billed: committed.
  return orderStatus === "A" ? "Submitted" : orderStatus === "H" ? "Rejected" : "Committed";
}

const ORDER_COLUMNS = "id, tranid, orderstatus, externalid, custbody_syncert_crm_id, lastmodifieddate";

/**
 * Two halves, one write-back:
 *   new deals: Closed Won opportunities without an ERP order number. An order already made for one
 *     (under eid:opp-<id>, pointing at it through crm_id, or carrying the number it shows) is reused;
 *     otherwise PUT salesOrder/eid:opp-<id> creates it (idempotent): dated the deal's close date, in
 *     its currency, lines priced at the line's unit price less its percentage discount, computed exactly;
 *   order changes: sales orders modified since the last cycle (ERP watermark) update the commitment
 *     status of their opportunity, so it follows the order (credit hold released, order closed).
 * Then the order number and commitment status are written back where they differ.
 * Lines are taken when the order is created; later changes to a won deal are not propagated.
 */
export async function syncOrders(ctx) {
  const { crm, erp } = ctx;
  const st = ctx.state.flow("orders");
  const wanted = new Map(); // opportunity id -> {opportunity, order}

  // new deals
  const deals = await crm.query("SELECT Id, AccountId, Name, CloseDate, CurrencyIsoCode, ERP_Order_Id__c, " +
    "Commitment_Status__c FROM Opportunity WHERE StageName = 'Closed Won' AND ERP_Order_Id__c = null");
  const orderOf = await existingOrders(erp, deals);
  const toCreate = deals.filter((o) => !orderOf.has(o.Id));
  let created = 0, waiting = 0;
  if (toCreate.length) {
    const plans = await orderPlans(ctx, toCreate);
    await forEachLimited(toCreate, RECORDS_AHEAD, async (opportunity) => {
      const plan = plans.get(opportunity.Id);
      if (plan.wait) {
        waiting += 1;
        process.stderr.write(`orders: ${opportunity.Id} waits: ${plan.wait}\n`);
        return;
      }
      if (ctx.givenUp("orders", opportunity.Id, plan.fp)) return; // refused before, unchanged since
      if (plan.problem) {
        ctx.giveUp("orders", "crm", opportunity.Id, plan.fp, plan.problem);
        return;
      }
      try {
        const id = await erp.upsert("salesOrder", ORDER_PREFIX + opportunity.Id, plan.body);
        const order = await erp.get("salesOrder", id, ["tranId", "orderStatus"]);
        orderOf.set(opportunity.Id, { id, tranid: order.tranId, orderstatus: order.orderStatus?.id });
        delete st.givenUp[opportunity.Id];
        created += 1;
      } catch (error) {
        ctx.handle("orders", "crm", opportunity.Id, plan.fp, error);
      }
    });
  }
  for (const opportunity of deals) {
    if (orderOf.has(opportunity.Id)) wanted.set(opportunity.Id, { opportunity, order: orderOf.get(opportunity.Id) });
  }

  // order changes (SuiteQL datetimes are whole seconds: >= re-reads the last second, harmlessly).
  // An order belongs to the deal it names (crm_id) or, failing that, to the deal showing its number.
  const since = st.erpWatermark ? ` AND lastmodifieddate >= TO_TIMESTAMP(${suiteqlString(st.erpWatermark)}, ` +
    "'YYYY-MM-DD HH24:MI:SS')" : "";
  const recent = await erp.suiteql(`SELECT ${ORDER_COLUMNS} FROM transaction WHERE type = 'SalesOrd'${since}`);
  const changed = recent.filter((row) => !wanted.has(row.custbody_syncert_crm_id));
  for (const part of chunks(changed, IDS_PER_QUERY)) {
    const ids = part.map((row) => row.custbody_syncert_crm_id).filter(Boolean);
    const numbers = part.map((row) => row.tranid);
    const opportunities = await crm.query("SELECT Id, ERP_Order_Id__c, Commitment_Status__c FROM Opportunity " +
      `WHERE ERP_Order_Id__c IN (${numbers.map(soqlString).join(", ")})` +
      (ids.length ? ` OR Id IN (${ids.map(soqlString).join(", ")})` : ""));
    for (const opportunity of opportunities) {
      const order = part.find((row) => row.custbody_syncert_crm_id === opportunity.Id)
        ?? part.find((row) => !row.custbody_syncert_crm_id && row.tranid === opportunity.ERP_Order_Id__c);
      // a deal already showing another order's number keeps it: that link is not ours to move
      if (order && (!opportunity.ERP_Order_Id__c || opportunity.ERP_Order_Id__c === order.tranid)) {
        wanted.set(opportunity.Id, { opportunity, order });
      }
    }
  }

  const writeBacks = [];
  for (const { opportunity, order } of wanted.values()) {
    const record = { attributes: { type: "Opportunity" }, Id: opportunity.Id, ERP_Order_Id__c: order.tranid,
                     Commitment_Status__c: commitmentOf(order.orderstatus) };
    if ((opportunity.ERP_Order_Id__c !== record.ERP_Order_Id__c
         || opportunity.Commitment_Status__c !== record.Commitment_Status__c)
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
  if (!ctx.failures.some((f) => f.startsWith("orders "))) {
    const seen = recent.map((row) => row.lastmodifieddate).filter(Boolean).sort();
    if (seen.length) st.erpWatermark = seen[seen.length - 1].replace("T", " ").replace(/Z$/, "");
  }
  return `${deals.length} new won deals, ${created} orders created, ${changed.length} orders changed, ` +
         `${writeBacks.length} deals updated` + (waiting ? `, ${waiting} waiting for their account or products` : "");
}

/** Orders already made for these deals: under our key, pointing at the deal (crm_id), or carrying the
 * number the deal already shows. Returns opportunity id -> order row. */
async function existingOrders(erp, opportunities) {
  const orderOf = new Map();
  for (const part of chunks(opportunities, IDS_PER_QUERY)) {
    const ids = part.map((o) => o.Id);
    const numbers = part.map((o) => o.ERP_Order_Id__c).filter(Boolean);
    const rows = await erp.suiteql(`SELECT ${ORDER_COLUMNS} FROM transaction WHERE type = 'SalesOrd' AND (` +
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
  return orderOf;
}

/**
 * What to do with each new deal: {body, fp} to send; {problem, fp} to dead-letter (it cannot become
 * an order as it is: no account, no products, a currency the ERP lacks); {wait} when its account or
 * products are not in the ERP yet. `fp` covers the deal's account, currency and lines, so a deal given
 * up is tried again as soon as it is edited.
 */
async function orderPlans(ctx, opportunities) {
  const { crm, erp } = ctx;
  const lines = [], accounts = new Map(), products = new Map();
  // NetSuite currencies are records with internal ids; the CRM names them by ISO code (its symbol)
  const currencies = new Map((await erp.suiteql("SELECT id, symbol FROM currency")).map((c) => [c.symbol, c.id]));
  for (const part of chunks(opportunities.map((o) => o.Id), IDS_PER_QUERY)) {
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

  const plans = new Map();
  for (const opportunity of opportunities) {
    const own = lines.filter((l) => l.OpportunityId === opportunity.Id).sort((a, b) => (a.Id < b.Id ? -1 : 1));
    const account = accounts.get(opportunity.AccountId);
    const unlinked = own.filter((l) => !products.get(l.Product2Id)?.ERP_Item_Id__c);
    const code = opportunity.CurrencyIsoCode, unknownCurrency = Boolean(code) && !currencies.has(code);
    const body = account?.ERP_Customer_Id__c && own.length && !unlinked.length && !unknownCurrency ? {
      entity: { id: account.ERP_Customer_Id__c },
      custbody_syncert_crm_id: opportunity.Id,
      memo: opportunity.Name,
      tranDate: opportunity.CloseDate, // a calendar date (YYYY-MM-DD) on both sides: no timezone to shift
      // no CRM currency: the ERP's default (the customer's)
      ...(code ? { currency: { id: currencies.get(code) } } : {}),
      item: { items: own.map((line) => ({
        item: { id: products.get(line.Product2Id).ERP_Item_Id__c },
        quantity: Dec.of(line.Quantity),
        rate: discounted(line.UnitPrice, line.Discount),
      })) },
    } : null;
    const fp = fingerprint({ account: opportunity.AccountId ?? null, body, currency: code ?? null,
                             lines: own.map((l) => [l.Id, l.Product2Id, l.Quantity, l.UnitPrice, l.Discount]) });
    if (!opportunity.AccountId || !account) plans.set(opportunity.Id, { fp, problem: "the won deal has no account" });
    else if (!own.length) plans.set(opportunity.Id, { fp, problem: "the won deal has no products (line items)" });
    else if (unknownCurrency) plans.set(opportunity.Id, { fp, problem: `the ERP has no currency ${code}` });
    else if (!account.ERP_Customer_Id__c) {
      plans.set(opportunity.Id, { wait: `account ${account.Id} has no ERP customer yet` });
    } else if (unlinked.length) {
      plans.set(opportunity.Id, { wait: "products not linked to ERP items yet: " +
        unlinked.map((l) => products.get(l.Product2Id)?.ProductCode ?? l.Product2Id).join(", ") });
    } else plans.set(opportunity.Id, { fp, body });
  }
  return plans;
}

/** unit price x (100 - discount %) / 100, exactly (25.00 at 10 % -> 22.5; 199.99 at 15 % -> 169.9915).
 * Not rounded: the ERP rounds quantity x rate to the cent, as the CRM rounds the line total. */
export function discounted(unitPrice, discountPercent) {
  return Dec.of(unitPrice).mul(Dec.of(100).sub(Dec.of(discountPercent ?? 0))).shift(2);
}

// -- small helpers ---------------------------------------------------------------------------------

/** True when a CRM value already is the wanted one (numbers compared as decimals). */
export function same(current, wanted) {
  if (wanted instanceof Dec || current instanceof Dec) return sameNumber(current, wanted);
  return (current ?? null) === (wanted ?? null);
}
