"""`syncert contracts diff OLD NEW`: what changed between two OpenAPI documents, and what it breaks.

Every change is classified for the clients of the API (a connector):
- error: a client that worked against OLD can fail against NEW (a path or operation removed, a response
  field removed or renamed, a new required request field, a type changed, a request limit tightened, an
  enum value a client may send removed, an auth scope withdrawn);
- warning: a client may misbehave if it was not written defensively (a new enum value in answers, a
  request field removed, a response status no longer documented);
- info: additive (a new path, an optional field, a looser limit).
A property removed and another added in the same place with the same schema is one change, a rename,
paired by name similarity when there are several.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from openapi_spec_validator import validate as validate_spec

SEVERITIES = ("error", "warning", "info")
METHODS = ("get", "put", "post", "patch", "delete", "head", "options")
_IGNORED_KEYS = frozenset({"description", "summary", "example", "examples", "title", "externalDocs"})
_TEMPLATE = re.compile(r"\{[^}]+\}")


class ContractError(ValueError):
    """A document that cannot be read as an OpenAPI document; the message names the file and the problem."""


@dataclass(frozen=True)
class Change:
    """One difference: how bad it is for clients, its kind, where, and what it was and became."""

    severity: str
    kind: str
    location: str
    message: str

    def text(self) -> str:
        return f"{self.severity:<8} {self.kind:<28} {self.location}: {self.message}"


def load_contract(path: Path) -> dict[str, Any]:
    """The OpenAPI document at `path` (YAML or JSON); raises ContractError naming what is wrong."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ContractError(f"{path}: cannot be read ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise ContractError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as error:
        raise ContractError(f"{path}: not YAML or JSON ({str(error).splitlines()[0]})") from None
    if not isinstance(document, dict) or not str(document.get("openapi", "")).startswith("3."):
        raise ContractError(f"{path}: not an OpenAPI 3 document (no `openapi: 3.x` at its top)")
    if not isinstance(document.get("paths", {}), dict):
        raise ContractError(f"{path}: `paths` must be a mapping")
    try:
        validate_spec(document)  # types of every keyword, and every $ref resolved
    except Exception as error:  # openapi-spec-validator's errors (and unresolvable references) share no base
        reason = str(error).splitlines()[0][:160]
        raise ContractError(f"{path}: not a valid OpenAPI document ({reason})") from None
    return document


