"""Request and response helpers shared by the pipeline, the control plane and the dialects."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.responses import Response

MAX_NUMBER_CHARACTERS = 64  # a JSON number longer than this fits no vendor field


class BadRequest(ValueError):
    """The request itself is malformed (body, parameters); `code` is canonical."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class ApiRequest:
    """What a handler needs of an HTTP request, read once by the pipeline."""

    method: str
    path: str
    query_string: str
    headers: Headers
    body: bytes
    scheme: str

    kind: str | None = field(default=None, init=False, compare=False)  # the record kind a dialect found only
    # while serving the request (what a query reads), for the journal
    _query_pairs: list[tuple[str, str]] | None = field(default=None, init=False, repr=False, compare=False)
    _query: dict[str, str] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def query(self) -> dict[str, str]:
        if self._query is None:
            self._query = dict(self.query_pairs)
        return self._query

    @property
    def query_pairs(self) -> list[tuple[str, str]]:
        """Parsed once (functools.cached_property takes a lock on every first access before Python 3.12)."""
        if self._query_pairs is None:
            self._query_pairs = parse_qsl(self.query_string, keep_blank_values=True) if self.query_string else []
        return self._query_pairs

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.headers.get('host', 'localhost')}"

    def json(self) -> Any:
        """The body parsed as JSON, numbers with a fraction as exact Decimals."""
        if not self.body.strip():
            raise BadRequest("JSON_PARSER_ERROR", "the request body is empty; a JSON document is expected")
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("JSON_PARSER_ERROR", "the request body is not UTF-8 text") from None
        try:
            return _DECODER.decode(text)
        except json.JSONDecodeError as error:
            raise BadRequest("JSON_PARSER_ERROR",
                             f"malformed JSON at line {error.lineno} column {error.colno}: {error.msg}") from None
        except RecursionError:
            raise BadRequest("JSON_PARSER_ERROR", "the JSON document is nested too deeply") from None

    def page_cursor(self, page_size: int) -> tuple[int, int]:
        """`since` (a sequence number, default 0) and `limit` (1..page_size, default page_size) of a paged
        control-plane read; BadRequest names a bad value."""
        try:
            since = int(self.query.get("since") or 0)
            limit = int(self.query.get("limit") or page_size)
        except ValueError:
            raise BadRequest("INVALID_REQUEST", "since and limit must be integers") from None
        if since < 0 or not 1 <= limit <= page_size:
            raise BadRequest("INVALID_REQUEST", f"since must be >= 0 and limit 1..{page_size}")
        return since, limit

    def json_object(self) -> dict[str, Any]:
        data = self.json()
        if not isinstance(data, dict):
            raise BadRequest("JSON_PARSER_ERROR", f"expected a JSON object, got a JSON {type(data).__name__}")
        return data


def _number_text(text: str) -> str:
    if len(text) > MAX_NUMBER_CHARACTERS:
        raise BadRequest("JSON_PARSER_ERROR", f"a number of {len(text)} characters is beyond any field's range "
                                              f"(at most {MAX_NUMBER_CHARACTERS})")
    return text


def _bounded_int(text: str) -> int:
    return int(_number_text(text))


def _bounded_decimal(text: str) -> Decimal:
    return Decimal(_number_text(text))


def _reject_constant(name: str) -> Any:
    raise BadRequest("JSON_PARSER_ERROR", f"{name} is not valid JSON")


def _vendor_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value) if value != value.to_integral_value() else int(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def _exact_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


_DECODER = json.JSONDecoder(parse_int=_bounded_int, parse_float=_bounded_decimal, parse_constant=_reject_constant)
# Made once: json.dumps with options builds an encoder per call. No circular check: answers are trees.
_VENDOR_ENCODER = json.JSONEncoder(default=_vendor_default, separators=(",", ":"), check_circular=False)
_EXACT_ENCODER = json.JSONEncoder(default=_exact_default, separators=(",", ":"), check_circular=False)
_JSON_TYPE = (b"content-type", b"application/json")


class ApiResponse(Response):
    """A Starlette Response with the same status, headers and body, built without Starlette's generic
    rendering and header normalisation (the simulators' answers are bytes with str headers)."""

    def __init__(self, body: bytes, status: int, headers: dict[str, str] | None, json_body: bool) -> None:
        self.status_code = status
        self.body = body
        self.background = None
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()] if headers else []
        if status >= 200 and status not in (204, 304) and not (headers and "content-length" in map(str.lower, headers)):
            raw.append((b"content-length", str(len(body)).encode("latin-1")))
        if json_body and not (headers and "content-type" in map(str.lower, headers)):
            raw.append(_JSON_TYPE)
        self.raw_headers = raw


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None,
                  exact: bool = False) -> Response:
    """JSON response; money as JSON numbers (vendor APIs) or, with `exact`, as decimal strings."""
    return ApiResponse((_EXACT_ENCODER if exact else _VENDOR_ENCODER).encode(data).encode("utf-8"), status,
                       headers, True)


def exact_json(data: Any) -> bytes:
    """Compact JSON bytes with money as exact decimal strings (the control plane's and the events' shape)."""
    return _EXACT_ENCODER.encode(data).encode("utf-8")


def empty_response(status: int = 204, headers: dict[str, str] | None = None) -> Response:
    return ApiResponse(b"", status, headers, False)
