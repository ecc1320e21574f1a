"""Run the reference connector with one known defect: `python run_flawed.py <defect> sync|serve`.

Each defect is a small, deliberate change to the reference connector, named after what goes wrong.
The catalogue proves itself on them: the scenario named in DEFECTS must fail, the reference must pass.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import json
import os
import re
import sys
import unicodedata
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "reference"))

from syncert_reference import apis, flows, resilience, service, state
from syncert_reference.__main__ import main


def marks_every_product_active() -> None:
    """Sends IsActive = true for discontinued items too."""
    upsert = apis.Salesforce.upsert

    async def flawed(self, sobject, field, value, body):
        if sobject == "Product2" and "IsActive" in body:
            body = {**body, "IsActive": True}
        return await upsert(self, sobject, field, value, body)
    apis.Salesforce.upsert = flawed


def skips_credit_flow() -> None:
    """Declares the credit flow but never syncs credit holds."""
    async def nothing(self):
        return None
    flows.SyncCycle.credit_to_accounts = nothing


def creates_instead_of_upserting() -> None:
    """POSTs a new customer on every pass instead of updating the linked one or upserting by external id."""
    async def create(self, account_id, customer_id, values):
        response = await self.erp.call("POST", "/record/v1/customer", content=apis.dumps(values).encode(),
                                       headers={"Content-Type": "application/json"})
        return response.headers["Location"].rsplit("/", 1)[-1]
    flows.SyncCycle._write_customer = create
    changed = state.SyncState.changed
    state.SyncState.changed = lambda self, key, values: key.startswith("account:") or changed(self, key, values)


def ignores_line_discount() -> None:
    """Sends the list unit price, dropping the line discount."""
    order_line = flows.SyncCycle._order_line

    async def flawed(self, line, items):
        return await order_line(self, {**line, "Discount": 0}, items)
    flows.SyncCycle._order_line = flawed


def writes_every_cycle() -> None:
    """Forgets what it synced: writes every record on every cycle (an echo loop)."""
    state.SyncState.changed = lambda self, key, values: True


def ignores_retry_after() -> None:
    """Retries throttled requests at once, ignoring Retry-After and backoff."""
    resilience.backoff_delay = lambda attempt, retry_after: 0.0
    resilience.ResilientClient._note_retry_after = lambda self, host, response: None


def never_refreshes_token() -> None:
    """Keeps using an expired Salesforce session instead of logging in again on 401."""
    async def call(self, method, path, **kwargs):
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        response = await self.http.request(method, url, sign=self._sign, **kwargs)  # no reauthenticate
        if response.status_code >= 400:
            raise apis.ApiError("salesforce", response)
        return response
    apis.Salesforce.call = call


def unbounded_concurrency() -> None:
    """Sends as many requests at once as it has records, ignoring the ERP's concurrency limit."""
    flows.MAX_IN_FLIGHT = 1000


def drops_failures_silently() -> None:
    """Swallows records it cannot sync instead of dead-lettering them."""
    flows.SyncCycle.give_up = lambda self, flow, system, source_id, reason: None


def logs_credentials() -> None:
    """Writes its Salesforce login, client secret included, to its debug log."""
    login = apis.Salesforce._login

    async def flawed(self):
        print(f"debug: logging in to {self.base_url} as {self._client_id}:{self._client_secret}", file=sys.stderr)
        await login(self)
    apis.Salesforce._login = flawed


def _rewrite_erp_writes(record_type: str, rewrite: Callable[[dict], dict]) -> None:
    """Pass every body the connector writes to `record_type` in the ERP through `rewrite`."""
    upsert, patch = apis.NetSuite.upsert, apis.NetSuite.patch

    async def flawed_upsert(self, kind, external_id, body):
        return await upsert(self, kind, external_id, rewrite(body) if kind == record_type else body)

    async def flawed_patch(self, kind, record_id, body):
        return await patch(self, kind, record_id, rewrite(body) if kind == record_type else body)
    apis.NetSuite.upsert, apis.NetSuite.patch = flawed_upsert, flawed_patch


def _rewrite_crm_writes(sobject: str, rewrite: Callable[[dict], dict]) -> None:
    """Pass every body the connector writes to `sobject` in the CRM through `rewrite`."""
    upsert, update = apis.Salesforce.upsert, apis.Salesforce.update

    async def flawed_upsert(self, name, field, value, body):
        return await upsert(self, name, field, value, rewrite(body) if name == sobject else body)

    async def flawed_update(self, name, record_id, body):
        return await update(self, name, record_id, rewrite(body) if name == sobject else body)
    apis.Salesforce.upsert, apis.Salesforce.update = flawed_upsert, flawed_update


def drops_shipping_address() -> None:
    """Sends only the billing address of an account to the ERP."""
    address_book = flows._address_book
    flows._address_book = lambda account: {"items": [i for i in address_book(account)["items"] if i["defaultBilling"]]}


def drops_contact_title() -> None:
    """Leaves out a contact's title (role) when it writes the ERP contact."""
    _rewrite_erp_writes("contact", lambda body: {k: v for k, v in body.items() if k != "title"})


def product_named_by_sku() -> None:
    """Names each CRM product after the item's code instead of its name."""
    _rewrite_crm_writes("Product2", lambda body: {**body, "Name": body.get("ProductCode", body.get("Name"))})


def products_never_updated() -> None:
    """Creates products but never updates them when the item changes."""
    changed = state.SyncState.changed
    state.SyncState.changed = lambda self, key, values: (key not in self.fingerprints if key.startswith("item:")
                                                         else changed(self, key, values))


def price_book_set_once() -> None:
    """Creates the standard price of a product but never updates it."""
    set_price = flows.StandardPrices.set

    async def flawed(self, product, price):
        if product not in self.entries:
            await set_price(self, product, price)
    flows.StandardPrices.set = flawed


def on_hand_as_available() -> None:
    """Shows stock on hand as available, ignoring what open orders committed."""
    changed_since = apis.NetSuite.changed_since

    async def flawed(self, record_type, since):
        records = await changed_since(self, record_type, since)
        if record_type == "inventoryItem":
            records = [{**r, "quantityAvailable": r.get("quantityOnHand")} for r in records]
        return records
    apis.NetSuite.changed_since = flawed


