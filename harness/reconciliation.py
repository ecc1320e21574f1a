"""Reconciliation: a verdict per business key for one flow of the mapping, from both systems' state.

Sources and targets are paired by the flow's key first; fields are compared only on the pairs, in the
normal form of each transform (exact decimals, dates, blank text). Outcomes:

  synced      exactly one target, every mapped field (lines and returned values too) as expected
  missing     no target; `explained_by` names the dead letter for that record when there is one
  duplicated  more than one target for the key
  stale       one target whose differing fields all hold an earlier value of the source (an update
              that was not propagated); the earlier values are those the harness saw; `explained_by`
              names the dead letter for that record when there is one
  corrupted   one target with a field that differs otherwise; each difference names the field in
              canonical and vendor terms, what was expected, what is there, and where it came from
  orphan      a target linked to no source of the flow (e.g. an order made from a lost deal); only
              for flows whose targets hold a link to their source

Two source records with one key are an error of the scenario, never silently merged.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any

from deepdiff import DeepDiff

from syncert.contracts import load_yaml
from syncert.harness.mapping import (
    KINDS,
    FieldRule,
    FlowMap,
    Record,
    Resolver,
    actual_value,
    expected_value,
    field_value,
    matches,
    text,
)

OUTCOMES = ("synced", "missing", "duplicated", "stale", "corrupted", "orphan")
SystemState = Mapping[str, list[Record]]  # kind -> records


class ReconciliationError(ValueError):
    """The evidence cannot be reconciled (two source records share a business key)."""


@dataclass(frozen=True)
class FieldDifference:
    """One field of a target that is not what the mapping says it must be."""

    field: str
    vendor_field: str
    expected: Any
    actual: Any
    came_from: str

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "vendor_field": self.vendor_field, "expected": shown(self.expected),
                "actual": shown(self.actual), "came_from": self.came_from}


@dataclass
class KeyVerdict:
    """The outcome for one business key."""

    key: str
    outcome: str
    source_id: str | None = None
    target_ids: list[str] = field(default_factory=list)
    differences: list[FieldDifference] = field(default_factory=list)
    explained_by: str | None = None

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"outcome": self.outcome, "source_id": self.source_id, "target_ids": self.target_ids}
        if self.differences:
            found["fields"] = [difference.as_dict() for difference in self.differences]
        if self.explained_by:
            found["explained_by"] = self.explained_by
        return found


@dataclass
class Reconciliation:
    """The verdicts of one flow, by business key."""

    flow: FlowMap
    verdicts: dict[str, KeyVerdict] = field(default_factory=dict)

    def keys(self, outcome: str) -> list[str]:
        return sorted(key for key, verdict in self.verdicts.items() if verdict.outcome == outcome)

    @property
    def all_synced(self) -> bool:
        return bool(self.verdicts) and all(v.outcome == "synced" for v in self.verdicts.values())

    @property
    def silent_losses(self) -> list[str]:
        """Missing keys with no dead letter for their record: lost without a word."""
        return [key for key in self.keys("missing") if not self.verdicts[key].explained_by]

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = defaultdict(int)
        for verdict in self.verdicts.values():
            found[verdict.outcome] += 1
        return dict(found)

    def summary(self) -> dict[str, Any]:
        """Count per outcome and the linkage the keys were paired through (so "missing" says what)."""
        return {**self.counts(), "linkage": self.flow.linkage}

    def failures(self) -> dict[str, dict[str, Any]]:
        """Every key that is not synced, with its evidence (for reports)."""
        return {key: verdict.as_dict() for key, verdict in sorted(self.verdicts.items())
                if verdict.outcome != "synced"}

    def explain(self, limit: int = 5) -> str:
        """A few failing keys in words, for an assertion message."""
        failing = [v for _, v in sorted(self.verdicts.items()) if v.outcome != "synced"]
        if not self.verdicts:
            return f"{self.flow.name}: no {self.flow.source.kind} record took part (linkage {self.flow.linkage})"
        lines = [f"{self.flow.name}: {self.counts()} (linkage {self.flow.linkage})"]
        for verdict in failing[:limit]:
            line = f"  {verdict.key}: {verdict.outcome}"
            if verdict.explained_by:
                line += f" (dead letter: {verdict.explained_by})"
            for difference in verdict.differences[:4]:
                line += (f"; {difference.field} [{difference.vendor_field}] expected {shown(difference.expected)!r}"
                         f" from {difference.came_from}, found {shown(difference.actual)!r}")
            lines.append(line)
        if len(failing) > limit:
            lines.append(f"  ... and {len(failing) - limit} more")
        return "\n".join(lines)


def shown(value: Any) -> Any:
    """A normal-form value as JSON shows it (decimals and dates as text)."""
    if isinstance(value, Decimal | dt.date):
        return str(value)
    if isinstance(value, dict):
        return {k: shown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shown(v) for v in value]
    return value


class VendorNames:
    """Canonical kind.field -> the vendor's object.field and its length limit, from each dialect's field
    map in contracts/."""

    def __init__(self, dialects: Mapping[str, str]):
        self.names = {system: _vendor_names(dialect) for system, dialect in dialects.items()}
        self.labels = dict(dialects)

    def length(self, system: str, kind: str, name: str) -> int | None:
        """The vendor's maximum length of a canonical text field (None when it sets none)."""
        for spec in _field_map(self.labels[system])["objects"].values():
            if spec["kind"] == kind:
                for field_spec in spec["fields"].values():
                    if field_spec["canonical"] == name and field_spec.get("length"):
                        return int(field_spec["length"])
        return None

    def name(self, system: str, kind: str, path: str) -> str:
        """"Salesforce Account.Name"; a structured field lists its parts' names; a dotted path follows
        the reference ("Salesforce PricebookEntry.Product2Id -> Product2.ERP_Item_Id__c")."""
        label = self.labels.get(system, system).capitalize().replace("Netsuite", "NetSuite")
        vendor = self._vendor(system, kind, path)
        return f"{label} {vendor}" if vendor else f"{label}: not in its field map"

    def _vendor(self, system: str, kind: str, path: str) -> str | None:
        names = self.names.get(system, {})
        if (kind, path) in names:
            return names[(kind, path)]
        parts = sorted({name for (own, canonical), name in names.items()
                        if own == kind and canonical.startswith(path + ".")})
        if parts:
            return "/".join(parts)
        head, _, rest = path.partition(".")
        definition = KINDS[system][kind].by_name.get(head) if kind in KINDS.get(system, {}) else None
        if rest and definition is not None and definition.references and (kind, head) in names:
            tail = self._vendor(system, definition.references, rest)
            return f"{names[(kind, head)]} -> {tail}" if tail else None
        return None


