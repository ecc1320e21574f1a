"""The CRM <-> ERP sync mapping (`contracts/mapping.yaml`, or a connector's own): loading, validation,
and what a mapped field's value must be.

The mapping speaks the canonical domain only. Each flow pairs a source kind with a target kind by a key,
maps fields with a transform and an owner system, and may map lines from child records and values the
target sends back. `expected_value` computes, from a source record, the value its target must hold, in
a normal form (exact decimals, dates, blank text as "") that `actual_value` gives the target's value too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from syncert.simulators.domain.kinds import ADDRESS_PARTS, CRM_KINDS, ERP_KINDS, SYSTEM_FIELDS, Kind

SYSTEMS = ("crm", "erp")
KINDS: dict[str, dict[str, Kind]] = {"crm": CRM_KINDS, "erp": ERP_KINDS}
PRESENT = "present"
TRANSFORMS = ("text", "money", "quantity", "date", "boolean", "not", "enum", "address", "lookup",
              "discounted_price", "settlement")
SETTLEMENT_LABELS = ("unpaid", "partly_paid", "paid")

Record = dict[str, Any]
# Finds a record of the source's system by kind and id (for lookups and dotted keys).
Resolver = Callable[[str, str], Record | None]


class MappingError(ValueError):
    """A mapping that cannot be used; the message names the file, the flow and the key at fault."""


@dataclass(frozen=True)
class FieldRule:
    """One mapped value: `name` is written from `sources` through `transform`."""

    name: str
    sources: tuple[str, ...]
    transform: str = "text"
    owner: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Side:
    """One end of a flow: a kind in a system, and the values its records must have to take part."""

    system: str
    kind: str
    where: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LinesRule:
    """A list field of the target built from the source's child records, paired by `key`."""

    target: str
    child_kind: str
    parent_field: str
    key: str
    fields: tuple[FieldRule, ...]


@dataclass(frozen=True)
class FlowMap:
    """One flow of the mapping."""

    name: str
    flow: str
    intent: str
    source: Side
    target: Side
    source_key: str
    target_key: str
    fields: tuple[FieldRule, ...]
    returns: tuple[FieldRule, ...] = ()
    lines: LinesRule | None = None

    @property
    def linkage(self) -> str:
        """The pairing in words, e.g. "account.id = customer.crm_id"."""
        return f"{self.source.kind}.{self.source_key} = {self.target.kind}.{self.target_key}"

    @property
    def creates_targets(self) -> bool:
        """Whether the flow creates its targets (they hold a link to their source), or updates records
        that exist for another reason (paired by their own id): only the former can be orphans."""
        return self.target_key != "id"


@dataclass(frozen=True)
class SyncMapping:
    """A whole mapping: where it came from, the conflict policy and the flows by name."""

    path: Path
    conflict_policy: str
    flows: Mapping[str, FlowMap]

    def flow(self, name: str) -> FlowMap:
        if name not in self.flows:
            raise MappingError(f"{self.path}: the mapping has no flow {name!r}; it maps: {', '.join(self.flows)}")
        return self.flows[name]

    def owner(self, system: str, kind: str, name: str) -> str | None:
        """The system that owns `kind.name` of `system` (None when no flow maps it)."""
        for flow in self.flows.values():
            if flow.target.system == system and flow.target.kind == kind:
                for rule in flow.fields:
                    if rule.name == name:
                        return rule.owner
            if flow.source.system == system and flow.source.kind == kind:
                for rule in flow.returns:
                    if rule.name == name:
                        return rule.owner
        return None


STANDARD = Path(str(files("syncert.contracts") / "mapping.yaml"))


def writable_fields(mapping: SyncMapping, system: str, kind: str) -> set[str]:
    """The fields of `kind` in `system` the mapping lets a connector write: its flows' target fields (with
    lines and the link a target holds), the values written back to a source, and external ids (the
    connector's own business)."""
    found = {"external_id"}
    for flow in mapping.flows.values():
        if (flow.target.system, flow.target.kind) == (system, kind):
            found |= {rule.name for rule in flow.fields}
            found.add(flow.target_key.split(".")[0])
            if flow.lines is not None:
                found.add(flow.lines.target)
        if (flow.source.system, flow.source.kind) == (system, kind):
            found |= {rule.name for rule in flow.returns}
    return found - {"id"}


