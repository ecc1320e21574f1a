"""The scenario catalogue as data: what `syncert scenarios` lists."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import pytest


class _Collector:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        from syncert.harness.pytest_plugin import scenario_info

        for item in items:
            info = scenario_info(item)
            if info is not None:
                self.entries.append({"id": info.id, "category": info.category, "level": info.level,
                                     "flows": list(info.flows), "intent": info.intent, "nodeid": item.nodeid})


def list_scenarios() -> list[dict[str, Any]]:
    """Every scenario of the bundled catalogue, by level then id."""
    from syncert.harness.certify import CATALOGUE

    collector = _Collector()
    with contextlib.redirect_stdout(io.StringIO()):
        pytest.main([str(CATALOGUE), "--collect-only", "-q", "-p", "no:cacheprovider", "--rootdir",
                     str(CATALOGUE.parent)], plugins=[collector])
    return sorted(collector.entries, key=lambda e: (e["level"], e["id"]))
