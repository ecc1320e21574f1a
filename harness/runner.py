"""Running one scenario: reset and seed the simulators, act as users, run the connector until the
expected state holds or a deadline passes, and keep the evidence the checks read.

Data flows one way: scenario -> simulators and connector -> evidence (state, journal, dead letters,
cycle results, timings) -> checks -> verdict. Checks never call the connector or change simulators.

A scenario can crash the connector where it chooses (`cycle_killed_at`): one call of a simulator is held
(applied first, or not), and once the connector waits on it, its whole process group gets SIGKILL.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trustme

from syncert.harness.conformance import Violation, violations
from syncert.harness.containment import Containment
from syncert.harness.control import SIDES, SimulatorControl, StateMirror
from syncert.harness.launchers import (
    CycleResult,
    ServiceFailed,
    ServiceLauncher,
    connector_environment,
    make_launcher,
)
from syncert.harness.manifest import Manifest
from syncert.harness.mapping import KINDS, load_mapping, writable_fields
from syncert.harness.reconciliation import Reconciliation, VendorNames, reconcile
from syncert.harness.workspace import Workspace
from syncert.simulators.domain.kinds import Field
from syncert.simulators.host import SimulatorHost

State = dict[str, dict[str, list[dict[str, Any]]]]  # side -> kind -> records


@dataclass(frozen=True)
class ScenarioInfo:
    """What a scenario is: id, category, the flows it needs, its level and intent; `needs_webhooks`: it judges
    how the connector takes change events (not applicable to one that receives none)."""

    id: str
    category: str
    flows: tuple[str, ...]
    level: int
    intent: str
    needs_webhooks: bool = False


@dataclass
class Evidence:
    """Everything a verdict may rest on."""

    cycles: list[CycleResult] = field(default_factory=list)
    converged: bool = False
    latency_s: float | None = None
    state: State = field(default_factory=dict)
    journal: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    service_output: tuple[str, str] | None = None
    notes: list[str] = field(default_factory=list)
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    attachments: dict[str, str] = field(default_factory=dict)  # file name -> text, saved beside the report
    contract_violations: list[Violation] = field(default_factory=list)  # requests that broke their contract
    # what the connector was told the scenario is (SYNCERT_SCENARIO): opaque, so that it cannot behave
    # differently in the scenario that tests a defect; the report pairs it with the scenario for its logs
    scenario_label: str = field(default_factory=lambda: f"scenario-{secrets.token_hex(4)}")

    def writes(self, side: str) -> list[dict[str, Any]]:
        return writes(self.journal.get(side, []))


def writes(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The journal entries that can change data, as the simulator tagged them (queries are reads)."""
    return [e for e in entries if "write" in e["tags"]]


class ScenarioSetupError(RuntimeError):
    """The scenario could not set up the condition it judges (reported as an error, not a failure)."""


@dataclass(frozen=True)
class KillPoint:
    """A call at which `cycle_killed_at` kills the connector: the fault rule that holds it, described."""

    side: str
    rule_id: str
    description: str


KILL_HOLD_S = 120.0  # the longest a held call waits for the kill (the kill ends it sooner)


def _ordinal(number: int) -> str:
    suffix = "th" if number % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


class ConnectorFailed(AssertionError):
    """The connector crashed, hung or could not start; the evidence says how."""


def _stored(field: Field, value: Any) -> Any:
    """A field's value as users set it: for lines, only the fields users give (not what the ERP derives)."""
    if field.type == "lines" and isinstance(value, list):
        given = [line.name for line in field.line_fields if not line.read_only]
        return [{name: line.get(name) for name in given} for line in value if isinstance(line, dict)]
    return value


class UnmappedWrites(AssertionError):
    """The connector changed records of the scenario's users in fields the mapping does not let it write."""


class LeftoverProcesses(AssertionError):
    """Processes the connector started were still running when they should have ended."""