def credit_hold_never_released() -> None:
    """Sends credit status to the CRM only while the customer is on hold."""
    _rewrite_crm_writes("Account", lambda body: body if body.get("Credit_Status__c") != "OK"
                        else {k: v for k, v in body.items() if k != "Credit_Status__c"})


def paid_on_any_payment() -> None:
    """Calls an invoice paid as soon as any payment arrives."""
    _rewrite_crm_writes("Opportunity", lambda body: {**body, "Invoice_Status__c": "Paid"}
                        if body.get("Invoice_Status__c") == "Partially Paid" else body)


def payment_status_without_partial() -> None:
    """Knows only paid and unpaid: a partly paid invoice shows as unpaid."""
    _rewrite_crm_writes("Opportunity", lambda body: {**body, "Payment_Status__c": "Unpaid"}
                        if body.get("Payment_Status__c") == "Partially Paid" else body)


def float_prices() -> None:
    """Computes discounted prices in binary floating point."""
    async def flawed(self, line, items):
        item = items.get(line["Product2Id"])
        if item is None:
            raise flows.Waiting(f"product {line['Product2Id']} is not linked to an ERP item yet")
        rate = float(line["UnitPrice"]) * (100 - float(line["Discount"] or 0)) / 100
        return {"item": {"id": item}, "quantity": line["Quantity"], "rate": Decimal(repr(rate))}  # as json sends it
    flows.SyncCycle._order_line = flawed


def rounds_unit_price() -> None:
    """Rounds each discounted unit price to the cent before the ERP multiplies it by the quantity."""
    order_line = flows.SyncCycle._order_line

    async def flawed(self, line, items):
        values = await order_line(self, line, items)
        return {**values, "rate": values["rate"].quantize(Decimal("0.01"))}
    flows.SyncCycle._order_line = flawed


def orders_for_every_closed_deal() -> None:
    """Makes a sales order of every closed deal, lost ones included."""
    query = apis.Salesforce.query

    async def flawed(self, soql):
        return await query(self, soql.replace("StageName = 'Closed Won'", "StageName LIKE 'Closed%'"))
    apis.Salesforce.query = flawed


def commitment_set_once() -> None:
    """Writes an order's commitment status when it creates the order, never after."""
    async def nothing(self):
        return None
    flows.SyncCycle.order_status_to_opportunities = nothing


def dates_through_local_time() -> None:
    """Reads the close date as local midnight at UTC+14 and sends the UTC date (a day early)."""
    def shifted(day: str) -> str:
        midnight = datetime.fromisoformat(day).replace(tzinfo=timezone(timedelta(hours=14)))
        return midnight.astimezone(UTC).date().isoformat()
    _rewrite_erp_writes("salesOrder", lambda body: {**body, "tranDate": shifted(body["tranDate"])}
                        if body.get("tranDate") else body)


def ascii_folds_text() -> None:
    """Folds customer names and addresses to ASCII (accents dropped, other scripts lost)."""
    def fold(text):
        return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode() if isinstance(text, str) else text
    _rewrite_erp_writes("customer", lambda body: {**body, "companyName": fold(body.get("companyName"))}
                        if "companyName" in body else body)


def truncates_long_values() -> None:
    """Cuts customer names to the ERP's 83 characters instead of giving the record up."""
    _rewrite_erp_writes("customer", lambda body: {**body, "companyName": body["companyName"][:83]}
                        if isinstance(body.get("companyName"), str) else body)


def never_clears_fields() -> None:
    """Leaves out blank values when it writes a customer, so a value cleared in the CRM stays in the ERP."""
    address_book = flows._address_book
    flows._address_book = lambda account: {"items": [i for i in address_book(account)["items"]
                                                     if any(i["addressBookAddress"].values())]}
    _rewrite_erp_writes("customer", lambda body: {k: v for k, v in body.items() if v not in (None, "")})


def drops_astral_characters() -> None:
    """Stores customer names as 3-byte UTF-8 does: characters beyond the basic plane are lost."""
    def narrow(text):
        return "".join(c for c in text if ord(c) <= 0xFFFF) if isinstance(text, str) else text
    _rewrite_erp_writes("customer", lambda body: {**body, "companyName": narrow(body.get("companyName"))}
                        if "companyName" in body else body)


def invoice_status_set_once() -> None:
    """Writes an invoice's status to the deal when the invoice is first synced, never when payments change it."""
    changed = state.SyncState.changed
    state.SyncState.changed = lambda self, key, values: (key not in self.fingerprints if key.startswith("invoice:")
                                                         else changed(self, key, values))


def resends_held_orders() -> None:
    """Takes a credit hold for a failed send: holds the order number back and sends the held order again (PUT by
    external id) every cycle until the ERP approves it."""
    find = apis.NetSuite.find

    async def flawed(self, record_type, key):
        found = await find(self, record_type, key)
        held = record_type == "salesOrder" and found is not None and found["orderStatus"]["id"] == "A"
        return None if held else found
    apis.NetSuite.find = flawed
    _rewrite_crm_writes("Opportunity", lambda body: {k: v for k, v in body.items() if k != "ERP_Order_Id__c"}
                        if body.get("Commitment_Status__c") == "Submitted" else body)


def refuses_orders_beyond_stock() -> None:
    """Dead-letters a won deal that asks for more than the CRM shows available, instead of letting the ERP
    commit what it has and backorder the rest."""
    order_line = flows.SyncCycle._order_line

    async def flawed(self, line, items):
        [product] = await self.crm.query("SELECT Quantity_Available__c FROM Product2 WHERE Id = "
                                         f"{apis.soql_literal(line['Product2Id'])}")
        available = product["Quantity_Available__c"]
        if available is not None and Decimal(str(line["Quantity"])) > Decimal(str(available)):
            raise flows.Unsyncable(f"not enough stock: {available} available, the deal asks for {line['Quantity']}")
        return await order_line(self, line, items)
    flows.SyncCycle._order_line = flawed


