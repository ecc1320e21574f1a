"""Salesforce REST API over the CRM engine: OAuth token endpoint, sObjects, SOQL, collections.

Served paths: /services/oauth2/token and /services/data/vNN.N/... (see contracts/salesforce/openapi.yaml).
Upsert by external id answers 201 (created) and, on an update, 200 with `created: false` from
API version 46.0 on and 204 before it. Errors are JSON arrays of {message, errorCode, fields}.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from starlette.responses import Response

from syncert.simulators.auth.tokens import TokenStore
from syncert.simulators.clock import Clock, format_datetime, parse_datetime
from syncert.simulators.dialects.base import WRITE_METHODS, ApiDialect
from syncert.simulators.dialects.field_map import FieldMapping, ObjectMap, canonical_field
from syncert.simulators.domain.kinds import DomainError, short_repr
from syncert.simulators.domain.repository import Repository
from syncert.simulators.domain.schema import Schema
from syncert.simulators.domain.store import Record
from syncert.simulators.http import ApiRequest, BadRequest, empty_response, json_response
from syncert.simulators.query import soql
from syncert.simulators.query.ast import Column
from syncert.simulators.query.evaluate import evaluate
from syncert.simulators.query.parsing import QueryError, UnknownColumn
from syncert.simulators.query.records import RecordSource, RecordTable
from syncert.simulators.stages.governance import Governor, Rejection

API_VERSIONS = tuple(f"{v}.0" for v in range(42, 63))
UPSERT_200_FROM = 46.0
CURRENCY_INTEGER_DIGITS = 16  # currency fields: precision 18, scale 2 (as describe says)
_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")
_DATA_PATH = re.compile(r"^/services/data/v(\d+\.\d)(/.*)?$")
_WRITE_PATH = re.compile(r"^/services/data/v[^/]+/(?:sobjects|composite)(?:/|$)")
TOKEN_PATH = "/services/oauth2/token"
_ROUTE_METHODS = tuple((re.compile(pattern), methods) for pattern, methods in (
    (r"^$", ("GET",)),
    (r"^/limits$", ("GET",)),
    (r"^/sobjects$", ("GET",)),
    (r"^/sobjects/[^/]+$", ("GET", "POST")),
    (r"^/sobjects/[^/]+/(describe|updated|deleted)$", ("GET",)),
    (r"^/sobjects/[^/]+/[^/]+$", ("GET", "PATCH", "DELETE")),
    (r"^/sobjects/[^/]+/[^/]+/[^/]+$", ("GET", "PATCH", "DELETE")),
    (r"^/(query|queryAll)(/[^/]+)?$", ("GET",)),
    (r"^/composite/sobjects$", ("POST", "PATCH", "DELETE")),
    (r"^/composite/sobjects/[^/]+$", ("GET",)),
    (r"^/composite/sobjects/[^/]+/[^/]+$", ("PATCH",)),
))
_JSON_TYPES = {"string": str, "textarea": str, "phone": str, "url": str, "email": str, "picklist": str, "date": str,
               "datetime": str, "reference": str, "id": str, "boolean": bool}

ERROR_CODES = {
    "INSUFFICIENT_ACCESS": "INSUFFICIENT_ACCESS_OR_READONLY",
    "INVALID_VALUE": "JSON_PARSER_ERROR",
    "INVALID_PICKLIST_VALUE": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
    "INVALID_REFERENCE": "INVALID_CROSS_REFERENCE_KEY",
    "READ_ONLY_FIELD": "INVALID_FIELD_FOR_INSERT_UPDATE",
    "UNKNOWN_KIND": "NOT_FOUND",
    "INVALID_OPERATION": "FIELD_INTEGRITY_EXCEPTION",
    "VALIDATION_RULE": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
    "SESSION_EXPIRED": "INVALID_SESSION_ID",
    "SERVER_UNAVAILABLE": "SERVER_UNAVAILABLE",
}
_ROLLED_BACK = {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": "Record rolled back because not all records were valid and the request was using "
                           "AllOrNone header", "fields": []}


def salesforce_id(prefix: str, number: int) -> str:
    """An 18-character Salesforce id: key prefix, pod marker, base-62 number and case checksum."""
    digits = ""
    while number:
        number, remainder = divmod(number, 62)
        digits = _BASE62[remainder] + digits
    return with_checksum(prefix + "5g" + digits.rjust(10, "0"))


def with_checksum(id15: str) -> str:
    suffix = ""
    for chunk in range(3):
        bits = sum(1 << i for i, ch in enumerate(id15[chunk * 5:chunk * 5 + 5]) if "A" <= ch <= "Z")
        suffix += _CHECKSUM_ALPHABET[bits]
    return id15 + suffix


class SfError(Exception):
    """An error answered in Salesforce's shape."""

    def __init__(self, status: int, code: str, message: str, fields: tuple[str, ...] = ()):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields


