"""The chaos scenario's machinery: cases as replay files, a flawed connector's minimal case, and replaying it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from syncert.harness.replay import Replay, ReplayError, load_replay
from syncert.scenarios.chaos import BASELINE, Case
from syncert.scenarios.setups import ScenarioSetupError

ROOT = Path(__file__).resolve().parent.parent


def test_a_case_survives_the_round_trip_through_a_replay_file(tmp_path: Path) -> None:
    path = tmp_path / "replay.json"
    path.write_text(Replay("CHAOS-01", 5, BASELINE.to_json()).dumps())
    replay = load_replay(path)
    assert (replay.scenario, replay.seed) == ("CHAOS-01", 5)
    assert Case.from_json(replay.case) == BASELINE


@pytest.mark.parametrize(("content", "named"), [
    ("not json", "not JSON"), ('{"scenario": "CHAOS-01"}', "not a syncert replay file"),
    ('{"syncert_replay": 1, "scenario": "CHAOS-01", "seed": "x", "case": {}}', '"seed" must be an integer')])
def test_a_bad_replay_file_is_named(tmp_path: Path, content: str, named: str) -> None:
    path = tmp_path / "replay.json"
    path.write_text(content)
    with pytest.raises(ReplayError, match=named):
        load_replay(path)


@pytest.mark.parametrize(("case", "named"), [
    ({"steps": [{"op": "explode"}], "faults": []}, "step 1: op must be one of"),
    ({"steps": [{"op": "sync", "target": "x"}], "faults": []}, "step 1: target and value must be integers"),
    ({"steps": [], "faults": [{"side": "mars", "fault": "reset", "kind": None, "access": "read", "on_call": 1,
                               "calls": 1}]}, "fault 1: side, kind and access must be one of"),
    ({"steps": [], "faults": [{"side": "erp", "fault": "reset", "kind": None, "access": "read", "on_call": 0,
                               "calls": 1}]}, "on_call must be an integer from 1"),
    ({"steps": [{"op": "sync", "oops": 1}], "faults": []}, "not a chaos case"),
])
def test_a_replay_case_that_cannot_run_is_named(case: dict, named: str) -> None:
    with pytest.raises(ScenarioSetupError, match=named):
        Case.from_json(case)


def _certify(manifest: str, report_dir: Path, *options: str) -> tuple[int, dict]:
    done = subprocess.run([sys.executable, "-m", "syncert", "certify", manifest, "--report-dir", str(report_dir),
                           *options], capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads((report_dir / "latest" / "report.json").read_text())


def test_a_flawed_connector_gets_a_minimal_replay_file_that_fails_it_again(tmp_path: Path) -> None:
    flawed = "connectors/flawed/gives-up-on-server-errors/connector.toml"
    code, report = _certify(flawed, tmp_path / "found", "--only", "CHAOS-01", "--seed", "3")
    [chaos] = [s for s in report["scenarios"] if s["id"] == "CHAOS-01"]
    assert code == 1 and chaos["status"] == "failed"
    replay_file = tmp_path / "found" / "latest" / chaos["evidence"]["attachments"]["chaos-replay.json"]
    case = Case.from_json(load_replay(replay_file).case)
    assert 1 <= len(case.steps) <= 5 and 1 <= len(case.faults) <= 3, case.describe()
    code, report = _certify(flawed, tmp_path / "again", "--replay", str(replay_file))
    assert code == 1 and [s["status"] for s in report["scenarios"] if s["id"] == "CHAOS-01"] == ["failed"]
    code, report = _certify("connectors/reference/connector.toml", tmp_path / "reference", "--replay", str(replay_file))
    assert [s["status"] for s in report["scenarios"] if s["id"] == "CHAOS-01"] == ["passed"]