def comparisons(mapping: SyncMapping) -> set[str]:
    """Every comparison the mapping makes, in full: each flow's pairing and filters, and each mapped value
    with its sources, transform, options and owner (fields, line fields, values written back)."""
    found = set()
    for name, flow in mapping.flows.items():
        found.add(f"{name}: pairs {flow.linkage} where {dict(flow.source.where)} / {dict(flow.target.where)}")
        rules = [(f"{flow.target.kind}.", rule) for rule in flow.fields]
        rules += [(f"{flow.source.kind}.", rule) for rule in flow.returns]
        if flow.lines is not None:
            lines = flow.lines
            found.add(f"{name}: lines {flow.target.kind}.{lines.target} from {lines.child_kind}.{lines.parent_field} "
                      f"by {lines.key}")
            rules += [(f"{flow.target.kind}.{lines.target}.", rule) for rule in lines.fields]
        found |= {f"{name}: {prefix}{rule.name} <- {', '.join(rule.sources)} ({rule.transform}"
                  f"{', ' + repr(_canonical(rule.options)) if rule.options else ''}; owner {rule.owner})"
                  for prefix, rule in rules}
    return found


def _canonical(value: Any) -> Any:
    """A value with its mappings in one order whatever the file's order (for comparing rules)."""
    if isinstance(value, Mapping):
        return sorted((str(key), _canonical(item)) for key, item in value.items())
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    return value


def describe(path: Path | None) -> dict[str, Any]:
    """What a report says about the mapping a connector was judged by: standard or its own, and for its
    own, which comparisons of the standard mapping it leaves out or changes (then it earns no certificate)."""
    mapping = load_mapping(path)
    digest = hashlib.sha256(mapping.path.read_bytes()).hexdigest()
    if path is None:
        return {"standard": True, "sha256": digest, "flows": list(mapping.flows)}
    missing = sorted(comparisons(load_mapping()) - comparisons(mapping))
    return {"standard": False, "path": str(path), "sha256": digest, "flows": list(mapping.flows),
            "standard_checks_not_made": missing}


def load_mapping(path: Path | None = None) -> SyncMapping:
    """Read and validate a mapping file (default: the standard mapping shipped in contracts/)."""
    path = path or STANDARD
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise MappingError(f"{path}: cannot be read as YAML: {error}") from None
    check = _Checker(path)
    if not isinstance(data, dict):
        check.fail("", "must be a YAML mapping with `version`, `conflict_policy` and `flows`")
    if data.get("version") != 1:
        check.fail("version", f"must be 1, not {data.get('version')!r}")
    policy = data.get("conflict_policy", "field-ownership")
    if policy not in ("field-ownership", "last-write-wins", "conflict-queue"):
        check.fail("conflict_policy", f"must be field-ownership, last-write-wins or conflict-queue, not {policy!r}")
    flows = data.get("flows")
    if not isinstance(flows, dict) or not flows:
        check.fail("flows", "must map flow names to flows")
    return SyncMapping(path, policy, {name: check.flow(str(name), spec) for name, spec in flows.items()})


