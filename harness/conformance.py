"""Traffic conformance: each request a connector sent, checked against its vendor's OpenAPI contract.

The journal keeps every request a simulator answered; `ContractJudge` validates one journal entry (method,
path, query, body) with openapi-core against the dialect's document in `contracts/` (and, when the scenario
drifted that API, against the drifted document too: a request either version allows conforms). Credentials
are not judged here (the journal redacts them). A violation names the request and the rule it broke, and is
one of two kinds:
  shape  the request is malformed whatever the data: an operation the API does not have (any bad path
         parameter), a missing body or parameter, a value of the wrong JSON type, a property the object does not
         have (the connector's code)
  value  the data does not fit: too long, not one of the allowed values, not the pattern (the vendor refuses
         such a record, and the scenarios judge how the connector handles the refusal)
Requests of one shape (method, the operations the path can be with whether each of its path parameters fits,
query names, body keys and JSON types) are judged once (openapi-core takes 2-5 ms a request: a backfill of
20,000 requests spent 40 s here before): a shape violation is reported for every request of that shape, a
value violation for the first request of each shape that shows one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import parse_qsl

from jsonschema import Draft202012Validator
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.validation.request.exceptions import (
    ParameterValidationError,
    RequestBodyValidationError,
    SecurityValidationError,
)
from openapi_core.validation.request.validators import V31RequestBodyValidator, V31RequestParametersValidator
from openapi_core.validation.schemas.exceptions import InvalidSchemaValue
from werkzeug.datastructures import Headers, ImmutableMultiDict

from syncert.contracts import load_yaml
from syncert.simulators.drift.profiles import load_profiles

SERVER = "http://127.0.0.1"  # the one server both contracts name


@dataclass(frozen=True)
class Violation:
    """One request that broke its contract: where it went and the rule it broke."""

    side: str
    seq: int
    request: str
    rule: str
    kind: str  # "shape" or "value"
    status: int  # what the server answered

    def as_dict(self) -> dict[str, Any]:
        return {"side": self.side, "seq": self.seq, "request": self.request, "kind": self.kind, "rule": self.rule,
                "status": self.status}


@dataclass(frozen=True)
class _JournaledRequest:
    """A journal entry in the shape openapi-core reads (its Request protocol)."""

    path: str
    method: str
    parameters: RequestParameters
    content_type: str
    body: bytes | None
    host_url: str = SERVER

    @property
    def full_url_pattern(self) -> str:
        return SERVER + self.path


class ContractJudge:
    """Validates the requests of one side against its dialect's contract (and drifted versions of it)."""

    def __init__(self, side: str, dialect: str, drift: tuple[str, ...] = ()):
        self.side = side
        self._versions = [_openapi(dialect, ())] + ([_openapi(dialect, drift)] if drift else [])
        self._paths = _path_shapes(dialect, drift)
        self._judged: dict[tuple[Any, ...], tuple[str, str] | None] = {}  # shape -> (rule, kind) broken

    def violation(self, entry: dict[str, Any]) -> Violation | None:
        """The rule `entry` broke, or None when it conforms (or cannot be judged: a body never read because the
        request was refused first, for its credentials or its rate; the journal keeps every body it read whole)."""
        body = entry.get("request_body") or ""
        declared = (entry.get("request_headers") or {}).get("content-length", "0")
        if not body and declared not in ("", "0"):
            return None
        request = _as_request(entry, body)
        shape = (self._paths.shape_of(request.path), *_shape_of(request))
        if shape in self._judged:
            broken = self._judged[shape]
            if broken is None or broken[1] == "value":
                return None
        else:
            rules = [_broken_rule(openapi, request) for openapi in self._versions]
            broken = None if any(rule is None for rule in rules) else rules[0]
            self._judged[shape] = broken
            if broken is None:
                return None
        query = f"?{entry['query']}" if entry.get("query") else ""
        rule, kind = broken
        return Violation(self.side, int(entry["seq"]), f"{entry['method']} {entry['path']}{query}"[:300], rule, kind,
                         int(entry.get("status") or 0))


def violations(journal: dict[str, list[dict[str, Any]]], dialects: dict[str, str],
               drift: dict[str, tuple[str, ...]]) -> list[Violation]:
    """Every request of the connector in `journal` (side -> entries) that broke its side's contract."""
    found = []
    for side, entries in journal.items():
        judge = ContractJudge(side, dialects[side], drift.get(side, ()))
        found += [v for v in map(judge.violation, entries) if v is not None]
    return found


def rule_broken(dialect: str, method: str, path: str, query: str, content_type: str, body: str) -> str | None:
    """The rule of the dialect's contract that one request breaks, in words, or None when it conforms."""
    entry = {"method": method, "path": path, "query": query, "request_headers": {"content-type": content_type}}
    broken = _broken_rule(_openapi(dialect, ()), _as_request(entry, body))
    return None if broken is None else broken[0]


@cache
def _document(dialect: str, drift: tuple[str, ...]) -> dict[str, Any]:
    document = load_yaml(dialect, "openapi.yaml")
    profiles = load_profiles() if drift else {}
    for profile_id in drift:
        document = profiles[profile_id].drifted_document(document)
    return document


@cache
def _openapi(dialect: str, drift: tuple[str, ...]) -> OpenAPI:
    return OpenAPI.from_dict(_document(dialect, drift))


