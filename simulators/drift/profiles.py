"""Drift profiles: one change of a vendor API, defined once in `contracts/drift/<id>.yaml`.

A profile names its dialect, its kind (one of KINDS), its changes, and what is expected of it:
    {"id": str, "title": str, "dialect": "salesforce"|"netsuite", "kind": <KINDS>,
     "changes": [{"op": <OPERATIONS>, ...its parameters}],
     "expect": {"breaking": bool (what `syncert contracts diff` must say of the drifted document),
                "connector": "tolerate"|"fail_loudly"|"either" (what a correct connector does)}}
From it come the drifted OpenAPI document (`drifted_document`) and the breaking-change classification
(`syncert contracts diff` of the two documents).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from syncert import contracts
from syncert.contracts import load_yaml
from syncert.simulators.dialects import CRM_DIALECTS, ERP_DIALECTS
from syncert.simulators.dialects.field_map import FieldMapping
from syncert.simulators.domain.kinds import Field
from syncert.simulators.domain.schema import Schema

DRIFT_DIR = Path(contracts.__file__).parent / "drift"
KINDS = ("optional_field_added", "custom_field_added", "picklist_value_added", "field_renamed",
         "required_field_added", "field_removed", "type_changed", "length_shortened", "page_size_shrunk",
         "paging_links_changed", "api_version_retired", "auth_scope_narrowed")
# op -> the parameters it takes (besides "op")
OPERATIONS: dict[str, frozenset[str]] = {
    "add_field": frozenset({"object", "field", "type", "length", "value"}),
    "add_picklist_value": frozenset({"object", "field", "value", "canonical"}),
    "rename_field": frozenset({"object", "field", "to"}),
    "require_field": frozenset({"object", "field"}),
    "remove_field": frozenset({"object", "field"}),
    "change_type": frozenset({"object", "field", "to"}),
    "shorten_field": frozenset({"object", "field", "length"}),
    "shrink_page": frozenset({"limit"}),
    "change_paging_links": frozenset({"format"}),
    "retire_versions": frozenset({"below"}),
    "narrow_scope": frozenset({"object"}),
}
CONNECTOR_VERDICTS = ("tolerate", "fail_loudly", "either")
_DIALECTS = {**CRM_DIALECTS, **ERP_DIALECTS}
DIALECTS = tuple(_DIALECTS)


class ProfileError(ValueError):
    """A drift profile that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class DriftProfile:
    id: str
    title: str
    dialect: str
    kind: str
    changes: tuple[dict[str, Any], ...]
    breaking: bool
    connector: str

    def overlay(self, schema: Schema) -> None:
        """Change `schema` (one simulator's, for this run) as this drift changes the live API."""
        for change in self.changes:
            _LIVE_CHANGES[change["op"]](schema, change)

    def drifted_document(self, document: dict[str, Any]) -> dict[str, Any]:
        """The dialect's OpenAPI document as it is after this drift (a changed copy)."""
        drifted = copy.deepcopy(document)
        for change in self.changes:
            _DOCUMENT_CHANGES[change["op"]](drifted, change)
        return drifted


def load_profiles(directory: Path = DRIFT_DIR) -> dict[str, DriftProfile]:
    """Every profile in `directory`, by id; raises ProfileError naming the first bad one."""
    return dict(_bundled_profiles() if directory == DRIFT_DIR else _read_profiles(directory))


@cache
def _bundled_profiles() -> dict[str, DriftProfile]:
    # shipped with syncert, unchanged while it runs: read and checked once per process
    return _read_profiles(DRIFT_DIR)


def _read_profiles(directory: Path) -> dict[str, DriftProfile]:
    profiles = {}
    for path in sorted(directory.glob("*.yaml")):
        profile = load_profile(path)
        if profile.id in profiles:
            raise ProfileError(f"{path}: id {profile.id!r} is used twice")
        profiles[profile.id] = profile
    return profiles


