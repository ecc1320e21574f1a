"""The reference connector is certified at level 4 in service and python modes."""

from __future__ import annotations

from pathlib import Path

from tests.certify_runs import ROOT, certify_command, finished, start


def test_reference_connector_is_certified_in_service_and_python_modes(tmp_path: Path) -> None:
    runs = {mode: start(certify_command(ROOT / "connectors" / "reference" / f"connector-{mode}.toml",
                                          tmp_path / mode)) for mode in ("service", "python")}
    for mode, process in runs.items():
        code, report = finished(process, tmp_path / mode)
        assert report["connector"]["mode"] == mode
        assert code == 0 and report["level_reached"] == 4, {s["id"]: s["message"] for s in report["scenarios"]
                                                            if s["status"] != "passed"}