def syncs_products_both_ways() -> None:
    """Syncs products both ways: a product's name and list price edited in the CRM are written to the ERP item."""
    items_to_products = flows.SyncCycle.items_to_products

    async def flawed(self, enabled):
        await items_to_products(self, enabled)
        watermark = state.Watermark(self.state, "products")
        products = await self.crm.query("SELECT Id, Name, List_Price__c, ERP_Item_Id__c, SystemModstamp FROM Product2 "
                                        f"WHERE ERP_Item_Id__c != null{flows._since(watermark, ' AND')}")

        async def push(product):
            values = {"displayName": product["Name"], "basePrice": product["List_Price__c"]}
            if self.state.changed(f"product:{product['Id']}", values):
                await self.erp.patch("inventoryItem", product["ERP_Item_Id__c"], values)
                self.state.remember(f"product:{product['Id']}", values)
        await self._each("items", "crm", watermark, products, push)
    flows.SyncCycle.items_to_products = flawed


def pulls_customer_edits() -> None:
    """Syncs accounts both ways: a customer's name and phone edited in the ERP are copied onto the account, with
    its credit status and balance."""
    async def flawed(self):
        watermark = state.Watermark(self.state, "credit")

        async def sync_one(customer):
            account_id = customer.get("custentity_syncert_crm_id")
            values = {"Name": customer["companyName"], "Phone": customer.get("phone"),
                      "Credit_Status__c": "On Hold" if customer.get("custentity_syncert_credit_hold") else "OK",
                      "Outstanding_Balance__c": customer.get("balance")}
            if account_id and self.state.changed(f"credit:{customer['id']}", values):
                await self.crm.update("Account", account_id, values)
                self.state.remember(f"credit:{customer['id']}", values)
        customers = await self.erp.changed_since("customer", watermark.since)
        await self._each("credit", "erp", watermark, customers, sync_one)
    flows.SyncCycle.credit_to_accounts = flawed


def skips_conflicts_silently() -> None:
    """Leaves an account alone, with no dead letter, when its customer's phone was edited in the ERP since the
    connector last wrote it: the conflict is detected but never resolved nor reported."""
    write_customer = flows.SyncCycle._write_customer

    async def flawed(self, account_id, customer_id, values):
        if customer_id is not None:
            written = self.state.fingerprints.get(f"written-phone:{customer_id}")
            current = (await self.erp.get("customer", customer_id)).get("phone")
            if written is not None and written != (current or ""):
                return customer_id  # edited on both sides: skipped
        customer_id = await write_customer(self, account_id, customer_id, values)
        self.state.fingerprints[f"written-phone:{customer_id}"] = values.get("phone") or ""
        return customer_id
    flows.SyncCycle._write_customer = flawed


def patches_link_separately() -> None:
    """Writes the customer, then sets its CRM link in a second request every time (two ERP writes a change)."""
    write_customer = flows.SyncCycle._write_customer

    async def flawed(self, account_id, customer_id, values):
        customer_id = await write_customer(self, account_id, customer_id,
                                           {k: v for k, v in values.items() if k != "custentity_syncert_crm_id"})
        await self.erp.patch("customer", customer_id, {"custentity_syncert_crm_id": account_id})
        return customer_id
    flows.SyncCycle._write_customer = flawed


def ignores_existing_customers() -> None:
    """Trusts only its own external ids: an account without ERP id gets a new customer, even when a customer
    already names the account."""
    async def nothing_found(self, account_ids):
        return {}
    flows.SyncCycle._customers_naming = nothing_found


def price_compared_as_text() -> None:
    """Checks every standard price each cycle, comparing the price book's number with the item's price as
    text: they never look equal, so every price is rewritten every cycle."""
    items_to_products = flows.SyncCycle.items_to_products

    async def flawed(self, enabled):
        await items_to_products(self, enabled)
        if "items" not in enabled:
            return
        prices = await self._standard_prices()
        items = {item["id"]: item for item in await self.erp.changed_since("inventoryItem", None)}
        for product in await self.crm.query("SELECT Id, ERP_Item_Id__c FROM Product2"):
            item, entry = items.get(product["ERP_Item_Id__c"]), prices.entries.get(product["Id"])
            if item and entry and item.get("basePrice") is not None and entry["UnitPrice"] != str(item["basePrice"]):
                await self.crm.update("PricebookEntry", entry["Id"], {"UnitPrice": item["basePrice"]})
    flows.SyncCycle.items_to_products = flawed


def reads_first_page_only() -> None:
    """Reads only the first page of a query's results (ignores nextRecordsUrl), records listed by id: the
    watermark it takes from that page jumps past records on the pages it never read."""
    async def first_page(self, soql):
        response = await self.call("GET", f"{apis.SALESFORCE_DATA}/query",
                                   params={"q": soql.replace(" ORDER BY SystemModstamp", " ORDER BY Id")})
        return apis.loads(response.content)["records"]
    apis.Salesforce.query = first_page


def _watermark(moment: datetime, crm: bool) -> str:
    """`moment` as a watermark: a Salesforce SystemModstamp, or else a NetSuite lastModifiedDate."""
    if crm:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


CRM_WATERMARKS = ("accounts", "contacts", "orders")  # the reference's watermarks on CRM records
ERP_WATERMARKS = ("items", "order-status", "credit", "invoices")


def _every_watermark_at(moment: datetime) -> dict[str, str]:
    return {flow: _watermark(moment, crm=flow in CRM_WATERMARKS) for flow in CRM_WATERMARKS + ERP_WATERMARKS}


def watermark_at_cycle_end() -> None:
    """Sets each flow's watermark to the time it finished, not to the latest modification stamp it read: a
    record changed while the flow ran is never read again."""
    def commit(self):
        if (self._earliest_held or self._latest_done) is None:
            return
        crm = (self._earliest_held or self._latest_done).endswith("+0000")  # Salesforce stamps, else NetSuite's
        self._state.watermarks[self._flow] = _watermark(datetime.now(UTC), crm)
    state.Watermark.commit = commit


def saves_watermark_before_writes() -> None:
    """Saves its place at the start of each cycle, before it writes anything: every flow's watermark moves to the
    time the cycle started (the right ones replace them when the cycle ends). Killed in the middle of a cycle, it
    never reads again the records it had not finished."""
    run = flows.SyncCycle.run

    async def flawed(self):
        reading_from = dict(self.state.watermarks)
        self.state.watermarks.update(_every_watermark_at(datetime.now(UTC)))
        self.state.save()
        self.state.watermarks = reading_from
        await run(self)
    flows.SyncCycle.run = flawed


