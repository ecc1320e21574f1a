"""Behaviour checks read from the journal (reconciliation per business key is in reconciliation.py).

- retry_after_violations: retries sent before the Retry-After of the throttled attempt had elapsed.
"""

from __future__ import annotations

from typing import Any


def retry_after_violations(journal: list[dict[str, Any]], tolerance_s: float = 0.05) -> list[str]:
    """Retries sent before the Retry-After of the throttled attempt had elapsed."""
    violations = []
    for index, entry in enumerate(journal):
        if "throttled" not in entry["tags"] or entry["retry_after_s"] is None:
            continue
        wait = float(entry["retry_after_s"])
        retry = next((e for e in journal[index + 1:] if e["method"] == entry["method"] and e["path"] == entry["path"]
                      and e["request_body"] == entry["request_body"]), None)
        if retry is not None and retry["started_at"] < entry["ended_at"] + wait - tolerance_s:
            early = entry["ended_at"] + wait - retry["started_at"]
            violations.append(f"{entry['method']} {entry['path']} retried {early:.2f}s before its Retry-After of "
                              f"{wait:.0f}s")
    return violations
