"""The syncert pytest plugin (entry point `pytest11`): the catalogue runs as plain pytest.

    pytest scenarios --connector path/to/connector.toml [--syncert-results results.json]

Fixtures: `sync` (a ScenarioRun for the current scenario: simulators reset, credentials issued for
it, the connector ready), `syncert_host` (the simulators, one per session) and `syncert_manifest`.
Scenarios carry the `scenario` marker (use the `scenario(...)` decorator). Statuses: passed; failed
(an assertion of the scenario, a connector that crashed or hung, processes left running); error
(evidence that cannot be read, or a fault of the scenario itself); not applicable (the connector does
not declare the scenario's flows, or the scenario needs change events and the connector receives none:
no `webhook_path`, or command mode); skipped. After the scenarios, the run-wide security check
SEC-LEAK-01 fails when the connector wrote any credential it was given to its output or dead letters.
Without --connector, scenarios skip.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import resource
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

from syncert.harness.containment import harden_harness
from syncert.harness.launchers import check_launchable
from syncert.harness.manifest import Manifest, ManifestError, load_manifest
from syncert.harness.replay import Replay, ReplayError, load_replay
from syncert.harness.runner import (
    LeftoverProcesses,
    ScenarioInfo,
    ScenarioRun,
    ScenarioSetupError,
    UnmappedWrites,
)
from syncert.harness.secrets import SecretScrubber, head, scrub_tree, tail
from syncert.harness.surge import SurgeSettings
from syncert.harness.workspace import EvidenceError
from syncert.simulators.host import SimulatorHost, run_in_background

NOT_APPLICABLE = "not applicable: "
RAN = ("passed", "failed", "error")
VIOLATIONS_IN_REPORT = 20  # requests that broke their contract, shown per scenario
SECURITY_CHECK = ScenarioInfo("SEC-LEAK-01", "security", (), 4,
                              "The connector never writes a credential it was given (in any encoding) to its "
                              "output or its dead letters")
CONTRACT_CHECK = ScenarioInfo("CONTRACT-01", "contract", (), 4,
                              "Every request the connector sends has the shape its vendor's OpenAPI contract gives "
                              "(operations, parameters, body types and properties; contracts/<dialect>/openapi.yaml, "
                              "or the drifted one in a drift scenario)")
RUN_WIDE_CHECKS = (SECURITY_CHECK, CONTRACT_CHECK)  # judged over every scenario that ran
OUTPUT_IN_REPORT = 4000
_RUN_KEY = pytest.StashKey[ScenarioRun]()
_START_KEY = pytest.StashKey[float]()
_RESULT_KEY = pytest.StashKey[dict[str, Any]]()
_RECORD_KEY = pytest.StashKey["RunRecord"]()
_SEED_KEY = pytest.StashKey[int]()
_MANIFEST_KEY = pytest.StashKey[Manifest]()
_REPLAY_KEY = pytest.StashKey[Replay]()
_RESULT_PROPERTY = "syncert_result"
STOP_WORKER = signal.SIGUSR1  # from the run to its workers: it was interrupted, stop cleanly
EXPECTED_S = 2.0  # what a scenario takes, unless it says (most take 0.5-3 s)


@dataclass
class RunRecord:
    """What one session of the catalogue produced: results, the secrets it issued, credential leaks found."""

    results: list[dict[str, Any]] = field(default_factory=list)
    scrubber: SecretScrubber = field(default_factory=lambda: SecretScrubber([]))
    leaks: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False
    lost_workers: int = 0  # workers that died: the secrets they issued never reached the run
    outside_cpu_s: float = 0.0  # CPU of what the workers' scenarios started and reaped: connectors, Locust


def children_cpu_s() -> float:
    """CPU seconds (user and system) of this process's children that have ended and been reaped."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_record(config: pytest.Config) -> RunRecord:
    return config.stash[_RECORD_KEY]


