"""The sync flows of the reference connector and the rules they follow (docs/protocol.md).

Field ownership (one owner per field):
  CRM owns   Account name, phone, addresses; Contacts; closed-won Opportunities (intent).
  ERP owns   customers' credit hold and balance, items, stock, sales orders (commitment), invoices, payments.
A flow copies only the fields its source owns, and only when they changed since the last sync
(fingerprints in the state dir), so write-backs never echo between the systems.

Links between records, on both sides (an existing link is always followed, never recreated):
  Account.ERP_Customer_Id__c = customer internal id   customer.custentity_syncert_crm_id = Account Id
  Contact.ERP_Contact_Id__c = contact internal id    contact.custentity_syncert_crm_id = Contact Id
  Product2.ERP_Item_Id__c = inventoryItem internal id
  Opportunity.ERP_Order_Id__c = salesOrder tranId     salesOrder.custbody_syncert_crm_id = Opportunity Id
New customers, contacts and sales orders are upserted by external id SF-<Salesforce Id>, so a write repeated
after a failure never creates a second record.

Flows and directions:
  items, inventory   ERP inventoryItem -> CRM Product2 (+ standard price book entry)
  accounts           CRM Account -> ERP customer; the customer's id written back
  contacts           CRM Contact -> ERP contact of the account's customer; the contact's id written back
  orders             CRM closed-won Opportunity -> ERP salesOrder; order number and commitment
                     written back, and kept current
  credit             ERP customer credit hold and balance -> CRM Account
  invoices, payments ERP invoice status and amount remaining -> CRM Opportunity

Records of a flow are synced concurrently (the client caps requests in flight). What happens to a
record that does not sync:
  given up for good   the target refused the record itself: a 4xx other than 401, 408, 429 and 403
                      REQUEST_LIMIT_EXCEEDED (e.g. NetSuite 400 USER_ERROR for a name too long; 404
                      for a linked record that was deleted), or the source record cannot be synced
                      as it is (a closed-won opportunity without products). It goes to the
                      dead-letter file and the watermark moves on: it is read again when it changes.
  retried next cycle  a transient failure that outlasted the client's retries (throttling, 5xx, 408,
                      timeout, connection error, an answer that is not JSON, an ambiguous create
                      that the lookup could not settle). The watermark stays before it; the cycle
                      finishes the other records, then fails (exit 1) naming what is left.
  waiting             it needs a record that is not synced yet (an account without ERP customer, a
                      product not linked to an ERP item). The watermark stays before it; not an error.
  the cycle fails     at once when the credentials are refused (401 after a fresh login) or a source
                      cannot be read.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from syncert_reference.apis import ApiError, NetSuite, Salesforce, dumps, soql_literal, suiteql_literal
from syncert_reference.resilience import AmbiguousWrite, ResilientClient, gather
from syncert_reference.state import SyncState, Watermark

ALL_FLOWS = ("items", "inventory", "accounts", "contacts", "orders", "credit", "invoices", "payments")
MAX_IN_FLIGHT = 4  # NetSuite developer accounts allow 5 concurrent requests; stay under it
BATCH = 200  # ids per SOQL / SuiteQL IN list
# NetSuite orderStatus id -> Opportunity.Commitment_Status__c
COMMITMENT = {"A": "Submitted", "B": "Committed", "D": "Committed", "F": "Committed", "G": "Committed",
              "H": "Rejected"}
ACCOUNT_FIELDS = ("Id, Name, Phone, BillingStreet, BillingCity, BillingState, BillingPostalCode, BillingCountry, "
                  "ShippingStreet, ShippingCity, ShippingState, ShippingPostalCode, ShippingCountry, "
                  "ERP_Customer_Id__c, SystemModstamp")

Record = dict[str, Any]


class Waiting(Exception):
    """The record needs another record that is not synced yet; it is read again next cycle."""


class Unsyncable(Exception):
    """The source record cannot be synced as it is; given up until it changes."""


class CycleIncomplete(Exception):
    """Records failed transiently; they are retried next cycle."""


@dataclass(frozen=True)
class Settings:
    """What the connector needs from its environment (docs/protocol.md) and its command line."""

    crm_url: str
    crm_client_id: str
    crm_client_secret: str
    erp_url: str
    erp_account: str
    erp_consumer_key: str
    erp_consumer_secret: str
    erp_token_id: str
    erp_token_secret: str
    state_dir: Path
    dead_letter: Path
    ca_bundle: str | None
    flows: tuple[str, ...]

    @classmethod
    def from_environment(cls, flows: Iterable[str] = ALL_FLOWS, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        missing = [name for name in ("SYNCERT_CRM_URL", "SYNCERT_ERP_URL", "SYNCERT_STATE_DIR", "SYNCERT_DEAD_LETTER")
                   if not env.get(name)]
        if missing:
            raise SystemExit(f"reference connector: missing environment variables: {', '.join(missing)}")
        ca_bundle = env.get("SYNCERT_CA_BUNDLE") or None
        if ca_bundle is not None and not Path(ca_bundle).is_file():
            raise SystemExit(f"reference connector: SYNCERT_CA_BUNDLE names {ca_bundle}, which is not a file")
        return cls(crm_url=env["SYNCERT_CRM_URL"], crm_client_id=env.get("SYNCERT_CRM_CLIENT_ID", ""),
                   crm_client_secret=env.get("SYNCERT_CRM_CLIENT_SECRET", ""), erp_url=env["SYNCERT_ERP_URL"],
                   erp_account=env.get("SYNCERT_ERP_ACCOUNT", ""),
                   erp_consumer_key=env.get("SYNCERT_ERP_CONSUMER_KEY", ""),
                   erp_consumer_secret=env.get("SYNCERT_ERP_CONSUMER_SECRET", ""),
                   erp_token_id=env.get("SYNCERT_ERP_TOKEN_ID", ""),
                   erp_token_secret=env.get("SYNCERT_ERP_TOKEN_SECRET", ""),
                   state_dir=Path(env["SYNCERT_STATE_DIR"]), dead_letter=Path(env["SYNCERT_DEAD_LETTER"]),
                   ca_bundle=ca_bundle, flows=tuple(flows))


class SyncCycle:
    """One pass over every enabled flow."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.http = ResilientClient(max_in_flight=MAX_IN_FLIGHT, verify=settings.ca_bundle or True)
        self.crm = Salesforce(self.http, settings.crm_url, settings.crm_client_id, settings.crm_client_secret)
        self.erp = NetSuite(self.http, settings.erp_url, settings.erp_account, settings.erp_consumer_key,
                            settings.erp_consumer_secret, settings.erp_token_id, settings.erp_token_secret)
        self.state = SyncState(settings.state_dir)
        self.dead_letters = 0
        self.retry_later: list[str] = []
        self._currencies: dict[str, str] = {}

    async def run(self) -> None:
        """Run the enabled flows; raises CycleIncomplete when records were left for the next cycle."""
        enabled = set(self.settings.flows)
        try:
            if enabled & {"items", "inventory"}:
                await self.items_to_products(enabled)
            if "accounts" in enabled:
                await self.accounts_to_customers()
            if "contacts" in enabled:
                await self.contacts_to_customer_contacts()
            if "orders" in enabled:
                await self.won_opportunities_to_orders()
                await self.order_status_to_opportunities()
            if "credit" in enabled:
                await self.credit_to_accounts()
            if enabled & {"invoices", "payments"}:
                await self.invoices_to_opportunities(enabled)
        finally:
            self.state.save()
            await self.http.close()
        if self.retry_later:
            raise CycleIncomplete(f"{len(self.retry_later)} record(s) failed transiently and are retried next "
                                  "cycle: " + "; ".join(self.retry_later[:5]))

    def give_up(self, flow: str, system: str, source_id: str, reason: str) -> None:
        """Record a record the connector gives up on for good (never drop it silently)."""
        self.dead_letters += 1
        with self.settings.dead_letter.open("a", encoding="utf-8") as handle:
            handle.write(dumps({"flow": flow, "source_system": system, "source_id": source_id,
                                "reason": reason[:500]}) + "\n")

    async def _each(self, flow: str, system: str, watermark: Watermark, records: list[Record],
                    work: Callable[[Record], Awaitable[None]]) -> None:
        """Sync `records` concurrently, decide the fate of each one that fails, then move the watermark."""
        id_field, stamp_field = ("Id", "SystemModstamp") if system == "crm" else ("id", "lastModifiedDate")

        async def one(record: Record) -> None:
            source_id, stamp = record[id_field], record[stamp_field]
            key = f"{flow}:{system}:{source_id}"
            if self.state.given_up.get(key) == stamp:  # given up on, and unchanged since
                watermark.done(stamp)
                return
            try:
                await work(record)
            except Waiting as reason:
                watermark.hold(stamp)
                _log(f"{flow}: {system} record {source_id} waits: {reason}")
            except (Unsyncable, ApiError, AmbiguousWrite, httpx.TransportError) as error:
                if isinstance(error, ApiError) and error.unauthorized:
                    raise
                if isinstance(error, Unsyncable) or (isinstance(error, ApiError) and not error.transient):
                    self.give_up(flow, system, source_id, str(error))
                    self.state.given_up[key] = stamp
                    watermark.done(stamp)
                else:
                    self.retry_later.append(f"{flow} {system} {source_id}: {error}"[:300])
                    watermark.hold(stamp)
            else:
                self.state.given_up.pop(key, None)
                watermark.done(stamp)

        await gather(one(record) for record in records)
        watermark.commit()

    # -- ERP -> CRM: items and stock ---------------------------------------------------------------

    async def items_to_products(self, enabled: set[str]) -> None:
        watermark = Watermark(self.state, "items")
        items = await self.erp.changed_since("inventoryItem", watermark.since)
        prices = await self._standard_prices() if "items" in enabled and items else None

        async def sync_one(item: Record) -> None:
            values: Record = {}
            if "items" in enabled:
                values.update(Name=item.get("displayName") or item["itemId"], ProductCode=item["itemId"],
                              List_Price__c=item.get("basePrice"), IsActive=not item.get("isInactive", False))
            if "inventory" in enabled:
                values["Quantity_Available__c"] = item.get("quantityAvailable")
            key = f"item:{item['id']}"
            if self.state.changed(key, values):
                product = await self.crm.upsert("Product2", "ERP_Item_Id__c", item["id"], values)
                if prices is not None and item.get("basePrice") is not None:
                    await prices.set(product, item["basePrice"])
                self.state.remember(key, values)

        await self._each("items", "erp", watermark, items, sync_one)

    async def _standard_prices(self) -> StandardPrices:
        pricebook = (await self.crm.query("SELECT Id FROM Pricebook2 WHERE IsStandard = true"))[0]["Id"]
        entries = await self.crm.query("SELECT Id, Product2Id, UnitPrice FROM PricebookEntry "
                                       f"WHERE Pricebook2Id = {soql_literal(pricebook)}")
        return StandardPrices(self.crm, pricebook, {entry["Product2Id"]: entry for entry in entries})

    # -- CRM -> ERP: accounts and contacts --------------------------------------------------------

    async def accounts_to_customers(self) -> None:
        watermark = Watermark(self.state, "accounts")
        accounts = await self.crm.query(f"SELECT {ACCOUNT_FIELDS} FROM Account{_since(watermark)} "
                                        "ORDER BY SystemModstamp")
        found = await self._customers_naming([a["Id"] for a in accounts if not a["ERP_Customer_Id__c"]])

        async def sync_one(account: Record) -> None:
            values = {"companyName": account["Name"], "phone": account["Phone"],
                      "custentity_syncert_crm_id": account["Id"], "addressBook": _address_book(account)}
            customer_id = account["ERP_Customer_Id__c"] or found.get(account["Id"])
            key = f"account:{account['Id']}"
            if customer_id is None or self.state.changed(key, {**values, "id": customer_id}):
                customer_id = await self._write_customer(account["Id"], customer_id, values)
                self.state.remember(key, {**values, "id": customer_id})
            if account["ERP_Customer_Id__c"] != customer_id:
                await self.crm.update("Account", account["Id"], {"ERP_Customer_Id__c": customer_id})

        await self._each("accounts", "crm", watermark, accounts, sync_one)

    async def _write_customer(self, account_id: str, customer_id: str | None, values: Record) -> str:
        """Update the linked customer, or else create it by an idempotent upsert; its internal id."""
        if customer_id is not None:
            await self.erp.patch("customer", customer_id, values)
            return customer_id
        return await self.erp.upsert("customer", f"SF-{account_id}", {**values, "subsidiary": {"id": "1"}})

    async def _customers_naming(self, account_ids: list[str]) -> dict[str, str]:
        """Internal ids of the ERP customers whose crm_id (custentity_syncert_crm_id) names these accounts."""
        found: dict[str, str] = {}
        for batch in _batches(account_ids):
            rows = await self.erp.suiteql("SELECT id, custentity_syncert_crm_id FROM customer WHERE "
                                          f"custentity_syncert_crm_id IN ({', '.join(map(suiteql_literal, batch))}) "
                                          "ORDER BY id")
            for row in rows:
                found.setdefault(row["custentity_syncert_crm_id"], row["id"])
        return found

    async def _linked(self, sobject: str, link_field: str, record_ids: Iterable[str]) -> dict[str, str]:
        """ERP id by CRM record id, for the records of `sobject` whose `link_field` is set."""
        links: dict[str, str] = {}
        for batch in _batches(sorted(set(record_ids))):
            for record in await self.crm.query(f"SELECT Id, {link_field} FROM {sobject} WHERE Id IN "
                                               f"({', '.join(map(soql_literal, batch))})"):
                if record[link_field]:
                    links[record["Id"]] = record[link_field]
        return links

    async def contacts_to_customer_contacts(self) -> None:
        watermark = Watermark(self.state, "contacts")
        contacts = await self.crm.query("SELECT Id, AccountId, FirstName, LastName, Email, Phone, Title, "
                                        "ERP_Contact_Id__c, SystemModstamp FROM Contact WHERE AccountId != null"
                                        f"{_since(watermark, ' AND')} ORDER BY SystemModstamp")
        links = await self._linked("Account", "ERP_Customer_Id__c", [c["AccountId"] for c in contacts])

        async def sync_one(contact: Record) -> None:
            customer_id = links.get(contact["AccountId"])
            if customer_id is None:
                raise Waiting(f"account {contact['AccountId']} has no ERP customer yet")
            values = {"firstName": contact["FirstName"], "lastName": contact["LastName"], "email": contact["Email"],
                      "phone": contact["Phone"], "title": contact["Title"], "company": {"id": customer_id},
                      "custentity_syncert_crm_id": contact["Id"]}
            key = f"contact:{contact['Id']}"
            erp_id = contact["ERP_Contact_Id__c"]
            if erp_id is None or self.state.changed(key, {**values, "id": erp_id}):
                if erp_id is None:
                    erp_id = await self.erp.upsert("contact", f"SF-{contact['Id']}", values)
                else:
                    await self.erp.patch("contact", erp_id, values)
                self.state.remember(key, {**values, "id": erp_id})
            if contact["ERP_Contact_Id__c"] != erp_id:
                await self.crm.update("Contact", contact["Id"], {"ERP_Contact_Id__c": erp_id})

        await self._each("contacts", "crm", watermark, contacts, sync_one)

    # -- CRM intent -> ERP commitment: orders -----------------------------------------------------

    async def won_opportunities_to_orders(self) -> None:
        watermark = Watermark(self.state, "orders")
        opportunities = await self.crm.query(
            "SELECT Id, AccountId, CloseDate, CurrencyIsoCode, ERP_Order_Id__c, SystemModstamp FROM Opportunity "
            "WHERE StageName = "
            f"{soql_literal('Closed Won')}{_since(watermark, ' AND')} ORDER BY SystemModstamp")
        links = await self._linked("Account", "ERP_Customer_Id__c", [o["AccountId"] for o in opportunities
                                                                     if o["AccountId"] and not o["ERP_Order_Id__c"]])
        if any(not o["ERP_Order_Id__c"] for o in opportunities):
            rows = await self.erp.suiteql("SELECT id, symbol FROM currency")
            self._currencies = {row["symbol"]: str(row["id"]) for row in rows}

        async def sync_one(opportunity: Record) -> None:
            if not opportunity["ERP_Order_Id__c"]:
                await self._create_order(opportunity, links.get(opportunity["AccountId"]))

        await self._each("orders", "crm", watermark, opportunities, sync_one)

    async def _create_order(self, opportunity: Record, customer_id: str | None) -> None:
        external_id = f"SF-{opportunity['Id']}"
        order = await self.erp.find("salesOrder", f"eid:{external_id}")
        if order is None:
            if customer_id is None:
                raise Waiting(f"account {opportunity['AccountId']} has no ERP customer yet")
            lines = await self.crm.query("SELECT Product2Id, Quantity, UnitPrice, Discount FROM OpportunityLineItem "
                                         f"WHERE OpportunityId = {soql_literal(opportunity['Id'])}")
            if not lines:
                raise Unsyncable("the closed-won opportunity has no products")
            items = await self._linked("Product2", "ERP_Item_Id__c", [line["Product2Id"] for line in lines])
            order_lines = [await self._order_line(line, items) for line in lines]
            order_id = await self.erp.upsert("salesOrder", external_id, {
                "entity": {"id": customer_id}, "item": {"items": order_lines}, "tranDate": opportunity["CloseDate"],
                "currency": {"id": self._currency_id(opportunity["CurrencyIsoCode"] or "USD")},
                "custbody_syncert_crm_id": opportunity["Id"]})
            order = await self.erp.get("salesOrder", order_id)
        await self.crm.update("Opportunity", opportunity["Id"], _commitment(order))
        self.state.remember(f"order-status:{order['id']}", _commitment(order))

    def _currency_id(self, code: str) -> str:
        """The ERP's internal id of an ISO currency code."""
        if code not in self._currencies:
            raise Unsyncable(f"the ERP has no currency {code}")
        return self._currencies[code]

    async def _order_line(self, line: Record, items: dict[str, str]) -> Record:
        """A sales order line at the discounted unit price, exact (never rounded): the ERP's line amount,
        quantity x rate rounded half-even to the cent, is then the CRM's TotalPrice to the cent."""
        item = items.get(line["Product2Id"])
        if item is None:
            raise Waiting(f"product {line['Product2Id']} is not linked to an ERP item yet")
        rate = Decimal(line["UnitPrice"]) * (100 - Decimal(line["Discount"] or 0)) / 100
        return {"item": {"id": item}, "quantity": line["Quantity"], "rate": rate}

    async def order_status_to_opportunities(self) -> None:
        watermark = Watermark(self.state, "order-status")

        async def sync_one(order: Record) -> None:
            opportunity_id = order.get("custbody_syncert_crm_id")
            values = _commitment(order)
            key = f"order-status:{order['id']}"
            if opportunity_id and self.state.changed(key, values):
                await self.crm.update("Opportunity", opportunity_id, values)
                self.state.remember(key, values)

        orders = await self.erp.changed_since("salesOrder", watermark.since)
        await self._each("orders", "erp", watermark, orders, sync_one)

    # -- ERP -> CRM: credit, invoices, payments ---------------------------------------------------

    async def credit_to_accounts(self) -> None:
        watermark = Watermark(self.state, "credit")

        async def sync_one(customer: Record) -> None:
            account_id = customer.get("custentity_syncert_crm_id")
            values = {"Credit_Status__c": "On Hold" if customer.get("custentity_syncert_credit_hold") else "OK",
                      "Outstanding_Balance__c": customer.get("balance")}
            key = f"credit:{customer['id']}"
            if account_id and self.state.changed(key, values):
                await self.crm.update("Account", account_id, values)
                self.state.remember(key, values)

        customers = await self.erp.changed_since("customer", watermark.since)
        await self._each("credit", "erp", watermark, customers, sync_one)

    async def invoices_to_opportunities(self, enabled: set[str]) -> None:
        watermark = Watermark(self.state, "invoices")

        async def sync_one(invoice: Record) -> None:
            order_ref = invoice.get("createdFrom")
            order = await self.erp.get("salesOrder", order_ref["id"]) if order_ref else {}
            opportunity_id = order.get("custbody_syncert_crm_id")
            total, remaining = Decimal(invoice["total"]), Decimal(invoice["amountRemaining"])
            values: Record = {}
            if "invoices" in enabled:
                values["Invoice_Status__c"] = ("Paid" if remaining == 0 else
                                               "Partially Paid" if remaining < total else "Invoiced")
            if "payments" in enabled:
                values["Payment_Status__c"] = ("Paid" if remaining == 0 else
                                               "Partially Paid" if remaining < total else "Unpaid")
            key = f"invoice:{invoice['id']}"
            if opportunity_id and self.state.changed(key, values):
                await self.crm.update("Opportunity", opportunity_id, values)
                self.state.remember(key, values)

        invoices = await self.erp.changed_since("invoice", watermark.since)
        await self._each("invoices", "erp", watermark, invoices, sync_one)


