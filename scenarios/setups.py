"""Arrangements the scenarios share, in canonical terms: linked records as an earlier sync left them,
deals closed by a user, ERP users shipping, billing and taking payments.

A guard that a scenario set up its condition raises ScenarioSetupError (the scenario's fault, never
the connector's); a connector that does not get the world ready fails an assertion instead.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from syncert.harness.runner import ScenarioRun, ScenarioSetupError, writes


def require(condition: bool, what: str) -> None:
    """Guard a scenario's own setup."""
    if not condition:
        raise ScenarioSetupError(f"scenario setup: {what}")


def by_id(records: list[dict[str, Any]], record_id: str) -> dict[str, Any]:
    found = [r for r in records if r["id"] == record_id]
    require(len(found) == 1, f"record {record_id} not found")
    return found[0]


def assert_converges(sync: ScenarioRun, *flows: str, stage: str = "") -> None:
    """Run the connector until every flow reconciles as synced (or cycles run out), then judge each one;
    `stage` opens the failure message (which moment of the scenario it was)."""
    sync.run_until(lambda s: all(s.reconcile(flow).all_synced for flow in flows))
    for flow in flows:
        result = sync.reconcile(flow)
        assert result.all_synced, f"{stage}: {result.explain()}" if stage else result.explain()


def linked_customer(sync: ScenarioRun, name: str = "Linked Customer Ltd", **customer: Any) -> tuple[str, str]:
    """An account and its ERP customer, linked both ways as an earlier sync left them: (account, customer)."""
    account = sync.seed("crm", {"account": [{"name": name}]})["account"][0]
    customer_id = sync.seed("erp", {"customer": [{"name": name, "crm_id": account, **customer}]})["customer"][0]
    sync.edit("crm", "account", account, {"erp_customer_id": customer_id})
    return account, customer_id


def linked_order(sync: ScenarioRun, lines: list[tuple[str, Decimal | str | int, Decimal | str]],
                 name: str = "Linked Order Ltd") -> tuple[str, str, str]:
    """A won deal and the sales order it became, linked both ways: (opportunity, order, customer).

    `lines`: (sku, quantity, rate); each sku becomes an ERP item with stock enough to commit it."""
    account, customer = linked_customer(sync, name)
    items = sync.seed("erp", {"item": [{"sku": sku, "name": f"Item {sku}", "price": str(rate),
                                        "quantity_on_hand": "1000"} for sku, _, rate in lines]})["item"]
    opportunity = sync.seed("crm", {"opportunity": [{"account_id": account, "name": f"{name} deal",
                                                     "stage": "Closed Won", "close_date": "2026-11-02"}]})
    opportunity_id = opportunity["opportunity"][0]
    order_id = sync.seed("erp", {"sales_order": [{
        "customer_id": customer, "crm_id": opportunity_id,
        "lines": [{"item_id": item, "quantity": str(quantity), "rate": str(rate)}
                  for item, (_, quantity, rate) in zip(items, lines, strict=True)]}]})["sales_order"][0]
    number = by_id(sync.state("erp")["sales_order"], order_id)["number"]
    sync.edit("crm", "opportunity", opportunity_id, {"erp_order_id": number, "commitment_status": "Committed"})
    return opportunity_id, order_id, customer


def products_ready(sync: ScenarioRun, items: list[dict[str, Any]]) -> dict[str, str]:
    """Seed ERP items and run the connector until each is a CRM product with a standard price:
    the standard price book entry id by sku."""
    sync.seed("erp", {"item": items})
    skus = {item["sku"] for item in items}

    def ready(run: ScenarioRun) -> bool:
        return skus <= set(standard_entries(run))
    assert sync.run_until(ready), f"the items {sorted(skus)} did not become CRM products with a standard price"
    return standard_entries(sync)


def standard_entries(sync: ScenarioRun) -> dict[str, str]:
    """Standard price book entry id by product sku."""
    state = sync.state("crm")
    standard = {p["id"] for p in state["pricebook"] if p["is_standard"]}
    sku_of = {p["id"]: p["sku"] for p in state["product"]}
    return {sku_of[e["product_id"]]: e["id"] for e in state["pricebook_entry"]
            if e["pricebook_id"] in standard and e["product_id"] in sku_of}


def close_deal(sync: ScenarioRun, account: str, lines: list[dict[str, Any]], stage: str = "Closed Won",
               **opportunity: Any) -> str:
    """A user builds a deal in Negotiation with `lines` (pricebook_entry_id, quantity, discount, ...), then
    moves it to `stage`; returns the opportunity id."""
    ids = sync.seed("crm", {
        "opportunity": [{"_ref": "deal", "account_id": account, "name": "Deal", "stage": "Negotiation",
                         "close_date": "2026-12-15", **opportunity}],
        "opportunity_line_item": [{"opportunity_id": {"$ref": "deal"}, **line} for line in lines]})
    deal = ids["opportunity"][0]
    if stage != "Negotiation":
        sync.edit("crm", "opportunity", deal, {"stage": stage})
    return deal


def account_ready(sync: ScenarioRun, name: str = "Buyer Inc", **account: Any) -> str:
    """A CRM account the connector has linked to an ERP customer."""
    account_id = sync.seed("crm", {"account": [{"name": name, **account}]})["account"][0]
    assert sync.run_until(lambda s: bool(by_id(s.state("crm")["account"], account_id).get("erp_customer_id"))), \
        f"account {account_id} did not get an ERP customer"
    return account_id


def invoice_order(sync: ScenarioRun, order_id: str) -> str:
    """An ERP user ships the whole order and bills it; returns the invoice id."""
    sync.seed("erp", {"item_fulfillment": [{"sales_order_id": order_id}]})
    return sync.seed("erp", {"invoice": [{"sales_order_id": order_id}]})["invoice"][0]


def pay(sync: ScenarioRun, customer: str, invoice: str, amount: Decimal | str) -> None:
    """An ERP user records a customer payment applied to `invoice`."""
    sync.seed("erp", {"payment": [{"customer_id": customer, "amount": str(amount),
                                   "applications": [{"invoice_id": invoice, "amount": str(amount)}]}]})


def journal_mark(sync: ScenarioRun, side: str) -> int:
    """The sequence number of the last request `side` answered so far (0 before any)."""
    return max((entry["seq"] for entry in sync.journal(side)), default=0)


def writes_after(sync: ScenarioRun, side: str, mark: int, kind: str | None = None) -> list[dict[str, Any]]:
    """The write requests `side` answered after `mark` (journal_mark), to records of `kind` if given."""
    return [entry for entry in writes(sync.journal(side))
            if entry["seq"] > mark and (kind is None or entry["kind"] == kind)]

def seed_in_batches(sync: ScenarioRun, side: str, kind: str, records: list[dict[str, Any]],
                    batch: int = 1000) -> list[str]:
    """Seed many records of one kind, `batch` a request; their ids in order."""
    return [record_id for start in range(0, len(records), batch)
            for record_id in sync.seed(side, {kind: records[start:start + batch]})[kind]]


def writes_since(sync: ScenarioRun, baseline: dict[str, int]) -> dict[str, list[dict[str, Any]]]:
    """The write entries of each side's journal after `baseline` (the last seq of each side, from `last_seq`)."""
    return {side: writes_after(sync, side, mark) for side, mark in baseline.items()}


def last_seq(sync: ScenarioRun) -> dict[str, int]:
    """The newest journal entry of each side, a baseline for `writes_since`."""
    return {side: journal_mark(sync, side) for side in ("crm", "erp")}
