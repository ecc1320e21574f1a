"""Grading a connector under schema drift: tolerated (the data is still correct), failed loudly (failed cycles
or dead letters for what did not sync, nothing wrong written), or silently corrupted (wrong or empty values
written, records skipped without a word) — which always fails."""

from __future__ import annotations

from dataclasses import dataclass

from syncert.harness.runner import ScenarioRun

CYCLES_UNDER_DRIFT = 3  # cycles a connector runs against the drifted API before it is graded


@dataclass(frozen=True)
class Grade:
    outcome: str  # "tolerated", "failed loudly" or "silently corrupted"
    detail: str


def run_under_drift(sync: ScenarioRun, flow: str) -> None:
    """Cycles until `flow` is in sync, or CYCLES_UNDER_DRIFT cycles have run (failing loudly is an answer)."""
    sync.run_until(lambda s: s.reconcile(flow).all_synced, deadline_s=30, max_cycles=CYCLES_UNDER_DRIFT,
                   through_failures=True)


def grade(sync: ScenarioRun, flow: str) -> Grade:
    """How the connector met the drift, judged by reconciliation of `flow`, its cycles and dead letters."""
    result = sync.reconcile(flow)
    service_output = sync.collect().service_output
    failed_cycles = [c.summary() for c in sync.evidence.cycles if not c.ok]
    if service_output is not None and service_output[1].strip():  # a service says so on stderr
        failed_cycles.append(f"the service reported: {service_output[1].strip().splitlines()[-1][:200]}")
    wrong = {key: verdict.outcome for key, verdict in result.verdicts.items()
             if verdict.outcome in ("corrupted", "stale", "duplicated", "orphan")}
    silent = [key for key, verdict in result.verdicts.items()
              if verdict.outcome == "missing" and not verdict.explained_by]
    sync.record_check(f"under drift ({flow})", {**result.summary(), "failed_cycles": len(failed_cycles),
                                                "silently_missing": len(silent)})
    if wrong:
        return Grade("silently corrupted", f"{len(wrong)} record(s) written wrong: {result.explain()}")
    if result.all_synced:
        return Grade("tolerated", "every record in sync")
    if silent and not failed_cycles:
        return Grade("silently corrupted", f"{len(silent)} record(s) skipped though every cycle reported success "
                                           f"and nothing was dead-lettered: {silent[:3]}")
    return Grade("failed loudly", f"{len(failed_cycles)} failed cycle(s) or service error(s), dead letters for the "
                                  "rest")


def assert_graded(sync: ScenarioRun, flow: str, expect: str) -> Grade:
    """Fail on silent corruption always, and on anything but tolerance when `expect` is "tolerate"."""
    result = grade(sync, flow)
    assert result.outcome != "silently corrupted", result.detail
    if expect == "tolerate":
        assert result.outcome == "tolerated", (f"the connector did not carry on under a change it must tolerate: "
                                               f"{result.detail}")
    return result
