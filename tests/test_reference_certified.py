"""The reference connector is certified at level 4 in command mode, and the catalogue runs as plain pytest too
(the other modes: tests/test_reference_modes.py, a file of its own so that another worker runs it)."""

from __future__ import annotations

import sys
from pathlib import Path

from syncert.harness.catalogue import list_scenarios
from tests.certify_runs import ROOT, certify, start

sys.path.insert(0, str(ROOT / "connectors" / "flawed"))
from run_flawed import DEFECTS


def test_reference_connector_is_certified_at_level_4_and_the_catalogue_runs_as_plain_pytest(tmp_path: Path) -> None:
    # the whole catalogue through certify and, side by side, its unit scenarios as plain pytest (the plugin's
    # run-wide security check included): the whole catalogue twice would cost CI minutes and prove no more
    plain = start([sys.executable, "-m", "pytest", "scenarios/unit", "--connector",
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