class _Checker:
    """Validation with messages that name the file and the key at fault."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, problem: str) -> None:
        raise MappingError(f"{self.path}: {where + ' ' if where else ''}{problem}")

    def table(self, where: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(where, f"must be a mapping, not {value!r}")
        return value

    def flow(self, name: str, spec: Any) -> FlowMap:
        where = f"flows.{name}"
        spec = self.table(where, spec)
        source = self.side(f"{where}.source", spec.get("source"))
        target = self.side(f"{where}.target", spec.get("target"))
        key = self.table(f"{where}.key", spec.get("key"))
        for end in ("source", "target"):
            if not key.get(end):
                self.fail(f"{where}.key.{end}", "is missing: name the field that pairs the records")
        source_key, target_key = str(key["source"]), str(key["target"])
        self.path_of(f"{where}.key.source", source, source_key)
        self.path_of(f"{where}.key.target", target, target_key)
        fields = self.rules(f"{where}.fields", spec.get("fields") or {}, target=target, source=source)
        returns = self.rules(f"{where}.returns", spec.get("returns") or {}, target=source, source=target)
        lines = self.lines(f"{where}.lines", spec["lines"], source, target) if "lines" in spec else None
        if not fields and lines is None:
            self.fail(f"{where}.fields", "maps no field")
        return FlowMap(name, str(spec.get("flow", name)), str(spec.get("intent", "")), source, target, source_key,
                       target_key, fields, returns, lines)

    def side(self, where: str, spec: Any) -> Side:
        spec = self.table(where, spec)
        system, kind = spec.get("system"), spec.get("kind")
        if system not in SYSTEMS:
            self.fail(f"{where}.system", f"must be crm or erp, not {system!r}")
        if kind not in KINDS[system]:
            self.fail(f"{where}.kind", f"{kind!r} is not a canonical {system.upper()} kind; known: "
                      f"{', '.join(KINDS[system])}")
        side = Side(system, kind, self.table(f"{where}.where", spec.get("where") or {}))
        for path in side.where:
            self.path_of(f"{where}.where", side, str(path))
        return side

    def path_of(self, where: str, side: Side, path: str) -> None:
        """Check a (dotted) field path of `side`'s kind, following references."""
        current = KINDS[side.system][side.kind]
        parts = path.split(".") if path else [""]
        for index, part in enumerate(parts):
            if part in SYSTEM_FIELDS:
                definition = None
            elif part in current.by_name:
                definition = current.by_name[part]
            else:
                self.fail(where, f"names {path!r}: {current.name} has no field {part!r}")
            if index < len(parts) - 1:
                if definition is None or definition.references is None:
                    self.fail(where, f"names {path!r}: {current.name}.{part} is not a reference")
                current = KINDS[side.system][definition.references]

    def options(self, where: str, transform: str, options: dict[str, Any], inputs: int, source: Side) -> None:
        needs = {"enum": ("values",), "lookup": ("kind", "field"), "settlement": ("labels",)}.get(transform, ())
        for option in needs:
            if option not in options:
                self.fail(where, f"transform {transform} needs `{option}`")
        for option in ("values", "labels"):
            if option in options and not isinstance(options[option], dict):
                self.fail(f"{where}.{option}", f"must map each value to another, not {options[option]!r}")
        expected_inputs = 2 if transform in ("discounted_price", "settlement") else 1
        if inputs != expected_inputs:
            self.fail(f"{where}.from", f"transform {transform} takes {expected_inputs} field(s), not {inputs}")
        if transform == "lookup":
            lookup_side = Side(source.system, str(options["kind"]))
            if lookup_side.kind not in KINDS[source.system]:
                self.fail(f"{where}.kind", f"{lookup_side.kind!r} is not a {source.system.upper()} kind")
            self.path_of(f"{where}.field", lookup_side, str(options["field"]))
        labels = options.get("labels")
        if transform == "settlement" and set(self.table(f"{where}.labels", labels)) != set(SETTLEMENT_LABELS):
            self.fail(f"{where}.labels", f"must give exactly {', '.join(SETTLEMENT_LABELS)}")

    def lines(self, where: str, spec: Any, source: Side, target: Side) -> LinesRule:
        spec = self.table(where, spec)
        children = self.table(f"{where}.children", spec.get("children"))
        child_kind, parent = str(children.get("kind")), str(children.get("parent"))
        if child_kind not in KINDS[source.system]:
            self.fail(f"{where}.children.kind", f"{child_kind!r} is not a {source.system.upper()} kind")
        child = Side(source.system, child_kind)
        self.path_of(f"{where}.children.parent", child, parent)
        line_target = str(spec.get("target"))
        definition = KINDS[target.system][target.kind].by_name.get(line_target)
        if definition is None or definition.type != "lines":
            self.fail(f"{where}.target", f"{target.kind}.{line_target} is not a list of lines")
        line_fields = {line_field.name for line_field in definition.line_fields}
        fields = []
        for name, rule_spec in self.table(f"{where}.fields", spec.get("fields")).items():
            if name not in line_fields:
                self.fail(f"{where}.fields.{name}", f"{target.kind}.{line_target} lines have no field {name!r}")
            fields.append(self.rule(f"{where}.fields.{name}", str(name), rule_spec, child))
        key = str(spec.get("key"))
        if key not in {rule.name for rule in fields}:
            self.fail(f"{where}.key", f"must be one of the mapped line fields, not {key!r}")
        return LinesRule(line_target, child_kind, parent, key, tuple(fields))

    def rules(self, where: str, spec: Any, target: Side, source: Side) -> tuple[FieldRule, ...]:
        rules = []
        for name, rule_spec in self.table(where, spec).items():
            self.path_of(f"{where}.{name}", target, str(name))
            rules.append(self.rule(f"{where}.{name}", str(name), rule_spec, source))
        return tuple(rules)

    def rule(self, where: str, name: str, spec: Any, source: Side) -> FieldRule:
        spec = self.table(where, spec)
        sources = spec.get("from")
        if sources is None or sources == []:
            self.fail(f"{where}.from", "is missing: name the source field(s) the value comes from")
        sources = tuple(sources) if isinstance(sources, list) else (sources,)
        for source_field in sources:
            self.path_of(f"{where}.from", source, str(source_field))
        transform = spec.get("transform", "text")
        if transform not in TRANSFORMS:
            self.fail(f"{where}.transform", f"{transform!r} is not one of {', '.join(TRANSFORMS)}")
        owner = spec.get("owner")
        if owner is not None and owner not in SYSTEMS:
            self.fail(f"{where}.owner", f"must be crm or erp, not {owner!r}")
        options = {k: v for k, v in spec.items() if k not in ("from", "transform", "owner")}
        self.options(where, transform, options, len(sources), source)
        if "fallback" in options:
            self.path_of(f"{where}.fallback", source, str(options["fallback"]))
        return FieldRule(name, tuple(map(str, sources)), transform, owner, options)


