"""Level-4 scenarios: the ERP throttles, the ERP refuses a record."""

from __future__ import annotations

from syncert.harness.checks import retry_after_violations
from syncert.harness.pytest_plugin import scenario
from syncert.harness.runner import ScenarioRun


@scenario(id="ERR-RATE-01", category="error_injection", flows=("accounts",), level=4, expected_s=5,
          intent="Under the ERP's request-rate limit every account still arrives exactly once, and no retry "
                 "comes before its Retry-After")
def test_rate_limited_erp(sync: ScenarioRun) -> None:
    sync.set_limits("erp", rate_per_s=5, burst=5)
    sync.seed("crm", {"account": [{"name": f"Throttled {n}"} for n in range(12)]})
    sync.run_until(lambda s: all(a.get("erp_customer_id") for a in s.state("crm")["account"]), deadline_s=90)
    result = sync.reconcile("accounts")
    journal = sync.journal("erp")
    throttled = sum(1 for e in journal if "throttled" in e["tags"])
    violations = retry_after_violations(journal)
    sync.record_check("retries under throttling", {"throttled_responses": throttled, "early_retries": len(violations)})
    if not throttled:
        sync.evidence.notes.append("the connector never went over the rate limit, so Retry-After was not exercised")
    assert not violations, f"{len(violations)} retries ignored Retry-After: " + "; ".join(violations[:3])
    assert result.all_synced, f"under throttling: {result.explain()}"


@scenario(id="ERR-LOUD-01", category="error_injection", flows=("accounts",), level=4,
          intent="An account the ERP refuses (a name longer than it stores) is dead-lettered, never silently "
                 "dropped, and the other accounts still sync")
def test_refused_account_is_dead_lettered(sync: ScenarioRun) -> None:
    too_long = "L" * sync.field_limit("erp", "customer", "name") + "ong Name Corp"
    ids = sync.seed("crm", {"account": [{"name": "Fine Co"}, {"name": too_long}, {"name": "Also Fine"}]})["account"]
    sync.run_until(lambda s: len(s.state("erp")["customer"]) >= 2 and len(s.evidence.cycles) >= 2)
    result = sync.reconcile("accounts")
    assert result.keys("synced") == sorted([ids[0], ids[2]]), f"the valid accounts did not sync: {result.explain()}"
    refused = result.verdicts[ids[1]]
    assert refused.outcome == "missing", f"the refused account must not be stored, cut or not: {result.explain()}"
    assert refused.explained_by, f"the refused account was silently dropped (no dead letter): {result.explain()}"


@scenario(id="ERR-TOKEN-01", category="error_injection", flows=("accounts",), level=4,
          intent="When the CRM session expires in the middle of a cycle, the connector gets a new token and "
                 "finishes the work: nothing lost, nothing left behind")
def test_session_expiring_mid_cycle(sync: ScenarioRun) -> None:
    # the CRM expires every session as soon as it has answered the connector's first API request: a
    # connector cannot sync accounts (read them, then write the ERP id back) without meeting it
    sync.expire_sessions("crm", after_requests=1)
    sync.seed("crm", {"account": [{"name": f"Session {n}"} for n in range(10)]})
    sync.run_until(lambda s: all(a.get("erp_customer_id") for a in s.state("crm")["account"]), deadline_s=60)
    journal = sync.journal("crm")
    expired = [e for e in journal if "auth" in e["tags"]]
    logins = [e for e in journal if "token" in e["tags"] and "ok" in e["tags"]]
    result = sync.reconcile("accounts")
    linked = sum(1 for a in sync.state("crm")["account"] if a.get("erp_customer_id"))
    given_up = sync.collect().dead_letters
    sync.record_check("accounts synced across an expired session",
                      {**result.summary(), "linked_back": linked, "expired_session_answers": len(expired),
                       "logins": len(logins), "dead_letters": len(given_up)})
    if not expired:
        sync.evidence.notes.append("the connector made a single CRM request, so it never met the expired session")
    failed = [c.summary() for c in sync.evidence.cycles if not c.ok]
    assert not failed, f"cycles failed when the session expired (no new token): {failed}"
    assert not given_up, f"records given up because the session expired (no new token): {given_up[:3]}"
    assert result.all_synced and linked == 10, (
        f"accounts not synced or not linked back after the session expired: {linked}/10 linked; {result.explain()}")


@scenario(id="ERR-CONC-01", category="error_injection", flows=("accounts",), level=4,
          intent="The connector stays within the ERP account's concurrency limit (5, as on NetSuite developer "
                 "accounts) while it syncs a batch of accounts")
def test_erp_concurrency_limit_respected(sync: ScenarioRun) -> None:
    sync.set_limits("erp", concurrency=5)
    sync.set_latency("erp", 60)
    sync.seed("crm", {"account": [{"name": f"Parallel {n}"} for n in range(30)]})
    sync.run_until(lambda s: all(a.get("erp_customer_id") for a in s.state("crm")["account"]), deadline_s=90)
    journal = [e for e in sync.journal("erp") if "token" not in e["tags"]]
    over_limit = [e for e in journal if "throttled" in e["tags"]]
    result = sync.reconcile("accounts")
    sync.record_check("requests under a concurrency limit",
                      {"erp_requests": len(journal), "over_limit": len(over_limit),
                       "max_in_flight": max((e["in_flight"] for e in journal), default=0)})
    if max((e["in_flight"] for e in journal), default=0) <= 1:
        sync.evidence.notes.append("the connector sent one ERP request at a time, so the limit was never approached")
    assert not over_limit, f"{len(over_limit)} requests refused for going over the ERP's concurrency limit of 5"
    assert result.all_synced, result.explain()