@cache
def _field_map(dialect: str) -> dict[str, Any]:
    """A dialect's field map (contracts/<dialect>/field_map.yaml), read once."""
    return load_yaml(dialect, "field_map.yaml")


@cache
def _vendor_names(dialect: str) -> dict[tuple[str, str], str]:
    names: dict[tuple[str, str], str] = {}
    for vendor_object, spec in _field_map(dialect)["objects"].items():
        for vendor_field, field_spec in spec["fields"].items():
            key = (spec["kind"], field_spec["canonical"])
            names.setdefault(key, f"{vendor_object}.{vendor_field}")
            if field_spec.get("type") == "address_book":
                for part in ("street", "city", "state", "postal_code", "country"):
                    names.setdefault((spec["kind"], f"{field_spec['canonical']}.{part}"),
                                     f"{vendor_object}.{vendor_field}")
                    names.setdefault((spec["kind"], f"shipping_address.{part}"), f"{vendor_object}.{vendor_field}")
                names.setdefault((spec["kind"], "shipping_address"), f"{vendor_object}.{vendor_field}")
            for line_field, line_spec in (field_spec.get("fields") or {}).items():
                names.setdefault((spec["kind"], f"{field_spec['canonical']}.{line_spec['canonical']}"),
                                 f"{vendor_object}.{vendor_field}[].{line_field}")
    return names


def _resolver(state: SystemState) -> Resolver:
    index: dict[str, dict[str, Record]] = {}

    def resolve(kind: str, record_id: str) -> Record | None:
        if kind not in index:
            index[kind] = {str(record["id"]): record for record in state.get(kind, [])}
        return index[kind].get(record_id)
    return resolve