def random_seed(config: pytest.Config) -> int:
    """The run's seed for generated data: --syncert-seed, or one chosen once per run."""
    if _SEED_KEY not in config.stash:
        given = getattr(config, "workerinput", {}).get("syncert_seed", config.getoption("--syncert-seed"))
        config.stash[_SEED_KEY] = given if given is not None else random.randrange(1, 2**31)
    return config.stash[_SEED_KEY]


def scenario(id: str, category: str, flows: tuple[str, ...], level: int, intent: str,
             needs_webhooks: bool = False, expected_s: float = EXPECTED_S) -> Callable:
    """Mark a test function as a catalogue scenario (`needs_webhooks`: it applies only to connectors that
    receive change events; `expected_s`: about how long it runs with the reference connector, a hint that
    lets `--jobs N` start the longest scenarios first)."""
    return pytest.mark.scenario(ScenarioInfo(id, category, tuple(flows), level, intent, needs_webhooks),
                                expected_s=expected_s)


def scenario_info(item: pytest.Item) -> ScenarioInfo | None:
    marker = item.get_closest_marker("scenario")
    return marker.args[0] if marker else None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("syncert")
    group.addoption("--connector", help="connector.toml of the connector under test")
    group.addoption("--syncert-results", help="write per-scenario results and evidence (JSON) here")
    group.addoption("--syncert-level", type=int, help="run only scenarios up to this certification level")
    group.addoption("--syncert-only", metavar="PATTERN",
                    help="run only scenarios whose id matches this glob, or contains it (ids or test names)")
    group.addoption("--syncert-progress", action="store_true", help="print one line per scenario as it ends")
    group.addoption("--syncert-in-process", action="store_true",
                    help="run unit scenarios in this process (python-mode connectors on httpx; development only, "
                         "never a certificate)")
    group.addoption("--syncert-seed", type=int, help="seed for generated data (default: random, shown in the results)")
    group.addoption("--syncert-replay", metavar="FILE",
                    help="run the case of this replay file (written by a failing generated scenario) again")
    group.addoption("--syncert-surge-scale", type=float, metavar="N",
                    help="scale of the volume scenarios' surges (default: each profile's CI scale)")
    group.addoption("--syncert-surge-workers", type=int, default=0, metavar="N",
                    help="run each surge's Locust as a master and N workers (default 0: one process)")
    group.addoption("--syncert-keep-state", metavar="DIR",
                    help="copy each scenario's state dir here (secrets scrubbed) before it is removed")


def _is_worker(config: pytest.Config) -> bool:
    """This session is a pytest-xdist worker (`-n N`, `syncert certify --jobs N`), not the run itself."""
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "scenario(info): a syncert catalogue scenario")
    record = config.stash[_RECORD_KEY] = RunRecord()
    config.pluginmanager.register(_InterruptionWatcher(record), "syncert-interruption-watcher")
    path = config.getoption("--connector")
    if path:  # checked once, before any scenario: a bad manifest is one message, not one per scenario
        try:
            manifest = load_manifest(path)
            check_launchable(manifest)
        except ManifestError as error:
            raise pytest.UsageError(str(error)) from None
        config.stash[_MANIFEST_KEY] = manifest
        if _is_worker(config):  # a worker runs connectors and holds its simulators' admin token, as certify does
            harden_harness()
            _stop_worker_on_signals()
    replay = config.getoption("--syncert-replay")
    if replay:
        try:
            config.stash[_REPLAY_KEY] = load_replay(replay)
        except ReplayError as error:
            raise pytest.UsageError(str(error)) from None


def _stop_worker_on_signals() -> None:
    """A worker stops cleanly (its connector stopped, its files removed) on STOP_WORKER, SIGTERM or SIGINT. A
    SIGTERM or SIGINT (from a connector, or a terminal) goes on to the run, which is interrupted as a whole,
    as it is without workers."""
    stopping: list[int] = []

    def stop(signum: int, _: Any) -> None:
        if stopping:
            return
        stopping.append(signum)
        if signum != STOP_WORKER:
            with contextlib.suppress(ProcessLookupError):
                os.kill(os.getppid(), signum)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for signum in (STOP_WORKER, signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)


