"""Field maps from contracts/<dialect>/field_map.yaml: vendor objects and fields <-> canonical ones."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from syncert.contracts import load_yaml
from syncert.simulators.domain.kinds import Field, Kind


@dataclass(frozen=True, eq=False)
class FieldMapping:
    """One vendor field and the canonical field (dotted for a part of an address) it carries.

    `values` maps vendor enum ids to canonical values; `fields` are the columns of a sublist.
    """

    vendor: str
    canonical: str
    type: str
    read_only: bool = False
    external_id: bool = False
    reference_to: str | None = None
    length: int | None = None
    values: dict[str, str] | None = None
    fields: dict[str, FieldMapping] | None = None

    @property
    def top(self) -> str:
        return self.canonical.split(".", 1)[0]

    @property
    def part(self) -> str | None:
        return self.canonical.split(".", 1)[1] if "." in self.canonical else None


@dataclass
class ObjectMap:
    """A vendor object (Account, customer) over a canonical kind."""

    name: str
    kind: str
    key_prefix: str
    label: str
    fields: dict[str, FieldMapping]
    options: dict[str, Any] = field(default_factory=dict)
    by_lower: dict[str, FieldMapping] = field(init=False)

    def __post_init__(self) -> None:
        self.by_lower = {name.lower(): mapping for name, mapping in self.fields.items()}

    def lookup(self, vendor_field: str) -> FieldMapping | None:
        return self.fields.get(vendor_field) or self.by_lower.get(vendor_field.lower())

    def vendor_name(self, canonical: str) -> str:
        """The vendor field carrying a canonical field (writable ones first); the canonical name if none."""
        carriers = [m for m in self.fields.values() if m.top == canonical]
        carriers.sort(key=lambda m: m.read_only)
        return carriers[0].vendor if carriers else canonical

    def to_canonical(self, payload: dict[str, Any], convert: Callable[[FieldMapping, Any], Any],
                     unknown: Callable[[str], Exception], read_only: Callable[[list[str]], Exception],
                     ignore: frozenset[str] = frozenset()) -> dict[str, Any]:
        """Canonical values from a vendor payload; unknown and read-only fields raise."""
        values: dict[str, Any] = {}
        locked = []
        for name, value in payload.items():
            if name in ignore:
                continue
            mapping = self.lookup(name)
            if mapping is None:
                raise unknown(name)
            if mapping.read_only:
                locked.append(mapping.vendor)
                continue
            converted = convert(mapping, value)
            if mapping.part is not None:
                address = values.setdefault(mapping.top, {})
                if isinstance(address, dict):
                    address[mapping.part] = converted
            else:
                values[mapping.canonical] = converted
        if locked:
            raise read_only(locked)
        return values

    def from_canonical(self, record: dict[str, Any], convert: Callable[[FieldMapping, Any], Any],
                       only: list[str] | None = None) -> dict[str, Any]:
        """Vendor field values of a canonical record (all mapped fields, or `only` these)."""
        names = only if only is not None else list(self.fields)
        out: dict[str, Any] = {}
        for name in names:
            mapping = self.fields[name]
            value = record.get(mapping.top)
            if mapping.part is not None:
                value = value.get(mapping.part) if isinstance(value, dict) else None
            out[name] = convert(mapping, value)
        return out


@cache
def _document(dialect: str) -> dict[str, Any]:
    return load_yaml(dialect, "field_map.yaml")


def load_limits(dialect: str) -> dict[str, int]:
    """The API limits of `dialect` (a fresh dict)."""
    return dict(_document(dialect).get("limits", {}))


def load_object_maps(dialect: str) -> dict[str, ObjectMap]:
    """The vendor objects of `dialect`, by vendor name (fresh objects on every call)."""
    document = _document(dialect)
    maps = {}
    for name, spec in document["objects"].items():
        options = {k: v for k, v in spec.items() if k not in ("kind", "key_prefix", "label", "fields")}
        maps[name] = ObjectMap(name, spec["kind"], str(spec.get("key_prefix", "")), spec.get("label", name),
                               _mappings(spec["fields"]), options)
    return maps


def _mappings(specs: dict[str, dict[str, Any]]) -> dict[str, FieldMapping]:
    mappings = {}
    for vendor, attrs in specs.items():
        attrs = dict(attrs)
        if "fields" in attrs:
            attrs["fields"] = _mappings(attrs["fields"])
        if "values" in attrs:
            attrs["values"] = {str(k): str(v) for k, v in attrs["values"].items()}
        mappings[vendor] = FieldMapping(vendor=vendor, **attrs)
    return mappings


def canonical_field(kinds: dict[str, Kind], object_map: ObjectMap, mapping: FieldMapping) -> Field | None:
    """The canonical field definition behind a mapping (None for system fields such as id)."""
    return kinds[object_map.kind].by_name.get(mapping.top)
