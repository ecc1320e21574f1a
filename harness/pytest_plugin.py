"""The syncert pytest plugin (entry point `pytest11`): the catalogue runs as plain pytest.

    pytest scenarios --connector path/to/connector.toml [--syncert-results results.json]

Fixtures: `sync` (a ScenarioRun for the current scenario, simulators reset and the connector ready),
`syncert_host` (the simulators, one per session) and `syncert_manifest`. Scenarios carry the
`scenario` marker (use the `scenario(...)` decorator); a scenario whose flows the connector does not
declare is skipped as "not applicable", never counted as passed. Without --connector, scenarios skip.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
from syncert.harness.launchers import check_launchable
from syncert.harness.manifest import Manifest, ManifestError, load_manifest
from syncert.harness.runner import ScenarioInfo, ScenarioRun
from syncert.simulators.host import SimulatorHost, run_in_background

NOT_APPLICABLE = "not applicable: "
SECRET_NAMES = ("SECRET", "TOKEN", "PASSWORD", "CLIENT_ID", "CONSUMER_KEY")
ISSUED_SECRETS: set[str] = set()  # every credential this process's runs issued, scrubbed from reports
_RUN_KEY = pytest.StashKey[ScenarioRun]()
_START_KEY = pytest.StashKey[float]()
_RESULT_KEY = pytest.StashKey[dict[str, Any]]()
_RESULTS_KEY = pytest.StashKey[list[dict[str, Any]]]()


def scenario(id: str, category: str, flows: tuple[str, ...], level: int, intent: str) -> Callable:
    """Mark a test function as a catalogue scenario."""
    return pytest.mark.scenario(ScenarioInfo(id, category, tuple(flows), level, intent))


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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "scenario(info): a syncert catalogue scenario")
    config.stash[_RESULTS_KEY] = []


def _selected(item: pytest.Item, level: int | None, only: str | None) -> bool:
    info = scenario_info(item)
    if info is None:
        return True
    if level is not None and info.level > level:
        return False
    if only:
        pattern = only.lower()
        return fnmatch(info.id.lower(), pattern) or pattern in info.id.lower() or pattern in item.nodeid.lower()
    return True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    level, only = config.getoption("--syncert-level"), config.getoption("--syncert-only")
    if level is None and not only:
        return
    keep = [item for item in items if _selected(item, level, only)]
    config.hook.pytest_deselected(items=[item for item in items if item not in keep])
    items[:] = keep


@pytest.fixture(scope="session")
def syncert_manifest(pytestconfig: pytest.Config) -> Manifest:
    path = pytestconfig.getoption("--connector")
    if not path:
        pytest.skip("no --connector given: scenarios need a connector.toml")
    try:
        manifest = load_manifest(path)
        check_launchable(manifest)
    except ManifestError as error:
        raise pytest.UsageError(str(error)) from None
    return manifest


def _remember_secrets(env: dict[str, str]) -> None:
    ISSUED_SECRETS.update(value for key, value in env.items()
                          if key.startswith("SYNCERT_") and any(name in key for name in SECRET_NAMES))


@pytest.fixture(scope="session")
def syncert_host(syncert_manifest: Manifest) -> Iterator[SimulatorHost]:
    with tempfile.TemporaryDirectory(prefix="syncert-run-") as data_dir, \
            run_in_background(crm=syncert_manifest.crm, erp=syncert_manifest.erp, data_dir=Path(data_dir)) as host:
        _remember_secrets(host.environment())
        try:
            yield host
        finally:
            for side in host.sides.values():
                ISSUED_SECRETS.update(side.simulator.dialect.tokens.issued())


@pytest.fixture
def sync(request: pytest.FixtureRequest, syncert_manifest: Manifest, syncert_host: SimulatorHost,
         tmp_path: Path) -> Iterator[ScenarioRun]:
    info = scenario_info(request.node)
    if info is None:
        raise pytest.UsageError(f"{request.node.nodeid} uses `sync` without the scenario marker")
    missing = sorted(set(info.flows) - set(syncert_manifest.flows))
    if missing:
        pytest.skip(f"{NOT_APPLICABLE}the connector does not declare flow(s) {', '.join(missing)}")
    run = ScenarioRun(info, syncert_manifest, syncert_host, tmp_path)
    _remember_secrets(run.launcher.env)
    request.node.stash[_RUN_KEY] = run
    try:
        yield run
    finally:
        try:
            run.collect()
        finally:
            run.close()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_START_KEY] = time.monotonic()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    report = yield
    info = scenario_info(item)
    if info is None or not (report.when == "call" or (report.when == "setup" and report.outcome != "passed")):
        return report
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        status = "not_applicable" if reason.startswith(NOT_APPLICABLE) else "skipped"
    else:
        status = "passed" if report.passed else "failed"
        reason = _failure_message(call) if report.failed else ""
    item.stash[_RESULT_KEY] = {"id": info.id, "category": info.category, "flows": list(info.flows),
                               "level": info.level, "intent": info.intent, "nodeid": item.nodeid,
                               "status": status, "message": reason}
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    outcome = yield
    result = item.stash.get(_RESULT_KEY, None)
    if result is not None:
        result["duration_s"] = round(time.monotonic() - item.stash.get(_START_KEY, time.monotonic()), 3)
        run = item.stash.get(_RUN_KEY, None)
        result["evidence"] = _evidence(run) if run is not None else {}
        item.config.stash[_RESULTS_KEY].append(result)
        if item.config.getoption("--syncert-progress"):
            detail = (result["message"] or "").strip().splitlines()[:1]
            print(f"  {result['status'].replace('_', ' '):>14}  {result['id']:<14} {result['duration_s']:6.1f}s"
                  f"  {detail[0][:100] if detail else ''}", flush=True)
    return outcome


def pytest_collectreport(report: pytest.CollectReport) -> None:
    """With the terminal reporter off (syncert certify), collection errors must still be seen."""
    if report.failed:
        print(f"syncert: cannot load {report.nodeid}:\n{report.longreprtext}", file=sys.stderr, flush=True)


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = session.config.getoption("--syncert-results")
    if path:
        Path(path).write_text(json.dumps(session.config.stash[_RESULTS_KEY], indent=2, default=str))


def _failure_message(call: pytest.CallInfo) -> str:
    if call.excinfo is None:
        return ""
    error = call.excinfo.value
    text = str(error).strip() or type(error).__name__
    if isinstance(error, AssertionError):  # ConnectorFailed is an AssertionError too
        return text.split("\nassert ")[0][:2000]
    return f"{type(error).__name__}: {text}"[:2000]


def _evidence(run: ScenarioRun) -> dict[str, Any]:
    evidence = run.evidence
    excerpt = {side: _journal_excerpt(entries) for side, entries in evidence.journal.items()}
    return {
        "converged": evidence.converged,
        "latency_s": round(evidence.latency_s, 3) if evidence.latency_s is not None else None,
        "cycles": [{"summary": c.summary(), "exit_code": c.exit_code, "timed_out": c.timed_out,
                    "duration_s": round(c.duration_s, 3), "stdout": c.stdout[-4000:], "stderr": c.stderr[-4000:]}
                   for c in evidence.cycles],
        "api_calls": {side: len(entries) for side, entries in evidence.journal.items()},
        "writes": {side: len(evidence.writes(side)) for side in evidence.journal},
        "dead_letters": evidence.dead_letters[:100],
        "checks": evidence.checks,
        "notes": evidence.notes,
        "journal_excerpt": excerpt,
        "service_output": {"stdout": evidence.service_output[0][-4000:], "stderr": evidence.service_output[1][-4000:]}
        if evidence.service_output else None,
    }


def _journal_excerpt(entries: list[dict[str, Any]], size: int = 25) -> list[dict[str, Any]]:
    """Errors first, then the latest requests; bodies shortened."""
    errors = [e for e in entries if e["status"] >= 400]
    chosen = (errors[-size // 2:] + [e for e in entries if e not in errors][-(size - min(len(errors), size // 2)):])
    chosen.sort(key=lambda e: e["seq"])
    return [{"seq": e["seq"], "method": e["method"], "path": e["path"], "query": e["query"][:200],
             "status": e["status"], "duration_ms": e["duration_ms"], "in_flight": e["in_flight"],
             "request_body": e["request_body"][:500], "response_body": e["response_body"][:500]} for e in chosen]