def advances_watermark_on_failure() -> None:
    """Counts a failed cycle as done: when a cycle fails (the ERP is down), every flow's watermark still moves to
    the time the cycle started, so what changed before it is never read again."""
    run = flows.SyncCycle.run

    async def flawed(self):
        started = _every_watermark_at(datetime.now(UTC))
        try:
            await run(self)
        except Exception:
            self.state.watermarks.update(started)
            self.state.save()
            raise
    flows.SyncCycle.run = flawed


def retries_without_backoff() -> None:
    """Resends a failed request at once: it waits when the server sends Retry-After, but never backs off by itself
    (a maintenance answer without Retry-After is hammered)."""
    def no_backoff(attempt, retry_after):
        return float(retry_after) if retry_after and retry_after.strip().isdigit() else 0.0
    resilience.backoff_delay = no_backoff


def queries_strictly_after_watermark() -> None:
    """Reads the records modified strictly after its watermark, so records sharing the stamp of the last one
    it synced are never read."""
    flows._since = lambda watermark, joiner=" WHERE": (f"{joiner} SystemModstamp > {watermark.since}"
                                                       if watermark.since else "")


def gives_up_on_server_errors() -> None:
    """Takes a server error for the record's own fault: no retry, and the record is dead-lettered for good
    (loudly, but it is lost until someone edits it again)."""
    resilience.is_server_error = lambda response: False
    apis.ApiError.transient = property(lambda self: self.throttled or self.status_code == 408)


CREDENTIALS = ("crm_client_id", "crm_client_secret", "erp_account", "erp_consumer_key", "erp_consumer_secret",
               "erp_token_id", "erp_token_secret")


def hard_coded_credentials() -> None:
    """Writes the credentials of its first run to a config file in its state dir and keeps using them: once
    they are rotated, every login and every signed request is refused."""
    from_environment = flows.Settings.from_environment.__func__

    def flawed(cls, flow_names=flows.ALL_FLOWS, env=None):
        settings = from_environment(cls, flow_names, env)
        config = settings.state_dir / "config.json"
        if config.exists():
            return dataclasses.replace(settings, **json.loads(config.read_text()))
        config.write_text(json.dumps({name: getattr(settings, name) for name in CREDENTIALS}))
        return settings
    flows.Settings.from_environment = classmethod(flawed)


def disables_tls_verification() -> None:
    """Turns certificate verification off (verify=False), the usual "fix" for a certificate error: it logs in
    to whatever server answers, untrusted or not."""
    init = resilience.ResilientClient.__init__

    def flawed(self, max_in_flight=4, verify=True, timeout_s=30.0):
        init(self, max_in_flight, False, timeout_s)
    resilience.ResilientClient.__init__ = flawed
ERP_CUSTOMER_FIELDS = {"name": "companyName", "phone": "phone"}  # canonical account field -> NetSuite customer field
EventWork = Callable[[flows.SyncCycle, dict], Awaitable[None]]