# -- values ----------------------------------------------------------------------------------------

def text(value: Any) -> str:
    """Blank (None or "") is ""; other values as their text."""
    return "" if value is None else str(value)


def number(value: Any) -> Decimal | str | None:
    """An exact decimal (trailing zeros dropped); text that is not a number stays text, so it differs."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return str(value)
    try:
        return Decimal(str(value)).normalize()
    except InvalidOperation:
        return str(value)


def calendar_date(value: Any) -> dt.date | str | None:
    """A date from an ISO date; anything else (a datetime, a shifted form) stays text, so it differs."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return str(value)


def flag(value: Any) -> bool | str:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    return str(value)


def address(value: Any) -> dict[str, str]:
    parts = value if isinstance(value, dict) else {}
    return {part: text(parts.get(part)) for part in ADDRESS_PARTS}


def actual_value(rule: FieldRule, value: Any) -> Any:
    """The target's value in the normal form of `rule`'s transform."""
    if rule.transform in ("money", "quantity", "discounted_price"):
        return number(value)
    if rule.transform == "date":
        return calendar_date(value)
    if rule.transform in ("boolean", "not"):
        return flag(value)
    if rule.transform == "address":
        return address(value)
    return text(value)


def expected_value(rule: FieldRule, record: Record, kind: str, resolve: Resolver) -> Any:
    """What the target must hold for `rule`, computed from the source `record` (of `kind`)."""
    values = [field_value(record, kind, source, resolve) for source in rule.sources]
    value = values[0]
    if (value is None or value == "") and "fallback" in rule.options:
        value = field_value(record, kind, str(rule.options["fallback"]), resolve)
    if rule.transform == "not":
        return not flag(value) if isinstance(flag(value), bool) else flag(value)
    if rule.transform == "enum":
        table = rule.options["values"]
        return text(table.get(value, table.get(str(value), value)))
    if rule.transform == "lookup":
        linked = resolve(str(rule.options["kind"]), str(value)) if value else None
        return text(linked.get(str(rule.options["field"])) if linked else None)
    if rule.transform == "discounted_price":
        price, discount = number(values[0]), number(values[1]) or Decimal(0)
        if not isinstance(price, Decimal) or not isinstance(discount, Decimal):
            return None
        return (price * (100 - discount) / 100).normalize()
    if rule.transform == "settlement":
        amount, due = number(values[0]), number(values[1])
        labels = rule.options["labels"]
        if not isinstance(amount, Decimal) or not isinstance(due, Decimal):
            return None
        return text(labels["paid"] if due <= 0 else labels["partly_paid"] if due < amount else labels["unpaid"])
    return actual_value(rule, value)


def field_value(record: Record, kind: str, path: str, resolve: Resolver) -> Any:
    """The value at a (dotted) field path of `record` (of `kind`), following references with `resolve`.

    `resolve` and the kinds are those of the record's own system."""
    system = next(system for system, kinds in KINDS.items() if kind in kinds)
    current: Record | None = record
    parts = path.split(".")
    for part in parts[:-1]:
        definition = KINDS[system][kind].by_name.get(part)
        if current is None or definition is None or definition.references is None or not current.get(part):
            return None
        kind = definition.references
        current = resolve(kind, str(current[part]))
    return None if current is None else current.get(parts[-1])


def matches(record: Record, kind: str, where: Mapping[str, Any], resolve: Resolver) -> bool:
    """Whether `record` has the values `where` asks for (`present`: not blank)."""
    for path, wanted in where.items():
        value = field_value(record, kind, str(path), resolve)
        if wanted == PRESENT:
            if value is None or value == "":
                return False
        elif value != wanted and text(value) != text(wanted):
            return False
    return True
