"""`syncert certify`: run the catalogue against a connector and write the certification report."""

from __future__ import annotations

import json
import random
import secrets
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from syncert.harness.launchers import check_launchable
from syncert.harness.manifest import Manifest, load_manifest
from syncert.harness.pytest_plugin import ISSUED_SECRETS
from syncert.harness.reports import LEVELS, build_report, write_reports

from syncert import connectors, scenarios

REFERENCE_MANIFEST = Path(connectors.__file__).parent / "reference" / "connector.toml"
CATALOGUE = Path(scenarios.__file__).parent


class CatalogueError(RuntimeError):
    """The catalogue itself could not run (a broken scenario module, a bad --only expression)."""


def syncert_version() -> str:
    try:
        return version("syncert")
    except PackageNotFoundError:
        return "unknown"


def manifest_for(path: str | None) -> Manifest:
    """The validated manifest (the bundled reference connector by default); raises ManifestError."""
    manifest = load_manifest(path or REFERENCE_MANIFEST)
    check_launchable(manifest)
    return manifest


def certify(manifest: Manifest, report_root: Path, level: int, only: str | None, seed: int | None) -> tuple[dict, Path]:
    """Run the scenarios, write the reports, return the report and its directory."""
    seed = seed if seed is not None else random.randrange(1, 2**31)
    started = time.time()
    run_id = datetime.fromtimestamp(started, UTC).strftime("%Y%m%d-%H%M%S") + f"-{secrets.token_hex(3)}"
    report_dir = report_root / run_id
    print(f"syncert certify: {manifest.name} {manifest.version} ({manifest.run.mode} mode, {manifest.crm} <-> "
          f"{manifest.erp}), target level {level} ({LEVELS[level]}), seed {seed}", flush=True)
    with tempfile.TemporaryDirectory(prefix="syncert-certify-") as scratch:
        results_path, junit_path = Path(scratch) / "results.json", Path(scratch) / "junit.xml"
        ini = Path(scratch) / "pytest.ini"  # our settings, whatever pytest config the current directory has
        ini.write_text("[pytest]\n")
        args = [str(CATALOGUE), "-c", str(ini), "--connector", str(manifest.path),
                "--syncert-results", str(results_path), "--syncert-level", str(level), "--syncert-progress",
                "--junitxml", str(junit_path),
                "-o", "junit_suite_name=syncert", "-p", "no:cacheprovider", "-p", "no:terminal",
                "--rootdir", str(CATALOGUE.parent)]
        if only:
            args += ["--syncert-only", only]
        random.seed(seed)
        exit_code = pytest.main(args)
        if exit_code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
            raise CatalogueError(f"the scenario catalogue could not run (pytest exit code {int(exit_code)}); "
                                 "see the messages above")
        results = json.loads(results_path.read_text()) if results_path.exists() else []
        finished = time.time()
        report = build_report(
            run_id=run_id, started_at=_iso(started), finished_at=_iso(finished), duration_s=finished - started,
            version=syncert_version(), seed=seed, requested_level=level, scenarios=results, selection=only,
            connector={"name": manifest.name, "version": manifest.version, "manifest": str(manifest.path),
                       "mode": manifest.run.mode, "crm": manifest.crm, "erp": manifest.erp,
                       "flows": list(manifest.flows)})
        write_reports(report, report_dir, junit_path, secrets=sorted(ISSUED_SECRETS))
    return report, report_dir


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")
