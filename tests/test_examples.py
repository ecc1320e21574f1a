"""The example connectors are certified, and their reports explain every level.

The Node.js connector was written against the protocol (docs/protocol.md) and the mapping
(contracts/mapping.yaml), not ported from the reference, and declares every flow: it keeps the
catalogue honest about what a correct connector written differently must pass.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "connectors" / "examples"


def _certify(manifest: Path, report_dir: Path) -> tuple[subprocess.CompletedProcess, dict]:
    finished = subprocess.run([sys.executable, "-m", "syncert", "certify", str(manifest), "--report-dir",
                               str(report_dir), "--jobs", "2"],  # our own examples: trusted, run side by side
                              capture_output=True, text=True, timeout=600, cwd=report_dir.parent)
    assert "Traceback" not in finished.stderr, finished.stderr
    return finished, json.loads((report_dir / "latest" / "report.json").read_text())


NODE_FLOWS = ["accounts", "contacts", "items", "inventory", "orders", "credit", "invoices", "payments"]


def test_the_node_connector_is_certified_at_level_4_for_every_flow(tmp_path: Path) -> None:
    assert shutil.which("node"), "Node.js is needed for the Node example connector (.ci/run installs Debian's nodejs)"
    finished, report = _certify(EXAMPLES / "node" / "connector.toml", tmp_path / "reports")
    statuses = {s["id"]: (s["status"], s["message"][:200]) for s in report["scenarios"]}
    assert finished.returncode == 0 and report["verdict"] == "certified", {
        i: status for i, status in statuses.items() if status[0] not in ("passed", "not_applicable")}
    assert report["level_reached"] == 4
    assert report["flows_certified"] == NODE_FLOWS
    webhooks = {s["id"] for s in report["scenarios"] if s["needs_webhooks"]}
    assert webhooks and all(statuses[i][0] == "not_applicable" for i in webhooks)  # command mode: no events
    assert {status for i, (status, _) in statuses.items() if i not in webhooks} == {"passed"}, statuses
    assert all(entry["status"] == "passed" and entry["reason"] for entry in report["levels"].values())
    assert "level reached 4" in finished.stdout
    assert f"flows certified: {', '.join(NODE_FLOWS)}" in finished.stdout


def test_an_accounts_only_connector_is_certified_for_accounts_and_the_report_says_why(tmp_path: Path) -> None:
    finished, report = _certify(EXAMPLES / "accounts-only" / "connector.toml", tmp_path / "reports")
    statuses = {s["id"]: s["status"] for s in report["scenarios"]}
    assert finished.returncode == 0 and report["verdict"] == "certified", statuses
    assert report["level_reached"] == 4 and report["flows_certified"] == ["accounts"]
    levels = report["levels"]
    assert levels["1"]["status"] == "not_applicable"
    assert "declared flows (accounts)" in levels["1"]["reason"] and "credit" in levels["1"]["reason"]
    assert {levels[n]["status"] for n in ("2", "3", "4")} == {"passed"}
    assert statuses["E2E-ITEMS-01"] == "not_applicable" and statuses["E2E-ECHO-01"] == "passed"
    summary = (tmp_path / "reports" / "latest" / "summary.md").read_text()
    assert "| 1 | Visibility | not applicable | no scenario of this level applies" in summary
