"""Chaos cases: generated business operations interleaved with generated fault schedules, run from nothing,
judged by reconciliation, shrunk by hypothesis to a minimal failing case, saved as a replay file.

A case is a list of steps (create or edit an account, close a deal, invoice an order, pay an invoice, run a
sync cycle) and a list of faults (which side, what fault, on which calls). Steps name earlier records by
position (`target` modulo how many there are), so any shrunk case still runs; a step with nothing to act on
does nothing. Every fault fires on a bounded number of calls: once they are spent, a correct connector
converges, whatever cycles failed loudly on the way.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from syncert.harness.replay import Replay
from syncert.harness.runner import ScenarioRun
from syncert.scenarios.setups import ScenarioSetupError, close_deal, invoice_order, pay, products_ready

FLOWS = ("accounts", "orders", "invoices", "payments")
STEPS = ("create_account", "edit_account", "close_deal", "invoice", "pay", "sync")
# (side, kind, access): calls a connector doing this work surely makes
FAULT_PLACES = (("erp", "customer", "write"), ("erp", "sales_order", "write"), ("crm", "account", "write"),
                ("crm", "opportunity", "write"), ("crm", "account", "read"), ("crm", "opportunity", "read"),
                ("erp", None, "read"))
WRITE_FAULTS = ("unavailable", "server_error", "throttle", "reset", "lost_response", "timeout")
READ_FAULTS = ("unavailable", "server_error", "throttle", "reset", "malformed", "truncated")
MAX_CALLS = 8
REPLAY_NAME = "chaos-replay.json"


@dataclass(frozen=True)
class Step:
    op: str
    target: int = 0
    value: int = 0


@dataclass(frozen=True)
class Fault:
    side: str
    fault: str
    kind: str | None
    access: str
    on_call: int
    calls: int

    def rule(self) -> dict[str, Any]:
        parameters: dict[str, Any] = {"type": self.fault}
        if self.fault == "throttle":
            parameters["retry_after_s"] = 1
        elif self.fault == "timeout":
            parameters.update(seconds=2, commit=True)
        return {"match": {"kind": self.kind, "access": self.access}, "on_call": self.on_call, "calls": self.calls,
                "fault": parameters}


@dataclass(frozen=True)
class Case:
    steps: tuple[Step, ...]
    faults: tuple[Fault, ...]

    def to_json(self) -> dict[str, Any]:
        return {"steps": [asdict(step) for step in self.steps], "faults": [asdict(fault) for fault in self.faults]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Case:
        """A case from a replay file; ScenarioSetupError names what is wrong with it."""
        try:
            steps = tuple(Step(**step) for step in data["steps"])
            faults = tuple(Fault(**fault) for fault in data["faults"])
        except (KeyError, TypeError) as error:
            raise ScenarioSetupError(f"the replay case is not a chaos case: {error}") from None
        problems = [f"step {n}: {problem}" for n, step in enumerate(steps, 1) if (problem := _step_problem(step))]
        problems += [f"fault {n}: {problem}" for n, fault in enumerate(faults, 1)
                     if (problem := _fault_problem(fault))]
        if problems:
            raise ScenarioSetupError("the replay case cannot run: " + "; ".join(problems))
        return cls(steps, faults)

    def describe(self) -> str:
        steps = ", ".join(f"{s.op}({s.target},{s.value})" if s.op != "sync" else "sync" for s in self.steps)
        faults = ", ".join(f"{f.side} {f.kind or 'any'} {f.access}: {f.fault} x{f.calls} from call {f.on_call}"
                           for f in self.faults)
        return f"{len(self.steps)} operation(s) [{steps}] with {len(self.faults)} fault(s) [{faults}]"


def _natural(value: Any, low: int, high: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and low <= value <= high


def _step_problem(step: Step) -> str | None:
    if step.op not in STEPS:
        return f"op must be one of {', '.join(STEPS)}, not {step.op!r}"
    if not (_natural(step.target, 0, 1000) and _natural(step.value, 0, 1000)):
        return "target and value must be integers from 0 to 1000"
    return None


def _fault_problem(fault: Fault) -> str | None:
    if (fault.side, fault.kind, fault.access) not in FAULT_PLACES:
        return (f"side, kind and access must be one of {FAULT_PLACES}, not "
                f"{(fault.side, fault.kind, fault.access)}")
    if fault.fault not in (WRITE_FAULTS if fault.access == "write" else READ_FAULTS):
        return f"{fault.fault!r} is not a fault chaos injects into a {fault.access}"
    if not (_natural(fault.on_call, 1, 1000) and _natural(fault.calls, 1, MAX_CALLS)):
        return f"on_call must be an integer from 1 and calls one from 1 to {MAX_CALLS}"
    return None


def _fault(place: tuple[str, str | None, str]) -> st.SearchStrategy[Fault]:
    side, kind, access = place
    return st.builds(Fault, st.just(side), st.sampled_from(WRITE_FAULTS if access == "write" else READ_FAULTS),
                     st.just(kind), st.just(access), st.integers(1, 4), st.integers(1, MAX_CALLS))


def cases() -> st.SearchStrategy[Case]:
    step = st.builds(Step, st.sampled_from(STEPS), st.integers(0, 3), st.integers(0, 9))
    fault = st.sampled_from(FAULT_PLACES).flatmap(_fault)
    return st.builds(Case, st.lists(step, min_size=1, max_size=8).map(tuple),
                     st.lists(fault, min_size=1, max_size=3).map(tuple))


def run_case(sync: ScenarioRun, case: Case) -> str | None:
    """Run `case` from nothing; None when everything reconciles in the end, else what did not."""
    sync.start_over()
    entry = products_ready(sync, [{"sku": "CH-1", "name": "Chaos widget", "price": "25.00",
                                   "quantity_on_hand": "100000"}])["CH-1"]
    sides: dict[str, list[dict[str, Any]]] = {"crm": [], "erp": []}
    for fault in case.faults:
        sides[fault.side].append(fault.rule())
    sync.fault_schedule(sides, seed=sync.random_seed)
    accounts: list[str] = []
    for number, step in enumerate(case.steps):
        _apply(sync, step, number, accounts, entry)
    sync.run_until(lambda s: not _unsettled(s), deadline_s=150, max_cycles=12, through_failures=True)
    return "; ".join(_unsettled(sync)) or None


def _unsettled(sync: ScenarioRun) -> list[str]:
    """What does not reconcile, flow by flow (a flow none of the steps gave a record to is settled)."""
    results = [sync.reconcile(flow) for flow in FLOWS]
    return [result.explain() for result in results if result.verdicts and not result.all_synced]


def _apply(sync: ScenarioRun, step: Step, number: int, accounts: list[str], entry: str) -> None:
    """One user action (or a sync cycle); an action with nothing to act on does nothing."""
    if step.op == "sync":
        sync.cycle()
    elif step.op == "create_account":
        accounts += sync.seed("crm", {"account": [{"name": f"Chaos {number} Ltd",
                                                   "phone": f"+1 555 01{step.value:02d}"}]})["account"]
    elif step.op == "edit_account" and accounts:
        sync.edit("crm", "account", accounts[step.target % len(accounts)], {"phone": f"+1 555 02{step.value:02d}"})
    elif step.op == "close_deal" and accounts:
        close_deal(sync, accounts[step.target % len(accounts)],
                   [{"pricebook_entry_id": entry, "quantity": 1 + step.value % 5}], name=f"Chaos deal {number}")
    elif step.op == "invoice":
        invoiced = {i["sales_order_id"] for i in sync.state("erp")["invoice"]}
        orders = [o["id"] for o in sync.state("erp")["sales_order"] if o["id"] not in invoiced]
        if orders:
            invoice_order(sync, orders[step.target % len(orders)])
    elif step.op == "pay":
        unpaid = [i for i in sync.state("erp")["invoice"] if Decimal(i["amount_due"]) > 0]
        if unpaid:
            invoice = unpaid[step.target % len(unpaid)]
            amount = Decimal(invoice["amount_due"]) / (1 if step.value % 2 else 2)
            pay(sync, invoice["customer_id"], invoice["id"], amount.quantize(Decimal("0.01")))


# Run after the generated cases when none failed: a small case that meets each kind of fault on a write
BASELINE = Case(
    (Step("create_account"), Step("sync"), Step("close_deal"), Step("sync"), Step("invoice"),
     Step("pay", value=1), Step("edit_account", value=7)),
    (Fault("erp", "unavailable", "customer", "write", on_call=1, calls=3),
     Fault("erp", "lost_response", "sales_order", "write", on_call=1, calls=1),
     Fault("crm", "server_error", "opportunity", "write", on_call=1, calls=2)))


class CaseFailed(AssertionError):
    """A chaos case after which the systems did not reconcile."""


def explore(sync: ScenarioRun, examples: int, shrink_budget_s: float) -> None:
    """Run `examples` generated cases (seeded by the run's seed), then BASELINE; on a failure, let hypothesis
    shrink it for at most `shrink_budget_s`, attach the minimal case as a replay file and raise CaseFailed."""
    outcomes: dict[str, str | None] = {}
    failing: list[Case] = []
    started = time.monotonic()

    @settings(max_examples=examples, deadline=None, database=None, phases=(Phase.generate, Phase.shrink),
              suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet, report_multiple_bugs=False,
              print_blob=False)
    @hypothesis_seed(sync.random_seed)
    @given(cases())
    def check(case: Case) -> None:
        key = json.dumps(case.to_json(), sort_keys=True)
        if key not in outcomes:
            if failing and time.monotonic() - started > shrink_budget_s:
                return  # the shrinking budget is spent: cases not run cannot be smaller failures
            outcomes[key] = run_case(sync, case)
        if outcomes[key] is not None:
            failing.append(case)
            raise CaseFailed(outcomes[key])

    try:
        check()
        if (unsettled := run_case(sync, BASELINE)) is not None:
            failing.append(BASELINE)
            raise CaseFailed(unsettled)
    except CaseFailed as failure:
        minimal = failing[-1]
        connector = {"name": sync.manifest.name, "version": sync.manifest.version}
        sync.evidence.attachments[REPLAY_NAME] = Replay(sync.info.id, sync.random_seed, minimal.to_json(),
                                                        connector).dumps()
        sync.record_check("chaos", {"cases_run": len(outcomes), "failing_cases": len(set(map(repr, failing))),
                                    "minimal_steps": len(minimal.steps), "minimal_faults": len(minimal.faults)})
        raise CaseFailed(f"after {minimal.describe()}, the systems did not reconcile: {failure} (the minimal case "
                         f"is attached as {REPLAY_NAME}; `syncert certify MANIFEST --replay {REPLAY_NAME}` runs it "
                         "again)") from None
    sync.record_check("chaos", {"cases_run": len(outcomes) + 1, "failing_cases": 0})
