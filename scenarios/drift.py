"""Grading a connector under schema drift: tolerated (the data is still correct), failed loudly (failed cycles
or dead letters for what did not sync, nothing wrong written: a target missing or left at an earlier value is
loud when its record was dead-lettered or a cycle failed), or silently corrupted (wrong or empty values written,
records skipped without a word) — which always fails."""

from __future__ import annotations

import time
from dataclasses import dataclass

from syncert.harness.runner import ScenarioRun

CYCLES_UNDER_DRIFT = 3  # cycles a connector runs against the drifted API before it is graded
DEADLINE_S = 30.0  # time a service gets under drift
SERVICE_GRACE_S = 5.0  # a service that has answered is still watched this long, for what it writes meanwhile


@dataclass(frozen=True)
class Grade:
    outcome: str  # "tolerated", "failed loudly" or "silently corrupted"
    detail: str


def run_under_drift(sync: ScenarioRun, flow: str, expect: str = "either") -> None:
    """Cycles until `flow` is in sync, or CYCLES_UNDER_DRIFT cycles have run (failing loudly is an answer).

    When `expect` allows failing loudly, a service is watched until it has answered for every record (synced or
    dead-lettered) or reported an error, and SERVICE_GRACE_S more, rather than until the deadline."""
    answered_at: list[float] = []

    def decided(run: ScenarioRun) -> bool:
        result = run.reconcile(flow)
        if result.all_synced:
            return True
        if expect == "tolerate":
            return False
        output = run.service_output()
        if output is None:
            return all(v.outcome == "synced" or v.explained_by for v in result.verdicts.values())
        if not answered_at and (output[1].strip() or all(v.outcome == "synced" or v.explained_by
                                                         for v in result.verdicts.values())):
            answered_at.append(time.monotonic())
        return bool(answered_at) and time.monotonic() - answered_at[0] >= SERVICE_GRACE_S
    sync.run_until(decided, deadline_s=DEADLINE_S, max_cycles=CYCLES_UNDER_DRIFT, through_failures=True)


def grade(sync: ScenarioRun, flow: str) -> Grade:
    """How the connector met the drift, judged by reconciliation of `flow`, its cycles and dead letters."""
    result = sync.reconcile(flow)
    service_output = sync.service_output()
    failed_cycles = [c.summary() for c in sync.evidence.cycles if not c.ok]
    if service_output is not None and service_output[1].strip():  # a service says so on stderr
        failed_cycles.append(f"the service reported: {service_output[1].strip().splitlines()[-1][:200]}")
    wrong = {key: verdict.outcome for key, verdict in result.verdicts.items()
             if verdict.outcome in ("corrupted", "duplicated", "orphan")}
    silent = [key for key, verdict in result.verdicts.items()  # not (or not yet) synced, and no word of it
              if verdict.outcome in ("missing", "stale") and not verdict.explained_by]
    sync.record_check(f"under drift ({flow})", {**result.summary(), "failed_cycles": len(failed_cycles),
                                                "silently_missing": len(silent)})
    if wrong:
        return Grade("silently corrupted", f"{len(wrong)} record(s) written wrong: {result.explain()}")
    if result.all_synced:
        return Grade("tolerated", "every record in sync")
    if silent and not failed_cycles:
        return Grade("silently corrupted", f"{len(silent)} record(s) skipped or left stale though every cycle "
                                           f"reported success and nothing was dead-lettered: {silent[:3]}")
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
