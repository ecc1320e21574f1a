"""Every scenario catches something: it fails on the flawed connector built for it, passes on the reference."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from syncert.harness.catalogue import list_scenarios

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "connectors" / "flawed"))
from run_flawed import DEFECTS  # noqa: E402


def certify(manifest: Path, report_dir: Path, only: str | None = None) -> tuple[int, dict]:
    command = [sys.executable, "-m", "syncert", "certify", str(manifest), "--report-dir", str(report_dir)]
    if only:
        command += ["--only", only]
    # the whole catalogue includes volume scenarios (E2E-BACKFILL-01: 5,000 accounts): minutes on 2 busy cores
    finished = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert "Traceback" not in finished.stderr, finished.stderr
    return finished.returncode, json.loads((report_dir / "latest" / "report.json").read_text())


def test_reference_connector_is_certified_at_level_4(tmp_path: Path) -> None:
    code, report = certify(ROOT / "connectors" / "reference" / "connector.toml", tmp_path)
    statuses = {s["id"]: s["status"] for s in report["scenarios"]}
    assert code == 0 and report["verdict"] == "certified" and report["level_reached"] == 4, statuses
    assert set(statuses.values()) == {"passed"} and len(statuses) >= len(DEFECTS)


@pytest.mark.parametrize(("defect", "scenario_id"), [(name, target) for name, (_, target) in DEFECTS.items()])
def test_scenario_fails_on_its_flawed_connector(defect: str, scenario_id: str, tmp_path: Path) -> None:
    # the run-wide security check judges the output of the scenarios that ran: run one for it
    only = "E2E-ACC-01" if scenario_id == "SEC-LEAK-01" else scenario_id
    code, report = certify(ROOT / "connectors" / "flawed" / defect / "connector.toml", tmp_path, only=only)
    [result] = [s for s in report["scenarios"] if s["id"] == scenario_id]
    assert result["status"] == "failed", f"{scenario_id} did not catch the defect {defect!r}"
    assert result["message"], "a failure must say what went wrong"
    assert code == 1 and report["verdict"] == "failed"


@pytest.mark.parametrize("mode", ["service", "python"])
def test_reference_connector_is_certified_in_service_and_python_modes(mode: str, tmp_path: Path) -> None:
    code, report = certify(ROOT / "connectors" / "reference" / f"connector-{mode}.toml", tmp_path)
    assert report["connector"]["mode"] == mode
    assert code == 0 and report["level_reached"] == 4, {s["id"]: s["message"] for s in report["scenarios"]}


def test_catalogue_runs_as_plain_pytest() -> None:
    finished = subprocess.run([sys.executable, "-m", "pytest", "scenarios", "--connector",
                               "connectors/reference/connector.toml", "-q", "-p", "no:cacheprovider"],
                              capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert finished.returncode == 0, finished.stdout[-2000:]
    assert f"{sum(1 for entry in list_scenarios() if entry['nodeid'])} passed" in finished.stdout
    assert "SEC-LEAK-01 passed" in finished.stdout
