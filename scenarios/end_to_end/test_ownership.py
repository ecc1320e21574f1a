"""End-to-end scenarios of two-way sync (level 3): each field has one owner system (the mapping's `owner`);
an edit made where the field is owned reaches the other system, an edit made on the other side never
travels back, and an edit on both sides between two cycles ends as the declared conflict policy says."""

from __future__ import annotations

import time
from typing import Any

from syncert.harness.pytest_plugin import scenario
from syncert.harness.runner import ScenarioRun
from syncert.scenarios.setups import account_ready, by_id, journal_mark, products_ready, require, writes_after

ITEM = {"sku": "OWN-100", "name": "Owned widget", "price": "59.90", "quantity_on_hand": "20"}


def _require_owner(sync: ScenarioRun, system: str, kind: str, fields: tuple[str, ...], owner: str) -> None:
    for name in fields:
        found = sync.mapping.owner(system, kind, name)
        require(found == owner, f"the mapping makes the {owner.upper()} the owner of {system.upper()} {kind}.{name} "
                                f"(it says {found})")


def _changed(before: dict[str, Any], after: dict[str, Any], fields: tuple[str, ...]) -> dict[str, tuple[Any, Any]]:
    return {name: (before.get(name), after.get(name)) for name in fields if before.get(name) != after.get(name)}


@scenario(id="E2E-OWN-01", category="end_to_end", flows=("accounts", "items"), level=3,
          intent="A CRM edit of a CRM-owned field (account phone) reaches the ERP customer, while CRM edits of "
                 "ERP-owned fields (product name and list price) are never written to the ERP item")
def test_crm_edits_follow_ownership(sync: ScenarioRun) -> None:
    edits = {"name": "Renamed in the CRM", "list_price": "1.00"}
    _require_owner(sync, "erp", "customer", ("phone",), "crm")
    _require_owner(sync, "crm", "product", tuple(edits), "erp")
    item_field = {rule.name: rule.sources[0] for rule in sync.mapping.flow("items").fields}
    products_ready(sync, [ITEM])
    account = account_ready(sync, "Owner Check Ltd", phone="+1 555 0100")
    sync.settle(cycles=1)  # a service may still be finishing the cycle that linked them
    [item] = sync.state("erp")["item"]
    [product] = [p for p in sync.state("crm")["product"] if p.get("erp_item_id") == item["id"]]
    mark = journal_mark(sync, "erp")
    sync.edit("crm", "account", account, {"phone": "+1 555 0199"})
    sync.edit("crm", "product", product["id"], edits)
    sync.run_until(lambda s: s.reconcile("accounts").all_synced)
    sync.settle(cycles=1)
    result = sync.reconcile("accounts")
    assert result.all_synced, f"after a CRM user changed the account's phone: {result.explain()}"
    erp_fields = tuple(item_field[name] for name in edits)
    changed = _changed(item, by_id(sync.state("erp")["item"], item["id"]), erp_fields)
    assert not changed, f"CRM edits of ERP-owned product fields reached the ERP item (before, after): {changed}"
    item_writes = writes_after(sync, "erp", mark, "item")
    assert not item_writes, (f"{len(item_writes)} write(s) to ERP items after CRM users edited a product, which the "
                             "ERP owns: " + "; ".join(f"{e['method']} {e['path']}" for e in item_writes[:3]))


@scenario(id="E2E-OWN-02", category="end_to_end", flows=("accounts", "items", "credit"), level=3,
          intent="ERP edits of ERP-owned fields (item price, credit hold) reach the CRM, while ERP edits of "
                 "CRM-owned fields (customer name and phone) are never pulled into the account")