def _acting_on_events(work: EventWork, verify: bool = True) -> None:
    """Besides waking the sync loop, do `work(cycle, event)` with each change event the service accepts, one at a
    time in the order they arrive (verify=False: it accepts every event, signed or not)."""
    check, one_at_a_time, running = service.signature_valid, asyncio.Lock(), set()

    async def handle(body: bytes) -> None:
        async with one_at_a_time:
            cycle = flows.SyncCycle(flows.Settings.from_environment())
            try:
                await work(cycle, json.loads(body))
            except (apis.ApiError, httpx.HTTPError) as error:
                print(f"change event not applied: {error}", file=sys.stderr, flush=True)
            finally:
                await cycle.http.close()

    def accepting(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
        accepted = check(secret, timestamp, body, signature) if verify else True
        if accepted:
            task = asyncio.get_running_loop().create_task(handle(body))
            running.add(task)
            task.add_done_callback(running.discard)
        return accepted
    service.signature_valid = accepting


def _stamp(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def _apply_account_values(cycle: flows.SyncCycle, event: dict) -> bool:
    """Write the account values an update event carries to the account's ERP customer; whether it did."""
    values = {ERP_CUSTOMER_FIELDS[name]: value for name, value in (event.get("values") or {}).items()
              if name in ERP_CUSTOMER_FIELDS}
    if event.get("kind") != "account" or event.get("operation") != "updated" or not values:
        return False
    accounts = await cycle.crm.query("SELECT ERP_Customer_Id__c FROM Account WHERE Id = "
                                     f"{apis.soql_literal(event['record_id'])}")
    if not accounts or not accounts[0]["ERP_Customer_Id__c"]:
        return False
    await cycle.erp.patch("customer", accounts[0]["ERP_Customer_Id__c"], values)
    return True


def _polling_skips_accounts_events_brought(applied: dict[str, datetime]) -> None:
    """The polling pass leaves out the accounts whose latest change an applied event already carried."""
    each = flows.SyncCycle._each

    async def flawed(self, flow, system, watermark, records, work):
        if flow == "accounts":
            covered = [r for r in records if r["Id"] in applied and _stamp(r["SystemModstamp"]) <= applied[r["Id"]]]
            for record in covered:
                watermark.done(record["SystemModstamp"])
            records = [r for r in records if r not in covered]
        await each(self, flow, system, watermark, records, work)
    flows.SyncCycle._each = flawed


def applies_events_out_of_order() -> None:
    """Real-time path: writes the values each account change event carries to the ERP customer as it arrives, and
    its polling pass skips accounts an event already brought up to date. It keeps the newest event time per
    account but never compares an arriving event with it: an event delivered late (webhooks are not ordered)
    overwrites newer values, and the polling pass, seeing the account covered, never repairs them."""
    applied: dict[str, datetime] = {}

    async def work(cycle, event):
        if await _apply_account_values(cycle, event):
            at = _stamp(event["at"])
            applied[event["record_id"]] = max(applied.get(event["record_id"], at), at)
    _acting_on_events(work)
    _polling_skips_accounts_events_brought(applied)


def accepts_unsigned_webhooks() -> None:
    """Never checks the signature of a change event: it answers every delivery 204 and writes the account values
    the event carries to the ERP customer (newer events only), so anyone who can reach its port can change the
    ERP's customers, and the polling pass, seeing the account brought up to date, keeps what they wrote."""
    applied: dict[str, datetime] = {}

    async def work(cycle, event):
        at = _stamp(event["at"])
        if at >= applied.get(event["record_id"], at) and await _apply_account_values(cycle, event):
            applied[event["record_id"]] = at
    _acting_on_events(work, verify=False)
    _polling_skips_accounts_events_brought(applied)


def syncs_only_on_events() -> None:
    """Event-driven only: after its first cycle it syncs when a change event wakes it, never on a timer, so a
    change whose event is lost on the way (at-least-once delivery covers failed deliveries, not lost events)
    is never synced."""
    service.POLL_INTERVAL_S = None


def creates_customer_per_event() -> None:
    """Creates the ERP customer of a new account as soon as the account's change event arrives (a plain create,
    no external id) and links it back; it neither remembers the event ids it handled nor looks for the customer
    first, so an event delivered twice (delivery is at least once) makes two customers."""
    async def work(cycle, event):
        if event.get("kind") != "account" or event.get("operation") != "created":
            return
        values = event.get("values") or {}
        response = await cycle.erp.call("POST", "/record/v1/customer", content=apis.dumps({
            "companyName": values.get("name"), "phone": values.get("phone"),
            "custentity_syncert_crm_id": event["record_id"], "subsidiary": {"id": "1"}}).encode(),
            headers={"Content-Type": "application/json"})
        customer_id = response.headers["Location"].rsplit("/", 1)[-1]
        await cycle.crm.update("Account", event["record_id"], {"ERP_Customer_Id__c": customer_id})
    _acting_on_events(work)
def _creates_again_when_unanswered(record_type: str) -> None:
    """Create new `record_type` records in the ERP with a plain create (no external id, so not idempotent) and,
    when no answer comes back, take the record for not created and send the create again."""
    upsert = apis.NetSuite.upsert

    async def create(self, kind, external_id, body):
        if kind != record_type:
            return await upsert(self, kind, external_id, body)
        for attempt in range(1, resilience.MAX_ATTEMPTS + 1):
            try:
                response = await self.call("POST", f"/record/v1/{kind}", idempotent=False,
                                            content=apis.dumps(body).encode(),
                                            headers={"Content-Type": "application/json"})
                return response.headers["Location"].rsplit("/", 1)[-1]
            except resilience.AmbiguousWrite:
                if attempt == resilience.MAX_ATTEMPTS:
                    raise
    apis.NetSuite.upsert = create


def recreates_customer_after_timeout() -> None:
    """Creates customers without an external id and, when the create times out, creates the customer again (the
    first create may have been applied: a duplicate customer)."""
    _creates_again_when_unanswered("customer")


def recreates_order_after_lost_response() -> None:
    """Creates sales orders without an external id and, when the answer is lost, creates the order again (the
    first create was applied: a second order for one deal)."""
    _creates_again_when_unanswered("salesOrder")


def keys_orders_per_submission() -> None:
    """Keys each sales order by the deal and its modification stamp, so a closed deal saved again before its order
    number came back is taken for a new submission and becomes a second order."""
    submission = contextvars.ContextVar("submission", default="")
    create_order, find, upsert = flows.SyncCycle._create_order, apis.NetSuite.find, apis.NetSuite.upsert

    async def keyed_create_order(self, opportunity, customer_id):
        submission.set(re.sub(r"\D", "", opportunity["SystemModstamp"]))  # this task's deal, as it was read
        await create_order(self, opportunity, customer_id)

    async def keyed_find(self, record_type, key):
        if record_type == "salesOrder" and key.startswith("eid:") and submission.get():
            key = f"{key}-{submission.get()}"
        return await find(self, record_type, key)

    async def keyed_upsert(self, record_type, external_id, body):
        if record_type == "salesOrder" and submission.get():
            external_id = f"{external_id}-{submission.get()}"
        return await upsert(self, record_type, external_id, body)
    flows.SyncCycle._create_order = keyed_create_order
    apis.NetSuite.find, apis.NetSuite.upsert = keyed_find, keyed_upsert


def stops_at_first_refusal() -> None:
    """Stops the whole flow at the first record the ERP refuses: it dead-letters that record, then fails the cycle
    and leaves every other record of the batch behind (again each cycle)."""
    give_up = flows.SyncCycle.give_up

    def stop(self, flow, system, source_id, reason):
        give_up(self, flow, system, source_id, reason)
        raise flows.CycleIncomplete(f"{flow}: stopped at the refused record {source_id}")
    flows.SyncCycle.give_up = stop


REFUSED_RESENDS = 40  # bounded only so that each cycle ends (in well under its timeout)


def retries_login_forever() -> None:
    """Takes the ERP's refusal of its credentials for a passing failure: signs the request again and resends it,
    again and again (with token-based authentication every signed request is a login attempt)."""
    call = apis.NetSuite.call

    async def resend(self, method, path, **kwargs):
        for _ in range(REFUSED_RESENDS):
            try:
                return await call(self, method, path, **kwargs)
            except apis.ApiError as error:
                if not error.unauthorized:
                    raise
            await asyncio.sleep(0.2)
        return await call(self, method, path, **kwargs)
    apis.NetSuite.call = resend
def ignores_crm_retry_after() -> None:
    """Reads Retry-After on the ERP's 429 only: the CRM's request-limit refusal (403 REQUEST_LIMIT_EXCEEDED) is
    retried on the connector's own short backoff, before the CRM's Retry-After."""
    note = resilience.ResilientClient._note_retry_after
    send = resilience.ResilientClient._send

    async def flawed(self, method, url, sign, kwargs):
        response = await send(self, method, url, sign, kwargs)
        if response.status_code == 403:
            response.headers.pop("Retry-After", None)
        return response
    resilience.ResilientClient._send = flawed
    resilience.ResilientClient._note_retry_after = (
        lambda self, host, response: None if response.status_code == 403 else note(self, host, response))


def no_retry() -> None:
    """Takes a server error (5xx) for the final answer: the request is not retried, so the record or the whole
    cycle fails on the first one."""
    resilience.is_server_error = lambda response: False


def swallows_errors() -> None:
    """Treats a broken connection as done: the request is not retried, the error is logged and the record
    counts as synced (a broken read as no records); the cycle exits 0 with records silently missing."""
    class ConnectionBroken(Exception):
        pass

    send, each, query = resilience.ResilientClient._send, flows.SyncCycle._each, apis.Salesforce.query

    async def unretried(self, method, url, sign, kwargs):
        try:
            return await send(self, method, url, sign, kwargs)
        except httpx.TransportError as error:
            raise ConnectionBroken(f"{method} {url}: {error!r}") from error

    async def swallowing_each(self, flow, system, watermark, records, work):
        async def swallowing(record):
            try:
                await work(record)
            except ConnectionBroken as error:
                print(f"{flow}: ignored {error}", file=sys.stderr)
        await each(self, flow, system, watermark, records, swallowing)

    async def swallowing_query(self, soql):
        try:
            return await query(self, soql)
        except ConnectionBroken:
            return []
    resilience.ResilientClient._send = unretried
    flows.SyncCycle._each = swallowing_each
    apis.Salesforce.query = swallowing_query


def treats_bad_json_as_empty() -> None:
    """Takes an answer whose body it cannot parse (an error page, a page cut short) for an empty page: a deal
    whose lines came back unreadable looks like a deal without products and is given up, and the watermark
    moves on past it."""
    async def flawed(system, send):
        response = await send()
        try:
            return apis.loads(response.content)
        except ValueError:
            return {"records": [], "done": True, "totalSize": 0, "items": [], "hasMore": False}
    apis.read_json = flawed


def ignores_has_more() -> None:
    """Reads one page of every NetSuite list and query: when pages are smaller than asked for, the rest is
    never read."""
    call_json = apis.NetSuite.call_json

    async def flawed(self, method, path, **kwargs):
        page = await call_json(self, method, path, **kwargs)
        return {**page, "hasMore": False} if isinstance(page, dict) and "hasMore" in page else page
    apis.NetSuite.call_json = flawed


def pins_an_old_api_version() -> None:
    """Talks to Salesforce in API version 50.0 (it worked when it was written)."""
    old = "/services/data/v50.0"
    for module in (apis, flows):
        if hasattr(module, "SALESFORCE_DATA"):
            module.SALESFORCE_DATA = old


def cuts_long_names() -> None:
    """Cuts a customer name the ERP refuses as too long down to what it takes, and writes that."""
    write = flows.SyncCycle._write_customer

    async def flawed(self, account_id, customer_id, values):
        try:
            return await write(self, account_id, customer_id, values)
        except apis.ApiError as error:
            limit = re.search(r"at most (\d+)", str(error))
            if limit is None:
                raise
            return await write(self, account_id, customer_id,
                               {**values, "companyName": values["companyName"][:int(limit.group(1))]})
    flows.SyncCycle._write_customer = flawed


def writes_null_for_renamed_field() -> None:
    """When Salesforce refuses a query for a field it does not know, queries again without it: records come
    back without the renamed field, and the connector writes them with nothing in its place."""
    query = apis.Salesforce.query

    async def flawed(self, soql):
        try:
            return await query(self, soql)
        except apis.ApiError as error:
            unknown = re.search(r"No such column '(\w+)'", str(error))
            if unknown is None:
                raise
            spelled = re.search(rf"\b{unknown.group(1)}\b", soql, flags=re.IGNORECASE)
            if spelled is None:
                raise
            column = spelled.group(0)
            records = await query(self, re.sub(rf",\s*{column}\b|\b{column}\s*,\s*", "", soql, count=1))
            return [{**record, column: None} for record in records]
    apis.Salesforce.query = flawed


def _resending_on_refusal(cls: type, method_name: str, body_index: int,
                          amend: Callable[[dict, str], dict | None]) -> None:
    """Wrap a write of `cls` whose body is its `body_index`-th argument: on a 400, `amend(body, error text)`
    gives the body to send once more (None: let the refusal stand)."""
    write = getattr(cls, method_name)

    async def flawed(self, *args):
        try:
            return await write(self, *args)
        except apis.ApiError as error:
            body = args[body_index]
            amended = amend(body, str(error)) if error.status_code == 400 else None
            if amended is None or amended == body:
                raise
            return await write(self, *args[:body_index], amended, *args[body_index + 1:])
    setattr(cls, method_name, flawed)


def drops_refused_fields() -> None:
    """When NetSuite refuses a field it no longer knows, sends the record again without it, and counts it
    synced: the field's value never reaches the ERP."""
    def without_named_fields(body: dict, error: str) -> dict:
        return {name: value for name, value in body.items() if f"'{name}'" not in error and f" {name} " not in error}
    _resending_on_refusal(apis.NetSuite, "upsert", 2, without_named_fields)
    _resending_on_refusal(apis.NetSuite, "patch", 2, without_named_fields)


def fills_required_fields() -> None:
    """When NetSuite newly requires an email on customers, puts a placeholder address in it."""
    def with_placeholder(body: dict, error: str) -> dict | None:
        if "email" not in error.lower() or body.get("email"):
            return None
        return {**body, "email": "no-reply@example.com"}
    _resending_on_refusal(apis.NetSuite, "upsert", 2, with_placeholder)
    _resending_on_refusal(apis.NetSuite, "patch", 2, with_placeholder)


def writes_null_for_refused_values() -> None:
    """When Salesforce refuses a value for a field's type, writes the record again with that field empty."""
    def emptied(body: dict, error: str) -> dict | None:
        named = [name for name in body if re.search(rf"\bfor field {name}\b", error)]
        return {**body, **dict.fromkeys(named)} if named else None
    _resending_on_refusal(apis.Salesforce, "update", 2, emptied)


def crashes_on_unknown_picklist_value() -> None:
    """Translates every changed order's NetSuite status before writing any (a KeyError on a status it does not
    know): one new status value stops every order's commitment from reaching the CRM."""
    async def flawed(self):
        watermark = flows.Watermark(self.state, "order-status")
        orders = await self.erp.changed_since("salesOrder", watermark.since)
        commitments = {order["id"]: {"ERP_Order_Id__c": order["tranId"],
                                     "Commitment_Status__c": flows.COMMITMENT[order["orderStatus"]["id"]]}
                       for order in orders}

        async def sync_one(order):
            opportunity_id, values = order.get("custbody_syncert_crm_id"), commitments[order["id"]]
            key = f"order-status:{order['id']}"
            if opportunity_id and self.state.changed(key, values):
                await self.crm.update("Opportunity", opportunity_id, values)
                self.state.remember(key, values)
        await self._each("orders", "erp", watermark, orders, sync_one)
    flows.SyncCycle.order_status_to_opportunities = flawed


def builds_next_page_url_by_hand() -> None:
    """Follows a SOQL query's next page by gluing nextRecordsUrl to the instance URL."""
    async def flawed(self, soql):
        page = await self.call_json("GET", f"{apis.SALESFORCE_DATA}/query", params={"q": soql})
        records = page["records"]
        while not page["done"]:
            page = await self.call_json("GET", self.base_url + page["nextRecordsUrl"])
            records += page["records"]
        return records
    apis.Salesforce.query = flawed


def skips_forbidden_records() -> None:
    """Takes NetSuite's 403 for "nothing here for us": a refused read is an empty answer, a refused write is
    skipped, and neither is reported."""
    call_json, each = apis.NetSuite.call_json, flows.SyncCycle._each

    async def reading(self, method, path, **kwargs):
        try:
            return await call_json(self, method, path, **kwargs)
        except apis.ApiError as error:
            if error.status_code != 403:
                raise
            return {"items": [], "hasMore": False, "count": 0, "totalResults": 0}

    async def skipping(self, flow, system, watermark, records, work):
        async def tolerant(record):
            try:
                await work(record)
            except apis.ApiError as error:
                if error.status_code != 403:
                    raise
        await each(self, flow, system, watermark, records, tolerant)
    apis.NetSuite.call_json = reading
    flows.SyncCycle._each = skipping


def plans_pages_from_first_page() -> None:
    """Reads the first page of a NetSuite list, then fetches the rest side by side at offsets planned from that
    page's size: when later pages come smaller, the records between them are never read."""
    async def flawed(self, record_type, since):
        params = {"limit": apis.PAGE_SIZE, "offset": 0}
        if since:
            params["q"] = f'lastModifiedDate ON_OR_AFTER "{since}"'
        first = await self.call_json("GET", f"/record/v1/{record_type}", params=params)
        size, pages = len(first["items"]), [first]
        if first["hasMore"] and size:
            offsets = range(size, first["totalResults"], size)
            pages += await resilience.gather(
                self.call_json("GET", f"/record/v1/{record_type}", params={**params, "offset": offset})
                for offset in offsets)
        ids = [item["id"] for page in pages for item in page["items"]]
        records = await resilience.gather(self.find(record_type, record_id) for record_id in ids)
        return [record for record in records if record is not None]
    apis.NetSuite.changed_since = flawed


def writes_unknown_fields_quietly() -> None:
    """Sends the customer's phone as `phoneNumber` (a field NetSuite's customer does not have), with property
    name validation off: NetSuite drops it without a word, and the phone never arrives."""
    write = flows.SyncCycle._write_customer
    call = apis.NetSuite.call

    async def flawed(self, account_id, customer_id, values):
        renamed = {("phoneNumber" if name == "phone" else name): value for name, value in values.items()}
        return await write(self, account_id, customer_id, renamed)

    async def unvalidated(self, method, path, **kwargs):
        if method in ("PUT", "PATCH", "POST"):
            kwargs["headers"] = {**kwargs.get("headers", {}), "X-NetSuite-PropertyNameValidation": "ignore"}
        return await call(self, method, path, **kwargs)
    flows.SyncCycle._write_customer = flawed
    apis.NetSuite.call = unvalidated


def one_record_at_a_time() -> None:
    """Syncs one record at a time: each request waits for the one before it, however slow the ERP answers."""
    flows.MAX_IN_FLIGHT = 1


def hammers_through_throttling() -> None:
    """Sends every record's requests at once and resends each refused one at once, Retry-After or not: a
    throttled ERP is hammered instead of eased off."""
    flows.MAX_IN_FLIGHT = 1000
    ignores_retry_after()


def caps_records_per_cycle() -> None:
    """Reads at most 10 changed accounts per cycle (a hard-coded batch size): a backlog drains ten at a time."""
    query = apis.Salesforce.query

    async def capped(self, soql):
        if " FROM Account" in soql and soql.endswith("ORDER BY SystemModstamp"):
            soql += " LIMIT 10"
        return await query(self, soql)
    apis.Salesforce.query = capped


def keeps_its_first_session() -> None:
    """Keeps the Salesforce session of its first run in its state dir and uses it in every later run, never
    logging in again: once the org times the session out, every call is refused."""
    login = apis.Salesforce._login

    async def cached(self):
        saved = Path(os.environ["SYNCERT_STATE_DIR"]) / "salesforce-session"
        if saved.exists():
            self._token = saved.read_text()
            return
        await login(self)
        saved.write_text(self._token)
    apis.Salesforce._login = cached


DEFECTS: dict[str, tuple[Callable[[], None], str]] = {
    "marks-every-product-active": (marks_every_product_active, "E2E-ITEMS-01"),
    "skips-credit-flow": (skips_credit_flow, "E2E-CREDIT-01"),
    "creates-instead-of-upserting": (creates_instead_of_upserting, "E2E-ACC-01"),
    "ignores-line-discount": (ignores_line_discount, "E2E-Q2C-01"),
    "writes-every-cycle": (writes_every_cycle, "E2E-ECHO-01"),
    "ignores-retry-after": (ignores_retry_after, "ERR-RATE-01"),
    "drops-failures-silently": (drops_failures_silently, "ERR-LOUD-01"),
    "never-refreshes-token": (never_refreshes_token, "ERR-TOKEN-01"),
    "unbounded-concurrency": (unbounded_concurrency, "ERR-CONC-01"),
    "logs-credentials": (logs_credentials, "SEC-LEAK-01"),
    "drops-shipping-address": (drops_shipping_address, "UNIT-ACC-01"),
    "drops-contact-title": (drops_contact_title, "UNIT-CON-01"),
    "product-named-by-sku": (product_named_by_sku, "UNIT-ITEM-01"),
    "products-never-updated": (products_never_updated, "UNIT-ITEM-02"),
    "price-book-set-once": (price_book_set_once, "UNIT-PRICE-01"),
    "on-hand-as-available": (on_hand_as_available, "UNIT-STOCK-01"),
    "credit-hold-never-released": (credit_hold_never_released, "UNIT-CREDIT-01"),
    "paid-on-any-payment": (paid_on_any_payment, "UNIT-INV-01"),
    "payment-status-without-partial": (payment_status_without_partial, "UNIT-PAY-01"),
    "float-prices": (float_prices, "UNIT-ORD-01"),
    "orders-for-every-closed-deal": (orders_for_every_closed_deal, "UNIT-ORD-02"),
    "commitment-set-once": (commitment_set_once, "UNIT-CREDIT-02"),
    "ascii-folds-text": (ascii_folds_text, "UNIT-EDGE-UNICODE-01"),
    "truncates-long-values": (truncates_long_values, "UNIT-EDGE-LENGTH-01"),
    "never-clears-fields": (never_clears_fields, "UNIT-EDGE-BLANK-01"),
    "dates-through-local-time": (dates_through_local_time, "UNIT-EDGE-DATE-01"),
    "rounds-unit-price": (rounds_unit_price, "UNIT-EDGE-ROUND-01"),
    "drops-astral-characters": (drops_astral_characters, "UNIT-GEN-01"),
    "invoice-status-set-once": (invoice_status_set_once, "E2E-Q2C-02"),
    "resends-held-orders": (resends_held_orders, "E2E-CREDIT-02"),
    "refuses-orders-beyond-stock": (refuses_orders_beyond_stock, "E2E-STOCK-01"),
    "syncs-products-both-ways": (syncs_products_both_ways, "E2E-OWN-01"),
    "pulls-customer-edits": (pulls_customer_edits, "E2E-OWN-02"),
    "skips-conflicts-silently": (skips_conflicts_silently, "E2E-CONFLICT-01"),
    "patches-link-separately": (patches_link_separately, "E2E-WRITES-01"),
    "ignores-existing-customers": (ignores_existing_customers, "E2E-LINK-01"),
    "price-compared-as-text": (price_compared_as_text, "E2E-QUIET-01"),
    "reads-first-page-only": (reads_first_page_only, "E2E-BACKFILL-01"),
    "watermark-at-cycle-end": (watermark_at_cycle_end, "E2E-PAGE-01"),
    "queries-strictly-after-watermark": (queries_strictly_after_watermark, "E2E-STAMP-01"),
    "gives-up-on-server-errors": (gives_up_on_server_errors, "CHAOS-01"),
    "hard-coded-credentials": (hard_coded_credentials, "ERR-ROTATE-01"),
    "disables-tls-verification": (disables_tls_verification, "ERR-TLS-01"),
    "creates-customer-per-event": (creates_customer_per_event, "ERR-HOOK-DUP-01"),
    "applies-events-out-of-order": (applies_events_out_of_order, "ERR-HOOK-ORDER-01"),
    "syncs-only-on-events": (syncs_only_on_events, "ERR-HOOK-DROP-01"),
    "accepts-unsigned-webhooks": (accepts_unsigned_webhooks, "ERR-HOOK-FORGED-01"),
    "recreates-customer-after-timeout": (recreates_customer_after_timeout, "ERR-TIMEOUT-01"),
    "recreates-order-after-lost-response": (recreates_order_after_lost_response, "ERR-AMBIG-01"),
    "keys-orders-per-submission": (keys_orders_per_submission, "ERR-DUPDEAL-01"),
    "stops-at-first-refusal": (stops_at_first_refusal, "ERR-BATCH-01"),
    "retries-login-forever": (retries_login_forever, "ERR-REVOKED-01"),
    "ignores-crm-retry-after": (ignores_crm_retry_after, "ERR-THROTTLE-CRM-01"),
    "no-retry": (no_retry, "ERR-BURST-01"),
    "swallows-errors": (swallows_errors, "ERR-RESET-01"),
    "treats-bad-json-as-empty": (treats_bad_json_as_empty, "ERR-MALFORMED-01"),
    "ignores-has-more": (ignores_has_more, "DRIFT-PAGE-01"),
    "pins-an-old-api-version": (pins_an_old_api_version, "DRIFT-VERSION-01"),
    "cuts-long-names": (cuts_long_names, "DRIFT-LENGTH-01"),
    "writes-null-for-renamed-field": (writes_null_for_renamed_field, "DRIFT-RENAME-01"),
    "drops-refused-fields": (drops_refused_fields, "DRIFT-REMOVED-01"),
    "fills-required-fields": (fills_required_fields, "DRIFT-REQUIRED-01"),
    "writes-null-for-refused-values": (writes_null_for_refused_values, "DRIFT-TYPE-01"),
    "crashes-on-unknown-picklist-value": (crashes_on_unknown_picklist_value, "DRIFT-PICKLIST-01"),
    "builds-next-page-url-by-hand": (builds_next_page_url_by_hand, "DRIFT-LINKS-01"),
    "skips-forbidden-records": (skips_forbidden_records, "DRIFT-SCOPE-01"),
    "plans-pages-from-first-page": (plans_pages_from_first_page, "DRIFT-MIDRUN-01"),
    "writes-unknown-fields-quietly": (writes_unknown_fields_quietly, "CONTRACT-01"),
    "saves-watermark-before-writes": (saves_watermark_before_writes, "ERR-CRASH-01"),
    "advances-watermark-on-failure": (advances_watermark_on_failure, "ERR-OUTAGE-01"),
    "retries-without-backoff": (retries_without_backoff, "ERR-MAINT-01"),
    "one-record-at-a-time": (one_record_at_a_time, "VOL-ORDERS-01"),
    "hammers-through-throttling": (hammers_through_throttling, "VOL-MONTHEND-01"),
    "caps-records-per-cycle": (caps_records_per_cycle, "VOL-BACKFILL-02"),
    "keeps-its-first-session": (keeps_its_first_session, "VOL-SOAK-01"),
}

if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in DEFECTS:
        sys.exit(f"usage: run_flawed.py <{'|'.join(DEFECTS)}> sync|serve")
    DEFECTS[sys.argv[1]][0]()
    sys.exit(main(sys.argv[2:]))