class _Judge:
    """Compares one source record with its target, field by field, and says where each value came from."""

    def __init__(self, flow: FlowMap, sides: Mapping[str, SystemState], vendor: VendorNames,
                 history: Mapping[str, list[Record]]):
        self.flow, self.vendor, self.history = flow, vendor, history
        self.resolve = {system: _resolver(state) for system, state in sides.items()}
        self.children: dict[str, list[Record]] = defaultdict(list)
        if flow.lines is not None:
            for child in sides[flow.source.system].get(flow.lines.child_kind, []):
                self.children[text(child.get(flow.lines.parent_field))].append(child)

    def differences(self, source: Record, target: Record) -> list[FieldDifference]:
        flow = self.flow
        found = self._fields(flow.fields, source, flow.source, target, flow.target)
        found += self._fields(flow.returns, target, flow.target, source, flow.source)
        if flow.lines is not None:
            found += self._lines(source, target)
        return found

    def _fields(self, rules: Iterable[FieldRule], source: Record, source_side: Any, target: Record,
                target_side: Any) -> list[FieldDifference]:
        found = []
        resolve = self.resolve[source_side.system]
        for rule in rules:
            expected = expected_value(rule, source, source_side.kind, resolve)
            actual = actual_value(rule, target.get(rule.name))
            if expected == actual:
                continue
            if isinstance(expected, dict) and isinstance(actual, dict):
                for part, values in deep_differences(expected, actual).items():
                    found.append(self._difference(rule, source_side, source, target_side, values["expected"],
                                                  values["actual"], part=part))
            else:
                found.append(self._difference(rule, source_side, source, target_side, expected, actual))
        return found

    def _difference(self, rule: FieldRule, source_side: Any, source: Record, target_side: Any, expected: Any,
                    actual: Any, line: str = "", part: str = "") -> FieldDifference:
        """`part`: a sub-field of a structured value (".city" of an address)."""
        names = [f"{source_side.kind}.{name}{part} "
                 f"({self.vendor.name(source_side.system, source_side.kind, name + part)})" for name in rule.sources]
        came_from = (f"{source_side.system.upper()} {source_side.kind} {source.get('id')}: " + " and ".join(names)
                     + ("" if rule.transform == "text" else f" via {rule.transform}"))
        target_path = f"{line}.{rule.name}{part}" if line else rule.name + part
        vendor_path = f"{self.flow.lines.target}.{rule.name}" if line and self.flow.lines else rule.name + part
        return FieldDifference(f"{target_side.kind}.{target_path}",
                               self.vendor.name(target_side.system, target_side.kind, vendor_path),
                               expected, actual, came_from)

    def _lines(self, source: Record, target: Record) -> list[FieldDifference]:
        rules = self.flow.lines
        assert rules is not None
        key_rule = next(rule for rule in rules.fields if rule.name == rules.key)
        resolve = self.resolve[self.flow.source.system]
        children = self.children.get(text(source.get("id")), [])
        want: dict[str, list[Record]] = defaultdict(list)
        for child in children:
            want[expected_value(key_rule, child, rules.child_kind, resolve)].append(child)
        have: dict[str, list[Record]] = defaultdict(list)
        for line in target.get(rules.target) or []:
            have[actual_value(key_rule, line.get(rules.key))].append(line)
        found = []
        line_side = type(self.flow.source)(self.flow.source.system, rules.child_kind)
        for key in sorted(set(want) | set(have), key=str):
            label = f"{rules.target}[{rules.key}={key}]"
            if len(want[key]) != len(have[key]):
                found.append(FieldDifference(f"{self.flow.target.kind}.{label}", self.vendor.name(
                    self.flow.target.system, self.flow.target.kind, f"{rules.target}.{rules.key}"),
                    f"{len(want[key])} line(s)", f"{len(have[key])} line(s)",
                    f"{self.flow.source.system.upper()} {rules.child_kind} records of {source.get('id')}"))
                continue
            for child, line in zip(want[key], have[key], strict=True):
                for rule in rules.fields:
                    expected = expected_value(rule, child, rules.child_kind, resolve)
                    actual = actual_value(rule, line.get(rule.name))
                    if expected != actual:
                        found.append(self._difference(rule, line_side, child, self.flow.target, expected, actual,
                                                      line=label))
        return found


