"""Level-4 scenarios: faults that pass — the CRM's request limit, a burst of ERP server errors, connections
reset, answers that are not JSON. A connector rides them out: nothing lost, nothing duplicated, nothing
skipped without a word."""

from __future__ import annotations

from syncert.harness.checks import retry_after_violations, retry_chains, retry_storms, unjittered_backoff
from syncert.harness.pytest_plugin import scenario
from syncert.harness.runner import ScenarioRun
from syncert.scenarios.setups import account_ready, close_deal, linked_customer, products_ready, require

# How long a transient fault lasts from the first request it fails (a correct connector retries past it: the
# reference's six attempts, jittered, span more than a second but for about one chain in 10,000); a burst on
# one customer's writes fails its first tries only
FAULT_WINDOW_S = 1.0
WRITE_BURST_S = 0.4
# cycles a connector may fail loudly while the faults last (a quick cycle that gives up at once may fail a
# dozen times through two one-second windows), before it must have caught up
MAX_CYCLES = 60


def _all_linked(run: ScenarioRun) -> bool:
    return all(a.get("erp_customer_id") for a in run.state("crm")["account"])


def _fired(sync: ScenarioRun, side: str) -> dict[str, int]:
    """How often each of `side`'s fault rules fired, by rule id."""
    return {rule["id"]: rule["fired"] for rule in sync.faults(side)}


@scenario(id="ERR-THROTTLE-CRM-01", category="error_injection", flows=("accounts",), level=4, expected_s=8,
          intent="When the CRM refuses reads and writes for its request limit, every account still syncs and "
                 "no retry comes before the CRM's Retry-After")
def test_crm_request_limit(sync: ScenarioRun) -> None:
    sync.seed("crm", {"account": [{"name": f"Limited {n}"} for n in range(8)]})
    # the first two reads and the first two writes the CRM sees: reading the accounts and writing the ERP
    # customer ids back both meet the limit, whatever order a connector works in
    reads = sync.inject("crm", "throttle", access="read", calls=2, retry_after_s=2)
    writes = sync.inject("crm", "throttle", access="write", calls=2, retry_after_s=2)
    sync.run_until(_all_linked, deadline_s=60)
    result = sync.reconcile("accounts")
    journal = sync.journal("crm")
    violations = retry_after_violations(journal)
    fired = _fired(sync, "crm")
    sync.record_check("retries under the CRM's request limit",
                      {"refused_reads": fired[reads], "refused_writes": fired[writes],
                       "retry_chains": len(retry_chains(journal)), "early_retries": len(violations)})
    assert result.all_synced and _all_linked(sync), f"under the CRM's request limit: {result.explain()}"
    require(fired[reads] > 0 and fired[writes] > 0, "the CRM refused reads and writes for its request limit")
    assert not violations, (f"{len(violations)} CRM retries came before their Retry-After: "
                            + "; ".join(violations[:3]))


@scenario(id="ERR-BURST-01", category="error_injection", flows=("accounts", "credit"), level=4,
          intent="A burst of ERP server errors (its reads unavailable for a second, the first tries at writing "
                 "six customers failing) is ridden out within the cycle: everything syncs, nothing is "
                 "dead-lettered, and the retries back off with jitter")
def test_erp_error_burst(sync: ScenarioRun) -> None:
    linked_customer(sync, "Held Burst Ltd", credit_hold_override="ON")  # the credit flow reads the ERP
    names = [f"Burst {letter}" for letter in "ABCDEFGH"]
    sync.seed("crm", {"account": [{"name": name} for name in names]})
    # one burst on reads; one per customer written, so that there are enough retried requests to tell
    # jittered backoff from a fixed one. Each lasts a while from its first error, not a number of calls:
    # copies sent to use it up meet it as the request they copy does
    sync.fault_schedule({"erp": [
        {"match": {"access": "read"}, "for_s": FAULT_WINDOW_S, "fault": {"type": "unavailable"}},
        *({"match": {"access": "write", "body": f'"{name}"'}, "for_s": WRITE_BURST_S,
           "fault": {"type": "server_error"}} for name in names[:6])]}, seed=15)
    sync.run_until(lambda s: s.reconcile("accounts").all_synced and s.reconcile("credit").all_synced,
                   deadline_s=60)
    accounts, credit = sync.reconcile("accounts"), sync.reconcile("credit")
    journal = sync.journal("erp")
    chains, storms, unjittered = retry_chains(journal), retry_storms(journal), unjittered_backoff(journal)
    failed = [c.summary() for c in sync.evidence.cycles if not c.ok]
    given_up = sync.collect().dead_letters
    read_rule, *write_rules = sync.faults("erp")
    failed_writes = sum(rule["fired"] for rule in write_rules)
    sync.record_check("a burst of ERP server errors",
                      {"failed_reads": read_rule["fired"], "failed_writes": failed_writes,
                       "retry_chains": len(chains), "first_waits_s": sorted(round(c.waits_s[0], 3) for c in chains),
                       "storms": len(storms), "failed_cycles": len(failed), "dead_letters": len(given_up)})
    assert not failed, f"cycles failed on a burst of transient server errors (not retried): {failed}"
    assert not given_up, f"records dead-lettered for a transient server error: {given_up[:3]}"
    assert accounts.all_synced, f"accounts, after a burst of ERP server errors: {accounts.explain()}"
    assert credit.all_synced, f"credit, after a burst of ERP server errors: {credit.explain()}"
    require(read_rule["fired"] > 0 and failed_writes > 0, "the ERP failed reads and writes")
    assert not storms, "retries without backoff after server errors: " + "; ".join(storms[:3])
    assert not unjittered, "; ".join(unjittered)


