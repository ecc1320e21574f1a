"""The regression gate: compare a current report with a baseline.

A regression is a scenario that passed in the baseline and does not pass now, or a metric worse than
the baseline by more than the threshold (lower is better for every metric compared).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

COMPARED_METRICS = ("sync_latency_p50_s", "sync_latency_p99_s", "api_calls_per_synced_record")


class ReportError(ValueError):
    """A file that is not a syncert report."""


def load_report(path: Path | str) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"{path}: no such report file") from None
    except ValueError as error:
        raise ReportError(f"{path}: not JSON ({error})") from None
    if not isinstance(report, dict) or not str(report.get("schema", "")).startswith("syncert.report/"):
        raise ReportError(f"{path}: not a syncert report (no `schema: syncert.report/N`)")
    return report


def regressions(baseline: dict[str, Any], current: dict[str, Any], threshold: float = 0.20) -> list[str]:
    """What got worse, one line each; empty when the current run is no worse."""
    found = []
    now = {s["id"]: s for s in current["scenarios"]}
    for before in baseline["scenarios"]:
        if before["status"] != "passed":
            continue
        after = now.get(before["id"])
        if after is None:
            found.append(f"{before['id']}: passed in the baseline, missing from the current run")
        elif after["status"] != "passed":
            message = (after.get("message") or "").strip().splitlines()[:1]
            found.append(f"{before['id']}: passed in the baseline, {after['status'].replace('_', ' ')} now"
                         + (f" ({message[0][:140]})" if message else ""))
    for name in COMPARED_METRICS:
        old, new = baseline["metrics"].get(name), current["metrics"].get(name)
        if old and new is not None and new > old * (1 + threshold):
            found.append(f"metric {name}: {new} vs {old} in the baseline (+{(new / old - 1) * 100:.0f}%, "
                         f"threshold {threshold * 100:.0f}%)")
    return found