def selects(info: ScenarioInfo, nodeid: str, level: int | None, only: str | None) -> bool:
    """Whether --syncert-level and --syncert-only keep this scenario."""
    if level is not None and info.level > level:
        return False
    if only:
        pattern = only.lower()
        return fnmatch(info.id.lower(), pattern) or pattern in info.id.lower() or pattern in nodeid.lower()
    return True


def _selected(item: pytest.Item, level: int | None, only: str | None) -> bool:
    info = scenario_info(item)
    return info is None or selects(info, item.nodeid, level, only)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep what --syncert-level and --syncert-only select, and run scenarios level by level (lowest first)."""
    level, only = config.getoption("--syncert-level"), config.getoption("--syncert-only")
    keep = [item for item in items if _selected(item, level, only)]
    if len(keep) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in keep])
    workers = getattr(config, "workerinput", {}).get("workercount", 1)
    if workers > 1:
        items[:] = _longest_first(keep, workers)
    else:
        items[:] = sorted(keep, key=lambda item: info.level if (info := scenario_info(item)) else 0)


def _expected_s(item: pytest.Item) -> float:
    marker = item.get_closest_marker("scenario")
    return marker.kwargs.get("expected_s", EXPECTED_S) if marker else EXPECTED_S


def _longest_first(items: list[pytest.Item], workers: int) -> list[pytest.Item]:
    """The order for `workers` side by side: pytest-xdist (worksteal) first hands each worker an equal count of
    consecutive items, so the items are dealt into such slices, longest first to the slice that would end
    soonest, and each slice starts with its longest: no long scenario is left to start last."""
    sizes, left = [], len(items)
    for remaining in range(workers, 0, -1):
        sizes.append(left // remaining)
        left -= sizes[-1]
    slices: list[list[pytest.Item]] = [[] for _ in range(workers)]
    totals = [0.0] * workers
    for item in sorted(items, key=_expected_s, reverse=True):
        open_slices = [k for k in range(workers) if len(slices[k]) < sizes[k]]
        k = min(open_slices, key=lambda k: totals[k])
        slices[k].append(item)
        totals[k] += _expected_s(item)
    return [item for share in slices for item in share]


class _InterruptionWatcher:
    """Marks the run interrupted (SIGINT/SIGTERM): from then on, teardowns clean up and judge nothing."""

    def __init__(self, record: RunRecord):
        self.record = record

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo) -> None:
        self.record.interrupted = True


@pytest.fixture(scope="session")
def syncert_manifest(pytestconfig: pytest.Config) -> Manifest:
    if _MANIFEST_KEY not in pytestconfig.stash:
        pytest.skip("no --connector given: scenarios need a connector.toml")
    return pytestconfig.stash[_MANIFEST_KEY]


@pytest.fixture(scope="session")
def syncert_host(syncert_manifest: Manifest) -> Iterator[SimulatorHost]:
    with tempfile.TemporaryDirectory(prefix="syncert-run-") as data_dir, \
            run_in_background(crm=syncert_manifest.crm, erp=syncert_manifest.erp, data_dir=Path(data_dir)) as host:
        yield host


@pytest.fixture
def syncert_progress(pytestconfig: pytest.Config) -> Callable[..., None]:
    """Print a line of a long scenario's progress now (with --syncert-progress; a no-op otherwise)."""
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")

    def say(line: str, end: str = "\n") -> None:
        if pytestconfig.getoption("--syncert-progress"):
            with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
                print(line, end=end, flush=True)
    return say


@pytest.fixture
def surge_settings(pytestconfig: pytest.Config) -> SurgeSettings:
    """How the volume scenarios run their surges (--syncert-surge-scale; scale 0: each profile's own)."""
    return SurgeSettings(scale=pytestconfig.getoption("--syncert-surge-scale") or 0.0,
                         workers=pytestconfig.getoption("--syncert-surge-workers") or 0)