@scenario(id="ERR-RESET-01", category="error_injection", flows=("accounts",), level=4, expected_s=6,
          intent="Connections reset before the ERP applied a write or the CRM answered a read are sent again: "
                 "every account syncs exactly once and none is silently skipped")
def test_connection_resets(sync: ScenarioRun) -> None:
    for n in range(10):  # one at a time: each its own modification stamp, as accounts edited over a day have
        sync.seed("crm", {"account": [{"name": f"Reset {n}"}]})
    # for a while from the first of each, every write of these accounts' customers and every read that returns
    # these accounts: copies sent to use the fault up meet it as the request they copy does
    writes = sync.inject("erp", "reset", access="write", body="Reset ", for_s=FAULT_WINDOW_S)
    reads = sync.inject("crm", "reset", access="read", answer="Reset ", for_s=FAULT_WINDOW_S)
    sync.run_until(lambda s: s.reconcile("accounts").all_synced and _all_linked(s), deadline_s=120,
                   max_cycles=MAX_CYCLES, through_failures=True)
    result = sync.reconcile("accounts")
    reset_writes, reset_reads = _fired(sync, "erp")[writes], _fired(sync, "crm")[reads]  # rule ids are per side
    missing = [key for key, verdict in result.verdicts.items() if verdict.outcome == "missing"]
    silent = [key for key in missing if not result.verdicts[key].explained_by]
    sync.record_check("connections reset", {**result.summary(), "reset_writes": reset_writes,
                                            "reset_reads": reset_reads, "silently_missing": len(silent)})
    if silent and all(c.ok for c in sync.evidence.cycles):
        raise AssertionError(f"{len(silent)} account(s) silently missing after connection resets, though every "
                             f"cycle reported success and nothing was dead-lettered: {silent[:3]}")
    assert result.all_synced and _all_linked(sync), f"after connection resets: {result.explain()}"
    require(reset_writes > 0 and reset_reads > 0, "connections were reset on ERP writes and CRM reads")


@scenario(id="ERR-MALFORMED-01", category="error_injection", flows=("accounts", "items", "orders"), level=4,
          intent="A CRM query answered with a body that is not JSON (an error page, a page cut short) is never "
                 "taken for 'no records': it is read again or the cycle fails, and the won deal becomes its "
                 "order with every line",
          expected_s=5)
def test_unreadable_crm_answers(sync: ScenarioRun) -> None:
    entries = products_ready(sync, [{"sku": "MJ-100", "name": "Parsed Widget", "price": "20.00",
                                     "quantity_on_hand": "500"}])
    account = account_ready(sync, "Parsed Properly Ltd")
    deal = close_deal(sync, account, [{"pricebook_entry_id": entries["MJ-100"], "quantity": 3}])
    [line] = [item["id"] for item in sync.state("crm")["opportunity_line_item"] if item["opportunity_id"] == deal]
    # for a while, queries that return the deal get an error page, those that return its line a page cut in
    # half (a query answer names each record it holds): a connector reading lines on their own or inside the
    # deal query meets one of them
    sync.inject("crm", "malformed", kind="opportunity", operation="query", answer=deal, for_s=FAULT_WINDOW_S)
    sync.inject("crm", "truncated", kind="opportunity_line_item", operation="query", answer=line,
                for_s=FAULT_WINDOW_S)
    sync.run_until(lambda s: s.reconcile("orders").all_synced, deadline_s=120, max_cycles=MAX_CYCLES,
                   through_failures=True)
    result = sync.reconcile("orders")
    given_up = [letter for letter in sync.collect().dead_letters if letter["source_id"] == deal]
    failed = [c.summary() for c in sync.evidence.cycles if not c.ok]
    sync.record_check("CRM answers that are not JSON",
                      {**result.summary(), "unreadable_answers": sum(_fired(sync, "crm").values()),
                       "failed_cycles": len(failed), "deal_dead_lettered": bool(given_up)})
    assert not given_up, f"the deal was given up after an unreadable answer (taken as no lines?): {given_up}"
    assert result.all_synced, f"after CRM answers that were not JSON: {result.explain()}"
    require(any(_fired(sync, "crm").values()), "a CRM query for deals or their lines got an unreadable answer")
