"""End-to-end scenarios on change detection (level 3): a record changed while the connector reads, and
records that share one modification stamp, are not missed."""

from __future__ import annotations

from syncert.harness.pytest_plugin import scenario
from syncert.harness.runner import ScenarioRun
from syncert.scenarios.setups import by_id, require, seed_in_batches

PAGED_ACCOUNTS = 2_100  # more than one page of a CRM query (2,000 records a page at most)


@scenario(id="E2E-PAGE-01", category="end_to_end", flows=("accounts",), level=3, expected_s=18,
          intent="An account edited while the connector is reading accounts (more than a page of them) reaches "
                 "the ERP by a later cycle: the connector resumes from the stamps it read, not from the clock")
def test_edit_during_a_paged_read(sync: ScenarioRun) -> None:
    ids = seed_in_batches(sync, "crm", "account", [{"name": f"Paged {n:04d}", "phone": "+1 555 0100"}
                                                   for n in range(PAGED_ACCOUNTS)])
    converged = sync.run_until(lambda s: s.reconcile("accounts").all_synced, deadline_s=180)
    assert converged, f"the accounts did not converge: {sync.reconcile('accounts').explain()}"
    # every account got its ERP id written back, so the connector's next read of accounts is a long one; an
    # account changes as soon as that read has been answered (the answer holds the account as it was)
    sync.edit_when("crm", "account", ids[0], {"phone": "+1 555 0199"}, after_kind="account", after_operation="query")
    sync.run_until(lambda s: s.triggers("crm")[0]["fired"] and s.reconcile("accounts").all_synced, deadline_s=60)
    [trigger] = sync.triggers("crm")
    require(trigger["fired"] and not trigger["error"],
            f"an account changes while the connector reads accounts (queries of accounts answered: {trigger['seen']}; "
            f"edit error: {trigger['error']})")
    result = sync.reconcile("accounts")
    sync.record_check("account edited during the read", {"account": ids[0], **result.verdicts[ids[0]].as_dict()})
    assert result.all_synced, f"the account edited during the read (or another): {result.explain()}"


@scenario(id="E2E-STAMP-01", category="end_to_end", flows=("accounts",), level=3,
          intent="Accounts that share one modification stamp all reach the ERP, those created after a cycle "
                 "already synced one with that stamp included")
def test_records_sharing_a_stamp(sync: ScenarioRun) -> None:
    sync.freeze_clock("crm")  # every CRM write from here on has the same modification stamp
    first = sync.seed("crm", {"account": [{"name": "Same Stamp 0"}]})["account"][0]
    linked = sync.run_until(lambda s: bool(by_id(s.state("crm")["account"], first).get("erp_customer_id")))
    assert linked, f"the first account was not synced: {sync.reconcile('accounts').explain()}"
    later = sync.seed("crm", {"account": [{"name": f"Same Stamp {n}"} for n in (1, 2, 3)]})["account"]
    accounts = sync.state("crm")["account"]
    stamps = {a["modified_at"] for a in accounts}
    require(len(stamps) == 1, f"every account has one modification stamp (found {sorted(stamps)})")
    sync.run_until(lambda s: s.reconcile("accounts").all_synced)
    result = sync.reconcile("accounts")
    sync.record_check("accounts sharing one stamp", {"stamp": stamps.pop(), "synced_first": first,
                                                     "created_after": later})
    assert result.all_synced, f"accounts with the stamp of one already synced: {result.explain()}"