def load_profile(path: Path) -> DriftProfile:
    try:
        body = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ProfileError(f"{path}: cannot be read ({str(error).splitlines()[0]})") from None
    if not isinstance(body, dict):
        raise ProfileError(f"{path}: a drift profile is a mapping")
    unknown = set(body) - {"id", "title", "dialect", "kind", "changes", "expect"}
    if unknown:
        raise ProfileError(f"{path}: unknown keys {sorted(unknown)}")
    expect = body.get("expect") or {}
    problems = [
        (body.get("id") != path.stem, f"id must be the file's name, {path.stem!r}"),
        (not isinstance(body.get("title"), str), "title must be a text"),
        (body.get("dialect") not in DIALECTS, f"dialect must be one of {', '.join(DIALECTS)}"),
        (body.get("kind") not in KINDS, f"kind must be one of {', '.join(KINDS)}"),
        (not isinstance(body.get("changes"), list) or not body.get("changes"), "changes must be a non-empty list"),
        (not isinstance(expect.get("breaking"), bool), "expect.breaking must be true or false"),
        (expect.get("connector") not in CONNECTOR_VERDICTS,
         f"expect.connector must be one of {', '.join(CONNECTOR_VERDICTS)}"),
    ]
    for failed, message in problems:
        if failed:
            raise ProfileError(f"{path}: {message}")
    for number, change in enumerate(body["changes"], 1):
        op = change.get("op") if isinstance(change, dict) else None
        if op not in OPERATIONS:
            raise ProfileError(f"{path}: change {number}: op must be one of {', '.join(OPERATIONS)}")
        extra = set(change) - OPERATIONS[op] - {"op"}
        if extra:
            raise ProfileError(f"{path}: change {number}: {op} takes {sorted(OPERATIONS[op])}, not {sorted(extra)}")
    profile = DriftProfile(body["id"], body["title"], body["dialect"], body["kind"], tuple(body["changes"]),
                           expect["breaking"], expect["connector"])
    try:
        profile.drifted_document(load_yaml(profile.dialect, "openapi.yaml"))
        profile.overlay(_DIALECTS[profile.dialect].default_schema())
    except ProfileError as error:
        raise ProfileError(f"{path}: {error}") from None
    return profile


# -- the drifted document ------------------------------------------------------------------------------