@pytest.fixture
def sync(request: pytest.FixtureRequest, syncert_manifest: Manifest) -> Iterator[ScenarioRun]:
    info = scenario_info(request.node)
    if info is None:
        raise pytest.UsageError(f"{request.node.nodeid} uses `sync` without the scenario marker")
    missing = sorted(set(info.flows) - set(syncert_manifest.flows))
    if missing:
        pytest.skip(f"{NOT_APPLICABLE}the connector does not declare flow(s) {', '.join(missing)}")
    if info.needs_webhooks and not syncert_manifest.run.receives_webhooks:
        pytest.skip(f"{NOT_APPLICABLE}the scenario needs change events and the connector receives none "
                    "(service or python mode with a webhook_path)")
    record = run_record(request.config)
    run: ScenarioRun
    if request.config.getoption("--syncert-in-process"):
        run = _in_process_run(info, syncert_manifest, random_seed(request.config))
    else:
        keep_state = request.config.getoption("--syncert-keep-state")
        run = ScenarioRun(info, syncert_manifest, request.getfixturevalue("syncert_host"),
                          Path(keep_state) if keep_state else None, random_seed=random_seed(request.config))
    replay = request.config.stash.get(_REPLAY_KEY, None)
    if replay is not None and replay.scenario == info.id:
        run.replay = replay.case
    request.node.stash[_RUN_KEY] = run
    try:
        yield run
    finally:
        if record.interrupted:
            _clean_up_after_interruption(run, record)
        else:
            try:
                try:
                    run.collect()
                    run.check_contracts()
                    if run.replay is not None and not run.replay_read:
                        raise ScenarioSetupError(f"{info.id} generates no cases: a replay file cannot run it again")
                    writes = run.unmapped_writes()
                    if writes:
                        run.record_check("writes outside the mapping", {"changes": len(writes)}, {"changes": writes})
                        raise UnmappedWrites("the connector changed what the mapping does not let it write: "
                                             + "; ".join(writes[:5]) + (" ..." if len(writes) > 5 else ""))
                finally:
                    record.scrubber.add(run.issued_secrets())
                    record.leaks += _credential_leaks(run, record.scrubber)
            finally:
                run.close(record.scrubber.scrub)


def _in_process_run(info: ScenarioInfo, manifest: Manifest, seed: int) -> ScenarioRun:
    from syncert.harness.inprocess_run import InProcessRun

    if manifest.run.mode != "python":
        raise pytest.UsageError(f"--syncert-in-process runs python-mode connectors (an `entrypoint`); "
                                f"{manifest.path} is in {manifest.run.mode} mode")
    if info.category != "unit":
        pytest.skip("in-process runs take unit scenarios only")
    return InProcessRun(info, manifest, seed)


def _clean_up_after_interruption(run: ScenarioRun, record: RunRecord) -> None:
    """Stop the connector and remove the scenario's files; nothing is judged or raised."""
    with contextlib.suppress(Exception):
        record.scrubber.add(run.issued_secrets())
    with contextlib.suppress(LeftoverProcesses):
        run.close(record.scrubber.scrub)


def _credential_leaks(run: ScenarioRun, scrubber: SecretScrubber) -> list[dict[str, Any]]:
    """Where the connector wrote a credential: its cycles' output, its service output, its dead letters."""
    places = []
    for number, cycle in enumerate(run.evidence.cycles, 1):
        places += [(f"cycle {number} stdout", cycle.stdout), (f"cycle {number} stderr", cycle.stderr)]
    if run.evidence.service_output:
        places += [("service stdout", run.evidence.service_output[0]),
                   ("service stderr", run.evidence.service_output[1])]
    places.append(("dead-letter file", run.workspace.raw_dead_letters()))
    return [{"scenario": run.info.id, "where": where, "line": leak.line, "form": leak.form, "excerpt": leak.excerpt}
            for where, text in places if text for leak in scrubber.find(text)]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_START_KEY] = time.monotonic()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    report = yield
    info = scenario_info(item)
    if info is None:
        return report
    result = item.stash.get(_RESULT_KEY, None)
    if result is None:
        result = {"id": info.id, "category": info.category, "flows": list(info.flows), "level": info.level,
                  "intent": info.intent, "needs_webhooks": info.needs_webhooks, "nodeid": item.nodeid,
                  "status": "passed", "message": ""}
        item.stash[_RESULT_KEY] = result
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        result.update(status="not_applicable" if reason.startswith(NOT_APPLICABLE) else "skipped", message=reason)
    elif report.failed:
        status = _failure_status(report.when, call)
        if result["status"] in ("passed", "skipped") or status == "error":
            result["status"] = status
        result["message"] = "\n".join(filter(None, (result["message"], _failure_message(call))))
    if report.when == "teardown":  # the scenario is over (its run closed): its result is final
        _finish(item, result)
        if _is_worker(item.config):  # on its way to the run's own session, with the report
            report.user_properties.append((_RESULT_PROPERTY, json.dumps(result, default=str)))
    return report


