"""NetSuite SuiteTalk REST over the ERP engine: records, eid: upserts, list paging, SuiteQL, TBA.

Served paths (see contracts/netsuite/openapi.yaml):
    POST /services/rest/auth/oauth2/v1/token                 OAuth 2.0 client credentials (HTTP Basic)
    /services/rest/record/v1/{type}                          GET list (limit, offset, q), POST create
    /services/rest/record/v1/{type}/{id | eid:X}             GET, PATCH, DELETE; PUT eid:X upserts
    POST /services/rest/record/v1/salesOrder/{id}/!transform/{itemFulfillment|invoice}
    POST /services/rest/query/v1/suiteql?limit=&offset=      SuiteQL, header Prefer: transient
Choices where NetSuite's behaviour depends on account settings: unknown body fields are refused
unless `X-NetSuite-PropertyNameValidation` is `warning` or `ignore`; sublists are always expanded.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from starlette.responses import Response

from syncert.simulators.auth.oauth1 import SignatureVerifier, TbaCredentials
from syncert.simulators.auth.tokens import TokenStore
from syncert.simulators.clock import Clock
from syncert.simulators.dialects.base import WRITE_METHODS, ApiDialect
from syncert.simulators.dialects.field_map import FieldMapping, ObjectMap
from syncert.simulators.dialects.netsuite import suiteql_tables
from syncert.simulators.domain.kinds import DomainError, short_repr
from syncert.simulators.domain.repository import Repository
from syncert.simulators.domain.schema import Schema
from syncert.simulators.domain.store import Record
from syncert.simulators.http import ApiRequest, BadRequest, empty_response, json_response
from syncert.simulators.query import netsuite_filter, suiteql
from syncert.simulators.query.ast import Column, OrderItem, Select, TableRef
from syncert.simulators.query.evaluate import Row, evaluate
from syncert.simulators.query.parsing import QueryError, UnknownColumn, UnknownTable
from syncert.simulators.query.records import RecordSource, RecordTable
from syncert.simulators.stages.governance import Governor, Rejection

TRANSFORMS = {("salesOrder", "itemFulfillment"), ("salesOrder", "invoice")}
_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str, "date": str, "datetime": str, "boolean": bool, "number": (int, Decimal), "ref": dict, "enum": dict,
    "sublist": dict, "address_book": dict}
_REFERENCE_KEYS = {"ref": {"id", "externalId", "refName"}, "enum": {"id", "refName"}}
_ADDRESS_ITEM_KEYS = {"defaultBilling", "defaultShipping", "addressBookAddress"}
_ADDRESS_KEYS = {"addr1", "city", "state", "zip", "country"}
TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
RECORD_PREFIX = "/services/rest/record/v1/"
SUITEQL_PATH = "/services/rest/query/v1/suiteql"
_ACCOUNT_ID = re.compile(r"^[0-9A-Za-z]+(?:_[0-9A-Za-z]+)?$")  # 1234567, 1234567_SB1, TSTDRV1234567
_RECORD_PATH = re.compile(r"^/services/rest/record/v1/([A-Za-z]+)(?:/([^/]+))?(?:/!transform/([A-Za-z]+))?/?$")
_STATUS_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                  405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict", 413: "Payload Too Large",
                  429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}
_STATUS_TYPES = {400: "section-15.5.1", 401: "section-15.5.2", 403: "section-15.5.4", 404: "section-15.5.5",
                 408: "section-15.5.9", 503: "section-15.6.4",
                 405: "section-15.5.6", 409: "section-15.5.10", 413: "section-15.5.14", 500: "section-15.6.1"}
_SUBLIST_KEYS = {"items", "links"}  # the links of a sublist read back are ignored on write
ERROR_CODES = {
    "INSUFFICIENT_ACCESS": "INSUFFICIENT_PERMISSION",
    "NOT_FOUND": "NONEXISTENT_ID", "REQUIRED_FIELD_MISSING": "USER_ERROR", "STRING_TOO_LONG": "USER_ERROR",
    "INVALID_VALUE": "INVALID_FLD_VALUE", "INVALID_PICKLIST_VALUE": "INVALID_FLD_VALUE",
    "INVALID_REFERENCE": "INVALID_KEY_OR_REF", "DUPLICATE_VALUE": "DUP_RCRD",
    "INVALID_EMAIL_ADDRESS": "INVALID_FLD_VALUE", "NUMBER_OUTSIDE_VALID_RANGE": "INVALID_FLD_VALUE",
    "INVALID_FIELD": "INVALID_FIELD", "READ_ONLY_FIELD": "INVALID_FIELD", "INVALID_OPERATION": "USER_ERROR",
    "JSON_PARSER_ERROR": "INVALID_CONTENT", "UNKNOWN_KIND": "INVALID_RCRD_TYPE",
    "REQUEST_TOO_LARGE": "INVALID_CONTENT", "UNKNOWN_EXCEPTION": "UNEXPECTED_ERROR",
    "METHOD_NOT_ALLOWED": "INVALID_REQUEST", "VALIDATION_RULE": "USER_ERROR", "SESSION_EXPIRED": "INVALID_LOGIN",
    "SERVICE_UNAVAILABLE": "UNEXPECTED_ERROR",
    "SERVER_UNAVAILABLE": "UNEXPECTED_ERROR", "PRECONDITION_FAILED": "RCRD_HAS_BEEN_CHANGED",
}


class NsError(Exception):
    """An error answered in NetSuite's shape."""

    def __init__(self, status: int, code: str, message: str, path: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.path = status, code, message, path


class NetSuiteDialect(ApiDialect):
    name = "netsuite"
    side = "erp"

    def __init__(self, repository: Repository, schema: Schema, clock: Clock, governor: Governor):
        super().__init__(repository, schema, clock, governor)
        self.credentials = self._new_credentials(f"{secrets.randbelow(9_000_000) + 1_000_000}_SB1")
        self.verifier = SignatureVerifier(self.credentials)
        self.tokens = TokenStore(self.secrets, clock.timestamp, prefix="eyJ")

    # -- identity --------------------------------------------------------------------------------

    @staticmethod
    def id_format(schema: Schema, kind: str, number: int) -> str:
        return str(number + 100)

    def object_name(self, kind: str) -> str:
        object_map = self.schema.object_for(kind)
        if object_map is None:
            raise DomainError("UNKNOWN_KIND", f"NetSuite has no record type for {kind!r}")
        return object_map.name

    def environment(self, base_url: str) -> dict[str, str]:
        c = self.credentials
        return {"SYNCERT_ERP_URL": base_url, "SYNCERT_ERP_ACCOUNT": c.account,
                "SYNCERT_ERP_CONSUMER_KEY": c.consumer_key, "SYNCERT_ERP_CONSUMER_SECRET": c.consumer_secret,
                "SYNCERT_ERP_TOKEN_ID": c.token_id, "SYNCERT_ERP_TOKEN_SECRET": c.token_secret}

    # -- auth ------------------------------------------------------------------------------------

    def _new_credentials(self, account: str) -> TbaCredentials:
        credentials = TbaCredentials(account=account, consumer_key=secrets.token_hex(32),
                                     consumer_secret=secrets.token_hex(32), token_id=secrets.token_hex(32),
                                     token_secret=secrets.token_hex(32))
        self.secrets.add(credentials.consumer_key, credentials.consumer_secret, credentials.token_id,
                         credentials.token_secret)
        return credentials

    def use_account(self, account: str) -> None:
        """Serve the account `account` (e.g. "1234567" or "1234567_SB1"): the realm TBA signatures name."""
        if not _ACCOUNT_ID.match(account):
            raise ValueError(f"{account!r} is not a NetSuite account id (letters and digits, e.g. 1234567 or "
                             "1234567_SB1)")
        self.credentials = self.verifier.credentials = replace(self.credentials, account=account)

    def rotate_credentials(self) -> None:
        self.credentials = self.verifier.credentials = self._new_credentials(self.credentials.account)
        self.tokens.revoke_all()

    def query_text(self, request: ApiRequest) -> str | None:
        if request.path.rstrip("/") != SUITEQL_PATH:
            return None  # a record list's `q` filter names no table: its path gives the kind
        try:
            body = request.json()
        except BadRequest:
            return None
        return body.get("q") if isinstance(body, dict) and isinstance(body.get("q"), str) else None

    def classify(self, method: str, path: str) -> tuple[str, str | None, str | None]:
        if path.rstrip("/") == TOKEN_PATH:
            return "token", None, "token"
        access = "write" if method in WRITE_METHODS and path.startswith(RECORD_PREFIX) else "read"
        if path.rstrip("/") == SUITEQL_PATH:
            return access, None, "query"
        match = _RECORD_PATH.match(path)
        if not match:
            return access, None, None
        record_type, key, transform = match.groups()
        object_map = self.schema.objects.get(record_type)
        kind = object_map.kind if object_map else None
        if transform:
            return access, kind, "transform"
        if key is None:
            return access, kind, "create" if method == "POST" else "query"
        return access, kind, {"GET": "read", "PATCH": "update", "PUT": "upsert", "DELETE": "delete"}.get(method)

    def serves(self, path: str) -> bool:
        return path.startswith("/services/rest/")

    def auth_needs_body(self, request: ApiRequest) -> bool:
        return request.headers.get("authorization", "")[:6].lower() == "oauth "

    def is_public(self, request: ApiRequest) -> bool:
        return request.path.rstrip("/") == TOKEN_PATH

    async def handle_public(self, request: ApiRequest) -> Response:
        if request.method != "POST":
            return self.method_not_allowed(request.method, ("POST",))
        form = dict(parse_qsl(request.body.decode("utf-8", "replace")))
        if form.get("grant_type") != "client_credentials":
            return json_response({"error": "unsupported_grant_type"}, 400)
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            try:
                client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
            except ValueError:
                return json_response({"error": "invalid_client"}, 401)
        creds = self.credentials
        if not (hmac.compare_digest(client_id.encode(), creds.consumer_key.encode())
                and hmac.compare_digest(client_secret.encode(), creds.consumer_secret.encode())):
            return json_response({"error": "invalid_client"}, 401)
        ttl = self.governor.limits.token_ttl_s
        return json_response({"access_token": self.tokens.issue(ttl), "expires_in": str(int(ttl)),
                              "token_type": "bearer"})

    def authenticate(self, request: ApiRequest) -> Response | None:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            if self.tokens.valid(header[7:].strip()):
                return None
            reason = "the access token is invalid or expired"
        else:
            reason = self.verifier.verify(request.method, f"{request.base_url}{request.path}", request.query_string,
                                          {k.lower(): v for k, v in request.headers.items()}, request.body)
            if reason is None:
                return None
        return self.error(401, "INVALID_LOGIN", "Invalid login attempt. For more details, see the Login Audit "
                                                f"Trail in the NetSuite UI at Setup > Users/Roles > User Management "
                                                f"> View Login Audit Trail. ({reason})")

    # -- errors and governance ------------------------------------------------------------------

    def error(self, status: int, code: str, message: str, fields: tuple[str, ...] = ()) -> Response:
        detail: dict[str, Any] = {"detail": message, "o:errorCode": ERROR_CODES.get(code, code)}
        if fields:
            detail["o:errorPath"] = fields[0]
        section = _STATUS_TYPES.get(status, "section-15.5.1")
        rfc = "rfc6585.html#section-4" if status == 429 else f"rfc9110.html#{section}"
        return json_response({"type": f"https://www.rfc-editor.org/rfc/{rfc}",
                              "title": _STATUS_TITLES.get(status, "Error"), "status": status,
                              "o:errorDetails": [detail]}, status)

    def _refusal(self, error: DomainError) -> Response:
        """An engine refusal in NetSuite terms: error code, field ids in the detail and the error path."""
        fields = self.vendor_fields(error)
        message = self.vendor_message(error)
        if error.code == "REQUIRED_FIELD_MISSING":
            message = f"Please enter value(s) for: {', '.join(fields)}"
        return self.error(404 if error.code == "NOT_FOUND" else 400, error.code, message, fields)

    def throttled(self, rejection: Rejection) -> Response:
        code = "CONCURRENCY_LIMIT_EXCEEDED" if rejection.reason == "concurrency" else "REQUEST_LIMIT_EXCEEDED"
        response = self.error(429, code, f"Request blocked: {rejection.message}. Retry after "
                                         f"{rejection.retry_after_s} seconds.")
        response.headers["Retry-After"] = str(rejection.retry_after_s)
        return response

    # -- routing ---------------------------------------------------------------------------------

    def handle(self, request: ApiRequest) -> Response:
        try:
            if request.path.rstrip("/") == SUITEQL_PATH:
                if request.method != "POST":
                    return self.method_not_allowed(request.method, ("POST",))
                return self._suiteql_query(request)
            match = _RECORD_PATH.match(request.path)
            if not match:
                raise NsError(404, "INVALID_REQUEST", f"no REST resource at {request.path}")
            record_type, key, transform = match.groups()
            allowed = ("POST",) if transform else ("GET", "POST") if key is None else (
                ("GET", "PATCH", "DELETE", "PUT") if key.startswith("eid:") else ("GET", "PATCH", "DELETE"))
            if request.method not in allowed:
                return self.method_not_allowed(request.method, allowed)
            object_map = self.schema.objects.get(record_type)
            if object_map is None:
                raise NsError(404, "INVALID_RCRD_TYPE", f"Record type '{record_type}' does not exist or is not "
                                                        "supported by this simulator")
            if transform:
                return self._transform(request, object_map, key or "", transform)
            if key is None:
                return self._collection(request, object_map)
            return self._record(request, object_map, key)
        except NsError as error:
            return self.error(error.status, error.code, error.message, (error.path,) if error.path else ())
        except DomainError as error:
            return self._refusal(error)
        except QueryError as error:
            return self.error(400, "INVALID_PARAMETER", f"Invalid search query: {error}")

    def _collection(self, request: ApiRequest, object_map: ObjectMap) -> Response:
        if request.method == "POST":
            record = self.repository.create(object_map.kind, self._values(request, object_map))
            return empty_response(204, {"Location": self._href(request, object_map, record["id"])})
        limit, offset = _paging(request, self.schema.limits)
        if "q" in request.query:
            records = self._filter_records(object_map, request.query["q"])
        else:
            records = self.repository.records(object_map.kind)
        records.sort(key=lambda r: int(r["id"]))
        page = records[offset:offset + limit]
        items = [{"links": [{"rel": "self", "href": self._href(request, object_map, r["id"])}], "id": r["id"]}
                 for r in page]
        return json_response(self._envelope(request, items, limit, offset, len(records)))

    def _envelope(self, request: ApiRequest, items: list, limit: int, offset: int, total: int) -> dict[str, Any]:
        base = f"{request.base_url}{request.path}"
        extra = "".join(f"&{k}={v}" for k, v in request.query_pairs if k not in ("limit", "offset"))
        links = []
        if offset > 0:
            links.append({"rel": "previous", "href": f"{base}?limit={limit}&offset={max(0, offset - limit)}{extra}"})
        has_more = offset + limit < total
        if has_more:
            links.append({"rel": "next", "href": f"{base}?limit={limit}&offset={offset + limit}{extra}"})
        links.append({"rel": "self", "href": f"{base}?limit={limit}&offset={offset}{extra}"})
        return {"links": links, "count": len(items), "hasMore": has_more, "items": items, "offset": offset,
                "totalResults": total}

    def _record(self, request: ApiRequest, object_map: ObjectMap, key: str) -> Response:
        method = request.method
        external = key.startswith("eid:")
        if external:
            if not key[4:].isprintable() or not key[4:].strip():
                raise NsError(400, "INVALID_PARAMETER", f"invalid external id {key[4:]!r}: it must be printable text")
            matches = self.repository.find(object_map.kind, "external_id", key[4:])
            record = matches[0] if matches else None
        else:
            if not key.isdigit():
                raise NsError(400, "INVALID_PARAMETER", f"invalid record id {key!r}: use a number or eid:<externalId>")
            record = self.repository.get_or_none(object_map.kind, key)
        if method == "PUT":
            values = self._values(request, object_map)
            if values.get("external_id") not in (None, key[4:]):
                raise NsError(400, "INVALID_FLD_VALUE", "externalId in the body differs from the eid: in the path",
                              "externalId")
            if record is None:
                record = self.repository.create(object_map.kind, {**values, "external_id": key[4:]})
            else:
                self.repository.update(object_map.kind, record["id"], values)
            return empty_response(204, {"Location": self._href(request, object_map, record["id"])})
        if record is None:
            raise NsError(404, "NONEXISTENT_ID", "The record instance does not exist. Provide a valid record "
                                                 "instance ID.")
        if method == "GET":
            wanted = request.query.get("fields")
            shaped = self._shape(request, object_map, record)
            if wanted:
                names = {n.strip() for n in wanted.split(",")}
                shaped = {k: v for k, v in shaped.items() if k in names or k in ("links", "id")}
            return json_response(shaped)
        if method == "PATCH":
            self.repository.update(object_map.kind, record["id"], self._values(request, object_map))
            return empty_response(204)
        self.repository.delete(object_map.kind, record["id"])
        return empty_response(204)

    def _transform(self, request: ApiRequest, source: ObjectMap, key: str, target_name: str) -> Response:
        if (source.name, target_name) not in TRANSFORMS:
            raise NsError(400, "INVALID_PARAMETER", f"cannot transform {source.name} into {target_name}")
        self.repository.get(source.kind, key)
        target = self.schema.objects[target_name]
        values = self._values(request, target) if request.body.strip() else {}
        record = self.repository.create(target.kind, {**values, "sales_order_id": key})
        return empty_response(204, {"Location": self._href(request, target, record["id"])})

    # -- shapes ----------------------------------------------------------------------------------

    def _values(self, request: ApiRequest, object_map: ObjectMap) -> dict[str, Any]:
        payload = request.json_object()
        validation = request.headers.get("x-netsuite-propertynamevalidation", "error").lower()
        if validation not in ("error", "warning", "ignore"):
            raise NsError(400, "INVALID_PARAMETER",
                          "X-NetSuite-PropertyNameValidation must be error, warning or ignore")
        if validation in ("warning", "ignore"):
            payload = {k: v for k, v in payload.items() if k in object_map.fields or k == "links"}
        return self._payload_values(object_map.fields, payload, object_map.name)

    def _payload_values(self, fields: dict[str, FieldMapping], payload: dict[str, Any], where: str) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, value in payload.items():
            if name == "links":
                if not isinstance(value, list) or not all(isinstance(link, dict) for link in value):
                    raise NsError(400, "INVALID_FLD_VALUE", f"{where}.links must be a list of links", "links")
                continue
            mapping = fields.get(name)
            if mapping is None:
                raise NsError(400, "INVALID_FIELD", f"Invalid field '{name}' on {where}: the record has no such "
                                                    "field.", name)
            if mapping.read_only:
                raise NsError(400, "INVALID_FIELD", f"Field '{name}' on {where} is read-only.", name)
            if mapping.type == "address_book":
                values.update(self._address_book_in(value, name))
            else:
                values[mapping.canonical] = self._convert_in(mapping, value, f"{where}.{name}")
        return values

    def _convert_in(self, mapping: FieldMapping, value: Any, where: str) -> Any:
        if value is None:
            return None
        expected = _JSON_TYPES.get(mapping.type)
        if expected is not None and (not isinstance(value, expected) or (expected is not bool
                                                                         and isinstance(value, bool))):
            raise NsError(400, "INVALID_FLD_VALUE", f"{where}: {short_repr(value)} is not a valid {mapping.type}",
                          where)
        if mapping.length is not None and isinstance(value, str) and len(value) > mapping.length:
            raise NsError(400, "STRING_TOO_LONG", f"{where}: {len(value)} characters, at most {mapping.length} "
                                                  "allowed", where)
        if mapping.type in ("ref", "enum") and (not set(value) <= _REFERENCE_KEYS[mapping.type]
                                                or not all(isinstance(v, str) for v in value.values())):
            raise NsError(400, "INVALID_FLD_VALUE", f"{where}: a reference is {{\"id\": \"...\"}} with text values, "
                                                    f"not {short_repr(value)}", where)
        if mapping.type == "ref":
            if isinstance(value, dict) and isinstance(value.get("id"), str) and value["id"].isdigit():
                return value["id"]
            if isinstance(value, dict) and isinstance(value.get("externalId"), str):
                target = self.schema.objects.get(mapping.reference_to or "")
                found = self.repository.find(target.kind, "external_id", value["externalId"]) if target else []
                if not found:
                    raise NsError(400, "INVALID_KEY_OR_REF", f"Invalid {where} reference key "
                                                             f"externalId {value['externalId']!r}.", where)
                return found[0]["id"]
            raise NsError(400, "INVALID_FLD_VALUE", f"{where} must be a reference like {{\"id\": \"123\"}}", where)
        if mapping.type == "enum":
            key = value.get("id") if isinstance(value, dict) else None
            values = mapping.values or {}
            if key not in values:
                raise NsError(400, "INVALID_FLD_VALUE", f"{where}: invalid value {short_repr(key)}; valid ids are "
                                                        f"{', '.join(values)}", where)
            return values[key]
        if mapping.type == "sublist":
            items = value.get("items") if isinstance(value, dict) else None
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items) or set(value) - _SUBLIST_KEYS:
                raise NsError(400, "INVALID_FLD_VALUE", f"{where} must be {{\"items\": [ ... ]}}", where)
            return [self._payload_values(mapping.fields or {}, item, where) for item in items]
        return value

    @staticmethod
    def _address_book_in(value: Any, where: str) -> dict[str, Any]:
        items = value.get("items") if isinstance(value, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items) or set(value) - _SUBLIST_KEYS:
            raise NsError(400, "INVALID_FLD_VALUE", f"{where} must be {{\"items\": [ ... ]}}", where)
        values: dict[str, Any] = {}
        for item in items:
            address = item.get("addressBookAddress")
            if (not isinstance(address, dict) or set(item) - _ADDRESS_ITEM_KEYS or set(address) - _ADDRESS_KEYS
                    or not all(isinstance(item.get(flag, False), bool) for flag in ("defaultBilling",
                                                                                    "defaultShipping"))
                    or not all(isinstance(v, str | None) for k, v in address.items() if k != "country")):
                raise NsError(400, "INVALID_FLD_VALUE", f"{where} items need addressBookAddress with text "
                                                        f"{', '.join(sorted(_ADDRESS_KEYS))}", where)
            country = address.get("country")
            if country is not None and not (isinstance(country, dict) and isinstance(country.get("id"), str)
                                            and set(country) <= {"id", "refName"}):
                raise NsError(400, "INVALID_FLD_VALUE", f"{where} country must be {{\"id\": \"US\"}}", where)
            canonical = {"street": address.get("addr1"), "city": address.get("city"), "state": address.get("state"),
                         "postal_code": address.get("zip"), "country": country.get("id") if country else None}
            canonical = {k: v for k, v in canonical.items() if v is not None}
            if item.get("defaultBilling"):
                values["billing_address"] = canonical
            if item.get("defaultShipping"):
                values["shipping_address"] = canonical
        return values

    def _convert_out(self, mapping: FieldMapping, value: Any) -> Any:
        if value is None:
            return None
        if mapping.type == "datetime" and isinstance(value, str):
            return value[:19] + "Z"
        if mapping.type == "ref":
            return {"id": value}
        if mapping.type == "enum":
            code = next((k for k, v in (mapping.values or {}).items() if v == value), value)
            label = value.replace("_", " ").title() if value.islower() else value
            return {"id": code, "refName": label}
        if mapping.type == "sublist":
            return {"items": [{name: self._convert_out(sub, line.get(sub.canonical))
                               for name, sub in (mapping.fields or {}).items()} for line in value]}
        if mapping.type == "string" and isinstance(value, int | Decimal) and not isinstance(value, bool):
            return str(value)  # a number behind a text field (a drift changed its type)
        return value

    def _shape(self, request: ApiRequest, object_map: ObjectMap, record: Record) -> dict[str, Any]:
        shaped: dict[str, Any] = {"links": [{"rel": "self", "href": self._href(request, object_map, record["id"])}]}
        for name, mapping in object_map.fields.items():
            if mapping.type == "address_book":
                shaped[name] = _address_book_out(record)
                continue
            value = self._convert_out(mapping, record.get(mapping.canonical))
            if value is not None:
                shaped[name] = value
        return shaped

    def _shape_flat(self, object_map: ObjectMap, record: Record) -> dict[str, Any]:
        """Vendor field -> plain value (refs and enums as ids), for filters and SuiteQL."""
        flat: dict[str, Any] = {}
        for name, mapping in object_map.fields.items():
            if mapping.type in ("sublist", "address_book"):
                continue
            value = self._convert_out(mapping, record.get(mapping.canonical))
            flat[name] = value.get("id") if isinstance(value, dict) else value
        return flat

    @staticmethod
    def _href(request: ApiRequest, object_map: ObjectMap, record_id: str) -> str:
        return f"{request.base_url}/services/rest/record/v1/{object_map.name}/{record_id}"

    # -- SuiteQL ---------------------------------------------------------------------------------

    def _filter_records(self, object_map: ObjectMap, expression: str) -> list[Record]:
        """The live records a `q=` expression selects; ranges of lastModifiedDate and the like use the ordered
        indexes, text equality the hash indexes."""
        condition = netsuite_filter.parse_filter(expression, lambda name: _field_type(object_map, name))
        by_row: dict[int, Record] = {}

        def to_rows(kind: str, record: Record) -> list[Row]:
            row = self._shape_flat(object_map, record)
            by_row[id(row)] = record
            return [row]
        indexed = {name: m.canonical for name, m in object_map.fields.items() if m.type == "string" and m.part is None}
        ordered = {name: m.canonical for name, m in object_map.fields.items() if m.type == "datetime"}
        rows = RecordSource({object_map.name: RecordTable((object_map.kind,), to_rows, indexed, ordered)},
                            self.repository.records, self.repository.find, between=self.repository.records_between)
        select = Select(items=(), source=TableRef(object_map.name), where=condition)
        columns = [name for name in object_map.fields if _field_type(object_map, name) is not None]
        result = evaluate(select, rows, {object_map.name: columns}, netsuite_filter.SEMANTICS)
        return [by_row[id(match[0])] for match in result.matches if match[0] is not None]

    def _suiteql_query(self, request: ApiRequest) -> Response:
        if request.headers.get("prefer", "").lower() != "transient":
            raise NsError(400, "INVALID_PARAMETER", "SuiteQL requests need the header Prefer: transient", "Prefer")
        body = request.json_object()
        if set(body) - {"q"}:
            raise NsError(400, "INVALID_PARAMETER", f"unexpected keys in the SuiteQL body: {sorted(set(body) - {'q'})}")
        text = body.get("q")
        if not isinstance(text, str):
            raise NsError(400, "INVALID_PARAMETER", "the body must be {\"q\": \"SELECT ...\"}", "q")
        limit, offset = _paging(request, self.schema.limits)
        request.kind = self.query_kind(request)  # the kind of the table it selects from (journal, triggers)
        select = suiteql.parse_suiteql(text)
        if not select.order_by and not select.counts:
            select = replace(select, order_by=(OrderItem(Column("id", select.source.reference)),))
        rows = suiteql_tables.source(self.repository.records, self.repository.find, self._shape_flat,
                                     self.repository.records_between)
        try:
            result = evaluate(select, rows, suiteql_tables.SCHEMA, suiteql.SEMANTICS)
        except UnknownTable as error:
            raise NsError(400, "INVALID_PARAMETER", f"Invalid search query: unknown table '{error.table}'; tables "
                                                    f"are {', '.join(sorted(suiteql_tables.SCHEMA))}") from None
        except UnknownColumn as error:
            raise NsError(400, "INVALID_PARAMETER", f"Invalid search query: field '{error.column}' for record "
                                                    f"'{error.table}' was not found.") from None
        if select.counts:
            items = [{"links": [], **{name: str(value) for name, value in result.rows[0].items()}}]
            return json_response(self._envelope(request, items, limit, 0, 1))
        page = result.rows[offset:offset + limit]
        items = [{"links": [], **{name: _suiteql_value(value) for name, value in row.items()}} for row in page]
        return json_response(self._envelope(request, items, limit, offset, len(result.rows)))