class StandardPrices:
    """The standard price book's entries, read once per cycle: a product's list price in the CRM."""

    def __init__(self, crm: Salesforce, pricebook: str, entries: dict[str, Record]):
        self.crm, self.pricebook, self.entries = crm, pricebook, entries

    async def set(self, product: str, price: Decimal) -> None:
        entry = self.entries.get(product)
        if entry is None:
            await self.crm.create("PricebookEntry", {"Pricebook2Id": self.pricebook, "Product2Id": product,
                                                     "UnitPrice": price, "IsActive": True},
                                  find=lambda: self._find(product))
        elif Decimal(entry["UnitPrice"]) != Decimal(price):
            await self.crm.update("PricebookEntry", entry["Id"], {"UnitPrice": price})

    async def _find(self, product: str) -> str | None:
        entries = await self.crm.query(f"SELECT Id FROM PricebookEntry WHERE Product2Id = {soql_literal(product)} "
                                       f"AND Pricebook2Id = {soql_literal(self.pricebook)}")
        return entries[0]["Id"] if entries else None


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _since(watermark: Watermark, joiner: str = " WHERE") -> str:
    """The SOQL condition for records modified at or after the watermark (a datetime literal)."""
    return f"{joiner} SystemModstamp >= {watermark.since}" if watermark.since else ""


