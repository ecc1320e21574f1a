"""`syncert certify`: run the catalogue against a connector and write the certification report.

SIGINT or SIGTERM stop the run cleanly: the connector and the simulators are stopped, temporary files
removed, and the report is written with verdict `interrupted` for the scenarios that ended.
"""

from __future__ import annotations

import contextlib
import os
import random
import resource
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from syncert import __version__, connectors
from syncert.harness.catalogue import CATALOGUE, SURGES, CatalogueError, list_scenarios, load_failure
from syncert.harness.containment import children, harden_harness
from syncert.harness.launchers import check_launchable
from syncert.harness.manifest import Manifest, load_manifest
from syncert.harness.mapping import describe as describe_mapping
from syncert.harness.pytest_plugin import (
    RUN_WIDE_CHECKS,
    STOP_WORKER,
    RunRecord,
    children_cpu_s,
    run_record,
    selects,
)
from syncert.harness.reports import LEVELS, build_report, write_reports
from syncert.harness.runner import ScenarioInfo
from syncert.harness.surge import SurgeSettings

REFERENCE_MANIFEST = Path(connectors.__file__).parent / "reference" / "connector.toml"


# signals that would otherwise end certify without a report or its cleanup (a connector can send any of them)
STOPPING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM)


class SelectionError(ValueError):
    """--only and --level select no scenario."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM reached `syncert certify`; pytest stops and tears every fixture down."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _Recorder:
    """A pytest plugin that keeps the session's RunRecord and any scenario module that failed to load."""

    def __init__(self) -> None:
        self.record: RunRecord | None = None
        self.collection_errors: list[tuple[str, str]] = []

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collection_errors.append((report.nodeid, report.longreprtext))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.record = run_record(session.config)


def manifest_for(path: str | None) -> Manifest:
    """The validated manifest (the bundled reference connector by default); raises ManifestError."""
    manifest = load_manifest(path or REFERENCE_MANIFEST)
    check_launchable(manifest)
    return manifest


@contextlib.contextmanager
def _stop_on_signals(received: list[int], workers: bool) -> Iterator[None]:
    """Turn the first of STOPPING_SIGNALS into Interrupted, and tell the `workers` (this process's children) to
    stop cleanly; later signals only wait for the cleanup to end (a worker passes its own on, at once)."""
    first = time.monotonic()

    def handler(signum: int, _: Any) -> None:
        nonlocal first
        if received:
            if time.monotonic() - first > 1:
                print(f"syncert certify: {signal.Signals(signum).name} again: still cleaning up", flush=True)
            return
        received.append(signum)
        first = time.monotonic()
        print(f"\nsyncert certify: {signal.Signals(signum).name}: stopping the connector and the simulators",
              flush=True)
        for pid in children() if workers else ():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, STOP_WORKER)
        raise Interrupted(signum)

    previous = {signum: signal.signal(signum, handler) for signum in STOPPING_SIGNALS}
    try:
        yield
    finally:
        for signum, action in previous.items():
            signal.signal(signum, action)


