"""The scenario catalogue: where it lives, what `syncert scenarios` lists, and what a load failure says."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import pytest

from syncert import scenarios

CATALOGUE = Path(scenarios.__file__).parent
SURGES = CATALOGUE / "volume" / "test_surges.py"  # the volume scenarios, which `syncert surge` runs one at a time


class CatalogueError(RuntimeError):
    """The catalogue itself could not run (a scenario module that cannot be imported, a bad option)."""


class _Collector:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.errors: list[tuple[str, str]] = []

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.errors.append((report.nodeid, report.longreprtext))

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        from syncert.harness.pytest_plugin import scenario_info

        for item in items:
            info = scenario_info(item)
            if info is not None:
                self.entries.append({"id": info.id, "category": info.category, "level": info.level,
                                     "flows": list(info.flows), "needs_webhooks": info.needs_webhooks,
                                     "intent": info.intent, "nodeid": item.nodeid})


def list_scenarios(path: Path = CATALOGUE) -> list[dict[str, Any]]:
    """Every scenario of the bundled catalogue (or of the module `path`), by level then id; raises
    CatalogueError if a module fails."""
    collector = _Collector()
    with contextlib.redirect_stdout(io.StringIO()):
        pytest.main([str(path), "--collect-only", "-q", "-p", "no:cacheprovider", "--rootdir",
                     str(CATALOGUE.parent)], plugins=[collector])
    if collector.errors:
        raise CatalogueError(load_failure(collector.errors))
    from syncert.harness.pytest_plugin import RUN_WIDE_CHECKS

    run_wide = [{"id": check.id, "category": check.category, "level": check.level, "flows": [],
                 "needs_webhooks": False, "intent": check.intent + " (run-wide: judges every scenario that ran)",
                 "nodeid": ""} for check in RUN_WIDE_CHECKS]
    return sorted([*collector.entries, *run_wide], key=lambda e: (e["level"], e["id"]))


def load_failure(errors: list[tuple[str, str]]) -> str:
    """One paragraph naming the scenario module and the import that failed."""
    nodeid, text = errors[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    cause = next((line.removeprefix("E").strip() for line in reversed(lines)
                  if "Error" in line and line.startswith("E")), lines[-1] if lines else "unknown error")
    return (f"the scenario catalogue cannot be loaded: {nodeid} failed to import ({cause}). No verdict was given. "
            "If a module is missing, syncert's installation is incomplete: reinstall it with `pip install syncert` "
            "(all its runtime dependencies are declared)."
            + (f" {len(errors) - 1} more module(s) failed the same way." if len(errors) > 1 else ""))
