"""Every scenario catches something: it fails on the flawed connector built for it (the reference passes
them all: tests/test_reference_certified.py). `--dist loadfile` keeps this module on one worker, so the flawed
connectors are certified once, DETECTION_JOBS at a time."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.certify_runs import ROOT, certify

sys.path.insert(0, str(ROOT / "connectors" / "flawed"))
from run_flawed import DEFECTS

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


@pytest.mark.parametrize(("defect", "scenario_id"), [(name, target) for name, (_, target) in DEFECTS.items()])
def test_scenario_fails_on_its_flawed_connector(defect: str, scenario_id: str,
                                                aimed_runs: dict[str, tuple[int, dict]]) -> None:
    code, report = aimed_runs[defect]
    [result] = [s for s in report["scenarios"] if s["id"] == scenario_id]
    assert result["status"] == "failed", f"{scenario_id} did not catch the defect {defect!r}"
    assert result["message"], "a failure must say what went wrong"
    assert code == 1 and report["verdict"] == "failed"