def _paging(request: ApiRequest, limits: dict[str, int]) -> tuple[int, int]:
    """limit (default and maximum: the page_size limit; at most page_cap, when a drift shrank pages) and offset
    of a list or SuiteQL request."""
    max_page = limits["page_size"]
    try:
        limit = int(request.query.get("limit", max_page))
        offset = int(request.query.get("offset", 0))
    except ValueError:
        raise NsError(400, "INVALID_PARAMETER", "limit and offset must be integers") from None
    if not 1 <= limit <= max_page:
        raise NsError(400, "INVALID_PARAMETER", f"limit must be between 1 and {max_page}", "limit")
    if offset < 0:
        raise NsError(400, "INVALID_PARAMETER", "offset must not be negative", "offset")
    return min(limit, limits.get("page_cap", limit)), offset


def _field_type(object_map: ObjectMap, name: str) -> str | None:
    mapping = object_map.fields.get(name)
    return None if mapping is None or mapping.type in ("sublist", "address_book") else mapping.type


def _suiteql_value(value: Any) -> Any:
    """SuiteQL answers every value as text (booleans as T/F), nulls as null."""
    if isinstance(value, bool):
        return "T" if value else "F"
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def _address_book_out(record: Record) -> dict[str, Any]:
    items = []
    for canonical, billing in (("billing_address", True), ("shipping_address", False)):
        address = record.get(canonical)
        if address:
            lines = {"addr1": address.get("street"), "city": address.get("city"), "state": address.get("state"),
                     "zip": address.get("postal_code")}
            if address.get("country"):
                lines["country"] = {"id": address["country"]}
            items.append({"defaultBilling": billing, "defaultShipping": not billing, "addressBookAddress": lines})
    return {"items": items}
