"""Level-4 scenarios: the ERP throttles, the ERP refuses a record."""

from __future__ import annotations

from harness.checks import reconcile, retry_after_violations, unexplained_losses
from harness.pytest_plugin import scenario
from harness.runner import ScenarioRun


@scenario(id="ERR-RATE-01", category="error_injection", flows=("accounts",), level=4,
          intent="Under the ERP's request-rate limit every account still arrives exactly once, and no retry "
                 "comes before its Retry-After")
def test_rate_limited_erp(sync: ScenarioRun) -> None:
    sync.set_limits("erp", rate_per_s=5, burst=5)
    sync.seed("crm", {"account": [{"name": f"Throttled {n}"} for n in range(12)]})
    sync.run_until(lambda s: all(a.get("erp_customer_id") for a in s.state("crm")["account"]), deadline_s=90)
    result = reconcile(sync.state("crm")["account"], sync.state("erp")["customer"], lambda a: a["id"],
                       lambda c: c.get("crm_id"), lambda a: {"name": a["name"]})
    journal = sync.journal("erp")
    throttled = sum(1 for e in journal if e["status"] == 429)
    violations = retry_after_violations(journal)
    sync.record_check("accounts -> customers under throttling",
                      {**result.summary(), "throttled_responses": throttled, "early_retries": len(violations)},
                      result.diffs)
    assert throttled > 0, "the rate limit never bit: the scenario proved nothing"
    assert not violations, f"{len(violations)} retries ignored Retry-After: " + "; ".join(violations[:3])
    assert result.all_synced, f"accounts lost or duplicated under throttling: {result.summary()}"


@scenario(id="ERR-LOUD-01", category="error_injection", flows=("accounts",), level=4,
          intent="An account the ERP refuses (a name too long for NetSuite) is dead-lettered, never silently "
                 "dropped, and the other accounts still sync")
def test_refused_account_is_dead_lettered(sync: ScenarioRun) -> None:
    ids = sync.seed("crm", {"account": [{"name": "Fine Co"}, {"name": "L" + "o" * 110 + "ng Name Corp"},
                                        {"name": "Also Fine"}]})["account"]
    sync.run_until(lambda s: len(s.state("erp")["customer"]) >= 2 and len(s.evidence.cycles) >= 2)
    result = reconcile(sync.state("crm")["account"], sync.state("erp")["customer"], lambda a: a["id"],
                       lambda c: c.get("crm_id"), lambda a: {"name": a["name"]})
    sync.record_check("accounts -> customers", result.summary(), result.diffs)
    assert result.keys("synced") == sorted([ids[0], ids[2]]), f"the valid accounts did not sync: {result.summary()}"
    silent = unexplained_losses(result.keys("missing"), sync.collect(), "crm")
    assert not silent, f"accounts neither synced nor dead-lettered (silently dropped): {silent}"