def _properties(document: dict[str, Any], change: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The object's schema and its properties; ProfileError when the document has no such object or field."""
    schema = document.get("components", {}).get("schemas", {}).get(change.get("object"))
    if not isinstance(schema, dict) or "properties" not in schema:
        raise ProfileError(f"{change['op']}: the contract has no object {change.get('object')!r}")
    if "field" in change and change["op"] != "add_field" and change["field"] not in schema["properties"]:
        raise ProfileError(f"{change['op']}: {change['object']} has no field {change['field']!r}")
    return schema, schema["properties"]


def _add_field(document: dict[str, Any], change: dict[str, Any]) -> None:
    _, properties = _properties(document, change)
    definition: dict[str, Any] = {"type": [change.get("type", "string"), "null"]}
    if "length" in change:
        definition["maxLength"] = change["length"]
    properties[change["field"]] = definition


def _enum_holder(properties: dict[str, Any], field: str) -> dict[str, Any]:
    """The schema whose `enum` lists a picklist's values (NetSuite's are {id, refName} references)."""
    schema = properties[field]
    holder = schema.get("properties", {}).get("id", schema) if "enum" not in schema else schema
    if "enum" not in holder:
        raise ProfileError(f"add_picklist_value: {field} lists no values in the contract")
    return holder


def _add_picklist_value(document: dict[str, Any], change: dict[str, Any]) -> None:
    _, properties = _properties(document, change)
    holder = _enum_holder(properties, change["field"])
    values = [v for v in holder["enum"] if v is not None]
    holder["enum"] = [*values, change["value"], *([None] if None in holder["enum"] else [])]


def _rename_field(document: dict[str, Any], change: dict[str, Any]) -> None:
    schema, properties = _properties(document, change)
    schema["properties"] = {change["to"] if name == change["field"] else name: value
                            for name, value in properties.items()}
    if change["field"] in schema.get("required", []):
        schema["required"] = [change["to"] if name == change["field"] else name for name in schema["required"]]


def _require_field(document: dict[str, Any], change: dict[str, Any]) -> None:
    schema, _ = _properties(document, change)
    schema["required"] = sorted({*schema.get("required", []), change["field"]})


def _remove_field(document: dict[str, Any], change: dict[str, Any]) -> None:
    schema, properties = _properties(document, change)
    del properties[change["field"]]
    if change["field"] in schema.get("required", []):
        schema["required"].remove(change["field"])


def _change_type(document: dict[str, Any], change: dict[str, Any]) -> None:
    _, properties = _properties(document, change)
    kind = properties[change["field"]].get("type")
    nullable = isinstance(kind, list) and "null" in kind
    properties[change["field"]] = {"type": [change["to"], "null"] if nullable else change["to"]}


def _shorten_field(document: dict[str, Any], change: dict[str, Any]) -> None:
    _, properties = _properties(document, change)
    properties[change["field"]]["maxLength"] = change["length"]


def _shrink_page(document: dict[str, Any], change: dict[str, Any]) -> None:
    """Lists answer smaller pages (a client asking for more still gets an answer): nothing a client sends is
    refused, so the document only records it."""
    document.setdefault("info", {})["x-syncert-page-size"] = change["limit"]


def _change_paging_links(document: dict[str, Any], change: dict[str, Any]) -> None:
    document.setdefault("info", {})["x-syncert-paging-links"] = change["format"]


def _retire_versions(document: dict[str, Any], change: dict[str, Any]) -> None:
    version = document.get("components", {}).get("parameters", {}).get("version", {}).get("schema", {})
    if "enum" not in version:
        raise ProfileError("retire_versions: the contract has no list of API versions")
    floor = _version_number(change["below"])
    version["enum"] = [v for v in version["enum"] if _version_number(v) >= floor]


def _narrow_scope(document: dict[str, Any], change: dict[str, Any]) -> None:
    """The client's role loses its permission on an object: the object leaves every list of objects a path
    may name (for this client, those operations are gone)."""
    lists = [parameter["schema"] for parameter in document.get("components", {}).get("parameters", {}).values()
             if change["object"] in (parameter.get("schema") or {}).get("enum", [])]
    if not lists:
        raise ProfileError(f"narrow_scope: no path of the contract names the object {change['object']!r}")
    for values in lists:
        values["enum"] = [value for value in values["enum"] if value != change["object"]]


def _version_number(text: str) -> float:
    try:
        return float(str(text).lstrip("v"))
    except ValueError:
        raise ProfileError(f"retire_versions: {text!r} is not an API version such as v55.0") from None


_DOCUMENT_CHANGES = {"add_field": _add_field, "add_picklist_value": _add_picklist_value,
                     "rename_field": _rename_field, "require_field": _require_field, "remove_field": _remove_field,
                     "change_type": _change_type, "shorten_field": _shorten_field, "shrink_page": _shrink_page,
                     "change_paging_links": _change_paging_links, "retire_versions": _retire_versions,
                     "narrow_scope": _narrow_scope}


# -- the live behaviour: an overlay on one simulator's schema -----------------------------------------------

def _mapping(schema: Schema, change: dict[str, Any]) -> tuple[str, Any]:
    object_map = schema.objects.get(change["object"])
    if object_map is None or change["field"] not in object_map.fields:
        raise ProfileError(f"{change['op']}: the simulator has no field {change['object']}.{change['field']}")
    return object_map.kind, object_map.fields[change["field"]]


def _live_rename(schema: Schema, change: dict[str, Any]) -> None:
    _mapping(schema, change)
    schema.replace_mapping(change["object"], change["field"], vendor=change["to"])


def _live_shorten(schema: Schema, change: dict[str, Any]) -> None:
    _mapping(schema, change)
    schema.replace_mapping(change["object"], change["field"], length=change["length"])


def _live_remove(schema: Schema, change: dict[str, Any]) -> None:
    _mapping(schema, change)
    schema.remove_mapping(change["object"], change["field"])


def _live_require(schema: Schema, change: dict[str, Any]) -> None:
    kind, mapping = _mapping(schema, change)
    schema.replace_field(kind, mapping.top, required=True)


def _live_add_field(schema: Schema, change: dict[str, Any]) -> None:
    """A new text field, answered with `value` on records created from now on (older ones answer null)."""
    object_map = schema.objects.get(change["object"])
    if object_map is None:
        raise ProfileError(f"add_field: the simulator has no object {change['object']!r}")
    if change.get("type", "string") != "string":
        raise ProfileError("add_field: only text fields are served live")
    canonical = change["field"].lower()
    schema.add_field(object_map.kind, Field(canonical, "string", length=change.get("length"),
                                            default=change.get("value")))
    schema.add_mapping(change["object"], FieldMapping(change["field"], canonical, "string",
                                                      length=change.get("length")))


def _live_change_type(schema: Schema, change: dict[str, Any]) -> None:
    """The vendor field takes and answers another JSON type (a number as text); the data behind it is the
    same, so text that reads as the number is still stored as the number."""
    _mapping(schema, change)
    if change["to"] != "string":
        raise ProfileError("change_type: only a change to text is served live")
    schema.replace_mapping(change["object"], change["field"], type="string")


def _live_paging_links(schema: Schema, change: dict[str, Any]) -> None:
    if change["format"] != "absolute":
        raise ProfileError("change_paging_links: only format absolute is served live")
    schema.limits["absolute_links"] = 1


def _live_narrow_scope(schema: Schema, change: dict[str, Any]) -> None:
    """Every request on the object is refused with the vendor's permission error (see the drift stage)."""
    object_map = schema.objects.get(change["object"])
    if object_map is None:
        raise ProfileError(f"narrow_scope: the simulator has no object {change['object']!r}")
    schema.withdrawn.add(object_map.kind)


def _live_picklist_value(schema: Schema, change: dict[str, Any]) -> None:
    kind, mapping = _mapping(schema, change)
    value = str(change["value"])
    canonical = str(change.get("canonical") or (mapping.values or {}).get(value, value.lower()))
    if mapping.values is not None:
        schema.replace_mapping(change["object"], change["field"], values={**mapping.values, value: canonical})
    field = schema.kind(kind).by_name[mapping.top]
    if field.values and canonical not in field.values:
        schema.replace_field(kind, mapping.top, values=(*field.values, canonical))


def _live_shrink_page(schema: Schema, change: dict[str, Any]) -> None:
    """Pages of at most `limit` records, whatever size the client asks for (it is not refused)."""
    limit = int(change["limit"])
    if "page_size" in schema.limits:
        schema.limits["page_cap"] = limit
    for name in ("query_batch", "query_batch_min"):
        if name in schema.limits:
            schema.limits[name] = min(schema.limits[name], limit)


def _live_retire_versions(schema: Schema, change: dict[str, Any]) -> None:
    """Requests to a retired API version are answered with the vendor's error (Salesforce REST: 410 GONE)."""
    schema.limits["min_api_version"] = int(_version_number(change["below"]))


_LIVE_CHANGES = {"add_field": _live_add_field, "rename_field": _live_rename, "shorten_field": _live_shorten,
                 "remove_field": _live_remove, "require_field": _live_require, "change_type": _live_change_type,
                 "add_picklist_value": _live_picklist_value, "shrink_page": _live_shrink_page,
                 "change_paging_links": _live_paging_links, "retire_versions": _live_retire_versions,
                 "narrow_scope": _live_narrow_scope}