def _finish(item: pytest.Item, result: dict[str, Any]) -> None:
    """Time the scenario, add its evidence and keep its result, scrubbed, in the session's record."""
    record = run_record(item.config)
    result["duration_s"] = round(time.monotonic() - item.stash.get(_START_KEY, time.monotonic()), 3)
    run = item.stash.get(_RUN_KEY, None)
    result["evidence"] = _evidence(run, record) if run is not None else {}
    record.results.append(scrub_tree(result, record.scrubber))
    item.stash[_RESULT_KEY] = record.results[-1]


def _failure_status(phase: str, call: pytest.CallInfo) -> str:
    error = call.excinfo.value if call.excinfo else None
    if isinstance(error, EvidenceError) or phase == "setup":
        return "error"
    if isinstance(error, AssertionError) and (phase == "call" or isinstance(error, LeftoverProcesses | UnmappedWrites)):
        return "failed"
    return "error"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    progress = scenario_info(item) is not None and item.config.getoption("--syncert-progress")
    if progress:
        print(f"  {scenario_info(item).id:<21}", end=" ", flush=True)  # the line ends with the verdict
    outcome = yield
    result = item.stash.get(_RESULT_KEY, None)
    if progress and result is not None:
        print(_verdict(result), flush=True)
    return outcome


def _verdict(result: dict[str, Any]) -> str:
    """The end of a scenario's progress line: status, duration and the first line of its message."""
    detail = (result["message"] or "").strip().splitlines()[:1]
    return (f"{result['status'].replace('_', ' '):>14} {result['duration_s']:6.1f}s"
            f"  {detail[0][:100] if detail else ''}")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """In a run with workers (`-n N`), each scenario's result arrives with its teardown report (and is taken
    off it before junit.xml sees it)."""
    if getattr(report, "node", None) is None or report.when != "teardown":
        return
    config = report.node.config
    for name, value in [p for p in report.user_properties if p[0] == _RESULT_PROPERTY]:
        report.user_properties.remove((name, value))
        result = json.loads(value)
        run_record(config).results.append(result)
        if config.getoption("--syncert-progress"):
            print(f"  {result['id']:<21} {_verdict(result)}", flush=True)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Every worker uses the run's seed."""
    node.workerinput["syncert_seed"] = random_seed(node.config)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """A worker is done: the secrets it issued and the credential leaks it found join the run's."""
    output = getattr(node, "workeroutput", {}).get("syncert")
    record = run_record(node.config)
    if output:
        record.scrubber.add(output["secrets"])
        record.leaks += output["leaks"]
        record.outside_cpu_s += output["outside_cpu_s"]
    else:
        record.lost_workers += 1