def reconcile(flow: FlowMap, sides: Mapping[str, SystemState], vendor: VendorNames,
              dead_letters: Iterable[Mapping[str, Any]] = (), history: Mapping[str, list[Record]] | None = None,
              user_values: Mapping[str, Record] | None = None, deleted: Mapping[str, Record] | None = None,
              user_targets: set[str] | None = None) -> Reconciliation:
    """The verdict per business key of `flow`, from the canonical state of both systems.

    `history`: earlier versions of source records by id (for `stale`); `dead_letters`: the connector's.
    `user_values`: source records as the scenario's users left them, by id: a field the source system
    owns that differs from it was changed by the connector (corrupted at the source). `deleted`: source
    records deleted during the scenario (by the connector: scenarios delete nothing), by id: missing.
    `user_targets`: ids of target records the scenario's users made; when given, a target the connector
    made without the link to a source is an orphan too (an unlinked duplicate)."""
    result = Reconciliation(flow)
    judge = _Judge(flow, sides, vendor, history or {})
    source_resolve = judge.resolve[flow.source.system]
    target_resolve = judge.resolve[flow.target.system]
    taking_part: dict[str, Record] = {}  # key -> the one source record of the flow with it
    shared: dict[str, list[Record]] = {}  # key -> the source records that share it
    others: set[str] = set()
    for source in sides[flow.source.system].get(flow.source.kind, []):
        key = text(field_value(source, flow.source.kind, flow.source_key, source_resolve))
        if not key:
            continue
        if not matches(source, flow.source.kind, flow.source.where, source_resolve):
            others.add(key)
            continue
        if key in taking_part or key in shared:
            first = taking_part.pop(key, None)
            shared.setdefault(key, [first] if first else []).append(source)
            continue
        taking_part[key] = source
    for key, sharing in shared.items():
        if user_values is not None and all(text(r.get("id")) in user_values for r in sharing):
            raise ReconciliationError(
                f"{flow.name}: {flow.source.kind} records {', '.join(text(r.get('id')) for r in sharing)} share the "
                f"business key {flow.source_key} = {key!r}; the scenario's data must give each record its own key")
        result.verdicts[key] = KeyVerdict(key, "duplicated", text(sharing[0].get("id")), differences=[FieldDifference(
            f"{flow.source.kind}.{flow.source_key}", vendor.name(flow.source.system, flow.source.kind, flow.source_key),
            "one record", f"{len(sharing)} records: {', '.join(text(r.get('id')) for r in sharing)}",
            f"{flow.source.system.upper()} {flow.source.kind} records sharing the key (the connector made or relinked "
            "one)")])
    targets: dict[str, list[Record]] = defaultdict(list)
    unlinked: list[Record] = []
    for target in sides[flow.target.system].get(flow.target.kind, []):
        if not matches(target, flow.target.kind, flow.target.where, target_resolve):
            continue
        key = text(field_value(target, flow.target.kind, flow.target_key, target_resolve))
        if key:
            targets[key].append(target)
        elif user_targets is not None and text(target.get("id")) not in user_targets:
            unlinked.append(target)
    lettered = {text(letter.get("source_id")): text(letter.get("reason")) or "no reason given"
                for letter in dead_letters if letter.get("source_system") in (flow.source.system, None)
                and letter.get("flow") in (flow.flow, flow.name, None)}
    for record_id, gone in (deleted or {}).items():
        key = text(field_value(gone, flow.source.kind, flow.source_key, source_resolve))
        if key and key not in taking_part and record_id in (user_values or {}):
            result.verdicts[key] = KeyVerdict(key, "missing", record_id, differences=[FieldDifference(
                f"{flow.source.kind}.id", vendor.name(flow.source.system, flow.source.kind, "id"), record_id, None,
                f"the {flow.source.system.upper()} {flow.source.kind} was deleted during the scenario, not by its "
                "users")])
    for key, source in taking_part.items():
        matched = targets.get(key, [])
        verdict = KeyVerdict(key, "synced", text(source.get("id")), [text(t.get("id")) for t in matched])
        if not matched:
            verdict.outcome = "missing"
            verdict.explained_by = lettered.get(text(source.get("id")))
        elif len(matched) > 1:
            verdict.outcome = "duplicated"
        else:
            verdict.differences = judge.differences(source, matched[0])
            if verdict.differences:
                verdict.outcome = "stale" if _is_stale(judge, source, matched[0], verdict.differences) else "corrupted"
                if verdict.outcome == "stale":
                    verdict.explained_by = lettered.get(text(source.get("id")))
        tampered = _changed_at_source(flow, source, (user_values or {}).get(text(source.get("id"))), vendor)
        if tampered:
            verdict.differences += tampered
            if verdict.outcome in ("synced", "stale"):
                verdict.outcome = "corrupted"
        result.verdicts[key] = verdict
    if flow.creates_targets:
        for target in unlinked:
            key = f"(unlinked {flow.target.kind} {target.get('id')})"
            result.verdicts[key] = KeyVerdict(key, "orphan", None, [text(target.get("id"))], differences=[
                FieldDifference(f"{flow.target.kind}.{flow.target_key}",
                                vendor.name(flow.target.system, flow.target.kind, flow.target_key),
                                "the id of its source", None,
                                f"made during the scenario without the link its flow pairs by ({flow.linkage})")])
        for key in targets.keys() - taking_part.keys() - shared.keys():
            reason = "its source does not take part in the flow" if key in others else "no such source record"
            result.verdicts[key] = KeyVerdict(key, "orphan", None, [text(t.get("id")) for t in targets[key]],
                                              explained_by=None)
            result.verdicts[key].differences = [FieldDifference(
                f"{flow.target.kind}.{flow.target_key}", vendor.name(flow.target.system, flow.target.kind,
                                                                     flow.target_key),
                None, key, f"{reason} ({flow.linkage})")]
    return result


