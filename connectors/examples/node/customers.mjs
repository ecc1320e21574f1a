// CRM -> ERP: accounts become NetSuite customers, contacts become contacts of their account's
// customer. Both are the same motion, so one routine (pushToErp) does it for both, from a spec:
//   read the CRM records new or changed since the watermark (a record not linked yet is always read),
//   build the ERP body, skip what was already sent unchanged (no echo) or refused unchanged,
//   find the ERP record it goes to (its link, a record already claiming it, or a new one), write it,
//   then write the ERP id back to the CRM record.
//
// Linkage fields (canonical names in brackets):
//   Account.ERP_Customer_Id__c [erp_customer_id] <- customer id;  customer.custentity_syncert_crm_id [crm_id]
//   Contact.ERP_Contact_Id__c [erp_contact_id]   <- contact id;   contact.custentity_syncert_crm_id [crm_id]
//   customer.externalId = "acct-<Account Id>", contact.externalId = "ctc-<Contact Id>" (this connector's
//   own upsert keys; other connectors' records are recognised through crm_id only)

import { soqlString, collectionError } from "./salesforce.mjs";
import { suiteqlString } from "./netsuite.mjs";
import { blank, chunks, fingerprint, forEachLimited, zip } from "./support.mjs";
import { IDS_PER_QUERY, RECORDS_AHEAD } from "./flows.mjs";

export const ACCOUNT_PREFIX = "acct-";
export const CONTACT_PREFIX = "ctc-";

/** The NetSuite address book of an account: billing, then shipping, both always sent. A blank address
 * goes as an entry whose parts are all null: that clears what the ERP held (omitting it would not). */
function addressBook(account) {
  return {
    items: [["Billing", true], ["Shipping", false]].map(([prefix, billing]) => ({
      defaultBilling: billing,
      defaultShipping: !billing,
      addressBookAddress: {
        addr1: blank(account[`${prefix}Street`]),
        city: blank(account[`${prefix}City`]),
        state: blank(account[`${prefix}State`]),
        zip: blank(account[`${prefix}PostalCode`]),
        country: blank(account[`${prefix}Country`]) === null ? null : { id: account[`${prefix}Country`] },
      },
    })),
  };
}

const ACCOUNTS = {
  flow: "accounts",
  sobject: "Account",
  fields: ["Name", "Phone", "BillingStreet", "BillingCity", "BillingState", "BillingPostalCode", "BillingCountry",
           "ShippingStreet", "ShippingCity", "ShippingState", "ShippingPostalCode", "ShippingCountry"],
  linkField: "ERP_Customer_Id__c",
  erpType: "customer",
  prefix: ACCOUNT_PREFIX,
  /** The customer body (CRM-owned fields only). Text goes as it is: a value longer than NetSuite
   * stores is refused by it and dead-lettered, never cut short. */
  async bodies(ctx, accounts) {
    return new Map(accounts.map((account) => [account.Id, { body: {
      companyName: account.Name,
      phone: blank(account.Phone),
      addressBook: addressBook(account),
      custentity_syncert_crm_id: account.Id,
    } }]));
  },
};

const CONTACTS = {
  flow: "contacts",
  sobject: "Contact",
  fields: ["AccountId", "FirstName", "LastName", "Email", "Phone", "Title"],
  where: "AccountId != null", // a contact of no account has no customer to belong to
  linkField: "ERP_Contact_Id__c",
  erpType: "contact",
  prefix: CONTACT_PREFIX,
  /** The contact body, under the customer of the contact's account; {wait} while that account has none. */
  async bodies(ctx, contacts) {
    const customerOf = new Map();
    const accountIds = [...new Set(contacts.map((c) => c.AccountId))];
    for (const part of chunks(accountIds, IDS_PER_QUERY)) {
      const accounts = await ctx.crm.query("SELECT Id, ERP_Customer_Id__c FROM Account WHERE Id IN " +
                                           `(${part.map(soqlString).join(", ")})`);
      for (const account of accounts) customerOf.set(account.Id, account.ERP_Customer_Id__c);
    }
    return new Map(contacts.map((contact) => {
      const customer = customerOf.get(contact.AccountId);
      if (!customer) return [contact.Id, { wait: `account ${contact.AccountId} has no ERP customer yet` }];
      return [contact.Id, { body: {
        firstName: blank(contact.FirstName),
        lastName: blank(contact.LastName),
        email: blank(contact.Email),
        phone: blank(contact.Phone),
        title: blank(contact.Title),
        company: { id: customer },
        custentity_syncert_crm_id: contact.Id,
      } }];
    }));
  },
};

export const syncAccounts = (ctx) => pushToErp(ctx, ACCOUNTS);
export const syncContacts = (ctx) => pushToErp(ctx, CONTACTS);

/**
 * New records (no ERP id yet) and records changed since the watermark are written to the ERP:
 *   - the record names its ERP record (its link field): that one is updated (PATCH by id);
 *   - an ERP record already claims it (crm_id, or our external id): that one is updated and linked;
 *   - otherwise PUT <type>/eid:<prefix><id> creates it (idempotent: a retry, or a rerun after a crash
 *     between the create and the write-back, finds the same record).
 * Then the ERP id is written back, 200 records per call.
 */
