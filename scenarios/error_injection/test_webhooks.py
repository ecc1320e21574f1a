"""Level-4 scenarios: change events (webhooks) duplicated, reordered, lost and forged on their way to the
connector. They apply to connectors that receive change events (service or python mode with a webhook_path).

Each scenario first lets the connector link an account to its ERP customer and go quiet, then sets the CRM's
delivery faults (which count account events from that moment) and makes the change a user would."""

from __future__ import annotations

import time
from typing import Any

from syncert.harness.pytest_plugin import scenario
from syncert.harness.runner import ScenarioRun
from syncert.scenarios.setups import assert_converges, journal_mark, require, writes_after

DELIVERY_WAIT_S = 20.0  # how long a faulted delivery may take to be sent and answered on a loaded machine


def _quiet_linked_account(sync: ScenarioRun, name: str) -> str:
    """An account the connector has synced to an ERP customer, with the connector idle since: the account."""
    account = sync.seed("crm", {"account": [{"name": name, "phone": "555-0100"}]})["account"][0]
    assert_converges(sync, "accounts", stage="before any event was faulted")
    sync.settle(2)
    return account


def _answered(sync: ScenarioRun, wanted: Any) -> list[dict[str, Any]]:
    """Wait until a CRM delivery matching `wanted` has been answered (or DELIVERY_WAIT_S pass): those deliveries."""
    deadline = time.monotonic() + DELIVERY_WAIT_S
    while True:
        found = [d for d in sync.webhook_deliveries("crm") if wanted(d) and "answered_at" in d]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.25)


def _fired(sync: ScenarioRun) -> int:
    return sum(rule["fired"] for rule in sync.webhook_fault_status("crm")["rules"])


@scenario(id="ERR-HOOK-DUP-01", category="error_injection", flows=("accounts",), level=4, needs_webhooks=True,
          intent="Every account change event is delivered twice (same event id): each new account still becomes "
                 "exactly one ERP customer, created by one write")
def test_duplicated_events(sync: ScenarioRun) -> None:
    _quiet_linked_account(sync, "Already Linked Ltd")
    mark = journal_mark(sync, "erp")
    sync.webhook_faults("crm", [{"fault": "duplicate", "kind": "account", "events": None}], seed=15)
    ids = sync.seed("crm", {"account": [{"name": "Twice Told Inc", "phone": "555-0101"},
                                        {"name": "Echoed Events plc", "phone": "555-0102"}]})["account"]
    copies = _answered(sync, lambda d: d["fault"] == "duplicate" and d["record_id"] in ids)
    require(bool(copies), "no duplicated change event of the new accounts reached the connector")
    assert_converges(sync, "accounts", stage="with every account event delivered twice")
    sync.settle(2)  # the late copies have come and gone
    result = sync.reconcile("accounts")
    # an upsert by external id cannot make a second customer; a plain create can: count those
    creates = [e for e in writes_after(sync, "erp", mark, "customer") if e["operation"] == "create"]
    sync.record_check("duplicated change events", {"duplicated_deliveries": len(copies), "fired": _fired(sync),
                                                   "customer_creates": len(creates)})
    assert result.all_synced, f"after duplicated events: {result.explain()}"
    assert len(creates) <= len(ids), (f"{len(creates)} plain creates of ERP customers for {len(ids)} new accounts "
                                      f"whose change events came twice: one change, one record, one write")


@scenario(id="ERR-HOOK-ORDER-01", category="error_injection", flows=("accounts",), level=4, needs_webhooks=True,
          intent="Two quick edits of an account whose change events arrive in reverse order: the ERP customer "
                 "ends with the newest values, never the older ones")
def test_out_of_order_events(sync: ScenarioRun) -> None:
    account = _quiet_linked_account(sync, "Reordered Events GmbH")
    sync.webhook_faults("crm", [{"fault": "reorder", "kind": "account", "on_event": 1}], seed=15)
    sync.edit("crm", "account", account, {"phone": "555-0201", "name": "Reordered Events (old name) GmbH"})
    sync.edit("crm", "account", account, {"phone": "555-0202", "name": "Reordered Events (new name) GmbH"})
    [held] = _answered(sync, lambda d: d["fault"] == "reorder") or [None]
    require(held is not None and held["record_id"] == account and held["operation"] == "updated",
            f"the first edit's change event was not the one held back: {held}")
    later = [d for d in sync.webhook_deliveries("crm") if d["record_id"] == account and d["fault"] is None
             and d["sent_at"] <= held["sent_at"] and d["event_id"] != held["event_id"] and d["operation"] == "updated"]
    require(bool(later), "the held-back event was released before the later edit's event was delivered")
    sync.settle(2)  # the stale event has arrived: let the connector act on it
    assert_converges(sync, "accounts", stage="after the older edit's event arrived last")
    sync.record_check("reordered change events", {"fired": _fired(sync), "held_event_answer": held["outcome"]})


@scenario(id="ERR-HOOK-DROP-01", category="error_injection", flows=("accounts",), level=4, needs_webhooks=True,
          intent="The change event of an account edit is lost in transit: the change still reaches the ERP "
                 "(the connector catches up by reading the CRM, not only on events)")
def test_dropped_event(sync: ScenarioRun) -> None:
    account = _quiet_linked_account(sync, "Lost Event Ltd")
    sync.webhook_faults("crm", [{"fault": "drop", "kind": "account"}], seed=15)
    sync.edit("crm", "account", account, {"phone": "555-0301"})
    dropped = sync.webhook_fault_status("crm")["dropped"]
    require([d["record_id"] for d in dropped] == [account], f"the edit's change event was not dropped: {dropped}")
    assert_converges(sync, "accounts", stage="after the edit's change event was lost")
    sync.record_check("dropped change event", {"dropped": len(dropped)})


@scenario(id="ERR-HOOK-FORGED-01", category="error_injection", flows=("accounts",), level=4, needs_webhooks=True,
          intent="A forged change event (invented values, signed with the wrong key) follows a real one: the "
                 "connector refuses it and nothing it carries reaches either system")
def test_forged_event(sync: ScenarioRun) -> None:
    account = _quiet_linked_account(sync, "Forgery Target Corp")
    sync.webhook_faults("crm", [{"fault": "forge", "kind": "account"}], seed=15)
    sync.edit("crm", "account", account, {"phone": "555-0401"})
    forged = _answered(sync, lambda d: d["forged"])
    require(any(d["outcome"] != "failed" for d in forged), "no forged delivery got an answer from the connector: "
                                                           f"{[d['error'] for d in forged]}")
    sync.settle(2)  # whatever the connector does with it, it has done
    accepted = [d["outcome"] for d in forged if d["outcome"] != "refused"]
    planted = {str(value) for d in forged for value in (d["forged_values"] or {}).values()}
    found = [f"{side.upper()} {kind} {record['id']}.{name}" for side in ("crm", "erp")
             for kind, records in sync.state(side).items() for record in records
             for name, value in record.items() if isinstance(value, str) and value in planted]
    sync.record_check("forged change events", {"forged_deliveries": len(forged), "not_refused": len(accepted),
                                               "forged_values_stored": len(found)})
    assert not found, f"values only a forged change event carried were stored: {found[:5]}"
    assert not accepted, (f"forged change events (bad signature) were not refused (answers: {accepted}): a delivery "
                          "whose signature does not verify must be refused, and nothing in it acted on")
    assert_converges(sync, "accounts", stage="after a forged change event")