def _changed_at_source(flow: FlowMap, source: Record, as_left: Record | None,
                       vendor: VendorNames) -> list[FieldDifference]:
    """Fields the source system owns that are no longer what its users left: the connector wrote them
    (e.g. copied a truncated or re-encoded value back so both sides agree). Derived (read-only) fields
    change with the system's own rules and are not judged here."""
    if as_left is None:
        return []
    kind = KINDS[flow.source.system][flow.source.kind]
    found = []
    for rule in flow.fields:
        if rule.owner != flow.source.system:
            continue
        for name in rule.sources:
            definition = kind.by_name.get(name)
            if definition is None or definition.read_only or source.get(name) == as_left.get(name):
                continue
            found.append(FieldDifference(
                f"{flow.source.kind}.{name}", vendor.name(flow.source.system, flow.source.kind, name),
                shown(as_left.get(name)), shown(source.get(name)),
                f"what the scenario's users left in the {flow.source.system.upper()}: the {flow.source.system.upper()} "
                f"owns this field, and a connector must not change it there"))
    return found


def _is_stale(judge: _Judge, source: Record, target: Record, differences: list[FieldDifference]) -> bool:
    """Every differing field holds what an earlier version of the source would have put there."""
    differing = {d.field: d.actual for d in differences}
    for version in judge.history.get(text(source.get("id")), []):
        earlier = {d.field for d in judge.differences(version, target)}
        if not (earlier & differing.keys()):
            return True
    return False


def deep_differences(expected: Record, actual: Record) -> dict[str, dict[str, Any]]:
    """Per differing sub-field (".city"): {"expected": ..., "actual": ...} (deepdiff finds the paths)."""
    diff = DeepDiff(expected, actual, verbose_level=2).to_dict()
    fields: dict[str, dict[str, Any]] = {}
    for change in ("values_changed", "type_changes"):
        for path, values in diff.get(change, {}).items():
            fields[_dotted(path)] = {"expected": values["old_value"], "actual": values["new_value"]}
    for path, value in diff.get("dictionary_item_removed", {}).items():
        fields[_dotted(path)] = {"expected": value, "actual": None}
    for path, value in diff.get("dictionary_item_added", {}).items():
        fields[_dotted(path)] = {"expected": None, "actual": value}
    return fields


def _dotted(path: str) -> str:
    """deepdiff's "root['city']" as ".city"."""
    return path.removeprefix("root").replace("['", ".").replace("']", "")
