"""Every scenario catches something: it fails on the flawed connector built for it, passes on the reference."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from syncert.harness.catalogue import list_scenarios

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "connectors" / "flawed"))
from run_flawed import DEFECTS  # noqa: E402


def _certify_command(manifest: Path, report_dir: Path, only: str | None = None) -> list[str]:
    # our own connectors: trusted, so their scenarios may run side by side
    command = [sys.executable, "-m", "syncert", "certify", str(manifest), "--report-dir", str(report_dir),
               "--jobs", "2"]
    return [*command, "--only", only] if only else command


def _finished(process: subprocess.Popen, report_dir: Path) -> tuple[int, dict]:
    # the whole catalogue includes volume scenarios (E2E-BACKFILL-01: 5,000 accounts): minutes on 2 busy cores
    _, stderr = process.communicate(timeout=1200)
    assert "Traceback" not in stderr, stderr
    return process.returncode, json.loads((report_dir / "latest" / "report.json").read_text())


def _start(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def certify(manifest: Path, report_dir: Path, only: str | None = None) -> tuple[int, dict]:
    return _finished(_start(_certify_command(manifest, report_dir, only)), report_dir)


def test_reference_connector_is_certified_at_level_4_and_the_catalogue_runs_as_plain_pytest(tmp_path: Path) -> None:
    # the whole catalogue through certify and, side by side, its unit scenarios as plain pytest (the plugin's
    # run-wide security check included): the whole catalogue twice would cost CI minutes and prove no more
    plain = _start([sys.executable, "-m", "pytest", "scenarios/unit", "--connector",
                    "connectors/reference/connector.toml", "-q", "-p", "no:cacheprovider"])
    code, report = certify(ROOT / "connectors" / "reference" / "connector.toml", tmp_path)
    statuses = {s["id"]: s["status"] for s in report["scenarios"]}
    assert code == 0 and report["verdict"] == "certified" and report["level_reached"] == 4, statuses
    # command mode receives no change events: the webhook scenarios are not applicable, every other one passes
    webhooks = {entry["id"] for entry in list_scenarios() if entry["needs_webhooks"]}
    assert {i for i, status in statuses.items() if status != "passed"} == webhooks
    assert {statuses[i] for i in webhooks} == {"not_applicable"} and len(statuses) >= len(DEFECTS)
    stdout, _ = plain.communicate(timeout=1200)
    assert plain.returncode == 0, stdout[-2000:]
    ran = sum(1 for entry in list_scenarios() if entry["category"] == "unit")
    assert f"{ran} passed" in stdout
    assert "SEC-LEAK-01 passed" in stdout and "CONTRACT-01 passed" in stdout


DETECTION_JOBS = 3  # flawed connectors certified at once: their scenarios mostly wait (Retry-After, holds, windows)


def _aimed_run(defect: str, scenario_id: str, report_dir: Path) -> tuple[int, dict]:
    # the run-wide checks judge the scenarios that ran (their output, their requests): run one for them
    only = "E2E-ACC-01" if scenario_id in ("SEC-LEAK-01", "CONTRACT-01") else scenario_id
    return certify(ROOT / "connectors" / "flawed" / defect / "connector.toml", report_dir, only=only)


@pytest.fixture(scope="module")
def aimed_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, dict]]:
    """Each selected flawed connector certified against the scenario aimed at it, DETECTION_JOBS at a time
    (`-k` picks a few: only theirs run)."""
    selected = {item.callspec.params["defect"] for item in request.session.items
                if item.module is request.module and "defect" in getattr(getattr(item, "callspec", None), "params", {})}
    root = tmp_path_factory.mktemp("detection")
    with ThreadPoolExecutor(DETECTION_JOBS) as pool:
        runs = {defect: pool.submit(_aimed_run, defect, target, root / defect)
                for defect, (_, target) in DEFECTS.items() if defect in selected}
        return {defect: run.result() for defect, run in runs.items()}


@pytest.mark.xdist_group("detection")  # with `-n N --dist loadgroup`: one worker runs them, the fixture once
@pytest.mark.parametrize(("defect", "scenario_id"), [(name, target) for name, (_, target) in DEFECTS.items()])
def test_scenario_fails_on_its_flawed_connector(defect: str, scenario_id: str,
                                                aimed_runs: dict[str, tuple[int, dict]]) -> None:
    code, report = aimed_runs[defect]
    [result] = [s for s in report["scenarios"] if s["id"] == scenario_id]
    assert result["status"] == "failed", f"{scenario_id} did not catch the defect {defect!r}"
    assert result["message"], "a failure must say what went wrong"
    assert code == 1 and report["verdict"] == "failed"


def test_reference_connector_is_certified_in_service_and_python_modes(tmp_path: Path) -> None:
    runs = {mode: _start(_certify_command(ROOT / "connectors" / "reference" / f"connector-{mode}.toml",
                                          tmp_path / mode)) for mode in ("service", "python")}
    for mode, process in runs.items():
        code, report = _finished(process, tmp_path / mode)
        assert report["connector"]["mode"] == mode
        assert code == 0 and report["level_reached"] == 4, {s["id"]: s["message"] for s in report["scenarios"]
                                                            if s["status"] != "passed"}
