"""Checks: verdicts computed from evidence only.

- reconcile: per business key, is every source record in the target exactly once with the expected
  values? Outcomes: synced, missing, duplicated, corrupted (a field differs), orphan (in the target
  with no source). Records are paired by key first; deepdiff runs only on the mismatched pairs.
- behaviour: Retry-After honoured (echo loops and calls per record are read from the journal by
  the scenarios and the report).
- loudness: a record that was not synced must be in the dead-letter file or the cycle must have failed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from deepdiff import DeepDiff

from syncert.harness.runner import Evidence

Record = dict[str, Any]


@dataclass
class Reconciliation:
    """Outcome per business key, and the linkage the keys were paired through."""

    linkage: str
    outcomes: dict[str, str] = field(default_factory=dict)
    diffs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def keys(self, outcome: str) -> list[str]:
        return sorted(k for k, v in self.outcomes.items() if v == outcome)

    @property
    def all_synced(self) -> bool:
        return bool(self.outcomes) and all(v == "synced" for v in self.outcomes.values())

    def summary(self) -> dict[str, Any]:
        """Count per outcome, and the linkage looked for (so "missing" says what was missing)."""
        counts: dict[str, Any] = defaultdict(int)
        for outcome in self.outcomes.values():
            counts[outcome] += 1
        return {**counts, "linkage": self.linkage}


def _normal(value: Any) -> Any:
    """Compare money and quantities as numbers whatever their text form."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        try:
            return Decimal(str(value)).normalize()
        except InvalidOperation:
            return value
    return value


def reconcile(sources: list[Record], targets: list[Record], source_key: Callable[[Record], str | None],
              target_key: Callable[[Record], str | None], expected: Callable[[Record], Record],
              linkage: str) -> Reconciliation:
    """Pair `sources` with `targets` by key and compare `expected(source)` with the target's fields.

    `linkage` says, in canonical terms, which fields pair them (e.g. "account.id = customer.crm_id")."""
    result = Reconciliation(linkage)
    by_key: dict[str, list[Record]] = defaultdict(list)
    for target in targets:
        key = target_key(target)
        if key is not None:
            by_key[key].append(target)
    source_keys = set()
    for source in sources:
        key = source_key(source)
        if key is None:
            continue
        source_keys.add(key)
        matches = by_key.get(key, [])
        if not matches:
            result.outcomes[key] = "missing"
            continue
        if len(matches) > 1:
            result.outcomes[key] = "duplicated"
            continue
        want = {name: _normal(value) for name, value in expected(source).items()}
        have = {name: _normal(matches[0].get(name)) for name in want}
        if want == have:
            result.outcomes[key] = "synced"
        else:
            result.outcomes[key] = "corrupted"
            result.diffs[key] = expected_vs_actual(want, have)
    for key in by_key.keys() - source_keys:
        result.outcomes[key] = "orphan"
    return result


def expected_vs_actual(expected: Record, actual: Record) -> dict[str, dict[str, Any]]:
    """Per differing field path: {"expected": ..., "actual": ...} (deepdiff finds the paths)."""
    diff = DeepDiff(expected, actual, verbose_level=2).to_dict()
    fields: dict[str, dict[str, Any]] = {}
    for change in ("values_changed", "type_changes"):
        for path, values in diff.get(change, {}).items():
            fields[path.removeprefix("root")] = {"expected": values["old_value"], "actual": values["new_value"]}
    for path, value in diff.get("dictionary_item_removed", {}).items():
        fields[path.removeprefix("root")] = {"expected": value, "actual": None}
    for path, value in diff.get("dictionary_item_added", {}).items():
        fields[path.removeprefix("root")] = {"expected": None, "actual": value}
    return fields


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


def unexplained_losses(missing_keys: list[str], evidence: Evidence, source_system: str) -> list[str]:
    """Missing records that are neither dead-lettered nor covered by a failed cycle (silent drops)."""
    if any(not cycle.ok for cycle in evidence.cycles):
        return []
    lettered = {str(entry.get("source_id")) for entry in evidence.dead_letters
                if entry.get("source_system") in (source_system, None)}
    return [key for key in missing_keys if key not in lettered]
