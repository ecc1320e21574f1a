"""Level-4 scenarios: the ERP refuses one record of a batch, and the ERP revokes the connector's credentials.

A refusal of one record is that record's fate only (dead-lettered with the ERP's reason, the rest synced);
a refusal of the credentials is every record's, so the cycle fails loudly and the connector stops using
them instead of trying them again and again.
"""

from __future__ import annotations

import time
from typing import Any

from syncert.harness.checks import login_loops
from syncert.harness.pytest_plugin import scenario
from syncert.harness.runner import ScenarioRun
from syncert.scenarios.setups import require

BATCH_SIZE = 20
REFUSAL_REASON = "blocked by the export-control screening rule"
# Requests refused for revoked credentials a connector may send in a cycle: the ones in flight when the credentials
# go, each flow finding out once, a resend after a fresh login; one that sends refused credentials again and again
# goes far beyond it.
REFUSED_CALLS_PER_CYCLE = 12
LATER_CYCLES = 2  # cycles run (or, for a service, 1.5 s each of its own polling) once the credentials are revoked


@scenario(id="ERR-BATCH-01", category="error_injection", flows=("accounts",), level=4,
          intent=f"The ERP refuses one of {BATCH_SIZE} new accounts by a validation rule: that one is dead-lettered "
                 "with the ERP's reason and the other accounts all sync")
def test_one_refused_record_in_a_batch(sync: ScenarioRun) -> None:
    names = [f"Batch Member {n:02d}" for n in range(BATCH_SIZE)]
    refused_name = names[1]  # early in the batch: a connector that stops at a refusal leaves the rest behind
    rule = sync.inject("erp", "reject", kind="customer", field="name", equals=refused_name,
                       message=f"Customer {refused_name} is {REFUSAL_REASON}")
    ids = sync.seed("crm", {"account": [{"name": name} for name in names]})["account"]
    refused, others = ids[1], sorted(ids[:1] + ids[2:])
    sync.run_until(lambda s: s.reconcile("accounts").keys("synced") == others and bool(s.workspace.dead_letters()),
                   deadline_s=90)
    require(any(r["id"] == rule and r["fired"] for r in sync.faults("erp")),
            "the ERP never refused the account (the connector wrote no customer with its name)")
    result = sync.reconcile("accounts")
    letters = sync.workspace.dead_letters()
    mine = [letter for letter in letters if str(letter.get("source_id")) == refused]
    sync.record_check("one record refused in a batch", {**result.summary(), "dead_letters": len(letters)})
    missing = sorted(set(others) - set(result.keys("synced")))
    assert not missing, (f"{len(missing)} of the {len(others)} accepted accounts did not sync after the ERP refused "
                         f"another one: {result.explain()}")
    assert result.verdicts[refused].outcome == "missing", f"the refused account must not be stored: {result.explain()}"
    assert mine, f"the refused account was not dead-lettered: dead letters {letters[:3]}"
    assert any(REFUSAL_REASON in str(letter.get("reason")) for letter in mine), (
        f"the refused account's dead letter does not give the ERP's reason ({REFUSAL_REASON!r}): {mine[0]}")
    wrongly = [letter for letter in letters if str(letter.get("source_id")) in others]
    assert not wrongly, f"accounts the ERP accepted were dead-lettered: {wrongly[:3]}"


def _refused_for_credentials(journal: list[dict[str, Any]], rule: str) -> list[dict[str, Any]]:
    """API requests refused because the credentials were revoked (the revoking request and every later refusal)."""
    return [e for e in journal if "auth" in e["tags"] or e.get("fault") == f"{rule}:revoke"]


@scenario(id="ERR-REVOKED-01", category="error_injection", flows=("accounts",), level=4,
          intent="The ERP revokes the connector's credentials in the middle of a cycle: the cycle fails loudly, no "
                 "account is marked synced that is not, and the refused credentials are not tried again and again")
def test_revoked_credentials_fail_loudly(sync: ScenarioRun) -> None:
    idle = sync.cycle()  # the connector is up (a service answers its health check) before there is work to do
    assert idle.ok, f"a cycle with nothing to do failed: {idle.summary()}"
    ids = sync.seed("crm", {"account": [{"name": f"Revoked Run {n:02d}"} for n in range(12)]})["account"]
    rule = sync.inject("erp", "revoke", kind="customer", access="write", on_call=3)
    sync.run_until(lambda s: any(r["fired"] for r in s.faults("erp")), deadline_s=60)
    require(any(r["id"] == rule and r["fired"] for r in sync.faults("erp")),
            "the ERP never revoked the credentials (the connector wrote fewer than 3 customers)")
    revoked_at = time.monotonic()
    sync.settle(LATER_CYCLES)
    erp_journal = sync.journal("erp")
    refused = _refused_for_credentials(erp_journal, rule)
    loops = login_loops(erp_journal)
    customers = {c["id"]: c for c in sync.state("erp")["customer"]}
    accounts = sync.state("crm")["account"]
    false_links = [a["id"] for a in accounts if a.get("erp_customer_id")
                   and customers.get(a["erp_customer_id"], {}).get("crm_id") != a["id"]]
    unsynced = {a["id"] for a in accounts if not a.get("erp_customer_id")}
    letters = {str(letter.get("source_id")) for letter in sync.workspace.dead_letters()}
    failed_cycles = [c.summary() for c in sync.evidence.cycles if not c.ok]
    service_output = sync.collect().service_output
    service_told = service_output is not None and bool(service_output[1].strip())
    sync.record_check("credentials revoked mid-cycle", {
        "accounts": len(ids), "linked": len(ids) - len(unsynced), "failed_cycles": len(failed_cycles),
        "dead_letters": len(letters), "refused_calls": len(refused), "refused_logins": len(loops),
        "observed_s": round(time.monotonic() - revoked_at, 1)})
    assert not false_links, (f"accounts marked synced with a customer the ERP does not hold for them: "
                             f"{false_links[:5]}")
    assert failed_cycles or service_told or unsynced <= letters, (
        f"the credentials were revoked, {len(unsynced)} account(s) were not synced, yet every cycle ended as done "
        "and nothing was dead-lettered: a silent failure")
    assert not loops, f"the connector kept logging in with the revoked credentials: {loops[0]}"
    cycles = 1 + LATER_CYCLES
    assert len(refused) <= REFUSED_CALLS_PER_CYCLE * cycles, (
        f"{len(refused)} requests were refused for the revoked credentials in {cycles} cycles (at most "
        f"{REFUSED_CALLS_PER_CYCLE} a cycle): the connector kept sending credentials the ERP had refused")
