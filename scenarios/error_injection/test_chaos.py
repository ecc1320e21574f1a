"""Level-4 chaos: generated business activity interleaved with generated faults on both systems."""

from __future__ import annotations

from syncert.harness.pytest_plugin import scenario
from syncert.harness.runner import ScenarioRun
from syncert.scenarios.chaos import Case, CaseFailed, explore, run_case

EXAMPLES = 8  # generated cases per certification run (each runs from nothing)
SHRINK_BUDGET_S = 300  # time hypothesis may spend making a failing case smaller


@scenario(id="CHAOS-01", category="error_injection", flows=("accounts", "items", "orders", "invoices", "payments"),
          level=4, expected_s=50,
          intent="Generated deals, edits, invoices and payments interleaved with generated faults on both "
                 "systems (errors, throttling, resets, lost answers, broken pages) still end with every "
                 "record synced once; a failure is shrunk to a minimal case saved as a replay file")
def test_chaos(sync: ScenarioRun) -> None:
    if sync.replay_case is not None:
        case = Case.from_json(sync.replay_case)
        unsettled = run_case(sync, case)
        if unsettled:
            raise CaseFailed(f"the replayed case ({case.describe()}) did not reconcile: {unsettled}")
        return
    explore(sync, EXAMPLES, SHRINK_BUDGET_S)
