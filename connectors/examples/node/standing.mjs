// ERP -> CRM: where a customer and a deal stand in the ERP.
//   credit:   a customer's credit hold and balance -> Account.Credit_Status__c, Outstanding_Balance__c
//             of the account it names (custentity_syncert_crm_id)
//   invoices: the invoices of a deal's sales order -> Opportunity.Invoice_Status__c
//   payments: the same invoices' amount still due   -> Opportunity.Payment_Status__c
// These fields are the ERP's alone, so each cycle reads what the ERP says (one SuiteQL query), reads
// what the CRM shows, and writes only the differences: nothing is written once they agree (no echo),
// and a CRM user's edit of an ERP-owned field is put back.

import { Dec } from "./decimal.mjs";
import { soqlString, collectionError } from "./salesforce.mjs";
import { chunks, fingerprint, zip } from "./support.mjs";
import { IDS_PER_QUERY, same } from "./flows.mjs";

const CRM_ID = /^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$/; // a Salesforce record id
const INVOICE_STATUS = { unpaid: "Invoiced", partlyPaid: "Partially Paid", paid: "Paid" };
const PAYMENT_STATUS = { unpaid: "Unpaid", partlyPaid: "Partially Paid", paid: "Paid" };

/** Credit hold and balance of every customer linked to an account. */
export async function syncCredit(ctx) {
  const rows = await ctx.erp.suiteql("SELECT id, custentity_syncert_crm_id, custentity_syncert_credit_hold, " +
    "balance FROM customer WHERE custentity_syncert_crm_id IS NOT NULL");
  const wanted = rows.map((row) => ({
    source: row.id,
    target: row.custentity_syncert_crm_id,
    values: { Credit_Status__c: row.custentity_syncert_credit_hold === "T" ? "On Hold" : "OK",
              Outstanding_Balance__c: row.balance == null ? null : Dec.of(row.balance) },
  }));
  const written = await showInCrm(ctx, "credit", "Account", wanted);
  return `${rows.length} linked customers, ${written} accounts updated`;
}

/** Invoice and/or payment status of every deal whose sales order was invoiced. A deal invoiced in
 * several parts stands where all its invoices together stand. */
export async function syncInvoices(ctx, { invoices: withInvoices, payments: withPayments }) {
  const rows = await ctx.erp.suiteql("SELECT inv.id, inv.total, inv.amountremaining, so.custbody_syncert_crm_id " +
    "FROM transaction inv JOIN transaction so ON inv.createdfrom = so.id " +
    "WHERE inv.type = 'CustInvc' AND so.custbody_syncert_crm_id IS NOT NULL");
  const deals = new Map(); // opportunity id -> {source: first invoice id, amount, due}
  for (const row of rows) {
    const deal = deals.get(row.custbody_syncert_crm_id)
      ?? { source: row.id, amount: Dec.of(0), due: Dec.of(0) };
    deal.amount = deal.amount.add(Dec.of(row.total ?? 0));
    deal.due = deal.due.add(Dec.of(row.amountremaining ?? 0));
    deals.set(row.custbody_syncert_crm_id, deal);
  }
  const wanted = [...deals].map(([opportunityId, { source, amount, due }]) => {
    const stage = due.cmp(0) <= 0 ? "paid" : due.cmp(amount) < 0 ? "partlyPaid" : "unpaid";
    const values = {};
    if (withInvoices) values.Invoice_Status__c = INVOICE_STATUS[stage];
    if (withPayments) values.Payment_Status__c = PAYMENT_STATUS[stage];
    return { source, target: opportunityId, values };
  });
  const written = await showInCrm(ctx, withInvoices ? "invoices" : "payments", "Opportunity", wanted);
  return `${rows.length} invoices of ${deals.size} deals, ${written} deals updated`;
}

/**
 * Make CRM records show the ERP's values: `wanted` is [{source: ERP id, target: CRM id, values}].
 * Reads the targets' current values, updates those that differ (200 per call), dead-letters an ERP
 * record whose CRM record does not exist or refuses the values (again only once they change).
 * Returns the number of records written.
 */
async function showInCrm(ctx, flow, sobject, wanted) {
  const fields = Object.keys(wanted[0]?.values ?? {});
  const current = new Map();
  const ids = [...new Set(wanted.map((w) => w.target).filter((id) => CRM_ID.test(id)))];
  for (const part of chunks(ids, IDS_PER_QUERY)) {
    const records = await ctx.crm.query(`SELECT Id, ${fields.join(", ")} FROM ${sobject} WHERE Id IN ` +
                                        `(${part.map(soqlString).join(", ")})`);
    // 15- and 18-character forms of an id name the same record
    for (const record of records) current.set(record.Id.slice(0, 15), record);
  }
  const updates = [];
  for (const { source, target, values } of wanted) {
    const record = { attributes: { type: sobject }, Id: target, ...values };
    const fp = fingerprint(record);
    if (ctx.givenUp(flow, source, fp)) continue;
    const shown = current.get(target.slice(0, 15));
    if (!shown) {
      ctx.giveUp(flow, "erp", source, fp, `it names ${sobject} ${target}, which the CRM does not have`);
    } else if (fields.some((field) => !same(shown[field], values[field]))) {
      updates.push({ source, record: { ...record, Id: shown.Id }, fp });
    }
  }
  const results = await ctx.crm.collection("update", updates.map((u) => u.record));
  for (const [{ source, fp }, result] of zip(updates, results)) {
    if (!result.success) {
      ctx.giveUp(flow, "erp", source, fp, `the CRM refused the ${sobject} update: ${collectionError(result)}`);
    }
  }
  return updates.length;
}
