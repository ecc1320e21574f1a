"""End-to-end scenarios that follow a deal through its life (level 3): quote to cash, a credit hold the ERP
decides and later releases, a shortage the ERP backorders. The CRM expresses intent, the ERP decides
commitment; at each stage both systems must agree as the mapping says."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from syncert.harness.pytest_plugin import scenario
from syncert.harness.runner import ScenarioRun
from syncert.scenarios.setups import (
    account_ready,
    assert_converges,
    by_id,
    close_deal,
    invoice_order,
    journal_mark,
    pay,
    products_ready,
    require,
    writes_after,
)

CASH_ITEMS = [{"sku": "QC-100", "name": "Quarter console", "price": "120.00", "quantity_on_hand": "50"},
              {"sku": "QC-200", "name": "Cable kit", "price": "45.50", "quantity_on_hand": "50"}]
HELD_ITEM = {"sku": "CR-100", "name": "Credit-bound crate", "price": "60.00", "quantity_on_hand": "50"}
SCARCE_ITEM = {"sku": "SC-100", "name": "Scarce sensor", "price": "80.00", "quantity_on_hand": "3"}
QUIET_CYCLES = 3


def _order_of(sync: ScenarioRun, deal: str) -> dict[str, Any] | None:
    """The one ERP sales order linked to `deal`, if there is exactly one."""
    orders = [o for o in sync.state("erp")["sales_order"] if o.get("crm_id") == deal]
    return orders[0] if len(orders) == 1 else None


@scenario(id="E2E-Q2C-02", category="end_to_end",
          flows=("accounts", "items", "orders", "invoices", "payments", "credit"), level=3,
          intent="A deal closed in the CRM goes all the way to paid: one ERP sales order, shipped and invoiced, "
                 "partly paid, then paid, and the CRM shows each stage and the customer's balance")
def test_quote_to_cash(sync: ScenarioRun) -> None:
    entries = products_ready(sync, CASH_ITEMS)
    account = account_ready(sync, "Cash Cycle Ltd")
    deal = close_deal(sync, account, [{"pricebook_entry_id": entries["QC-100"], "quantity": 3, "discount": 10},
                                      {"pricebook_entry_id": entries["QC-200"], "quantity": 2}])
    assert_converges(sync, "orders", "credit", stage="once the deal closed")
    order = _order_of(sync, deal)
    assert order is not None, "the won deal did not become exactly one ERP sales order"
    invoice = invoice_order(sync, order["id"])
    amount = Decimal(by_id(sync.state("erp")["invoice"], invoice)["amount"])
    require(amount == Decimal("415.00"), f"the invoice bills the whole order (3 x 108.00 + 2 x 45.50), not {amount}")
    flows = ("orders", "invoices", "payments", "credit")
    assert_converges(sync, *flows, stage="once the ERP shipped and invoiced the order")
    for paid, stage in ((Decimal("115.00"), "after a partial payment"), (Decimal("300.00"), "once paid in full")):
        pay(sync, order["customer_id"], invoice, paid)
        assert_converges(sync, *flows, stage=f"{stage} ({paid} of {amount})")


@scenario(id="E2E-CREDIT-02", category="end_to_end", flows=("accounts", "items", "orders"), level=3,
          intent="A deal over the customer's credit limit is placed once and shows Submitted while the ERP holds "
                 "it, with no retry storm of writes, and Committed once the ERP releases it")
def test_credit_hold_without_retry_storm(sync: ScenarioRun) -> None:
    entries = products_ready(sync, [HELD_ITEM])
    account = account_ready(sync, "Stretched Thin Ltd")
    customer = by_id(sync.state("crm")["account"], account)["erp_customer_id"]
    sync.edit("erp", "customer", customer, {"credit_limit": "100"})
    deal = close_deal(sync, account, [{"pricebook_entry_id": entries["CR-100"], "quantity": 4}])
    assert sync.run_until(lambda s: _order_of(s, deal) is not None), \
        "the won deal did not become exactly one ERP sales order"
    order = _order_of(sync, deal)
    assert order is not None
    require(order["status"] == "pending_approval" and order["hold_reason"] == "credit_hold",
            f"the ERP holds the order for credit (status {order['status']}, hold {order['hold_reason']})")
    sync.run_until(lambda s: s.reconcile("orders").all_synced)
    sync.settle(cycles=1)  # a service may still be finishing the cycle that placed the order
    mark = journal_mark(sync, "erp")
    sync.settle(cycles=QUIET_CYCLES)
    held = _order_of(sync, deal)
    require(held is not None and held["status"] == "pending_approval", "the hold lasted through the quiet cycles")
    placed = [e for e in writes_after(sync, "erp", 0, "sales_order") if e["operation"] in ("create", "upsert")]
    while_held = writes_after(sync, "erp", mark, "sales_order")
    sync.record_check("writes to sales orders while held", {"creates": len(placed), "cycles": QUIET_CYCLES,
                                                            "writes in those cycles": len(while_held)})
    assert not while_held, (f"retry storm: {len(while_held)} write(s) to the held sales order in {QUIET_CYCLES} "
                            "cycles while the ERP held it: " + "; ".join(
                                f"{e['operation']} {e['method']} {e['path']}" for e in while_held[:3]))
    assert len(placed) <= 1, f"the held order was sent {len(placed)} times; a hold is the ERP's decision, not a failure"
    letters = [letter for letter in sync.workspace.dead_letters() if str(letter.get("source_id")) == deal]
    assert not letters, f"the held deal was dead-lettered ({letters[0].get('reason')}); a hold is not a failure"
    result = sync.reconcile("orders")
    assert result.all_synced, f"while the ERP holds the order: {result.explain()}"
    sync.edit("erp", "customer", customer, {"credit_limit": "10000"})
    sync.edit("erp", "sales_order", order["id"], {"status": "pending_fulfillment"})
    assert_converges(sync, "orders", stage="after the ERP released the order")


@scenario(id="E2E-STOCK-01", category="end_to_end", flows=("accounts", "items", "inventory", "orders"), level=3,
          intent="A deal for more than the stock shown is still sent: the ERP commits what it has and backorders "
                 "the rest, and the CRM shows the order committed and nothing left available")
def test_shortage_is_backordered(sync: ScenarioRun) -> None:
    entries = products_ready(sync, [SCARCE_ITEM])
    account = account_ready(sync, "Eager Buyer Ltd")
    assert sync.run_until(lambda s: s.reconcile("inventory").all_synced), \
        f"before the deal: {sync.reconcile('inventory').explain()}"
    [item] = [i for i in sync.state("erp")["item"] if i["sku"] == SCARCE_ITEM["sku"]]
    require(Decimal(item["quantity_available"]) == 3, f"3 available to promise, not {item['quantity_available']}")
    deal = close_deal(sync, account, [{"pricebook_entry_id": entries["SC-100"], "quantity": 5}])
    sync.run_until(lambda s: s.reconcile("orders").all_synced and s.reconcile("inventory").all_synced)
    result = sync.reconcile("orders")
    assert result.all_synced, f"a deal for 5 with 3 available: {result.explain()}"
    order = _order_of(sync, deal)
    assert order is not None
    [line] = order["lines"]
    require((Decimal(line["quantity_committed"]), Decimal(line["quantity_backordered"])) == (3, 2),
            f"the ERP committed 3 and backordered 2 (committed {line['quantity_committed']}, "
            f"backordered {line['quantity_backordered']})")
    result = sync.reconcile("inventory")
    assert result.all_synced, f"after the ERP committed its last 3: {result.explain()}"
