"""Level-4 scenarios: writes whose outcome the connector cannot know, and deals submitted more than once.

The ERP applies a write but its answer never arrives (held past the client's timeout, or the connection
reset after the commit): a connector that takes "no answer" for "not done" and creates the record again
makes a duplicate. A closed deal saved again before its order number came back must still be one order.
"""

from __future__ import annotations

from typing import Any

from syncert.harness.pytest_plugin import scenario
from syncert.harness.runner import ScenarioRun
from syncert.scenarios.setups import account_ready, assert_converges, close_deal, products_ready, require

# The expectation ERR-TIMEOUT-01 documents: a connector gives up waiting for an answer within 20 s. The ERP
# holds the first customer write that long (after applying it); a connector that waits longer sees the
# connection closed at the end of the hold instead, which leaves it just as unsure whether the write was done.
HOLD_S = 20
ORDER_ITEM = {"sku": "AMB-100", "name": "Ambiguous widget", "price": "40.00", "quantity_on_hand": "500"}


def _fired(sync: ScenarioRun, side: str, rule: str) -> bool:
    return any(r["id"] == rule and r["fired"] for r in sync.faults(side))


def _orders_of(sync: ScenarioRun, deal: str) -> list[dict[str, Any]]:
    return [order for order in sync.state("erp")["sales_order"] if order.get("crm_id") == deal]


def _deals_with_orders(sync: ScenarioRun, count: int) -> list[str]:
    """`count` deals a user closed, each with one line of ORDER_ITEM, on an account the connector linked."""
    entries = products_ready(sync, [ORDER_ITEM])
    account = account_ready(sync, "Ambiguous Buyer Ltd")
    return [close_deal(sync, account, [{"pricebook_entry_id": entries[ORDER_ITEM["sku"]], "quantity": n + 1}])
            for n in range(count)]


@scenario(id="ERR-TIMEOUT-01", category="error_injection", flows=("accounts",), level=4, expected_s=16,
          intent=f"The ERP applies a new customer but holds its answer for {HOLD_S} s, past a connector's timeout: "
                 "the connector must not create that customer again, and every account arrives exactly once")
def test_timed_out_customer_write_is_not_repeated(sync: ScenarioRun) -> None:
    # the first customer write the ERP accepts for one of these accounts (a request it would refuse anyway,
    # or a write of some other customer, does not use the fault up)
    rule = sync.inject("erp", "timeout", kind="customer", access="write", body="Slow Answer ", seconds=HOLD_S,
                       commit=True)
    ids = sync.seed("crm", {"account": [{"name": f"Slow Answer {n}"} for n in range(6)]})["account"]
    sync.run_until(lambda s: s.reconcile("accounts").all_synced, deadline_s=120)
    require(_fired(sync, "erp", rule), "the ERP never held a customer write (the connector wrote no customer)")
    held = [e for e in sync.journal("erp") if e.get("fault") == f"{rule}:timeout"]
    result = sync.reconcile("accounts")
    sync.record_check("customer write held past the client's timeout", {
        **result.summary(), "customers": len(sync.state("erp")["customer"]), "accounts": len(ids),
        "held_for_s": round(held[0]["ended_at"] - held[0]["started_at"], 1) if held else None})
    duplicated = result.keys("duplicated")
    assert not duplicated, (f"the customer whose answer timed out was created again: {len(duplicated)} account(s) "
                            f"have two ERP customers; {result.explain()}")
    assert result.all_synced, f"after a timed-out customer write: {result.explain()}"


@scenario(id="ERR-AMBIG-01", category="error_injection", flows=("accounts", "items", "orders"), level=4,
          intent="The ERP commits a new sales order but the connection is reset before its answer: each closed "
                 "deal is still exactly one ERP order, and the CRM gets its number")
def test_lost_order_answer_makes_no_second_order(sync: ScenarioRun) -> None:
    deals = _deals_with_orders(sync, 3)
    rule = sync.inject("erp", "lost_response", kind="sales_order", access="write")  # a throwaway order made to
    # take it would have to be deleted again, which fails the scenario (no flow deletes)
    sync.run_until(lambda s: s.reconcile("orders").all_synced, deadline_s=90)
    require(_fired(sync, "erp", rule), "the ERP never lost the answer to a sales order write (no order was written)")
    per_deal = {deal: len(_orders_of(sync, deal)) for deal in deals}
    result = sync.reconcile("orders")
    sync.record_check("sales order written, answer lost", {**result.summary(), "orders_per_deal": per_deal})
    twice = {deal: count for deal, count in per_deal.items() if count > 1}
    assert not twice, f"an order whose answer was lost was created again: orders per deal {twice}"
    assert result.all_synced, f"after a lost answer to an order write: {result.explain()}"


@scenario(id="ERR-DUPDEAL-01", category="error_injection", flows=("accounts", "items", "orders"), level=4,
          intent="A closed deal saved again (edited, re-closed) before and after its order number came back is "
                 "still exactly one ERP order",
          expected_s=21)
def test_deal_submitted_again_is_one_order(sync: ScenarioRun) -> None:
    [deal] = _deals_with_orders(sync, 1)
    sync.edit("crm", "opportunity", deal, {"name": "Deal, saved again after closing"})
    # the CRM goes read-only (every write refused) while the connector makes the order: its number cannot come back
    outage = sync.inject("crm", "unavailable", access="write", calls=None)
    sync.run_until(lambda s: bool(_orders_of(s, deal)) and _fired(s, "crm", outage), deadline_s=90,
                   through_failures=True)  # failing a cycle loudly while the CRM refuses writes is fair
    require(bool(_orders_of(sync, deal)) and _fired(sync, "crm", outage),
            "no sales order was made while the CRM refused writes (the scenario needs an order whose number "
            "could not be written back)")
    made_during_outage = len(_orders_of(sync, deal))
    sync.fault_schedule({}, seed=0)  # the CRM takes writes again
    sync.edit("crm", "opportunity", deal, {"stage": "Negotiation"})  # a user reopens the deal and closes it again
    sync.edit("crm", "opportunity", deal, {"stage": "Closed Won"})
    assert_converges(sync, "orders", stage="after the deal was closed again")
    sync.edit("crm", "opportunity", deal, {"name": "Deal, saved once more after its order came back"})
    sync.settle()
    orders = _orders_of(sync, deal)
    result = sync.reconcile("orders")
    sync.record_check("one deal submitted three times", {**result.summary(), "orders_while_unlinked":
                                                         made_during_outage, "orders_at_end": len(orders)})
    assert len(orders) == 1, (f"the deal saved again became {len(orders)} ERP orders "
                              f"({', '.join(o.get('number') or o['id'] for o in orders)}): one order per deal")
    assert result.all_synced, f"after the deal was saved again: {result.explain()}"
