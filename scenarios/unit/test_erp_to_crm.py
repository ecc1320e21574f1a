"""Unit scenarios, ERP -> CRM (level 1, visibility): one flow and one concern each, judged per business
key through the mapping."""

from __future__ import annotations

from decimal import Decimal

from syncert.harness.pytest_plugin import scenario
from syncert.harness.runner import ScenarioRun
from syncert.scenarios.setups import assert_converges, by_id, invoice_order, linked_customer, linked_order, pay, require

PRICED_ITEMS = [{"sku": "P-1999", "name": "Nineteen ninety-nine", "price": "19.99", "quantity_on_hand": "12"},
                {"sku": "P-510", "name": "Five ten", "price": "5.10", "quantity_on_hand": "7"}]


@scenario(id="UNIT-ITEM-01", category="unit", flows=("items",), level=1,
          intent="Every mapped field of an ERP item reaches its CRM product and standard price, prices exact "
                 "(19.99, 5.10)")
def test_item_fields(sync: ScenarioRun) -> None:
    sync.seed("erp", {"item": PRICED_ITEMS})
    assert_converges(sync, "items", "prices")


@scenario(id="UNIT-ITEM-02", category="unit", flows=("items",), level=1,
          intent="An item discontinued in the ERP after it was synced becomes an inactive product")
def test_discontinued_item(sync: ScenarioRun) -> None:
    item = sync.seed("erp", {"item": PRICED_ITEMS[:1]})["item"][0]
    assert sync.run_until(lambda s: s.reconcile("items").all_synced), sync.reconcile("items").explain()
    sync.edit("erp", "item", item, {"discontinued": True})
    assert_converges(sync, "items")


@scenario(id="UNIT-PRICE-01", category="unit", flows=("items",), level=1,
          intent="An ERP price change reaches the product's list price and its standard price book entry")
def test_price_change(sync: ScenarioRun) -> None:
    item = sync.seed("erp", {"item": PRICED_ITEMS[:1]})["item"][0]
    assert sync.run_until(lambda s: s.reconcile("prices").all_synced), sync.reconcile("prices").explain()
    sync.edit("erp", "item", item, {"price": "21.49"})
    assert_converges(sync, "prices", "items")


@scenario(id="UNIT-STOCK-01", category="unit", flows=("inventory",), level=1,
          intent="The CRM shows stock available to promise: on hand less what open orders committed")
def test_available_stock(sync: ScenarioRun) -> None:
    linked_order(sync, [("STK-1", 4, "10.00"), ("STK-2", "2.5", "3.00")])
    items = sync.state("erp")["item"]
    require(all(i["quantity_available"] != i["quantity_on_hand"] for i in items),
            "open orders committed stock, so on hand differs from available")
    assert_converges(sync, "inventory")


@scenario(id="UNIT-CREDIT-01", category="unit", flows=("credit",), level=1,
          intent="A credit hold and its release both reach the linked account, with the balance")
def test_credit_hold_and_release(sync: ScenarioRun) -> None:
    _, customer = linked_customer(sync, "Credit Watch Ltd", credit_limit="500")
    sync.edit("erp", "customer", customer, {"credit_hold_override": "ON"})
    assert sync.run_until(lambda s: s.reconcile("credit").all_synced), sync.reconcile("credit").explain()
    sync.edit("erp", "customer", customer, {"credit_hold_override": "AUTO"})
    require(not by_id(sync.state("erp")["customer"], customer)["credit_hold"], "the hold was released")
    assert_converges(sync, "credit")


def _bill_and_pay(sync: ScenarioRun, flow: str) -> None:
    """Invoice a linked order, pay part of it, then the rest; the flow must show each state."""
    _, order, customer = linked_order(sync, [("BILL-1", 3, "19.99"), ("BILL-2", 2, "5.10")])
    invoice = invoice_order(sync, order)
    amount = by_id(sync.state("erp")["invoice"], invoice)["amount"]
    require(Decimal(amount) == Decimal("70.17"), f"invoice amount {amount} is 3 x 19.99 + 2 x 5.10")
    for paid in (None, Decimal("20.17"), Decimal("50.00")):
        if paid is not None:
            pay(sync, customer, invoice, paid)
        assert_converges(sync, flow, stage="invoiced" if paid is None else f"after a payment of {paid}")


@scenario(id="UNIT-INV-01", category="unit", flows=("invoices",), level=1,
          intent="An invoice shows on its deal as invoiced, then partly paid, then paid")
def test_invoice_status(sync: ScenarioRun) -> None:
    _bill_and_pay(sync, "invoices")


@scenario(id="UNIT-PAY-01", category="unit", flows=("payments",), level=1,
          intent="Payments received show on the deal as unpaid, partly paid, then paid")
def test_payment_status(sync: ScenarioRun) -> None:
    _bill_and_pay(sync, "payments")
