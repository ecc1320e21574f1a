"""Schema-drift scenarios on the API around the fields: a new value in a list of statuses, paging links in a new
format, a role that loses its permission, and pages that shrink in the middle of an export."""

from __future__ import annotations

from syncert.harness.pytest_plugin import scenario
from syncert.harness.runner import ScenarioRun
from syncert.scenarios.drift import assert_graded, run_under_drift
from syncert.scenarios.setups import by_id, linked_order, require

NEW_STATUS = "pending_billing_partially_fulfilled"  # the value ns-order-status-value-added adds


@scenario(id="DRIFT-PICKLIST-01", category="schema_drift", flows=("orders",), level=4,
          intent="NetSuite adds a sales order status the mapping does not know: the other orders' commitments "
                 "still reach the CRM, and the odd one is mapped sensibly (Committed) or dead-lettered with its "
                 "reason, never guessed silently and never allowed to stop the rest")
def test_new_order_status_value(sync: ScenarioRun) -> None:
    orders = {}
    for label in ("odd", "rejected", "committed"):
        opportunity, order, _ = linked_order(sync, [(f"PICK-{label.upper()}", 1, "10.00")],
                                             name=f"Status {label.title()} Ltd")
        sync.edit("erp", "sales_order", order, {"status": "pending_approval"})
        sync.edit("crm", "opportunity", opportunity, {"commitment_status": "Submitted"})
        orders[label] = (opportunity, order)
    sync.drift("erp", "ns-order-status-value-added")
    for label, status in (("odd", NEW_STATUS), ("rejected", "closed"), ("committed", "pending_fulfillment")):
        sync.edit("erp", "sales_order", orders[label][1], {"status": status})
    odd_opportunity, odd_order = orders["odd"]
    expected = {orders["rejected"][0]: "Rejected", orders["committed"][0]: "Committed"}

    def settled(run: ScenarioRun) -> bool:
        return not _stuck(run, expected) and _odd_one_answered(run, odd_opportunity, odd_order)
    sync.run_until(settled, deadline_s=30, max_cycles=3, through_failures=True)
    commitment = by_id(sync.state("crm")["opportunity"], odd_opportunity).get("commitment_status")
    stuck = _stuck(sync, expected)
    sync.record_check("a new order status", {"other_orders_stuck": len(stuck), "odd_order_commitment": commitment,
                                             "odd_order_dead_lettered": _lettered(sync, odd_opportunity, odd_order)})
    assert not stuck, f"one order's unknown status kept other orders' commitments from the CRM: {stuck}"
    assert _odd_one_answered(sync, odd_opportunity, odd_order), (
        f"the order with the new status shows {commitment!r} on its deal, with no dead letter saying why: a value "
        "the connector does not know was guessed or ignored silently")


def _stuck(sync: ScenarioRun, expected: dict[str, str]) -> list[str]:
    """The deals whose commitment is not yet what their order's status says, as 'id: found (expected)'."""
    found = {o["id"]: o.get("commitment_status") for o in sync.state("crm")["opportunity"]}
    return [f"{deal}: {found.get(deal)!r} ({commitment!r} expected)" for deal, commitment in expected.items()
            if found.get(deal) != commitment]


def _lettered(sync: ScenarioRun, opportunity: str, order: str) -> bool:
    return any(str(letter.get("source_id")) in (opportunity, order) for letter in sync.workspace.dead_letters())


def _odd_one_answered(sync: ScenarioRun, opportunity: str, order: str) -> bool:
    """The new status is mapped to what it means (the order is committed: billed in part), or given up loudly."""
    commitment = by_id(sync.state("crm")["opportunity"], opportunity).get("commitment_status")
    return commitment == "Committed" or _lettered(sync, opportunity, order)


@scenario(id="DRIFT-LINKS-01", category="schema_drift", flows=("accounts",), level=4,
          intent="Salesforce answers queries in batches of 100 with absolute nextRecordsUrl links: the connector "
                 "follows them to every one of 150 accounts")
def test_absolute_paging_links(sync: ScenarioRun) -> None:
    sync.drift("crm", "sf-query-batch-shrunk", "sf-paging-links-absolute")
    sync.seed("crm", {"account": [{"name": f"Linked Page {n:03d}"} for n in range(150)]})
    run_under_drift(sync, "accounts", "tolerate")
    assert_graded(sync, "accounts", "tolerate")


@scenario(id="DRIFT-SCOPE-01", category="schema_drift", flows=("accounts",), level=4,
          intent="The integration's NetSuite role loses its permission on customers: the connector fails loudly, "
                 "and never takes the refusals for an empty list or a record to skip")
def test_customer_permission_withdrawn(sync: ScenarioRun) -> None:
    sync.drift("erp", "ns-customer-access-withdrawn")
    sync.seed("crm", {"account": [{"name": f"Forbidden Customer {n}"} for n in range(3)]})
    run_under_drift(sync, "accounts")
    assert_graded(sync, "accounts", "fail_loudly")


@scenario(id="DRIFT-MIDRUN-01", category="schema_drift", flows=("items",), level=4,
          intent="NetSuite's pages shrink from 100 to 50 between the first and second page of an export of 160 "
                 "items: every item still reaches the CRM")
def test_pages_shrink_mid_export(sync: ScenarioRun) -> None:
    sync.drift("erp", "ns-pages-of-100")
    ids = sync.seed("erp", {"item": [{"sku": f"MID-{n:03d}", "name": f"Mid-export item {n}", "price": "10.00"}
                                     for n in range(160)]})["item"]
    # The first item (on page one) is edited seconds after the others were made: a reader that misses items on
    # later pages moves its watermark past them, and will not meet them again.
    sync.move_clock("erp", 5)
    sync.edit("erp", "item", ids[0], {"name": "Mid-export item 0 (edited last)"})
    sync.drift_when("erp", "ns-page-size-shrunk", after_kind="item", after_operation="query", count=1)
    run_under_drift(sync, "items", "tolerate")
    [trigger] = sync.triggers("erp")
    require(trigger["fired"] and trigger["error"] is None, "the pages shrank after the first page of the export")
    assert_graded(sync, "items", "tolerate")