class _PathShapes:
    """What openapi-core's verdict on a request path depends on: which path templates it matches, and whether
    each path parameter's value fits its schema (two record ids of one pattern give the same verdict)."""

    def __init__(self, documents: list[dict[str, Any]]):
        self._templates: dict[str, tuple[re.Pattern[str], list[tuple[str, Draft202012Validator]]]] = {}
        for document in documents:
            for template, item in document["paths"].items():
                parameters = [_resolved(document, parameter) for operation in item.values()
                              for parameter in (operation if isinstance(operation, list)
                                                else operation.get("parameters", []))]
                schemas = {p["name"]: p["schema"] for p in parameters if p.get("in") == "path"}
                pattern = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(template))
                validators = [(name, Draft202012Validator(schema)) for name, schema in sorted(schemas.items())]
                self._templates[f"{template}#{len(self._templates)}"] = (re.compile(pattern), validators)

    def shape_of(self, path: str) -> tuple[Any, ...]:
        """The templates `path` matches, each with the fit of its parameters; the path itself if none does."""
        matched = []
        for template, (pattern, validators) in self._templates.items():
            found = pattern.fullmatch(path)
            if found:
                matched.append((template, tuple(validator.is_valid(found[name]) for name, validator in validators)))
        return tuple(matched) or (path,)


@cache
def _path_shapes(dialect: str, drift: tuple[str, ...]) -> _PathShapes:
    return _PathShapes([_document(dialect, ())] + ([_document(dialect, drift)] if drift else []))


def _resolved(document: dict[str, Any], parameter: dict[str, Any]) -> dict[str, Any]:
    if "$ref" not in parameter:
        return parameter
    return document["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[-1]]


def _as_request(entry: dict[str, Any], body: str) -> _JournaledRequest:
    headers = dict(entry.get("request_headers") or {})
    content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if body and not content_type:
        content_type = "application/json" if body.lstrip()[:1] in ("{", "[") else "application/x-www-form-urlencoded"
    query = ImmutableMultiDict(parse_qsl(entry.get("query") or "", keep_blank_values=True))
    path = entry["path"].rstrip("/") or "/"  # both vendors take a path with a trailing slash as the same
    return _JournaledRequest(path, entry["method"].lower(),
                             RequestParameters(query=query, header=Headers(headers)), content_type,
                             body.encode("utf-8") if body else None)


def _shape_of(request: _JournaledRequest) -> tuple[Any, ...]:
    """What the shape rules of a contract depend on: not the values, but the names and JSON types."""
    try:
        body = _types(json.loads(request.body)) if request.body and request.content_type == "application/json" \
            else request.body
    except ValueError:
        body = request.body
    return (request.method, tuple(sorted(request.parameters.query)),
            request.content_type, body)


def _types(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((key, _types(item)) for key, item in value.items()))
    if isinstance(value, list):
        return ("list", tuple(sorted({repr(_types(item)) for item in value})))
    return type(value).__name__


VALUE_RULES = frozenset({"maxLength", "minLength", "pattern", "enum", "const", "format", "maximum", "minimum",
                         "exclusiveMaximum", "exclusiveMinimum", "multipleOf", "maxItems", "minItems"})


def _broken_rule(openapi: OpenAPI, request: _JournaledRequest) -> tuple[str, str] | None:
    """What `request` breaks in this version of the contract, and its kind (None: nothing)."""
    for validator in (V31RequestParametersValidator, V31RequestBodyValidator):
        try:
            validator(openapi.spec).validate(request)
        except SecurityValidationError:
            continue
        except Exception as error:  # openapi-core's validation errors share no public base we can name
            return _rule(error)
    return None


def _rule(error: Exception) -> tuple[str, str]:
    """The rule broken, in words (the innermost schema errors name the field and the constraint), and its kind."""
    causes = [error]
    while causes[-1].__cause__ is not None and len(causes) < 10:
        causes.append(causes[-1].__cause__)
    for cause in reversed(causes):
        if isinstance(cause, InvalidSchemaValue) and cause.schema_errors:
            errors = list(cause.schema_errors)
            details = []
            for schema_error in map(_innermost, errors[:3]):
                where = ".".join(str(p) for p in schema_error.absolute_path) or "(the whole value)"
                details.append(f"{where}: {_broken(schema_error)}")
            in_path = isinstance(error, ParameterValidationError) and error.location == "path"  # no such operation
            kind = "value" if not in_path and all(_innermost(e).validator in VALUE_RULES for e in errors) else "shape"
            where = "request body" if isinstance(error, RequestBodyValidationError) else _short(str(error), 120)
            return f"{where}: {'; '.join(details)}", kind
    return _short(str(error), 300), "shape"


def _broken(schema_error: Any) -> str:
    """One jsonschema error as the rule and the value that broke it (never the whole of a long value)."""
    if schema_error.validator in ("additionalProperties", "required"):
        return _short(schema_error.message, 160)
    return (f"{schema_error.validator} {_short(repr(schema_error.validator_value), 80)} "
            f"(got {_short(repr(schema_error.instance), 40)})")


def _innermost(schema_error: Any) -> Any:
    """The error deepest in a jsonschema error's context (an anyOf/oneOf names the branch that failed)."""
    while getattr(schema_error, "context", None):
        schema_error = max(schema_error.context, key=lambda e: len(e.absolute_path))
    return schema_error


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."