def security_result(record: RunRecord) -> dict[str, Any]:
    """SEC-LEAK-01 over every scenario that ran: failed when any credential reached output or dead letters."""
    info = SECURITY_CHECK
    leaks = record.leaks
    message = "" if not leaks else (
        f"security finding: the connector wrote a credential it was given to its output or dead letters "
        f"{len(leaks)} time(s), first in {leaks[0]['scenario']} ({leaks[0]['where']}, line {leaks[0]['line']}, "
        f"{leaks[0]['form']})")
    return {"id": info.id, "category": info.category, "flows": [], "needs_webhooks": False, "level": info.level,
            "intent": info.intent, "nodeid": "", "status": "failed" if leaks else "passed", "message": message,
            "duration_s": 0.0,
            "evidence": {"security_findings": leaks[:100], "places_checked": "the output of every cycle and "
                         "service, and every dead-letter file, of every scenario that ran"}}


def contract_result(record: RunRecord) -> dict[str, Any]:
    """CONTRACT-01 over every scenario that ran: failed when the connector sent a malformed request (one that
    breaks the shape its vendor's contract gives: see harness.conformance); requests whose data did not fit a
    rule (a value too long) are listed, as the scenarios judge how the connector handled their refusal."""
    info, found, total = CONTRACT_CHECK, [], 0
    for result in record.results:
        violations = (result.get("evidence") or {}).get("contract_violations") or {}
        total += violations.get("count", 0)
        found += [{"scenario": result["id"], **violation} for violation in violations.get("first", [])]
    malformed = [v for v in found if v["kind"] == "shape"]
    first = (malformed or found or [{}])[0]
    message = "" if not found else (
        (f"{len(malformed)} malformed request(s)" if malformed else
         f"{total} request(s) with data that did not fit the contract (refusals the scenarios judge; not a failure)")
        + f", first in {first['scenario']}: {first['request']} ({first['side'].upper()}, answered {first['status']}):"
          f" {first['rule']}")
    return {"id": info.id, "category": info.category, "flows": [], "needs_webhooks": False, "level": info.level,
            "intent": info.intent, "nodeid": "", "status": "failed" if malformed else "passed", "message": message,
            "duration_s": 0.0,
            "evidence": {"contract_violations": {"count": total, "first": (malformed or found)[:100]},
                         "places_checked": "every request the connector sent in every scenario that ran"}}


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    record, config = run_record(session.config), session.config
    if _is_worker(config):  # the run's own session judges security over every worker's scenarios
        config.workeroutput["syncert"] = {"secrets": sorted(record.scrubber.secrets), "leaks": record.leaks,
                                          "outside_cpu_s": children_cpu_s()}
        return
    if config.pluginmanager.has_plugin("dsession"):  # the run's results came from workers
        _judge_across_workers(record)
        if record.lost_workers:
            record.results = [_withheld(result, record.lost_workers) for result in record.results]
    level = config.getoption("--syncert-level")
    if (level is None or level >= SECURITY_CHECK.level) and any(r["status"] in RAN for r in record.results):
        for judged in (security_result(record), contract_result(record)):
            check = scrub_tree(judged, record.scrubber)
            record.results.append(check)
            if config.getoption("--syncert-progress"):
                print(f"  {check['id']:<21} {check['status']:>14} {'':>7}  {check['message'][:100]}", flush=True)
            if check["status"] == "failed" and session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED  # plain pytest runs fail on these too
    path = session.config.getoption("--syncert-results")
    if path:
        Path(path).write_text(json.dumps(record.results, indent=2, default=str))


def _withheld(result: dict[str, Any], lost: int) -> dict[str, Any]:
    """A result with nothing the connector could have written into it: a worker that died took the secrets
    it issued with it, so they cannot be scrubbed from anything a connector may have carried them into."""
    note = (f"withheld: {lost} harness worker(s) died during the run (killed by a connector?), so the secrets "
            "they issued could not be scrubbed from the connector's output, requests or records")
    return {**result, "message": f"{result['status']}; {note}" if result["message"] else "",
            "evidence": {"withheld": note}}