class SalesforceDialect(ApiDialect):
    name = "salesforce"
    side = "crm"

    def __init__(self, repository: Repository, schema: Schema, clock: Clock, governor: Governor):
        super().__init__(repository, schema, clock, governor)
        self.org_id = with_checksum("00D5g" + secrets.token_hex(5).upper())
        self.user_id = with_checksum("0055g" + secrets.token_hex(5).upper())
        self.username = "integration@syncert.example"
        # the org's URL, answered as `instance_url` by the token endpoint; None: the URL the token request
        # came to (a token requested from a login host, e.g. login.salesforce.com, needs it set)
        self.instance_url: str | None = None
        self.tokens = TokenStore(self.secrets, clock.timestamp, prefix=self.org_id[:15] + "!")
        self._new_credentials()
        self._cursors: OrderedDict[str, tuple[str, list[dict], int]] = OrderedDict()  # kind, records, batch

    # -- identity ------------------------------------------------------------------------------

    @staticmethod
    def id_format(schema: Schema, kind: str, number: int) -> str:
        return salesforce_id(_object_for(schema, kind).key_prefix, number)

    def object_name(self, kind: str) -> str:
        return _object_for(self.schema, kind).name

    def environment(self, base_url: str) -> dict[str, str]:
        return {"SYNCERT_CRM_URL": base_url, "SYNCERT_CRM_CLIENT_ID": self.client_id,
                "SYNCERT_CRM_CLIENT_SECRET": self.client_secret, "SYNCERT_CRM_USERNAME": self.username,
                "SYNCERT_CRM_PASSWORD": self.password}

    # -- auth ------------------------------------------------------------------------------------

    def _new_credentials(self) -> None:
        self.client_id = "3MVG9" + secrets.token_urlsafe(30).replace("-", "A").replace("_", "B")
        self.client_secret = secrets.token_hex(32).upper()
        self.password = secrets.token_urlsafe(18)
        self.secrets.add(self.client_id, self.client_secret, self.password)

    def rotate_credentials(self) -> None:
        self._new_credentials()
        self.tokens.revoke_all()

    def query_text(self, request: ApiRequest) -> str | None:
        return request.query.get("q") if "/query" in request.path else None

    def classify(self, method: str, path: str) -> tuple[str, str | None, str | None]:
        path = path.rstrip("/")
        if path == TOKEN_PATH:
            return "token", None, "token"
        access = "write" if method in WRITE_METHODS and _WRITE_PATH.match(path) else "read"
        match = _DATA_PATH.match(path)
        parts = [p for p in (match.group(2) or "").split("/") if p] if match else []
        if not parts:
            return access, None, "versions" if not match else "resources"
        if parts[0] in ("query", "queryAll"):
            return access, None, "query"
        if parts[0] != "sobjects" and parts[:2] != ["composite", "sobjects"]:
            return access, None, parts[0]
        rest = parts[1:] if parts[0] == "sobjects" else parts[2:]
        object_map = self._find_object(rest[0]) if rest else None
        kind = object_map.kind if object_map else None
        if parts[0] == "composite":
            operation = {"POST": "create", "PATCH": "upsert" if len(rest) == 2 else "update",
                         "DELETE": "delete"}.get(method, "read")
        elif len(rest) <= 1:
            operation = "create" if method == "POST" else "describe"
        elif rest[1] in ("describe", "updated", "deleted") and len(rest) == 2:
            operation = "describe" if rest[1] == "describe" else "changes"
        else:
            operation = {"GET": "read", "PATCH": "upsert" if len(rest) == 3 else "update",
                         "DELETE": "delete"}.get(method, method.lower())
        return access, kind, operation

    def serves(self, path: str) -> bool:
        return path == "/services/data" or path.startswith(("/services/data/", "/services/oauth2/"))

    def is_public(self, request: ApiRequest) -> bool:
        return request.path.rstrip("/") in (TOKEN_PATH, "/services/data")

    async def handle_public(self, request: ApiRequest) -> Response:
        versions = request.path.rstrip("/") == "/services/data"
        allowed = "GET" if versions else "POST"
        if request.method != allowed:
            return self.method_not_allowed(request.method, (allowed,))
        if versions:
            floor = self.schema.limits.get("min_api_version", 0)
            return json_response([{"label": f"v{v}", "url": f"/services/data/v{v}", "version": v}
                                  for v in API_VERSIONS if float(v) >= floor])
        form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        grant = form.get("grant_type")
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            try:
                client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
            except ValueError:
                return _oauth_error("invalid_client", "malformed Basic authorization header")
        if grant not in ("password", "client_credentials"):
            return _oauth_error("unsupported_grant_type", "grant type not supported")
        if not client_id or not hmac.compare_digest(client_id.encode(), self.client_id.encode()):
            return _oauth_error("invalid_client_id", "client identifier invalid")
        if not client_secret or not hmac.compare_digest(client_secret.encode(), self.client_secret.encode()):
            return _oauth_error("invalid_client", "invalid client credentials")
        if grant == "password" and (form.get("username") != self.username
                                    or not hmac.compare_digest(form.get("password", "").encode(),
                                                               self.password.encode())):
            return _oauth_error("invalid_grant", "authentication failure")
        token = self.tokens.issue(self.governor.limits.token_ttl_s)
        issued_at = str(int(self.clock.timestamp() * 1000))
        identity = f"{request.base_url}/id/{self.org_id}/{self.user_id}"
        signature = base64.b64encode(hmac.new(self.client_secret.encode(), (identity + issued_at).encode(),
                                              hashlib.sha256).digest()).decode()
        self.secrets.add(signature)
        return json_response({"access_token": token, "instance_url": self.instance_url or request.base_url,
                              "id": identity,
                              "token_type": "Bearer", "issued_at": issued_at, "signature": signature,
                              "scope": "api"})

    def authenticate(self, request: ApiRequest) -> Response | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() in ("bearer", "oauth") and self.tokens.valid(token.strip()):
            return None
        return self.error(401, "INVALID_SESSION_ID", "Session expired or invalid")

    # -- errors and governance ------------------------------------------------------------------

    def error(self, status: int, code: str, message: str, fields: tuple[str, ...] = ()) -> Response:
        return json_response([{"message": message, "errorCode": ERROR_CODES.get(code, code),
                               "fields": list(fields)}], status)

    def _refusal(self, error: DomainError) -> dict[str, Any]:
        """An engine refusal in Salesforce terms: vendor error code, field names and message."""
        fields = self.vendor_fields(error)
        message = self.vendor_message(error)
        if error.code == "REQUIRED_FIELD_MISSING":
            message = f"Required fields are missing: [{', '.join(fields)}]"
        elif error.code == "NUMBER_OUTSIDE_VALID_RANGE":
            message = f"{', '.join(fields)}: value outside of valid range on numeric field"
        return {"message": message, "errorCode": ERROR_CODES.get(error.code, error.code), "fields": list(fields)}

    def throttled(self, rejection: Rejection) -> Response:
        message = {"concurrency": "ConcurrentPerOrgLongTxn Limit exceeded.",
                   "rate": "TotalRequests Limit exceeded.",
                   "daily": "TotalRequests Limit exceeded."}[rejection.reason]
        response = self.error(403, "REQUEST_LIMIT_EXCEEDED", message)
        response.headers["Retry-After"] = str(rejection.retry_after_s)
        return response

    def decorate(self, response: Response) -> None:
        limits = self.governor.limits
        response.headers["Sforce-Limit-Info"] = f"api-usage={self.governor.requests_today}/{limits.daily_api_requests}"

    # -- routing ---------------------------------------------------------------------------------

    def handle(self, request: ApiRequest) -> Response:
        match = _DATA_PATH.match(request.path)
        if not match:
            return self.error(404, "NOT_FOUND", "The requested resource does not exist")
        version, rest = match.group(1), (match.group(2) or "/").rstrip("/")
        if version not in API_VERSIONS:
            return self.error(404, "NOT_FOUND", f"API version {version} is not supported by this simulator; "
                                                f"use one of {API_VERSIONS[0]}..{API_VERSIONS[-1]}")
        if float(version) < self.schema.limits.get("min_api_version", 0):  # retired (a drift): REST answers 410
            return self.error(410, "NOT_FOUND", f"API version {version} has been retired and is no longer "
                                                "available; the requested resource does not exist")
        parts = [p for p in rest.split("/") if p]
        allowed = next((methods for pattern, methods in _ROUTE_METHODS if pattern.match(rest)), None)
        if allowed is None:
            return self.error(404, "NOT_FOUND", "The requested resource does not exist")
        if request.method not in allowed:
            return self.method_not_allowed(request.method, allowed)
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if request.body and media_type and not (media_type == "application/json" or media_type.endswith("+json")):
            return self.error(415, "UNSUPPORTED_MEDIA_TYPE", f"Content type '{media_type}' is not supported; "
                                                             "send application/json")
        try:
            return self._route(request, version, parts)
        except SfError as error:
            return self.error(error.status, error.code, error.message, error.fields)
        except DomainError as error:
            return json_response([self._refusal(error)], 404 if error.code == "NOT_FOUND" else 400)
        except QueryError as error:
            return self.error(400, "MALFORMED_QUERY", str(error))

    def _route(self, request: ApiRequest, version: str, parts: list[str]) -> Response:
        method = request.method
        if not parts:
            return json_response({name: f"/services/data/v{version}/{name}"
                                  for name in ("sobjects", "query", "queryAll", "composite", "limits")})
        head = parts[0]
        if head == "limits" and len(parts) == 1 and method == "GET":
            return self._limits()
        if head in ("query", "queryAll") and method == "GET":
            if len(parts) == 2:
                return self._query_more(request, version, parts[1])
            if len(parts) == 1:
                return self._query(request, version, include_deleted=head == "queryAll")
        if head == "composite" and len(parts) >= 2 and parts[1] == "sobjects":
            return self._collection(request, version, parts[2:])
        if head == "sobjects":
            return self._sobjects(request, version, parts[1:])
        raise SfError(404, "NOT_FOUND", "The requested resource does not exist")

    def _find_object(self, name: str) -> ObjectMap | None:
        objects = self.schema.objects
        return objects.get(name) or next((m for m in objects.values() if m.name.lower() == name.lower()), None)

    def _object(self, name: str) -> ObjectMap:
        object_map = self._find_object(name)
        if object_map is None:
            raise SfError(404, "NOT_FOUND", f"The requested resource does not exist: sObject type '{name}'")
        return object_map

    def _sobjects(self, request: ApiRequest, version: str, parts: list[str]) -> Response:
        method = request.method
        if not parts:
            return json_response({"encoding": "UTF-8", "maxBatchSize": self.schema.limits["collection_records"],
                                  "sobjects": [self._object_summary(m, version) for m in self.schema.objects.values()]})
        object_map = self._object(parts[0])
        if len(parts) == 1:
            if method == "POST":
                values = self._values(object_map, request.json_object())
                record = self.repository.create(object_map.kind, values)
                return json_response({"id": record["id"], "success": True, "errors": []}, 201,
                                     {"Location": self._url(version, object_map, record["id"])})
            return json_response({"objectDescribe": self._object_summary(object_map, version), "recentItems": []})
        if len(parts) == 2 and parts[1] == "describe" and method == "GET":
            return json_response(self._describe(object_map, version))
        if len(parts) == 2 and parts[1] in ("updated", "deleted") and method == "GET":
            return self._changes(request, object_map, parts[1])
        if len(parts) == 2:
            return self._record(request, version, object_map, parts[1])
        if len(parts) == 3:
            return self._by_external_id(request, version, object_map, parts[1], parts[2])
        raise SfError(404, "NOT_FOUND", "The requested resource does not exist")

    # -- records ---------------------------------------------------------------------------------

    def _record(self, request: ApiRequest, version: str, object_map: ObjectMap, record_id: str) -> Response:
        record_id = self._normalize_id(record_id)
        record = self.repository.get(object_map.kind, record_id)
        etag = _etag(record)
        method = request.method
        if method == "GET":
            wanted = self._field_list(object_map, request.query.get("fields"))
            return json_response(self._shape(object_map, record, version, wanted), headers={"ETag": etag})
        if_match = request.headers.get("if-match")
        if if_match and if_match not in (etag, "*"):
            raise SfError(412, "PRECONDITION_FAILED", "The requested entity has been modified.")
        if method == "PATCH":
            self.repository.update(object_map.kind, record_id, self._values(object_map, request.json_object()))
            return empty_response(204)
        self.repository.delete(object_map.kind, record_id)
        return empty_response(204)

    def _by_external_id(self, request: ApiRequest, version: str, object_map: ObjectMap, field_name: str,
                        value: str) -> Response:
        mapping = object_map.lookup(field_name)
        if mapping is None or not (mapping.external_id or mapping.canonical == "id"):
            raise SfError(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: "
                                            f"{field_name}")
        matches = ([r for r in [self.repository.get_or_none(object_map.kind, self._normalize_id(value))] if r]
                   if mapping.canonical == "id"
                   else self.repository.find(object_map.kind, mapping.canonical, value))
        method = request.method
        if len(matches) > 1:
            urls = [self._url(version, object_map, r["id"]) for r in matches]
            return json_response(urls, 300)
        if method == "GET":
            if not matches:
                raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
            return json_response(self._shape(object_map, matches[0], version))
        if method == "DELETE":
            if not matches:
                raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
            self.repository.delete(object_map.kind, matches[0]["id"])
            return empty_response(204)
        body = request.json_object()
        if mapping.canonical == "id":
            if not matches:
                raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
            self.repository.update(object_map.kind, matches[0]["id"], self._values(object_map, body))
            return empty_response(204)
        if any(object_map.lookup(k) is mapping for k in body):
            raise SfError(400, "INVALID_FIELD", f"The external ID field {mapping.vendor} cannot be set in the body "
                                                "of an upsert", (mapping.vendor,))
        values = self._values(object_map, body)
        if matches:
            record = self.repository.update(object_map.kind, matches[0]["id"], values)
            if float(version) >= UPSERT_200_FROM:
                return json_response({"id": record["id"], "success": True, "errors": [], "created": False}, 200)
            return empty_response(204)
        record = self.repository.create(object_map.kind, {**values, mapping.canonical: value})
        return json_response({"id": record["id"], "success": True, "errors": [], "created": True}, 201,
                             {"Location": self._url(version, object_map, record["id"])})

    def _values(self, object_map: ObjectMap, payload: dict[str, Any]) -> dict[str, Any]:
        """Canonical values from a Salesforce record body (deserialization errors raise SfError)."""
        attributes = payload.get("attributes", {"type": object_map.name})
        if not (isinstance(attributes, dict) and set(attributes) <= {"type", "url"}
                                           and isinstance(attributes.get("type"), str)
                                           and all(isinstance(v, str) for v in attributes.values())):
            raise SfError(400, "JSON_PARSER_ERROR", "attributes must be an object with a string type (and url)")
        if attributes["type"] != object_map.name:
            raise SfError(400, "INVALID_TYPE", f"attributes.type {attributes['type']!r} is not the sObject of this "
                                               f"request, {object_map.name}")
        return object_map.to_canonical(
            payload, self._convert_in,
            unknown=lambda name: SfError(400, "INVALID_FIELD",
                                         f"No such column '{name}' on sobject of type {object_map.name}", (name,)),
            read_only=lambda names: SfError(400, "INVALID_FIELD_FOR_INSERT_UPDATE",
                                            f"Unable to create/update fields: {', '.join(names)}. Please check the "
                                            "security settings of this field and verify that it is read/write for "
                                            "your profile or permission set.", tuple(names)),
            ignore=frozenset({"attributes"}))

    def _convert_in(self, mapping: FieldMapping, value: Any) -> Any:
        expected = _JSON_TYPES.get(mapping.type)
        numeric = mapping.type in ("currency", "double", "percent")
        if value is not None and ((expected is not None and not isinstance(value, expected))
                                  or (numeric and (isinstance(value, bool) or not isinstance(value, int | Decimal)))):
            raise SfError(400, "JSON_PARSER_ERROR", f"Cannot deserialize instance of {mapping.type} from "
                                                    f"{short_repr(value, 40)} "
                                                    f"for field {mapping.vendor}", (mapping.vendor,))
        if numeric and value is not None and value and Decimal(value).adjusted() >= CURRENCY_INTEGER_DIGITS:
            raise SfError(400, "NUMBER_OUTSIDE_VALID_RANGE", f"{mapping.vendor}: value outside of valid range on "
                                                             f"numeric field: {str(value)[:40]}", (mapping.vendor,))
        if mapping.type == "reference" and isinstance(value, str) and value:
            return self._normalize_id(value)
        if mapping.type == "boolean" and value is None:
            return False  # a checkbox is never null: null clears it
        if mapping.length is not None and isinstance(value, str) and len(value) > mapping.length:
            raise SfError(400, "STRING_TOO_LONG", f"{mapping.vendor}: data value too large: {len(value)} characters "
                                                  f"(max length={mapping.length})", (mapping.vendor,))
        return value

    @staticmethod
    def _convert_out(mapping: FieldMapping, value: Any) -> Any:
        if mapping.type == "datetime" and isinstance(value, str):
            return value[:-1] + "+0000" if value.endswith("Z") else value
        if _JSON_TYPES.get(mapping.type) is str and isinstance(value, int | Decimal) and not isinstance(value, bool):
            return str(value)  # a number behind a text field (a drift changed its type)
        return value

    def _shape(self, object_map: ObjectMap, record: Record, version: str,
               only: list[str] | None = None) -> dict[str, Any]:
        shaped = {"attributes": {"type": object_map.name, "url": self._url(version, object_map, record["id"])}}
        shaped.update(object_map.from_canonical(record, self._convert_out, only))
        return shaped

    @staticmethod
    def _url(version: str, object_map: ObjectMap, record_id: str) -> str:
        return f"/services/data/v{version}/sobjects/{object_map.name}/{record_id}"

    @staticmethod
    def _normalize_id(value: str) -> str:
        if not _ID.match(value):
            raise SfError(400, "MALFORMED_ID", f"malformed id {value}")
        return with_checksum(value) if len(value) == 15 else value

    def _field_list(self, object_map: ObjectMap, text: str | None) -> list[str] | None:
        if not text:
            return None
        names = []
        for name in (n.strip() for n in text.split(",")):
            mapping = object_map.lookup(name)
            if mapping is None:
                raise SfError(400, "INVALID_FIELD", f"No such column '{name}' on entity '{object_map.name}'", (name,))
            names.append(mapping.vendor)
        return names

    # -- metadata --------------------------------------------------------------------------------

    def _object_summary(self, object_map: ObjectMap, version: str) -> dict[str, Any]:
        base = f"/services/data/v{version}/sobjects/{object_map.name}"
        return {"name": object_map.name, "label": object_map.label, "keyPrefix": object_map.key_prefix,
                "custom": False, "createable": True, "updateable": True, "deletable": True, "queryable": True,
                "urls": {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}}

    def _describe(self, object_map: ObjectMap, version: str) -> dict[str, Any]:
        fields = []
        for mapping in object_map.fields.values():
            definition = canonical_field(self.schema.kinds, object_map, mapping)
            writable = not mapping.read_only and not (definition and definition.read_only)
            picklist = [{"value": v, "label": v, "active": True, "defaultValue": v == definition.default}
                        for v in definition.values] if definition and definition.type == "picklist" else []
            numeric = mapping.type in ("currency", "double", "percent")
            fields.append({
                "name": mapping.vendor, "label": mapping.vendor.removesuffix("__c").replace("_", " "),
                "type": mapping.type, "length": mapping.length or (definition.length if definition else None) or
                (18 if mapping.type in ("id", "reference") else 0),
                "precision": 18 if numeric else 0, "scale": 2 if numeric else 0,
                "nillable": mapping.type != "boolean" and not (definition and definition.required)
                and mapping.canonical != "id",
                "externalId": mapping.external_id, "unique": bool(definition and definition.unique),
                "idLookup": mapping.external_id or mapping.canonical == "id",
                "createable": writable, "updateable": writable, "custom": mapping.vendor.endswith("__c"),
                "defaultedOnCreate": bool(definition and definition.default is not None),
                "referenceTo": [mapping.reference_to] if mapping.reference_to else [],
                "picklistValues": picklist, "restrictedPicklist": bool(picklist),
            })
        return {**self._object_summary(object_map, version), "fields": fields}

    def _limits(self) -> Response:
        maximum = self.governor.limits.daily_api_requests
        remaining = max(0, maximum - self.governor.requests_today)
        return json_response({"DailyApiRequests": {"Max": maximum, "Remaining": remaining},
                              "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
                              "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200}})

    # -- change feeds ----------------------------------------------------------------------------

    def _changes(self, request: ApiRequest, object_map: ObjectMap, feed: str) -> Response:
        try:
            start = parse_datetime(request.query["start"])
            end = parse_datetime(request.query["end"])
        except (KeyError, ValueError):
            raise SfError(400, "INVALID_REPLICATION_DATE", "start and end must be ISO 8601 datetimes, e.g. "
                                                           "2024-01-01T00:00:00Z") from None
        if end < start:
            raise SfError(400, "INVALID_REPLICATION_DATE", "end must not be before start")
        low, high = format_datetime(start), format_datetime(end)
        latest = self._convert_out(object_map.fields["SystemModstamp"], format_datetime(end.replace(second=0,
                                                                                                    microsecond=0)))
        records = self.repository.records(object_map.kind, include_deleted=True)
        if feed == "updated":
            ids = [r["id"] for r in records if not r.get("is_deleted") and low <= r["modified_at"] <= high]
            return json_response({"ids": ids, "latestDateCovered": latest})
        deleted = [{"id": r["id"], "deletedDate": self._convert_out(object_map.fields["SystemModstamp"],
                                                                    r["deleted_at"])}
                   for r in records if r.get("is_deleted") and low <= r["deleted_at"] <= high]
        earliest = self._convert_out(object_map.fields["SystemModstamp"],
                                     format_datetime(self.clock.now().replace(microsecond=0)) if not records
                                     else min(r["created_at"] for r in records))
        return json_response({"deletedRecords": deleted, "earliestDateAvailable": earliest,
                              "latestDateCovered": latest})

    # -- SOQL ------------------------------------------------------------------------------------

    def _query(self, request: ApiRequest, version: str, include_deleted: bool) -> Response:
        text = request.query.get("q")
        if text is None:
            raise SfError(400, "MALFORMED_QUERY", "the q parameter with a SOQL query is required")
        select = soql.parse_soql(text, self.clock.now)
        table = select.source.name
        object_map = next((m for m in self.schema.objects.values() if m.name.lower() == table), None)
        if object_map is None:
            raise SfError(400, "INVALID_TYPE", f"sObject type '{table}' is not supported.")
        request.kind = object_map.kind
        try:
            result = evaluate(select, self._soql_rows(object_map, include_deleted),
                              {table: [name.lower() for name in object_map.fields]}, soql.SEMANTICS)
        except UnknownColumn as error:
            raise SfError(400, "INVALID_FIELD", f"No such column '{error.column}' on entity '{object_map.name}'. If "
                                                "you are attempting to use a custom field, be sure to append the "
                                                "'__c' after the custom field name.", (error.column,)) from None
        if select.counts:
            return json_response({"totalSize": next(iter(result.rows[0].values())), "done": True, "records": []})
        names = [object_map.by_lower[item.expression.name].vendor for item in select.items
                 if isinstance(item.expression, Column)]
        records = []
        for row, (source_row, *_) in zip(result.rows, result.matches, strict=True):
            url = self._url(version, object_map, source_row["id"])  # type: ignore[index]
            records.append({"attributes": {"type": object_map.name, "url": url},
                            **{name: row[name.lower()] for name in names}})
        return self._page(request, version, object_map.kind, records)

    def _soql_rows(self, object_map: ObjectMap, include_deleted: bool) -> RecordSource:
        """Rows keyed by lower-cased field name; text fields look up through the engine's indexes, datetimes
        through its ordered ones."""
        def to_rows(kind: str, record: Record) -> list[dict[str, Any]]:
            values = object_map.from_canonical(record, self._convert_out)
            return [{name.lower(): value for name, value in values.items()}]
        indexed = {name.lower(): m.canonical for name, m in object_map.fields.items()
                   if m.part is None and m.type in ("string", "id", "reference", "email", "phone", "url", "picklist")}
        ordered = {name.lower(): m.canonical for name, m in object_map.fields.items() if m.type == "datetime"}
        table = RecordTable((object_map.kind,), to_rows, indexed, ordered)
        return RecordSource({object_map.name.lower(): table},
                            lambda kind: self.repository.records(kind, include_deleted=include_deleted),
                            None if include_deleted else self.repository.find,
                            between=None if include_deleted else self.repository.records_between)

    def _page(self, request: ApiRequest, version: str, kind: str, records: list[dict]) -> Response:
        limits = self.schema.limits
        batch = limits["query_batch"]
        options = request.headers.get("sforce-query-options", "")
        match = re.search(r"batchSize\s*=\s*(\d+)", options)
        if match:
            batch = min(limits["query_batch"], max(limits["query_batch_min"], int(match.group(1))))
        return self._cursor_page(request, version, kind, records, 0, batch)

    def _cursor_page(self, request: ApiRequest, version: str, kind: str, records: list[dict], offset: int,
                     batch: int) -> Response:
        page = records[offset:offset + batch]
        body: dict[str, Any] = {"totalSize": len(records), "done": offset + batch >= len(records), "records": page}
        if not body["done"]:
            cursor = "01g5g" + secrets.token_hex(5).upper()
            self._cursors[cursor] = (kind, records, batch)
            while len(self._cursors) > 200:
                self._cursors.popitem(last=False)
            absolute = request.base_url if self.schema.limits.get("absolute_links") else ""  # a drift's format
            body["nextRecordsUrl"] = f"{absolute}/services/data/v{version}/query/{cursor}-{offset + batch}"
        return json_response(body)

    def _query_more(self, request: ApiRequest, version: str, locator: str) -> Response:
        cursor, _, offset = locator.rpartition("-")
        if cursor not in self._cursors or not offset.isdigit():
            raise SfError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        kind, records, batch = self._cursors[cursor]
        request.kind = kind
        return self._cursor_page(request, version, kind, records, int(offset), batch)

    # -- collections -----------------------------------------------------------------------------

    def _collection(self, request: ApiRequest, version: str, parts: list[str]) -> Response:
        method = request.method
        if method == "GET" and len(parts) == 1:
            object_map = self._object(parts[0])
            ids = [i for i in request.query.get("ids", "").split(",") if i]
            wanted = self._field_list(object_map, request.query.get("fields"))
            if not ids or wanted is None:
                raise SfError(400, "MALFORMED_QUERY", "ids and fields parameters are required")
            self._check_collection_size(len(ids))
            found = []
            for record_id in ids:
                record = self.repository.get_or_none(object_map.kind, self._normalize_id(record_id))
                found.append(None if record is None else self._shape(object_map, record, version, wanted))
            return json_response(found)
        if method == "DELETE" and not parts:
            if request.query.get("allOrNone", "false") not in ("true", "false"):
                raise SfError(400, "INVALID_QUERY_FILTER_OPERATOR", "allOrNone must be true or false")
            ids = [i for i in request.query.get("ids", "").split(",") if i]
            if not ids:
                raise SfError(400, "MALFORMED_QUERY", "the ids parameter is required")
            self._check_collection_size(len(ids))
            return json_response([self._collection_delete(i) for i in ids])
        if method in ("POST", "PATCH"):
            body = request.json_object()
            records = body.get("records")
            if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                raise SfError(400, "JSON_PARSER_ERROR", "records must be a list of sObjects")
            self._check_collection_size(len(records))
            all_or_none = body.get("allOrNone", False)
            if not isinstance(all_or_none, bool):
                raise SfError(400, "JSON_PARSER_ERROR", "allOrNone must be true or false")
            if method == "POST" and not parts:
                return self._collection_write(records, all_or_none, self._collection_create)
            if method == "PATCH" and not parts:
                return self._collection_write(records, all_or_none, self._collection_update)
            if method == "PATCH" and len(parts) == 2:
                object_map = self._object(parts[0])
                mapping = object_map.lookup(parts[1])
                if mapping is None or not mapping.external_id:
                    raise SfError(404, "NOT_FOUND", f"Provided external ID field does not exist or is not "
                                                    f"accessible: {parts[1]}")
                return self._collection_write(records, all_or_none,
                                              lambda r: self._collection_upsert(object_map, mapping, r))
        raise SfError(404, "NOT_FOUND", "The requested resource does not exist")

    def _check_collection_size(self, size: int) -> None:
        limit = self.schema.limits["collection_records"]
        if size > limit:
            raise SfError(400, "EXCEEDED_ID_LIMIT", f"record limit reached. cannot submit more than "
                                                    f"{limit} records into this call")

    def _collection_write(self, records: list[dict], all_or_none: bool,
                          write: Callable[[dict], dict[str, Any]]) -> Response:
        """Write each record in its own savepoint; with allOrNone, one failure rolls back them all."""
        for payload in records:  # deserialization errors fail the whole request, as in Salesforce
            object_map = self._typed_object(payload)
            self._values(object_map, {k: v for k, v in payload.items() if k not in ("Id", "id")})
        results: list[dict[str, Any]] = []
        with self.repository.transaction() as request_block:
            for payload in records:
                try:
                    with self.repository.transaction():
                        results.append(write(payload))
                except (SfError, DomainError, BadRequest) as error:
                    results.append({"success": False, "errors": [self._collection_error(error)]})
                    if all_or_none:
                        break
            failed = any(not r["success"] for r in results)
            if all_or_none and failed:
                request_block.rollback()
                results = [r if not r["success"] else {"id": r.get("id"), "success": False, "errors": [_ROLLED_BACK]}
                           for r in results]
                results += [{"success": False, "errors": [_ROLLED_BACK]}] * (len(records) - len(results))
        return json_response(results)

    def _typed_object(self, payload: dict) -> ObjectMap:
        attributes = payload.get("attributes")
        if not isinstance(attributes, dict) or not isinstance(attributes.get("type"), str):
            raise SfError(400, "INVALID_TYPE", "each record needs attributes.type")
        return self._object(attributes["type"])

    def _collection_create(self, payload: dict) -> dict[str, Any]:
        object_map = self._typed_object(payload)
        if "Id" in payload or "id" in payload:
            raise SfError(400, "INVALID_FIELD", "cannot specify Id in an insert call", ("Id",))
        record = self.repository.create(object_map.kind, self._values(object_map, payload))
        return {"id": record["id"], "success": True, "errors": []}

    def _collection_update(self, payload: dict) -> dict[str, Any]:
        object_map = self._typed_object(payload)
        body = dict(payload)
        record_id = body.pop("Id", None) or body.pop("id", None)
        if not isinstance(record_id, str):
            raise SfError(400, "MISSING_ARGUMENT", "Id not specified in an update call", ("Id",))
        record_id = self._normalize_id(record_id)
        self.repository.update(object_map.kind, record_id, self._values(object_map, body))
        return {"id": record_id, "success": True, "errors": []}

    def _collection_upsert(self, object_map: ObjectMap, mapping: FieldMapping, payload: dict) -> dict[str, Any]:
        typed = self._typed_object(payload)
        if typed is not object_map:
            raise SfError(400, "INVALID_TYPE", f"record type {typed.name} does not match {object_map.name}")
        body = {k: v for k, v in payload.items() if object_map.lookup(k) is not mapping}
        key = next((v for k, v in payload.items() if object_map.lookup(k) is mapping), None)
        if not isinstance(key, str) or not key:
            raise SfError(400, "MISSING_ARGUMENT", f"{mapping.vendor} not specified", (mapping.vendor,))
        matches = self.repository.find(object_map.kind, mapping.canonical, key)
        if len(matches) > 1:
            raise SfError(300, "DUPLICATE_EXTERNAL_ID", f"{mapping.vendor}: more than one record found for "
                                                        f"external id field: {[r['id'] for r in matches]}")
        values = self._values(object_map, body)
        if matches:
            self.repository.update(object_map.kind, matches[0]["id"], values)
            return {"id": matches[0]["id"], "success": True, "errors": [], "created": False}
        record = self.repository.create(object_map.kind, {**values, mapping.canonical: key})
        return {"id": record["id"], "success": True, "errors": [], "created": True}

    def _collection_delete(self, record_id: str) -> dict:
        try:
            record_id = self._normalize_id(record_id)
            kind = next((m.kind for m in self.schema.objects.values() if record_id.startswith(m.key_prefix)), None)
            if kind is None:
                raise SfError(404, "ENTITY_IS_DELETED", "entity is deleted")
            self.repository.delete(kind, record_id)
            return {"id": record_id, "success": True, "errors": []}
        except (SfError, DomainError) as error:
            return {"id": record_id, "success": False, "errors": [self._collection_error(error)]}

    def _collection_error(self, error: SfError | DomainError | BadRequest) -> dict[str, Any]:
        if isinstance(error, DomainError):
            refusal = self._refusal(error)
            return {"statusCode": refusal["errorCode"], "message": refusal["message"], "fields": refusal["fields"]}
        return {"statusCode": ERROR_CODES.get(error.code, error.code), "message": error.message,
                "fields": list(getattr(error, "fields", ()))}


def _object_for(schema: Schema, kind: str) -> ObjectMap:
    object_map = schema.object_for(kind)
    if object_map is None:
        raise DomainError("UNKNOWN_KIND", f"Salesforce has no object for {kind!r}")
    return object_map


def _etag(record: Record) -> str:
    return '"' + hashlib.sha1(f"{record['id']}{record['modified_at']}".encode()).hexdigest()[:20] + '"'


def _oauth_error(error: str, description: str) -> Response:
    return json_response({"error": error, "error_description": description}, 400)
