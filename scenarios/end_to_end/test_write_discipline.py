"""End-to-end scenarios on what a connector writes (level 3): one change costs at most one write on each
side, a record that already exists on the other side is linked rather than duplicated, and a quiet cycle
writes nothing across every flow."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from syncert.harness.pytest_plugin import scenario
from syncert.harness.runner import ScenarioRun
from syncert.scenarios.setups import (
    account_ready,
    by_id,
    close_deal,
    invoice_order,
    last_seq,
    linked_customer,
    pay,
    products_ready,
    require,
    writes_since,
)

ALL_FLOWS = ("accounts", "contacts", "items", "inventory", "orders", "credit", "invoices", "payments")


def _by_kind(entries: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, int]]:
    """Writes per side and canonical kind, as the journal attributes them."""
    return {side: dict(Counter(e["kind"] or "unattributed" for e in found)) for side, found in entries.items()}


@scenario(id="E2E-WRITES-01", category="end_to_end", flows=("accounts",), level=3,
          intent="One field edited in the CRM costs at most one write to the ERP and one to the CRM until both "
                 "systems agree again")
def test_one_change_one_write_per_side(sync: ScenarioRun) -> None:
    ids = sync.seed("crm", {"account": [{"name": f"Thrifty {n}", "phone": "+1 555 0100"} for n in range(3)]})["account"]
    assert sync.run_until(lambda s: s.reconcile("accounts").all_synced), sync.reconcile("accounts").explain()
    sync.settle(cycles=1)  # a service may still be finishing the cycle in which the accounts got linked
    baseline = last_seq(sync)
    sync.edit("crm", "account", ids[1], {"phone": "+1 555 0199"})
    converged = sync.run_until(lambda s: s.reconcile("accounts").all_synced)
    assert converged, f"the edit did not reach the ERP: {sync.reconcile('accounts').explain()}"
    sync.settle(cycles=1)
    found = writes_since(sync, baseline)
    sync.record_check("writes for one edited field", _by_kind(found))
    extra = {side: [f"{e['kind'] or 'unattributed'} {e['operation']}" for e in entries]
             for side, entries in found.items() if len(entries) > 1}
    assert not extra, f"one edited account field cost more than one write on a side: {extra}"


@scenario(id="E2E-LINK-01", category="end_to_end", flows=("accounts",), level=3,
          intent="An account whose ERP customer already names it (as after a migration) is linked to that "
                 "customer, never given a second one")
def test_existing_customer_is_linked(sync: ScenarioRun) -> None:
    account = sync.seed("crm", {"account": [{"name": "Migrated Metals", "phone": "+1 555 0142"}]})["account"][0]
    customer = sync.seed("erp", {"customer": [{"name": "Migrated Metals", "phone": "+1 555 0142",
                                               "crm_id": account}]})["customer"][0]
    require(not by_id(sync.state("crm")["account"], account).get("erp_customer_id"),
            "the account does not know its ERP customer yet")
    sync.run_until(lambda s: s.reconcile("accounts").all_synced
                   or len(s.state("erp")["customer"]) > 1)
    customers = sync.state("erp")["customer"]
    result = sync.reconcile("accounts")
    assert len(customers) == 1, (f"the account got a second ERP customer instead of being linked to {customer}: "
                                 f"{result.explain()}")
    assert result.all_synced, result.explain()


QUIET_ITEMS = [{"sku": "Q-100", "name": "Quiet widget", "price": "25.00", "quantity_on_hand": "40"},
               {"sku": "Q-200", "name": "Quiet gadget", "price": "199.99", "quantity_on_hand": "5"},
               {"sku": "Q-300", "name": "Retired part", "price": "5.10", "quantity_on_hand": "0", "discontinued": True}]


@scenario(id="E2E-QUIET-01", category="end_to_end", flows=ALL_FLOWS, level=3,
          intent="Once every flow has converged (accounts, contacts, items, prices, stock, an order, a partly paid "
                 "invoice, a credit hold), further cycles write nothing to either system")
def test_quiet_cycles_write_nothing(sync: ScenarioRun) -> None:
    entries = products_ready(sync, QUIET_ITEMS)
    account = account_ready(sync, "Quiet Buyer Ltd", phone="+1 555 0110",
                            billing_address={"street": "1 Quiet Lane", "city": "Leeds", "country": "GB"})
    sync.seed("crm", {"contact": [{"account_id": account, "first_name": "Ada", "last_name": "Quiet",
                                   "email": "ada@quiet.example", "role": "Buyer"}]})
    deal = close_deal(sync, account, [{"pricebook_entry_id": entries["Q-100"], "quantity": 3},
                                      {"pricebook_entry_id": entries["Q-200"], "quantity": 1, "discount": 10}])
    assert sync.run_until(lambda s: s.reconcile("orders").all_synced), sync.reconcile("orders").explain()
    [order] = [o for o in sync.state("erp")["sales_order"] if o.get("crm_id") == deal]
    invoice = invoice_order(sync, order["id"])
    pay(sync, order["customer_id"], invoice, Decimal("50.00"))
    _, held = linked_customer(sync, "Quiet Hold Ltd", credit_limit="500")
    sync.edit("erp", "customer", held, {"credit_hold_override": "ON"})
    state = sync.state("erp")
    require(Decimal(0) < Decimal(by_id(state["invoice"], invoice)["amount_due"])
            < Decimal(by_id(state["invoice"], invoice)["amount"]), "the invoice is partly paid")
    require(bool(by_id(state["customer"], held)["credit_hold"]), "a customer is on credit hold")

    flows = list(sync.mapping.flows)
    converged = sync.run_until(lambda s: all(s.reconcile(flow).all_synced for flow in flows))
    assert converged, "the world did not converge: " + "\n".join(
        result.explain() for result in map(sync.reconcile, flows) if not result.all_synced)
    sync.settle(cycles=1)  # a service may still be finishing the cycle in which the world converged
    baseline = last_seq(sync)
    sync.settle(cycles=3)
    assert all(c.ok for c in sync.evidence.cycles), f"a quiet cycle failed: {sync.evidence.notes}"
    found = writes_since(sync, baseline)
    sync.record_check("writes in quiet cycles", _by_kind(found))
    assert not found["crm"] and not found["erp"], \
        f"quiet cycles wrote (by side and kind): {_by_kind(found)}; first: " + "; ".join(
            f"{side} {e['kind']} {e['operation']}" for side in ("crm", "erp") for e in found[side][:2])
