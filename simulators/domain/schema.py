"""The schema of one simulator: canonical record kinds, its dialect's object maps and API limits.

Each simulator gets its own Schema, built fresh from the defaults (kinds.py and the dialect's
contracts/<dialect>/field_map.yaml), so a drift stage can change one simulator's schema for a run
(rename a vendor field, shorten a length, lower a limit, withdraw access to a kind) without touching any
other simulator.
The engine reads only `kinds`; the dialect reads `objects` and `limits` (vendor shapes stay there).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from syncert.simulators.domain.kinds import DomainError, Field, Kind

if TYPE_CHECKING:
    from syncert.simulators.dialects.field_map import FieldMapping, ObjectMap


@dataclass
class Schema:
    """Kinds by name, vendor objects by vendor name, and named API limits (page sizes...)."""

    kinds: dict[str, Kind]
    objects: dict[str, ObjectMap] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)
    withdrawn: set[str] = field(default_factory=set)  # kinds the API client has lost all access to (drift)

    def kind(self, name: str) -> Kind:
        try:
            return self.kinds[name]
        except KeyError:
            raise DomainError("UNKNOWN_KIND", f"unknown record kind {name!r}") from None

    def object_for(self, kind: str) -> ObjectMap | None:
        """The vendor object over a canonical kind (None when the dialect has none)."""
        return next((m for m in self.objects.values() if m.kind == kind), None)

    def indexed_fields(self) -> dict[str, tuple[str, ...]]:
        """The fields the store indexes, by kind."""
        return {kind.name: kind.indexed_fields for kind in self.kinds.values()}

    def replace_field(self, kind: str, name: str, **changes: Any) -> None:
        """Change one canonical field's definition (length, required...) for this simulator only."""
        current = self.kind(kind)
        fields = tuple(replace(f, **changes) if f.name == name else f for f in current.fields)
        self.kinds[kind] = Kind(current.name, fields)

    def add_field(self, kind: str, definition: Field) -> None:
        """Give one canonical kind a new field (a vendor's new field, for this simulator only)."""
        current = self.kind(kind)
        self.kinds[kind] = Kind(current.name, (*current.fields, definition))

    def add_mapping(self, object_name: str, mapping: FieldMapping) -> None:
        """Give one vendor object a new field."""
        object_map = self.objects[object_name]
        self.objects[object_name] = replace(object_map, fields={**object_map.fields, mapping.vendor: mapping})

    def remove_mapping(self, object_name: str, vendor_field: str) -> None:
        """Take one vendor field away from an object (answers lack it, writes of it are refused as unknown)."""
        object_map = self.objects[object_name]
        fields = {name: mapping for name, mapping in object_map.fields.items() if name != vendor_field}
        self.objects[object_name] = replace(object_map, fields=fields)

    def replace_mapping(self, object_name: str, vendor_field: str, **changes: Any) -> None:
        """Change one vendor field of an object (`vendor=` renames it) for this simulator only."""
        object_map = self.objects[object_name]
        mapping = replace(object_map.fields[vendor_field], **changes)
        fields = {(mapping.vendor if name == vendor_field else name): (mapping if name == vendor_field else m)
                  for name, m in object_map.fields.items()}
        self.objects[object_name] = replace(object_map, fields=fields)