def certify(manifest: Manifest, report_root: Path, level: int, only: str | None, seed: int | None,
            keep_state: bool = False, replay: Path | None = None, jobs: int = 1,
            surge: SurgeSettings | None = None) -> tuple[dict, Path, int | None]:
    """Run the scenarios, `jobs` at a time, and write the reports; returns the report, its directory and the
    signal that interrupted the run (None when it ran to the end). `surge`: the volume scenarios' scale and
    Locust workers (`syncert surge`). Raises CatalogueError when the catalogue cannot load."""
    catalogue = SURGES if surge is not None else CATALOGUE
    command = "syncert surge" if surge is not None else "syncert certify"
    selected = _selection(level, only, catalogue)
    jobs = min(jobs, len(selected)) if replay is None else 1
    seed = seed if seed is not None else random.randrange(1, 2**31)
    started = time.time()
    run_id = datetime.fromtimestamp(started, UTC).strftime("%Y%m%d-%H%M%S") + f"-{secrets.token_hex(3)}"
    report_dir = report_root / run_id
    print(f"{command}: {manifest.name} {manifest.version} ({manifest.run.mode} mode, {manifest.crm} <-> "
          f"{manifest.erp}), target level {level} ({LEVELS[level]}), seed {seed}"
          + (f", {jobs} scenarios at a time" if jobs > 1 else ""), flush=True)
    mapping = describe_mapping(manifest.mapping)
    if not mapping["standard"]:
        weaker = mapping["standard_checks_not_made"]
        print(f"{command}: judged by the connector's own mapping {manifest.mapping}"
              + (f"; it leaves out or changes {len(weaker)} comparison(s) of the standard mapping, so it earns "
                 "no certificate" if weaker else ""), flush=True)
    harden_harness()  # orphans of the connector come here; the admin token in memory is out of its reach
    received: list[int] = []
    recorder = _Recorder()
    with tempfile.TemporaryDirectory(prefix="syncert-certify-") as scratch, _stop_on_signals(received, jobs > 1):
        junit_path = Path(scratch) / "junit.xml"
        ini = Path(scratch) / "pytest.ini"  # our settings, whatever pytest config the current directory has
        ini.write_text("[pytest]\n")
        args = [str(catalogue), "-c", str(ini), "--connector", str(manifest.path), "--syncert-seed", str(seed),
                "--syncert-level", str(level), "--syncert-progress", "--junitxml", str(junit_path),
                "-o", "junit_suite_name=syncert", "-p", "no:cacheprovider", "-p", "no:terminal",
                "--rootdir", str(CATALOGUE.parent)]
        if jobs > 1:  # pytest-xdist workers, each with its own simulators; the longest wait is shared out
            args += ["-n", str(jobs), "--dist", "worksteal", "--basetemp", str(Path(scratch) / "workers")]
        if only:
            args += ["--syncert-only", only]
        if replay is not None:
            args += ["--syncert-replay", str(replay.resolve())]
        if surge is not None:
            args += ["--syncert-surge-scale", str(surge.scale), "--syncert-surge-workers", str(surge.workers)]
        if keep_state:  # kept privately during the run, copied into the report at the end
            args += ["--syncert-keep-state", str(Path(scratch) / "state")]
        random.seed(seed)
        with _temporary_files_in(Path(scratch) / "workers-tmp") if jobs > 1 else contextlib.nullcontext():
            exit_code = pytest.main(args, plugins=[recorder])
        if jobs > 1:  # the workers are gone: what is left is a connector orphaned by a worker it killed
            for pid in children():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        record = recorder.record or RunRecord()
        if recorder.collection_errors:
            raise CatalogueError(load_failure(recorder.collection_errors))
        if exit_code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR) and not received:
            raise CatalogueError(f"the scenario catalogue could not run (pytest exit code {int(exit_code)}); "
                                 "see the messages above")
        if not received:
            record.results += _did_not_run(selected, record.results, replay is not None)
        finished = time.time()
        cpu = _cpu_shares(record, jobs > 1)
        report = build_report(
            run_id=run_id, started_at=_iso(started), finished_at=_iso(finished), duration_s=finished - started,
            version=__version__, seed=seed, requested_level=level, scenarios=record.results, selection=only,
            replay=str(replay) if replay else None, jobs=jobs, cpu=cpu,
            interrupted=signal.Signals(received[0]).name if received else None,
            connector={"name": manifest.name, "version": manifest.version, "manifest": str(manifest.path),
                       "mode": manifest.run.mode, "crm": manifest.crm, "erp": manifest.erp,
                       "flows": list(manifest.flows), "mapping": mapping})
        if record.lost_workers:  # what the connector wrote may hold secrets nobody can scrub any more
            print(f"{command}: warning: {record.lost_workers} worker(s) died during the run: the report keeps "
                  "the scenarios' statuses only (no evidence, junit.xml or kept state)", file=sys.stderr)
        for warning in write_reports(report, report_dir, None if record.lost_workers else junit_path, record.scrubber,
                                     Path(scratch) / "state" if keep_state and not record.lost_workers else None):
            print(f"{command}: warning: {warning}", file=sys.stderr)
    return report, report_dir, received[0] if received else None


@contextlib.contextmanager
def _temporary_files_in(directory: Path) -> Iterator[None]:
    """Workers started meanwhile (and their connectors) keep their temporary files in `directory`, inside the
    run's own: they go with it, even those of a worker that was killed."""
    directory.mkdir()
    before = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(directory)
    try:
        yield
    finally:
        if before is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = before


def _cpu_shares(record: RunRecord, workers: bool) -> dict[str, float]:
    """The run's CPU seconds, and how much of it was the harness's own (pytest, simulators, checks) and how much
    the connector's and Locust's (processes started by the scenarios). With workers, this process's children
    are the workers, whose own children they reported."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    total = own.ru_utime + own.ru_stime + children_cpu_s()
    outside = record.outside_cpu_s if workers else children_cpu_s()
    return {"total_s": round(total, 1), "harness_s": round(total - outside, 1),
            "connector_and_locust_s": round(outside, 1)}


def _did_not_run(selected: list[tuple[ScenarioInfo, str]], results: list[dict[str, Any]],
                 replay: bool) -> list[dict[str, Any]]:
    """An error for each selected scenario that has no result though the run was not interrupted (its worker
    stopped or died: a connector that signals its harness ends its own certification)."""
    if replay:
        return []
    ended = {result["nodeid"] for result in results}
    return [{"id": info.id, "category": info.category, "flows": list(info.flows), "level": info.level,
             "intent": info.intent, "needs_webhooks": info.needs_webhooks, "nodeid": nodeid, "status": "error",
             "message": "the scenario did not run, or not to its end: the harness process running it stopped (was "
                        "it signalled or killed by the connector?)", "duration_s": 0.0, "evidence": {}}
            for info, nodeid in selected if nodeid not in ended]


def _selection(level: int, only: str | None, path: Path = CATALOGUE) -> list[tuple[ScenarioInfo, str]]:
    """The scenarios --only and --level select, with their node ids; SelectionError when there are none (a
    usage error, not a verdict)."""
    catalogue = [(ScenarioInfo(e["id"], e["category"], tuple(e["flows"]), e["level"], e["intent"],
                               e.get("needs_webhooks", False)), e["nodeid"])
                 for e in list_scenarios(path) if e["nodeid"]]
    selected = [(info, nodeid) for info, nodeid in catalogue if selects(info, nodeid, level, only)]
    if selected or not only:
        return selected
    ids = ", ".join(info.id for info, _ in catalogue)
    matching = [info.id for info, nodeid in catalogue if selects(info, nodeid, None, only)]
    if matching:
        raise SelectionError(f"--only {only!r} selects {', '.join(matching)}, above --level {level}: nothing to run.")
    run_wide = " and ".join(check.id for check in RUN_WIDE_CHECKS)
    raise SelectionError(f"--only {only!r} matches no scenario (a glob such as 'ERR-*' or a part of an id); the "
                         f"scenarios are {ids}. {run_wide} judge whichever scenarios run.")


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")
