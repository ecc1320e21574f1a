"""Certification runs of our own connectors as the tests start them: `syncert certify` in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def certify_command(manifest: Path, report_dir: Path, only: str | None = None) -> list[str]:
    # our own connectors: trusted, so their scenarios may run side by side
    command = [sys.executable, "-m", "syncert", "certify", str(manifest), "--report-dir", str(report_dir),
               "--jobs", "4"]
    return [*command, "--only", only] if only else command


def finished(process: subprocess.Popen, report_dir: Path) -> tuple[int, dict]:
    # the whole catalogue includes volume scenarios (E2E-BACKFILL-01: 5,000 accounts): minutes on 2 busy cores
    _, stderr = process.communicate(timeout=1200)
    assert "Traceback" not in stderr, stderr
    return process.returncode, json.loads((report_dir / "latest" / "report.json").read_text())


def start(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def certify(manifest: Path, report_dir: Path, only: str | None = None) -> tuple[int, dict]:
    return finished(start(certify_command(manifest, report_dir, only)), report_dir)
