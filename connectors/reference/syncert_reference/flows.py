"""The sync flows of the reference connector and the rules they follow.

Field ownership (one owner per field):
  CRM owns   Account name, phone, addresses; primary Contact email; closed-won Opportunities (intent).
  ERP owns   customers' credit hold and balance, items, stock, sales orders (commitment), invoices, payments.
A flow copies only the fields its source owns, and only when they changed since the last sync
(fingerprints in the state dir), so write-backs never echo between the systems.

Flows and directions:
  items, inventory   ERP inventoryItem -> CRM Product2 (+ standard price book entry)
  accounts           CRM Account -> ERP customer (eid SF-<AccountId>); ERP id written back
  contacts           CRM primary Contact email/phone -> ERP customer
  orders             CRM closed-won Opportunity -> ERP salesOrder (eid SF-<OpportunityId>);
                     ERP order number and commitment written back, and kept current
  credit             ERP customer credit hold and balance -> CRM Account
  invoices, payments ERP invoice status and amount remaining -> CRM Opportunity
Records of a flow are synced concurrently, at most MAX_IN_FLIGHT requests at a time. A record that
cannot be synced is written to the dead-letter file and the cycle goes on.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from syncert_reference.apis import ApiError, NetSuite, Salesforce
from syncert_reference.resilience import ResilientClient
from syncert_reference.state import SyncState

ALL_FLOWS = ("items", "inventory", "accounts", "contacts", "orders", "credit", "invoices", "payments")
MAX_IN_FLIGHT = 4  # NetSuite developer accounts allow 5 concurrent requests; stay under it
COMMITTED_STATUSES = {"B", "D", "E", "F", "G"}  # pending fulfilment and later
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Settings:
    """What the connector needs from its environment (PRODUCT.md, connector protocol)."""

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
    def from_environment(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        missing = [name for name in ("SYNCERT_CRM_URL", "SYNCERT_ERP_URL", "SYNCERT_STATE_DIR", "SYNCERT_DEAD_LETTER")
                   if not env.get(name)]
        if missing:
            raise SystemExit(f"reference connector: missing environment variables: {', '.join(missing)}")
        flows = tuple(f for f in env.get("SYNCERT_REFERENCE_FLOWS", ",".join(ALL_FLOWS)).split(",") if f)
        return cls(crm_url=env["SYNCERT_CRM_URL"], crm_client_id=env.get("SYNCERT_CRM_CLIENT_ID", ""),
                   crm_client_secret=env.get("SYNCERT_CRM_CLIENT_SECRET", ""), erp_url=env["SYNCERT_ERP_URL"],
                   erp_account=env.get("SYNCERT_ERP_ACCOUNT", ""),
                   erp_consumer_key=env.get("SYNCERT_ERP_CONSUMER_KEY", ""),
                   erp_consumer_secret=env.get("SYNCERT_ERP_CONSUMER_SECRET", ""),
                   erp_token_id=env.get("SYNCERT_ERP_TOKEN_ID", ""),
                   erp_token_secret=env.get("SYNCERT_ERP_TOKEN_SECRET", ""),
                   state_dir=Path(env["SYNCERT_STATE_DIR"]), dead_letter=Path(env["SYNCERT_DEAD_LETTER"]),
                   ca_bundle=env.get("SYNCERT_CA_BUNDLE"), flows=flows)


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

    async def run(self) -> None:
        try:
            enabled = set(self.settings.flows)
            if enabled & {"items", "inventory"}:
                await self.items_to_products(enabled)
            if "accounts" in enabled:
                await self.accounts_to_customers()
            if "contacts" in enabled:
                await self.primary_contacts_to_customers()
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

    def give_up(self, flow: str, system: str, source_id: str, reason: str) -> None:
        """Record a record the connector could not sync (never drop it silently)."""
        self.dead_letters += 1
        with self.settings.dead_letter.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"flow": flow, "source_system": system, "source_id": source_id,
                                     "reason": reason[:500]}) + "\n")

    # -- ERP -> CRM: items and stock ---------------------------------------------------------------

    async def items_to_products(self, enabled: set[str]) -> None:
        since = self.state.watermarks.get("items")
        pricebook = (await self.crm.query("SELECT Id FROM Pricebook2 WHERE IsStandard = true"))[0]["Id"]
        async def sync_one(item: dict[str, Any]) -> None:
            values: dict[str, Any] = {}
            if "items" in enabled:
                values.update(Name=item.get("displayName") or item["itemId"], ProductCode=item["itemId"],
                              List_Price__c=item.get("basePrice"), IsActive=not item.get("isInactive", False))
            if "inventory" in enabled:
                values["Quantity_Available__c"] = item.get("quantityAvailable")
            key = f"item:{item['id']}"
            if self.state.changed(key, values):
                try:
                    await self.crm.upsert("Product2", "ERP_Item_Id__c", item["id"], values)
                    if "items" in enabled and item.get("basePrice") is not None:
                        await self._price_book_entry(pricebook, item)
                    self.state.remember(key, values)
                except ApiError as error:
                    self.give_up("items", "erp", item["id"], str(error))
            self._advance("items", item["lastModifiedDate"])
        await each(await self.erp.changed_since("inventoryItem", since), sync_one)

    async def _price_book_entry(self, pricebook: str, item: dict[str, Any]) -> None:
        product = (await self.crm.query(f"SELECT Id FROM Product2 WHERE ERP_Item_Id__c = '{item['id']}'"))[0]["Id"]
        entries = await self.crm.query(f"SELECT Id FROM PricebookEntry WHERE Product2Id = '{product}' "
                                       f"AND Pricebook2Id = '{pricebook}'")
        if entries:
            await self.crm.update("PricebookEntry", entries[0]["Id"], {"UnitPrice": item["basePrice"]})
        else:
            await self.crm.create("PricebookEntry", {"Pricebook2Id": pricebook, "Product2Id": product,
                                                     "UnitPrice": item["basePrice"], "IsActive": True})

    # -- CRM -> ERP: accounts and contacts --------------------------------------------------------

    async def accounts_to_customers(self) -> None:
        accounts = await self.crm.query(
            "SELECT Id, Name, Phone, BillingStreet, BillingCity, BillingState, BillingPostalCode, BillingCountry, "
            "ShippingStreet, ShippingCity, ShippingState, ShippingPostalCode, ShippingCountry, ERP_Customer_Id__c, "
            f"SystemModstamp FROM Account{self._since('accounts', 'SystemModstamp')} ORDER BY SystemModstamp")
        async def sync_one(account: dict[str, Any]) -> None:
            values = {"companyName": account["Name"], "phone": account["Phone"],
                      "custentity_syncert_crm_id": account["Id"], "addressBook": _address_book(account)}
            key = f"account:{account['Id']}"
            try:
                if self.state.changed(key, values):
                    await self.erp.upsert("customer", f"SF-{account['Id']}", {**values, "subsidiary": {"id": "1"}})
                    self.state.remember(key, values)
                if not account["ERP_Customer_Id__c"]:
                    customer = await self.erp.get("customer", f"eid:SF-{account['Id']}")
                    if customer is not None:
                        await self.crm.update("Account", account["Id"], {"ERP_Customer_Id__c": customer["id"]})
            except ApiError as error:
                self.give_up("accounts", "crm", account["Id"], str(error))
            self._advance("accounts", account["SystemModstamp"])
        await each(accounts, sync_one)

    async def primary_contacts_to_customers(self) -> None:
        contacts = await self.crm.query(
            "SELECT Id, AccountId, Email, Phone, SystemModstamp FROM Contact WHERE Primary__c = true"
            f"{self._since('contacts', 'SystemModstamp', joiner=' AND')} ORDER BY SystemModstamp")
        async def sync_one(contact: dict[str, Any]) -> None:
            values = {"email": contact["Email"]}
            key = f"contact:{contact['Id']}"
            if contact["AccountId"] and self.state.changed(key, values):
                try:
                    customer = await self.erp.get("customer", f"eid:SF-{contact['AccountId']}")
                    if customer is None:
                        return  # the account is not in the ERP yet; the next cycle retries
                    await self.erp.patch("customer", customer["id"], values)
                    self.state.remember(key, values)
                except ApiError as error:
                    self.give_up("contacts", "crm", contact["Id"], str(error))
            self._advance("contacts", contact["SystemModstamp"])
        await each(contacts, sync_one)

    # -- CRM intent -> ERP commitment: orders -----------------------------------------------------

    async def won_opportunities_to_orders(self) -> None:
        opportunities = await self.crm.query(
            "SELECT Id, AccountId, ERP_Order_Id__c, SystemModstamp FROM Opportunity WHERE StageName = 'Closed Won'"
            f"{self._since('orders', 'SystemModstamp', joiner=' AND')} ORDER BY SystemModstamp")
        async def sync_one(opportunity: dict[str, Any]) -> None:
            if not opportunity["ERP_Order_Id__c"]:
                try:
                    await self._create_order(opportunity)
                except (ApiError, LookupError) as error:
                    self.give_up("orders", "crm", opportunity["Id"], str(error))
            self._advance("orders", opportunity["SystemModstamp"])
        await each(opportunities, sync_one)

    async def _create_order(self, opportunity: dict[str, Any]) -> None:
        external_id = f"SF-{opportunity['Id']}"
        order = await self.erp.get("salesOrder", f"eid:{external_id}")
        if order is None:
            if await self.erp.get("customer", f"eid:SF-{opportunity['AccountId']}") is None:
                raise LookupError(f"account {opportunity['AccountId']} has no ERP customer")
            lines = await self.crm.query("SELECT Product2Id, Quantity, UnitPrice, Discount FROM OpportunityLineItem "
                                         f"WHERE OpportunityId = '{opportunity['Id']}'")
            if not lines:
                raise LookupError("the opportunity has no products")
            items = [await self._order_line(line) for line in lines]
            await self.erp.upsert("salesOrder", external_id, {
                "entity": {"externalId": f"SF-{opportunity['AccountId']}"}, "item": {"items": items},
                "custbody_syncert_crm_id": opportunity["Id"]})
            order = await self.erp.get("salesOrder", f"eid:{external_id}")
        assert order is not None
        await self.crm.update("Opportunity", opportunity["Id"], _commitment(order))
        self.state.remember(f"order-status:{order['id']}", _commitment(order))

    async def _order_line(self, line: dict[str, Any]) -> dict[str, Any]:
        product = (await self.crm.query(f"SELECT ERP_Item_Id__c, ProductCode FROM Product2 "
                                        f"WHERE Id = '{line['Product2Id']}'"))[0]
        if not product["ERP_Item_Id__c"]:
            raise LookupError(f"product {product['ProductCode']} is not linked to an ERP item")
        discount = Decimal(str(line["Discount"] or 0))
        rate = (Decimal(str(line["UnitPrice"])) * (1 - discount / 100)).quantize(CENT, ROUND_HALF_UP)
        return {"item": {"id": product["ERP_Item_Id__c"]}, "quantity": line["Quantity"], "rate": float(rate)}

    async def order_status_to_opportunities(self) -> None:
        async def sync_one(order: dict[str, Any]) -> None:
            opportunity_id = order.get("custbody_syncert_crm_id")
            values = _commitment(order)
            key = f"order-status:{order['id']}"
            if opportunity_id and self.state.changed(key, values):
                try:
                    await self.crm.update("Opportunity", opportunity_id, values)
                    self.state.remember(key, values)
                except ApiError as error:
                    self.give_up("orders", "erp", order["id"], str(error))
            self._advance("order-status", order["lastModifiedDate"])
        await each(await self.erp.changed_since("salesOrder", self.state.watermarks.get("order-status")), sync_one)

    # -- ERP -> CRM: credit, invoices, payments ---------------------------------------------------

    async def credit_to_accounts(self) -> None:
        async def sync_one(customer: dict[str, Any]) -> None:
            account_id = customer.get("custentity_syncert_crm_id")
            values = {"Credit_Status__c": "On Hold" if customer.get("custentity_syncert_credit_hold") else "OK",
                      "Outstanding_Balance__c": customer.get("balance")}
            key = f"credit:{customer['id']}"
            if account_id and self.state.changed(key, values):
                try:
                    await self.crm.update("Account", account_id, values)
                    self.state.remember(key, values)
                except ApiError as error:
                    self.give_up("credit", "erp", customer["id"], str(error))
            self._advance("credit", customer["lastModifiedDate"])
        await each(await self.erp.changed_since("customer", self.state.watermarks.get("credit")), sync_one)

    async def invoices_to_opportunities(self, enabled: set[str]) -> None:
        async def sync_one(invoice: dict[str, Any]) -> None:
            order_ref = invoice.get("createdFrom")
            order = await self.erp.get("salesOrder", order_ref["id"]) if order_ref else None
            opportunity_id = order.get("custbody_syncert_crm_id") if order else None
            total, remaining = Decimal(str(invoice["total"])), Decimal(str(invoice["amountRemaining"]))
            values: dict[str, Any] = {}
            if "invoices" in enabled:
                values["Invoice_Status__c"] = ("Paid" if remaining == 0 else
                                               "Partially Paid" if remaining < total else "Invoiced")
            if "payments" in enabled:
                values["Payment_Status__c"] = ("Paid" if remaining == 0 else
                                               "Partially Paid" if remaining < total else "Unpaid")
            key = f"invoice:{invoice['id']}"
            if opportunity_id and self.state.changed(key, values):
                try:
                    await self.crm.update("Opportunity", opportunity_id, values)
                    self.state.remember(key, values)
                except ApiError as error:
                    self.give_up("invoices", "erp", invoice["id"], str(error))
            self._advance("invoices", invoice["lastModifiedDate"])
        await each(await self.erp.changed_since("invoice", self.state.watermarks.get("invoices")), sync_one)

    # -- watermarks -------------------------------------------------------------------------------

    def _since(self, flow: str, field: str, joiner: str = " WHERE") -> str:
        mark = self.state.watermarks.get(flow)
        return f"{joiner} {field} >= {mark}" if mark else ""

    def _advance(self, flow: str, stamp: str) -> None:
        if stamp > self.state.watermarks.get(flow, ""):
            self.state.watermarks[flow] = stamp


async def each(records: list[dict[str, Any]], work: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    """Sync records concurrently; the client's cap bounds the requests in flight."""
    await asyncio.gather(*(work(record) for record in records))


def _commitment(order: dict[str, Any]) -> dict[str, Any]:
    status = order.get("orderStatus", {}).get("id")
    return {"ERP_Order_Id__c": order["tranId"],
            "Commitment_Status__c": "Committed" if status in COMMITTED_STATUSES else "Submitted"}


def _address_book(account: dict[str, Any]) -> dict[str, Any]:
    items = []
    for prefix, billing in (("Billing", True), ("Shipping", False)):
        address = {"addr1": account[f"{prefix}Street"], "city": account[f"{prefix}City"],
                   "state": account[f"{prefix}State"], "zip": account[f"{prefix}PostalCode"]}
        if account[f"{prefix}Country"]:
            address["country"] = {"id": account[f"{prefix}Country"]}
        if any(address.values()):
            items.append({"defaultBilling": billing, "defaultShipping": not billing, "addressBookAddress": address})
    return {"items": items}