def test_erp_edits_follow_ownership(sync: ScenarioRun) -> None:
    crm_owned = ("name", "phone")
    _require_owner(sync, "erp", "customer", crm_owned, "crm")
    _require_owner(sync, "crm", "product", ("list_price",), "erp")
    _require_owner(sync, "crm", "account", ("credit_status",), "erp")
    products_ready(sync, [ITEM])
    account = account_ready(sync, "Owner Check Ltd", phone="+1 555 0100")
    assert sync.run_until(lambda s: s.reconcile("credit").all_synced), sync.reconcile("credit").explain()
    sync.settle(cycles=1)
    before = by_id(sync.state("crm")["account"], account)
    [item] = sync.state("erp")["item"]
    customer = before["erp_customer_id"]
    sync.edit("erp", "item", item["id"], {"price": "64.50"})
    sync.edit("erp", "customer", customer, {"credit_hold_override": "ON", "name": "Renamed in the ERP",
                                            "phone": "+1 555 0177"})
    require(by_id(sync.state("erp")["customer"], customer)["credit_hold"], "the ERP put the customer on credit hold")
    flows = ("items", "prices", "credit")
    sync.run_until(lambda s: all(s.reconcile(flow).all_synced for flow in flows))
    sync.settle(cycles=1)
    for flow in flows:
        result = sync.reconcile(flow)
        assert result.all_synced, f"after ERP users changed the item's price and the credit hold: {result.explain()}"
    changed = _changed(before, by_id(sync.state("crm")["account"], account), crm_owned)
    assert not changed, f"ERP edits of CRM-owned customer fields reached the account (before, after): {changed}"


@scenario(id="E2E-CONFLICT-01", category="end_to_end", flows=("accounts",), level=3,
          intent="The same account edited in both systems between two cycles ends as the declared conflict "
                 "policy says: the owner's value, the later edit, or both kept and the conflict dead-lettered")
def test_conflicting_edits(sync: ScenarioRun) -> None:
    policy = sync.manifest.conflict_policy
    account = account_ready(sync, "Contested Ltd", phone="+1 555 0100")
    sync.settle(cycles=1)
    customer = by_id(sync.state("crm")["account"], account)["erp_customer_id"]
    crm_value, erp_value = "+1 555 0111", "+1 555 0122"
    # the ERP's edit comes later by more than any timestamp's resolution (a second) when the order matters;
    # meanwhile both systems hold every connector request, so that a service woken by the first edit still
    # reads both: the two edits fall between two cycles
    gap_s = 1.1 if policy == "last-write-wins" else 0.0
    for side in ("crm", "erp"):
        sync.set_latency(side, (gap_s + 1.0) * 1000)
    sync.edit("crm", "account", account, {"phone": crm_value})
    time.sleep(gap_s)
    sync.edit("erp", "customer", customer, {"phone": erp_value})
    for side in ("crm", "erp"):
        sync.set_latency(side, 0)
    if policy == "conflict-queue":
        expected, rule = (crm_value, erp_value), "neither side is overwritten and the conflict is dead-lettered"
    elif policy == "last-write-wins":
        expected, rule = (erp_value, erp_value), "the later edit (the ERP's) wins on both sides"
    else:
        owner = sync.mapping.owner("erp", "customer", "phone")
        require(owner in ("crm", "erp"), "the mapping names the owner of the customer's phone")
        value = crm_value if owner == "crm" else erp_value
        expected, rule = (value, value), f"the owner's value (the {str(owner).upper()}'s) ends on both sides"

    def phones(run: ScenarioRun) -> tuple[Any, Any]:
        return (by_id(run.state("crm")["account"], account).get("phone"),
                by_id(run.state("erp")["customer"], customer).get("phone"))

    def reported(run: ScenarioRun) -> list[dict[str, Any]]:
        return [letter for letter in run.workspace.dead_letters()
                if str(letter.get("source_id")) in (account, customer)]

    def resolved(run: ScenarioRun) -> bool:
        return phones(run) == expected and (policy != "conflict-queue" or bool(reported(run)))
    sync.run_until(resolved)
    sync.settle(cycles=1)  # and it stays resolved
    found = phones(sync)
    sync.record_check("conflicting edits", {"policy": policy, "expected (crm, erp)": list(expected),
                                            "found (crm, erp)": list(found), "dead letters": len(reported(sync))})
    assert found == expected, (f"{policy}: {rule}; expected phone {expected[0]!r} on the account and {expected[1]!r} "
                               f"on the customer, found {found[0]!r} and {found[1]!r} "
                               f"({len(reported(sync))} dead letter(s) for the record)")
    if policy == "conflict-queue":
        assert reported(sync), f"{policy}: both values were kept but the conflict was not reported in a dead letter"
    else:
        result = sync.reconcile("accounts")
        assert result.all_synced, f"{policy}: {result.explain()}"