async function pushToErp(ctx, spec) {
  const { crm, erp } = ctx;
  const { flow, linkField } = spec;
  const st = ctx.state.flow(flow);
  st.synced ??= {};
  const conditions = [spec.where, st.watermark && `(${linkField} = null OR SystemModstamp >= ${st.watermark})`]
    .filter(Boolean);
  const records = await crm.query(`SELECT Id, ${[...spec.fields, linkField, "SystemModstamp"].join(", ")} ` +
                                  `FROM ${spec.sobject}${conditions.length ? ` WHERE ${conditions.join(" AND ")}` : ""}`);
  const bodies = await spec.bodies(ctx, records);

  const todo = [];
  let waiting = 0;
  for (const record of records) {
    const { body, wait } = bodies.get(record.Id);
    if (wait) {
      waiting += 1;
      process.stderr.write(`${flow}: ${record.Id} waits: ${wait}\n`);
      continue;
    }
    const fp = fingerprint(body);
    const known = st.synced[record.Id];
    if (known && known.fp === fp && known.erpId === record[linkField]) continue; // nothing new
    if (ctx.givenUp(flow, record.Id, fp)) continue; // refused before, unchanged since
    todo.push({ record, body, fp });
  }

  const claims = await claimants(erp, spec, todo.filter((t) => !t.record[linkField]).map((t) => t.record.Id));
  const linked = []; // {record, erpId, fp}
  let created = 0, updated = 0;
  await forEachLimited(todo, RECORDS_AHEAD, async ({ record, body, fp }) => {
    try {
      let erpId = record[linkField];
      const claiming = erpId ? [] : claims.get(record.Id) ?? [];
      if (claiming.length > 1) {
        // prefer the record this connector created; two foreign claims are a data problem
        const ours = claiming.find((c) => c.externalid === spec.prefix + record.Id);
        if (!ours) {
          ctx.giveUp(flow, "crm", record.Id, fp, `ERP ${spec.erpType} records ${claiming.map((c) => c.id).join(", ")} ` +
                     `all claim this record; link one of them by hand (${linkField})`);
          return;
        }
        erpId = ours.id;
      } else if (claiming.length === 1) {
        erpId = claiming[0].id;
      }
      if (erpId) {
        await erp.update(spec.erpType, erpId, body);
        updated += 1;
      } else {
        erpId = await erp.upsert(spec.erpType, spec.prefix + record.Id, body);
        created += 1;
      }
      linked.push({ record, erpId, fp });
    } catch (error) {
      ctx.handle(flow, "crm", record.Id, fp, error);
    }
  });

  const writeBacks = linked.filter(({ record, erpId }) => record[linkField] !== erpId);
  const results = await crm.collection("update", writeBacks.map(({ record, erpId }) => (
    { attributes: { type: spec.sobject }, Id: record.Id, [linkField]: erpId })));
  const failedWriteBacks = new Set();
  for (const [{ record, erpId, fp }, result] of zip(writeBacks, results)) {
    if (result.success) continue;
    failedWriteBacks.add(record.Id);
    ctx.giveUp(flow, "crm", record.Id, fp,
               `ERP ${spec.erpType} ${erpId} is synced but the CRM refused its id: ${collectionError(result)}`);
  }
  for (const { record, erpId, fp } of linked) {
    if (!failedWriteBacks.has(record.Id)) {
      st.synced[record.Id] = { erpId, fp };
      delete st.givenUp[record.Id];
    }
  }
  if (!ctx.failures.some((f) => f.startsWith(`${flow} `))) {
    // only a clean pass moves the watermark: a failed record is read again next cycle (a waiting one
    // has no ERP id yet, so it is read every cycle anyway)
    st.watermark = newest(records.map((r) => r.SystemModstamp), st.watermark);
  }
  return `${records.length} ${spec.sobject} records read, ${created} ${spec.erpType} records created, ` +
         `${updated} updated, ${writeBacks.length - failedWriteBacks.size} linked back` +
         (waiting ? `, ${waiting} waiting` : "");
}

/** ERP records that already name one of these CRM records (crm_id) or carry our external id for it:
 * CRM id -> rows. */
async function claimants(erp, spec, ids) {
  const claims = new Map();
  for (const part of chunks(ids, IDS_PER_QUERY)) {
    const rows = await erp.suiteql(`SELECT id, externalid, custentity_syncert_crm_id FROM ${spec.erpType} WHERE ` +
      `custentity_syncert_crm_id IN (${part.map(suiteqlString).join(", ")}) OR ` +
      `externalid IN (${part.map((id) => suiteqlString(spec.prefix + id)).join(", ")})`);
    for (const row of rows) {
      const crmId = row.externalid?.startsWith(spec.prefix) ? row.externalid.slice(spec.prefix.length)
        : row.custentity_syncert_crm_id;
      claims.set(crmId, [...(claims.get(crmId) ?? []), row]);
    }
  }
  return claims;
}

/** The latest of Salesforce datetimes ("2026-01-31T10:00:00.000+0000"), as a SOQL literal (…Z). */
function newest(values, previous) {
  const literal = (v) => v.replace(/\+0000$/, "Z").replace(/([+-]\d\d)(\d\d)$/, "$1:$2");
  return values.filter(Boolean).map(literal)
    .reduce((best, v) => (best === undefined || Date.parse(v) > Date.parse(best) ? v : best), previous);
}