def _batches(values: list[str]) -> list[list[str]]:
    return [values[start:start + BATCH] for start in range(0, len(values), BATCH)]


def _commitment(order: Record) -> Record:
    """The order number and commitment an opportunity shows; an order status this connector does not know
    (the ERP added one) is given up on, with its name, rather than guessed."""
    status = (order.get("orderStatus") or {}).get("id")
    if status is not None and status not in COMMITMENT:
        raise Unsyncable(f"sales order {order['tranId']} has status {status!r} "
                         f"({order['orderStatus'].get('refName', 'no name')}), which this connector does not map")
    return {"ERP_Order_Id__c": order["tranId"], "Commitment_Status__c": COMMITMENT.get(status, "Submitted")}


def _address_book(account: Record) -> Record:
    """The account's billing and shipping addresses as a NetSuite address book; both entries are always
    sent, so an address cleared in the CRM is cleared in the ERP."""
    items = []
    for prefix, billing in (("Billing", True), ("Shipping", False)):
        address = {"addr1": account[f"{prefix}Street"], "city": account[f"{prefix}City"],
                   "state": account[f"{prefix}State"], "zip": account[f"{prefix}PostalCode"]}
        if account[f"{prefix}Country"]:
            address["country"] = {"id": account[f"{prefix}Country"]}
        items.append({"defaultBilling": billing, "defaultShipping": not billing, "addressBookAddress": address})
    return {"items": items}