def _judge_across_workers(record: RunRecord) -> None:
    """Scrub every result with the secrets of every worker: a credential one worker issued that shows in
    another's evidence (carried over by the connector) is redacted and counted as a leak."""
    for number, result in enumerate(record.results):
        text = json.dumps(result, default=str)
        leaks = record.scrubber.find(text)
        if leaks:
            record.leaks += [{"scenario": result["id"], "where": "evidence in the report", "line": leak.line,
                              "form": leak.form, "excerpt": leak.excerpt} for leak in leaks]
            record.results[number] = scrub_tree(result, record.scrubber)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Plain pytest runs show the run-wide checks, which are not tests of their own."""
    wide = {info.id for info in RUN_WIDE_CHECKS}
    for check in (r for r in run_record(terminalreporter.config).results if r["id"] in wide):
        terminalreporter.write_line(f"{check['id']} {check['status']}"
                                    + (f": {check['message']}" if check["message"] else ""))


def _failure_message(call: pytest.CallInfo) -> str:
    if call.excinfo is None:
        return ""
    error = call.excinfo.value
    text = str(error).strip() or type(error).__name__
    if isinstance(error, AssertionError):  # ConnectorFailed and LeftoverProcesses are AssertionErrors too
        return text.split("\nassert ")[0][:2000]
    if isinstance(error, EvidenceError):
        return f"evidence error: {text}"[:2000]
    return f"{type(error).__name__}: {text}"[:2000]


def _evidence(run: ScenarioRun, record: RunRecord) -> dict[str, Any]:
    evidence, scrubber = run.evidence, record.scrubber
    excerpt = {side: _journal_excerpt(entries, scrubber) for side, entries in evidence.journal.items()}
    return {
        "scenario_label": evidence.scenario_label,
        "converged": evidence.converged,
        "latency_s": round(evidence.latency_s, 3) if evidence.latency_s is not None else None,
        "cycles": [{"summary": c.summary(), "exit_code": c.exit_code, "timed_out": c.timed_out,
                    "killed_at": c.killed_at, "duration_s": round(c.duration_s, 3),
                    "stdout": tail(c.stdout, OUTPUT_IN_REPORT, scrubber),
                    "stderr": tail(c.stderr, OUTPUT_IN_REPORT, scrubber)}
                   for c in evidence.cycles],
        "api_calls": {side: len(entries) for side, entries in evidence.journal.items()},
        "writes": {side: len(evidence.writes(side)) for side in evidence.journal},
        "dead_letters": evidence.dead_letters[:100],
        "checks": evidence.checks,
        "notes": evidence.notes,
        "attachments": dict(evidence.attachments),
        "security_findings": [leak for leak in record.leaks if leak["scenario"] == run.info.id],
        "contract_violations": {"count": len(evidence.contract_violations),
                                "first": [v.as_dict() for v in evidence.contract_violations[:VIOLATIONS_IN_REPORT]]},
        "journal_excerpt": excerpt,
        "service_output": {"stdout": tail(evidence.service_output[0], OUTPUT_IN_REPORT, scrubber),
                           "stderr": tail(evidence.service_output[1], OUTPUT_IN_REPORT, scrubber)}
        if evidence.service_output else None,
    }


def _journal_excerpt(entries: list[dict[str, Any]], scrubber: SecretScrubber, size: int = 25) -> list[dict[str, Any]]:
    """Errors first, then the latest requests; bodies shortened (after scrubbing)."""
    failed = [e["status"] >= 400 or e["status"] == 0 or bool(e.get("fault")) for e in entries]  # faults too
    errors = [e for e, bad in zip(entries, failed, strict=True) if bad]
    others = [e for e, bad in zip(entries, failed, strict=True) if not bad]
    chosen = errors[-size // 2:] + others[-(size - min(len(errors), size // 2)):]
    chosen.sort(key=lambda e: e["seq"])
    return [{"seq": e["seq"], "method": e["method"], "path": e["path"], "query": head(e["query"], 200, scrubber),
             "status": e["status"], "tags": e["tags"], "kind": e["kind"],
             "operation": e["operation"], "duration_ms": e["duration_ms"],
             "in_flight": e["in_flight"], "request_body": head(e["request_body"], 500, scrubber),
             "response_body": head(e["response_body"], 500, scrubber)} for e in chosen]