class ScenarioRun(SimulatorControl):
    """The harness side of one scenario (the `sync` fixture)."""

    replay: dict[str, Any] | None = None  # a generated case given to run again (--replay)
    replay_read = False
    _killed = False  # the connector was killed (cycle_killed_at): the next cycle starts it again

    def __init__(self, info: ScenarioInfo, manifest: Manifest, host: SimulatorHost, keep_state: Path | None = None,
                 random_seed: int = 0):
        super().__init__()
        self.info, self.manifest, self.host = info, manifest, host
        self.random_seed = random_seed  # for generated data; the report records it
        self.keep_state = keep_state
        self.evidence = Evidence()
        self._admin = {side: httpx.Client(base_url=host.sides[side].listener.url, timeout=30,
                                          headers={"Authorization": f"Bearer {host.admin_token}"})
                       for side in ("crm", "erp")}
        credentials: dict[str, str] = {}
        for side in SIDES:
            self._control(side, "POST", "/_sim/reset")
            self._control(side, "PUT", "/_sim/tls", json={"enabled": host.tls_on_start})  # as the host started
            credentials.update(self._control(side, "POST", "/_sim/credentials/rotate"))
        credentials.update({k: v for k, v in host.environment().items() if k == "SYNCERT_CA_BUNDLE"})
        self.workspace = Workspace()
        self.containment = Containment()
        self.env = connector_environment(credentials, self.workspace, self.evidence.scenario_label,
                                         self.containment)
        self.launcher = make_launcher(manifest, self.env, self.containment)
        self._started = False
        self._tls: dict[str, str] = {}  # while serve_tls() holds: the connector's URLs and CA bundle
        self._tls_status: dict[str, dict[str, Any]] = {}  # side -> what its HTTPS listener said when switched on
        self._prepare_judging()

    def _prepare_judging(self) -> None:
        """Load the mapping the checks judge by (the manifest's own, or the standard one)."""
        self.mapping = load_mapping(self.manifest.mapping)
        self._vendor_names = VendorNames({"crm": self.manifest.crm, "erp": self.manifest.erp})

    @property
    def replay_case(self) -> dict[str, Any] | None:
        """The case of a replay file given for this scenario (None: generate cases as usual)."""
        self.replay_read = True
        return self.replay

    # -- the control plane (seed, edit, state, journal...: SimulatorControl) --------------------------

    def _send(self, side: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self._admin[side].request(method, path, **kwargs)

    # -- judging through the mapping -------------------------------------------------------------

    def reconcile(self, flow: str) -> Reconciliation:
        """The verdict per business key of one flow of the mapping (the connector's own, or the standard
        one), from both sides' current state and the connector's dead letters; kept for the report."""
        flow_map = self.mapping.flow(flow)
        sides = {side: self.state(side) for side in ("crm", "erp")}
        mirror, system, kind = self._mirrors[flow_map.source.system], flow_map.source.system, flow_map.source.kind
        targets = flow_map.target
        result = reconcile(flow_map, sides, self._vendor_names, self.workspace.dead_letters(),
                           mirror.history.get(kind, {}), self.user_values[system].get(kind, {}),
                           mirror.deleted.get(kind, {}), set(self.user_values[targets.system].get(targets.kind, {})))
        self.record_check(f"reconcile {flow}", result.summary(), result.failures())
        return result

    def unmapped_writes(self) -> list[str]:
        """Changes to the users' records (what scenarios seeded and edited, with what the systems derived at
        once) in fields the mapping does not let the connector write: a deal moved to another stage, a credit
        hold lifted, a link rewritten; and any record the connector deleted (from the journal collected last:
        no flow deletes, so a record made and deleted again, to use a fault up, shows). Read-only fields are
        the systems' own, and whatever else the connector created is its own to change."""
        found = []
        for side, kinds in self.user_values.items():
            mirror = self._catch_up(side)
            for kind, records in kinds.items():
                definition = KINDS[side].get(kind)
                if definition is None:
                    continue
                allowed = writable_fields(self.mapping, side, kind)
                for record_id, as_left in records.items():
                    now = mirror.get(kind, record_id)
                    if now is None:
                        if record_id in mirror.deleted.get(kind, {}):
                            found.append(f"{side.upper()} {kind} {record_id} was deleted")
                        continue
                    for definition_field in definition.fields:
                        name = definition_field.name
                        if definition_field.read_only or name in allowed:
                            continue
                        before = _stored(definition_field, as_left.get(name))
                        after = _stored(definition_field, now.get(name))
                        if before != after:
                            found.append(f"{side.upper()} {kind} {record_id}: {name} changed from {before!r} to "
                                         f"{after!r}")
        for side, entries in self.evidence.journal.items():  # no flow deletes, not even what the connector made
            found += [f"{side.upper()} {entry['kind'] or 'record'} deleted ({entry['method']} {entry['path']}): no "
                      "flow of the mapping deletes records" for entry in entries
                      if entry["operation"] == "delete" and 200 <= entry["status"] < 300]
        return found

    def field_limit(self, side: str, kind: str, name: str) -> int:
        """The most characters `name` of `kind` on `side` can carry through both systems: the smallest
        limit the two dialects set on it and on the fields the mapping pairs it with."""
        ends = {(side, kind, name)}
        for flow in self.mapping.flows.values():
            for rule in flow.fields:
                pair = {(flow.source.system, flow.source.kind, rule.sources[0]),
                        (flow.target.system, flow.target.kind, rule.name)}
                if (side, kind, name) in pair:
                    ends |= pair
        limits = [limit for end in ends if (limit := self._vendor_names.length(*end))]
        if not limits:
            raise RuntimeError(f"scenario setup: neither system limits the length of {side} {kind}.{name}")
        return min(limits)

    # -- TLS and credentials ---------------------------------------------------------------------

    def serve_tls(self, trusted: bool = True) -> None:
        """Serve both simulators over HTTPS and give the connector their HTTPS URLs, for the whole scenario.

        With `trusted`, SYNCERT_CA_BUNDLE names the CA that signed the simulators' certificates; without,
        it names the PEM of another CA, made for this scenario, so a connector that verifies certificates
        refuses the servers. Call it before the connector first runs; the listeners stop when the
        scenario ends."""
        if self._started or self.evidence.cycles:
            raise RuntimeError("scenario setup: serve_tls() must come before the connector's first cycle (it "
                               "changes the environment the connector starts with)")
        for side in SIDES:
            self._tls_status[side] = self._control(side, "PUT", "/_sim/tls", json={"enabled": True})
        self._tls = {f"SYNCERT_{side.upper()}_URL": self._tls_status[side]["url"] for side in SIDES}
        self._tls["SYNCERT_CA_BUNDLE"] = (self._tls_status["crm"]["ca_bundle"] if trusted
                                          else str(self._untrusted_ca()))
        self._update_environment(self._tls)

    def _untrusted_ca(self) -> Path:
        """The certificate of a CA made for this scenario, which signed none of the simulators' certificates."""
        path = self.workspace.root / "untrusted-ca.pem"
        trustme.CA(organization_name="syncert untrusted CA").cert_pem.write_to_path(str(path))
        return path

    def tls_answers(self, side: str, ca_bundle: str | None = None) -> bool:
        """Whether `side`'s HTTPS listener (see serve_tls) completes a verified handshake and answers its health
        check, trusting `ca_bundle` (default: the CA that signed the simulators' certificates). The harness's
        own probe: it carries no credential and is not in the journal."""
        status = self._tls_status.get(side)
        if status is None:
            raise RuntimeError("scenario setup: tls_answers() needs serve_tls() first")
        try:
            response = httpx.get(f"{status['url']}/_sim/health", verify=ca_bundle or status["ca_bundle"],
                                 timeout=10, trust_env=False)
        except httpx.ConnectError:
            return False
        return response.status_code == 200

    def rotate_credentials(self) -> float:
        """Between two cycles, as an operator rotating secrets: both simulators issue fresh credentials (every
        earlier credential and token revoked) and the connector's next run gets them. A running service or
        python-mode process is stopped first and started again with the new environment; the state dir
        stays (this is between runs of one installation).

        Returns the moment of the rotation (time.time(), comparable with the journal's `started_at`): every
        request begun after it was sent by a run that was given the new credentials."""
        running = self._started
        if running:
            self.launcher.suspend()
        rotated_at = time.time()
        issued: dict[str, str] = {}
        for side in SIDES:
            issued.update(self._control(side, "POST", "/_sim/credentials/rotate"))
        self._update_environment({**issued, **self._tls})
        if running:
            self._launch(self.launcher.resume)
        return rotated_at

    def _update_environment(self, changes: dict[str, str]) -> None:
        """Change the connector's environment (what its next process starts with)."""
        self.env.update(changes)
        self.launcher.env.update(changes)

    # -- running the connector -------------------------------------------------------------------

    def start_over(self) -> None:
        """Begin again from nothing inside this scenario (one generated case after another): the connector is
        stopped, both simulators reset (records, journal, faults, limits), the connector's state dir and dead
        letters emptied, the evidence cleared. Credentials stay; a connector that was running starts afresh."""
        running, self._killed = self._started, False
        if running:
            self.launcher.suspend()
        for side in SIDES:
            self._control(side, "POST", "/_sim/reset")
        self._mirrors = {side: StateMirror() for side in SIDES}
        self.user_values = {side: {} for side in SIDES}
        self._pending_user_edits.clear()
        self.workspace.empty()
        self.evidence = Evidence(attachments=self.evidence.attachments, scenario_label=self.evidence.scenario_label)
        if running:
            self._subscribe_webhooks()  # the reset dropped the subscriptions
            self._launch(self.launcher.resume)

    def _start(self) -> None:
        """Start the connector before its first cycle, and again after it was killed (same state dir)."""
        if self._killed:
            self._killed = False
            self._launch(self.launcher.resume)
        if self._started:
            return
        self._started = True
        self._launch(self.launcher.start)
        self._subscribe_webhooks()

    def _subscribe_webhooks(self) -> None:
        """Have both simulators send their change events to the connector, if it takes them."""
        if self.launcher.webhook_url:
            for side in SIDES:
                self._control(side, "POST", "/_sim/webhooks", json={
                    "url": self.launcher.webhook_url, "secret": self.launcher.env["SYNCERT_WEBHOOK_SECRET"]})

    def _launch(self, start: Callable[[], None]) -> None:
        try:
            start()
        except ServiceFailed as error:
            self.evidence.service_output = error.output
            raise ConnectorFailed(f"the connector service did not start: {error}") from None

    def cycle(self) -> CycleResult:
        """Run one sync cycle (a liveness check for services) and record it."""
        self._start()
        result = self.launcher.run_cycle()
        self.evidence.cycles.append(result)
        return result

    def arm_kill(self, side: str, *, kind: str | None = None, operation: str | None = None,
                 access: str | None = None, on_call: int = 1, applied: bool = True) -> KillPoint:
        """Prepare a crash at the `on_call`-th API call of `side` matching `kind`, `operation` and `access`
        (canonical; None matches any): that call is held (applied first when `applied`, its answer never
        sent) until `cycle_killed_at(point)` has killed the connector. Arm it before users act when the
        connector may be a service: a service syncs on its own and could pass the point first."""
        rule_id = self.inject(side, "timeout", kind=kind, operation=operation, access=access, on_call=on_call,
                              calls=1, commit=applied, seconds=KILL_HOLD_S)
        call = " ".join(filter(None, [kind, operation or access or "call"]))
        return KillPoint(side, rule_id, f"the {_ordinal(on_call)} {side.upper()} {call} "
                                        f"({'applied, its answer held' if applied else 'held before it was applied'})")

    def cycle_killed_at(self, point: KillPoint | str, deadline_s: float = 60.0, **match: Any) -> CycleResult:
        """Run a cycle and kill the connector with SIGKILL (its whole process group) once it waits on the call
        `point` holds, then let the call go; record the cycle as killed. `point` is a KillPoint from arm_kill,
        or a side with arm_kill's keywords. A service runs on its own: it gets `deadline_s` to reach the
        point. The next cycle starts the connector afresh with the same state dir (a service or a
        python-mode child is started again). Raises ScenarioSetupError when the connector ended its cycle,
        or let the deadline pass, without reaching the point (nothing to judge: the scenario's own setup)."""
        if isinstance(point, str):
            point = self.arm_kill(point, **match)
        self._start()
        started = time.monotonic()
        finished: list[CycleResult] = []
        cycle = None
        if not isinstance(self.launcher, ServiceLauncher):
            cycle = threading.Thread(target=lambda: finished.append(self.launcher.run_cycle()),
                                     name="syncert-cycle-to-kill", daemon=True)
            cycle.start()
            deadline_s = self.manifest.run.timeout_s
        killed = self._wait_for_hold(point, cycle, deadline_s) and self.launcher.kill()
        self.release_held(point.side)
        if cycle is not None:
            cycle.join(self.manifest.run.timeout_s + 30)
        result = finished[0] if finished else CycleResult(None if killed else 0, time.monotonic() - started)
        if killed:
            self._killed = True
            result = dataclasses.replace(result, exit_code=None, error=None, timed_out=False,
                                         killed_at=point.description, duration_s=time.monotonic() - started)
        self.evidence.cycles.append(result)
        self.evidence.notes.append(f"cycle {len(self.evidence.cycles)} {result.summary()}")
        if not killed:
            raise ScenarioSetupError(f"scenario setup: the connector was to be killed at {point.description}, but "
                                     + ("its cycle ended before it got there" if cycle is not None else
                                        f"it did not get there within {deadline_s:.0f}s"))
        return result

    def _wait_for_hold(self, point: KillPoint, cycle: threading.Thread | None, deadline_s: float) -> bool:
        """Whether `point`'s call is held while the connector still runs (the cycle thread, or the service)."""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if self.fault(point.side, point.rule_id)["holding"]:
                return True
            if cycle is not None and not cycle.is_alive():
                return False
            time.sleep(0.05)
        return False

    def settle(self, cycles: int = 2) -> None:
        """Let the connector run with nothing to do: `cycles` cycles, or for a service the time it takes
        to poll that often (a 1.5 s budget per cycle). Failures are recorded in the evidence."""
        for _ in range(cycles):
            result = self.cycle()
            if not result.ok:
                self.evidence.notes.append(f"cycle {len(self.evidence.cycles)} {result.summary()}")
            if isinstance(self.launcher, ServiceLauncher):
                time.sleep(1.5)

    def run_until(self, predicate: Callable[[ScenarioRun], bool], deadline_s: float = 30.0,
                  max_cycles: int = 6, through_failures: bool = False, every_s: float = 0.0) -> bool:
        """Run the connector until `predicate` holds (True) or cycles or time run out (False).

        Sync latency (from this call to convergence) is recorded in the evidence. A cycle that fails
        or hangs stops the run: it is a verdict in itself; unless `through_failures` (faults are under
        way, and failing a cycle loudly is a fair answer to them), when cycles go on until the deadline.
        `every_s`: a command's cycles start at most this often (a scheduler's period), not back to back.
        """
        started = time.monotonic()
        polling = isinstance(self.launcher, ServiceLauncher)
        cycles = 0
        while time.monotonic() - started < deadline_s:
            if not polling and cycles and every_s:
                time.sleep(max(0.0, started + cycles * every_s - time.monotonic()))
            result = self.cycle()
            cycles += 1
            if not result.ok:
                self.evidence.notes.append(f"cycle {len(self.evidence.cycles)} {result.summary()}")
                if not through_failures:
                    return False
            if predicate(self):
                self.evidence.converged = True
                self.evidence.latency_s = time.monotonic() - started
                return True
            if not polling and cycles >= max_cycles:
                break
            if polling:
                time.sleep(0.25)
        self.evidence.notes.append(f"not converged after {cycles} cycle(s) and {time.monotonic() - started:.1f}s")
        return False

    def record_check(self, name: str, summary: dict[str, Any], diffs: dict[str, Any] | None = None) -> None:
        """Keep a check's outcome (and expected-vs-actual diffs) for the report."""
        self.evidence.checks[name] = {"summary": summary, "diffs": diffs or {}}

    def collect(self) -> Evidence:
        """Freeze the evidence: final state of both sides, journals, dead letters, service output (what the
        service wrote since the last collect() is added to what earlier calls kept).

        Raises EvidenceError when the dead-letter file breaks the protocol."""
        for side in ("crm", "erp"):
            self.evidence.state[side] = self.state(side)
            self.evidence.journal[side] = self.journal(side)
        self.service_output()
        self.evidence.dead_letters = self.workspace.dead_letters()
        return self.evidence

    def check_contracts(self) -> list[Violation]:
        """The requests in the journal collected last that broke their vendor's contract (kept in the evidence)."""
        found = violations(self.evidence.journal, {"crm": self.manifest.crm, "erp": self.manifest.erp}, self.drifted)
        unjudged = [Violation(side, 0, f"{count} earliest request(s)", "left the journal (over its byte budget) "
                              "before they could be judged", "shape", 0)
                    for side, count in self.journal_dropped.items() if count]
        self.evidence.contract_violations = unjudged + found
        return self.evidence.contract_violations

    def service_output(self) -> tuple[str, str] | None:
        """All a service has written so far, (stdout, stderr), kept in the evidence; None for a connector that is
        not a service."""
        if isinstance(self.launcher, ServiceLauncher):
            stdout, stderr = self.launcher.output()
            kept_stdout, kept_stderr = self.evidence.service_output or ("", "")
            self.evidence.service_output = (kept_stdout + stdout, kept_stderr + stderr)
        return self.evidence.service_output

    def issued_secrets(self) -> list[str]:
        """Every secret of the scenario: what both simulators issued (credentials, tokens, signatures), the
        webhook secret of a service, and the admin token."""
        return [self.host.admin_token, *filter(None, [self.launcher.env.get("SYNCERT_WEBHOOK_SECRET")]),
                *self.simulator_secrets()]

    def close(self, scrub: Callable[[str], str]) -> None:
        """End the connector and everything it started, revoke its credentials, remove its files.

        Raises LeftoverProcesses when something it started was still running."""
        try:
            leftovers = self.launcher.close()
            for side in SIDES:
                self._control(side, "POST", "/_sim/credentials/rotate")  # revokes what the connector held
                if self._tls_status:
                    self._control(side, "PUT", "/_sim/tls", json={"enabled": self.host.tls_on_start})
        finally:
            if self.keep_state is not None:
                self.workspace.keep_state(self.keep_state / self.info.id, scrub)
            self.workspace.remove()
            for client in self._admin.values():
                client.close()
        if leftovers:
            self.evidence.notes.append("leftover processes: " + "; ".join(map(str, leftovers[:10])))
            raise LeftoverProcesses(f"{len(leftovers)} process(es) the connector started were still running when "
                                    f"they should have ended: " + "; ".join(map(str, leftovers[:5])))
