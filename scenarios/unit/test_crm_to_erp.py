"""Unit scenarios, CRM -> ERP (level 2, one-way sync): one flow and one concern each, judged per
business key through the mapping."""

from __future__ import annotations

from syncert.harness.pytest_plugin import scenario
from syncert.harness.runner import ScenarioRun
from syncert.scenarios.setups import (
    account_ready,
    assert_converges,
    by_id,
    close_deal,
    linked_customer,
    products_ready,
    require,
)

ITEMS = [{"sku": "P-1999", "name": "Nineteen ninety-nine", "price": "19.99", "quantity_on_hand": "100"},
         {"sku": "P-510", "name": "Five ten", "price": "5.10", "quantity_on_hand": "100"}]


def _address(n: int, city: str) -> dict[str, str]:
    return {"street": f"{n} Harbour Road", "city": city, "state": "CA", "postal_code": f"9410{n}", "country": "US"}


@scenario(id="UNIT-ACC-01", category="unit", flows=("accounts",), level=2,
          intent="Every mapped field of an account reaches its ERP customer (name, phone, both addresses) and "
                 "the customer's id comes back")
def test_account_fields(sync: ScenarioRun) -> None:
    sync.seed("crm", {"account": [
        {"name": f"Harbour Supplies {n}", "phone": f"+1 415 555 01{n:02d}", "billing_address": _address(n, "Oakland"),
         "shipping_address": _address(n + 5, "San Leandro")} for n in range(4)]})
    assert_converges(sync, "accounts")


@scenario(id="UNIT-CON-01", category="unit", flows=("accounts", "contacts"), level=2,
          intent="Every mapped field of a contact reaches a contact of the account's ERP customer, and the ERP "
                 "contact's id comes back")
def test_contact_fields(sync: ScenarioRun) -> None:
    account, _ = linked_customer(sync, "Contactable Corp")
    sync.seed("crm", {"contact": [
        {"account_id": account, "first_name": "Ada", "last_name": "Lovelace", "email": "ada@contactable.example",
         "phone": "+44 20 7946 0001", "role": "Buyer", "primary": True},
        {"account_id": account, "first_name": "Alan", "last_name": "Turing", "email": "alan@contactable.example",
         "phone": "+44 20 7946 0002", "role": "Accounts payable"}]})
    assert_converges(sync, "contacts")


@scenario(id="UNIT-ORD-01", category="unit", flows=("accounts", "items", "orders"), level=2,
          intent="A closed-won deal becomes one sales order: customer, currency, order date, lines, quantities, "
                 "exact discounted prices and a total to the cent as the CRM computed it")
def test_order_fields(sync: ScenarioRun) -> None:
    entries = products_ready(sync, ITEMS)
    account = account_ready(sync)
    close_deal(sync, account, [{"pricebook_entry_id": entries["P-1999"], "quantity": 3, "discount": 20},
                               {"pricebook_entry_id": entries["P-510"], "quantity": 10, "discount": 15}],
               currency="EUR", close_date="2026-11-27")
    assert_converges(sync, "orders")


@scenario(id="UNIT-ORD-02", category="unit", flows=("accounts", "items", "orders"), level=2,
          intent="Lost and still-open deals create nothing in the ERP; only the won one becomes an order")
def test_only_won_deals_become_orders(sync: ScenarioRun) -> None:
    entries = products_ready(sync, ITEMS[:1])
    account = account_ready(sync)
    line = [{"pricebook_entry_id": entries["P-1999"], "quantity": 1}]
    for stage in ("Closed Lost", "Proposal", "Closed Won"):
        close_deal(sync, account, line, stage=stage, name=f"{stage} deal")
    sync.run_until(lambda s: s.reconcile("orders").all_synced)
    sync.settle(cycles=1)  # an order for the lost or open deal may come a cycle later
    result = sync.reconcile("orders")
    assert result.all_synced, result.explain()


@scenario(id="UNIT-CREDIT-02", category="unit", flows=("accounts", "items", "orders"), level=2,
          intent="A deal over the customer's credit limit shows Submitted while the ERP holds the order, "
                 "then Committed once the ERP releases it")
def test_commitment_follows_credit_hold(sync: ScenarioRun) -> None:
    entries = products_ready(sync, ITEMS[:1])
    account = account_ready(sync, "Stretched Ltd")
    customer = by_id(sync.state("crm")["account"], account)["erp_customer_id"]
    sync.edit("erp", "customer", customer, {"credit_limit": "10"})
    close_deal(sync, account, [{"pricebook_entry_id": entries["P-1999"], "quantity": 2}])
    assert sync.run_until(lambda s: len(s.state("erp")["sales_order"]) == 1), "the won deal did not become an order"
    [order] = sync.state("erp")["sales_order"]
    require(order["status"] == "pending_approval", f"the order is held for credit (status {order['status']})")
    assert_converges(sync, "orders", stage="while the order is held")
    sync.edit("erp", "customer", customer, {"credit_limit": "1000"})
    sync.edit("erp", "sales_order", order["id"], {"status": "pending_fulfillment"})
    assert_converges(sync, "orders", stage="after the ERP released the order")