def diff_contracts(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Every change from `old` to `new`, errors first."""
    differ = _Differ(old, new)
    differ.compare()
    return sorted(differ.changes, key=lambda c: (SEVERITIES.index(c.severity), c.location, c.kind))


def breaking(changes: list[Change]) -> bool:
    return any(change.severity == "error" for change in changes)


def render(changes: list[Change], style: str, old_name: str, new_name: str) -> str:
    """The changes as `text`, `markdown` or `json`."""
    counts = {severity: sum(1 for c in changes if c.severity == severity) for severity in SEVERITIES}
    summary = (f"{old_name} -> {new_name}: {counts['error']} breaking, {counts['warning']} warning(s), "
               f"{counts['info']} additive")
    if style == "json":
        return json.dumps({"old": old_name, "new": new_name, "breaking": breaking(changes), "counts": counts,
                           "changes": [asdict(change) for change in changes]}, indent=2)
    if style == "markdown":
        rows = [f"| {c.severity} | {c.kind} | `{c.location}` | {c.message.replace('|', '/')} |" for c in changes]
        return "\n".join([f"**{summary}**", "", "| severity | change | where | what |", "|---|---|---|---|", *rows])
    return "\n".join([*(change.text() for change in changes), summary])


class _Differ:
    def __init__(self, old: dict[str, Any], new: dict[str, Any]):
        self.old, self.new = old, new
        self.changes: list[Change] = []
        self._compared: set[tuple[str, str]] = set()  # named schemas already compared, by direction

    def add(self, severity: str, kind: str, location: str, message: str) -> None:
        self.changes.append(Change(severity, kind, location, message))

    def compare(self) -> None:
        old_version, new_version = (d.get("info", {}).get("version") for d in (self.old, self.new))
        if old_version != new_version:
            self.add("info", "version-changed", "info.version", f"{old_version} -> {new_version}")
        self._security_schemes()
        old_ops, new_ops = _operations(self.old), _operations(self.new)
        for key in sorted(old_ops.keys() - new_ops.keys()):
            self.add("error", "operation-removed", key, "clients calling it get an error")
        for key in sorted(new_ops.keys() - old_ops.keys()):
            self.add("info", "operation-added", key, "new operation")
        for key in sorted(old_ops.keys() & new_ops.keys()):
            self._operation(key, old_ops[key], new_ops[key])

    # -- operations ------------------------------------------------------------------------------

    def _operation(self, key: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        self._parameters(key, old.get("parameters", []), new.get("parameters", []))
        self._request_body(key, old.get("requestBody"), new.get("requestBody"))
        self._responses(key, old.get("responses", {}), new.get("responses", {}))
        self._operation_security(key, old.get("security"), new.get("security"))

    def _parameters(self, key: str, old: list[Any], new: list[Any]) -> None:
        olds = {(p.get("in"), p.get("name")): p for p in (self._deref(self.old, p) for p in old)}
        news = {(p.get("in"), p.get("name")): p for p in (self._deref(self.new, p) for p in new)}
        for place, name in sorted(olds.keys() - news.keys(), key=str):
            if place != "path":
                self.add("warning", "request-parameter-removed", f"{key} {place} {name}",
                         "clients sending it may be refused or ignored")
        for place, name in sorted(news.keys() - olds.keys(), key=str):
            required = news[(place, name)].get("required", False)
            self.add("error" if required else "info", "new-required-request-parameter" if required
                     else "request-parameter-added", f"{key} {place} {name}",
                     "clients must now send it" if required else "optional")
        for ident in sorted(olds.keys() & news.keys(), key=str):
            old_p, new_p = olds[ident], news[ident]
            where = f"{key} {ident[0]} {ident[1]}"
            if new_p.get("required") and not old_p.get("required"):
                self.add("error", "request-parameter-became-required", where, "clients must now send it")
            self._schema(where, old_p.get("schema", {}), new_p.get("schema", {}), "request")

    def _request_body(self, key: str, old: Any, new: Any) -> None:
        if old is None and new is None:
            return
        old, new = self._deref(self.old, old or {}), self._deref(self.new, new or {})
        if new.get("required") and not old.get("required"):
            self.add("error", "request-body-became-required", f"{key} body", "clients must now send a body")
        self._contents(f"{key} body", old.get("content", {}), new.get("content", {}), "request")

    def _responses(self, key: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        for status in sorted(set(old) - set(new), key=str):
            success = str(status).startswith("2")
            self.add("error" if success else "warning", "response-removed", f"{key} {status}",
                     "the success answer clients read is gone" if success else "no longer documented")
        for status in sorted(set(new) - set(old), key=str):
            self.add("info", "response-added", f"{key} {status}", "newly documented answer")
        for status in sorted(set(old) & set(new), key=str):
            old_r, new_r = self._deref(self.old, old[status]), self._deref(self.new, new[status])
            self._contents(f"{key} {status}", old_r.get("content", {}), new_r.get("content", {}), "response")

    def _contents(self, where: str, old: dict[str, Any], new: dict[str, Any], direction: str) -> None:
        for media in sorted(set(old) - set(new)):
            self.add("error", "media-type-removed", f"{where} {media}", f"{direction} content type no longer served")
        for media in sorted(set(old) & set(new)):
            self._schema(where, old[media].get("schema", {}), new[media].get("schema", {}), direction)

    # -- schemas ---------------------------------------------------------------------------------

    def _schema(self, where: str, old: Any, new: Any, direction: str, depth: int = 0) -> None:
        """Compare two schemas; `direction` is "request" (the client sends it) or "response" (it reads it). A
        named schema both sides refer to is compared once per direction, and its changes are placed there."""
        if isinstance(old, dict) and isinstance(new, dict) and old.get("$ref") and old.get("$ref") == new.get("$ref"):
            if (old["$ref"], direction) in self._compared:
                return
            self._compared.add((old["$ref"], direction))
            where = f"{old['$ref'].removeprefix('#/').replace('/', '.')} (in {direction}s)"
        old, new = self._deref(self.old, old), self._deref(self.new, new)
        if depth > 40 or not isinstance(old, dict) or not isinstance(new, dict):
            return
        old_type, new_type = _types(old), _types(new)
        if old_type and new_type and old_type != new_type:
            widened = old_type < new_type and direction == "request"
            self.add("info" if widened else "error", "type-changed", where,
                     f"{'/'.join(sorted(old_type))} -> {'/'.join(sorted(new_type))}")
            return
        self._limits(where, old, new, direction)
        self._enum(where, old, new, direction)
        old_props, new_props = old.get("properties", {}) or {}, new.get("properties", {}) or {}
        if old_props or new_props:
            self._properties(where, old, new, old_props, new_props, direction, depth)
        if isinstance(old.get("items"), dict) and isinstance(new.get("items"), dict):
            self._schema(f"{where}[]", old["items"], new["items"], direction, depth + 1)
        for keyword in ("oneOf", "anyOf", "allOf"):
            old_parts, new_parts = old.get(keyword) or [], new.get(keyword) or []
            if len(old_parts) == len(new_parts):
                for index, (a, b) in enumerate(zip(old_parts, new_parts, strict=True)):
                    self._schema(f"{where}<{keyword}[{index}]>", a, b, direction, depth + 1)
            else:
                self.add("warning", "composition-changed", where, f"{keyword}: {len(old_parts)} -> {len(new_parts)}")

    def _properties(self, where: str, old: dict[str, Any], new: dict[str, Any], old_props: dict[str, Any],
                    new_props: dict[str, Any], direction: str, depth: int) -> None:
        hidden = "readOnly" if direction == "request" else "writeOnly"  # a field the client never sends / reads
        old_props = {n: p for n, p in old_props.items() if not self._deref(self.old, p).get(hidden)}
        new_props = {n: p for n, p in new_props.items() if not self._deref(self.new, p).get(hidden)}
        removed, added = set(old_props) - set(new_props), set(new_props) - set(old_props)
        renames = self._renames(removed, added, old_props, new_props)
        old_required, new_required = set(old.get("required") or []), set(new.get("required") or [])
        for old_name, new_name in renames:
            effect = "clients sending it are refused or ignored" if direction == "request" else \
                "clients reading it find nothing"
            self.add("error", "property-renamed", f"{where}.{old_name}", f"renamed to {new_name} ({effect})")
        renamed_from = {old_name for old_name, _ in renames}
        renamed_to = {new_name for _, new_name in renames}
        for name in sorted(removed - renamed_from):
            if direction == "response":
                self.add("error", "response-property-removed", f"{where}.{name}", "clients reading it find nothing")
            else:
                self.add("warning", "request-property-removed", f"{where}.{name}",
                         "clients sending it may be refused or have it ignored")
        for name in sorted(added - renamed_to):
            if direction == "request" and name in new_required:
                self.add("error", "new-required-request-property", f"{where}.{name}", "clients must now send it")
            else:
                self.add("info", f"{direction}-property-added", f"{where}.{name}", "optional" if direction ==
                         "request" else "new field in answers")
        for name in sorted(set(old_props) & set(new_props)):
            if direction == "request" and name in new_required and name not in old_required:
                self.add("error", "request-property-became-required", f"{where}.{name}", "clients must now send it")
            if direction == "response" and name in old_required and name not in new_required:
                self.add("warning", "response-property-became-optional", f"{where}.{name}",
                         "clients may find it missing")
            self._schema(f"{where}.{name}", old_props[name], new_props[name], direction, depth + 1)

    def _renames(self, removed: set[str], added: set[str], old_props: dict[str, Any],
                 new_props: dict[str, Any]) -> list[tuple[str, str]]:
        """Pairs (old name, new name) with the same schema, the most similar names first."""
        old_shapes = {a: _essence(self._deref(self.old, old_props[a])) for a in removed}
        new_shapes = {b: _essence(self._deref(self.new, new_props[b])) for b in added}
        candidates = sorted(((difflib.SequenceMatcher(None, a.lower(), b.lower()).ratio(), a, b)
                             for a in removed for b in added if old_shapes[a] == new_shapes[b]), reverse=True)
        pairs, used = [], set()
        for _, a, b in candidates:
            if a not in used and b not in used:
                pairs.append((a, b))
                used.update((a, b))
        return sorted(pairs)

    def _limits(self, where: str, old: dict[str, Any], new: dict[str, Any], direction: str) -> None:
        for keyword, tighter in (("maxLength", lambda a, b: b < a), ("maxItems", lambda a, b: b < a),
                                 ("maximum", lambda a, b: b < a), ("minLength", lambda a, b: b > a),
                                 ("minimum", lambda a, b: b > a)):
            a, b = old.get(keyword), new.get(keyword)
            if a == b or not all(isinstance(v, int | float) for v in (a, b) if v is not None):
                continue
            narrowed = (a is None and b is not None) or (a is not None and b is not None and tighter(a, b))
            severity = "error" if narrowed and direction == "request" else "info"
            self.add(severity, f"{keyword}-{'tightened' if narrowed else 'loosened'}", where, f"{a} -> {b}")
        if old.get("pattern") != new.get("pattern") and new.get("pattern") is not None:
            self.add("warning" if direction == "request" else "info", "pattern-changed", where,
                     f"{old.get('pattern')} -> {new.get('pattern')}")

    def _enum(self, where: str, old: dict[str, Any], new: dict[str, Any], direction: str) -> None:
        old_values, new_values = old.get("enum"), new.get("enum")
        if old_values is None or new_values is None:
            if old_values is None and new_values is not None and direction == "request":
                self.add("error", "enum-added", where, f"only {', '.join(map(str, new_values))} accepted now")
            return
        gone = [v for v in old_values if v not in new_values]
        fresh = [v for v in new_values if v not in old_values]
        if gone:
            self.add("error" if direction == "request" else "info", "enum-value-removed", where,
                     ", ".join(map(str, gone)))
        if fresh:
            self.add("warning" if direction == "response" else "info", "enum-value-added", where,
                     ", ".join(map(str, fresh)) + (" (clients must accept values they do not know)"
                                                   if direction == "response" else ""))

    # -- security --------------------------------------------------------------------------------

    def _security_schemes(self) -> None:
        old, new = (d.get("components", {}).get("securitySchemes", {}) for d in (self.old, self.new))
        for name in sorted(set(old) - set(new)):
            self.add("error", "security-scheme-removed", f"securitySchemes.{name}", "clients using it cannot log in")
        for name in sorted(set(old) & set(new)):
            old_scopes, new_scopes = _scopes(old[name]), _scopes(new[name])
            for scope in sorted(old_scopes - new_scopes):
                self.add("error", "scope-removed", f"securitySchemes.{name}", f"scope {scope} is no longer granted")

    def _operation_security(self, key: str, old: Any, new: Any) -> None:
        if old is None or new is None:
            return
        old_scopes = {(n, s) for requirement in old for n, scopes in requirement.items() for s in scopes}
        new_scopes = {(n, s) for requirement in new for n, scopes in requirement.items() for s in scopes}
        for name, scope in sorted(new_scopes - old_scopes):
            self.add("error", "scope-required", f"{key} security", f"now needs scope {scope} of {name}")

    # -- references ------------------------------------------------------------------------------

    @staticmethod
    def _deref(document: dict[str, Any], node: Any, seen: int = 0) -> Any:
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 20:
            ref = node["$ref"]
            if not ref.startswith("#/"):
                return node
            target: Any = document
            for part in ref[2:].split("/"):
                target = target.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(target, dict) else {}
            node, seen = target, seen + 1
        return node


def _operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Operations by "METHOD /path" with path parameters written {} (their names may differ)."""
    found = {}
    for path, item in (document.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        shared = item.get("parameters", [])
        for method in METHODS:
            operation = item.get(method)
            if isinstance(operation, dict):
                merged = {**operation, "parameters": [*shared, *operation.get("parameters", [])]}
                found[f"{method.upper()} {_TEMPLATE.sub('{}', path)}"] = merged
    return found


def _types(schema: dict[str, Any]) -> frozenset[str]:
    kind = schema.get("type")
    if isinstance(kind, list):
        return frozenset(kind)
    return frozenset({kind}) if isinstance(kind, str) else frozenset()


def _essence(schema: Any) -> str:
    """A schema without its prose, for telling a rename from a remove plus an unrelated add."""
    if isinstance(schema, dict):
        return json.dumps({k: _essence(v) for k, v in sorted(schema.items()) if k not in _IGNORED_KEYS})
    if isinstance(schema, list):
        return json.dumps([_essence(v) for v in schema])
    return json.dumps(schema)


def _scopes(scheme: dict[str, Any]) -> set[str]:
    flows = scheme.get("flows", {}) if isinstance(scheme, dict) else {}
    return {scope for flow in flows.values() if isinstance(flow, dict) for scope in (flow.get("scopes") or {})}
