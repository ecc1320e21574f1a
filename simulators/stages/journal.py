"""The request journal: every request a simulator answered, with credentials redacted."""

from __future__ import annotations

import itertools
import json
import re
import time
from collections import deque
from typing import TYPE_CHECKING, Any, NamedTuple

from starlette.responses import Response

from syncert.simulators.http import ApiRequest, BadRequest, json_response
from syncert.simulators.stages.base import (
    AUTH,
    FAILED,
    FAULTED,
    OK,
    READ,
    REFUSED,
    TAKEN_OVER,
    THROTTLED,
    TOKEN,
    TRIGGERED,
    WRITE,
    ControlHandler,
    Exchange,
    NextStage,
    Stage,
)

if TYPE_CHECKING:
    from syncert.simulators.simulator import Simulator

BODY_LIMIT = 64 * 1024  # bytes of each response body the journal keeps (request bodies are kept whole)
BYTES_LIMIT = 256 * 1024 * 1024  # bytes of bodies and headers the journal keeps; the oldest drop off past it
PAGE_ENTRIES = 1_000  # entries one journal read returns at most
PAGE_BYTES = 16 * 1024 * 1024  # bytes of bodies one journal read returns at most (one entry at least)
CONTROL_PREFIX = "/_sim/"
TAGS = frozenset({TOKEN, AUTH, THROTTLED, READ, WRITE, OK, REFUSED, FAILED, TAKEN_OVER, TRIGGERED, FAULTED})
REDACTED = "[REDACTED]"
_REFUSED_BEFORE = frozenset({AUTH, THROTTLED})  # auth or governance refused: tagged already
SENSITIVE_HEADERS = {"authorization", "cookie", "set-cookie", "x-syncert-admin-token"}
_SENSITIVE_KEY = re.compile(r"secret|password|token|assertion|signature|session", re.IGNORECASE)
_SENSITIVE_MARKERS = (b"secret", b"password", b"token", b"assertion", b"signature", b"session")


class JournalEntry(NamedTuple):
    """One answered request, kept raw; `as_dict` is the redacted view, the only one that leaves the process.

    Immutable values only, so the garbage collector stops tracking entries: a full journal costs no GC time.
    `tags` are canonical (see simulators.stages.base: token, auth, throttled, read, write, ok, refused,
    failed, taken_over, triggered, faulted; `fault` names the injected fault); `kind` and `operation` are
    canonical too, when the dialect knows them (a SOQL query's kind is the object it reads). `in_flight`
    counts authenticated API requests being served, this one included if it is one.
    """

    seq: int
    method: str
    path: str
    tags: tuple[str, ...]
    kind: str | None
    operation: str | None
    retry_after_s: int | None
    raw_query: bytes
    status: int
    started_at: float
    ended_at: float
    in_flight: int
    raw_headers: tuple[tuple[bytes, bytes], ...]
    raw_request_body: bytes
    raw_response_headers: tuple[tuple[bytes, bytes], ...]
    raw_response_body: bytes
    fault: str | None = None

    @property
    def duration_ms(self) -> float:
        return round((self.ended_at - self.started_at) * 1000, 3)

    @property
    def size(self) -> int:
        """Bytes of bodies and headers this entry holds (what the journal's byte budget counts)."""
        return (len(self.raw_request_body) + len(self.raw_response_body)
                + sum(len(name) + len(value) for name, value in self.raw_headers)
                + sum(len(name) + len(value) for name, value in self.raw_response_headers))

    def as_dict(self) -> dict[str, Any]:
        headers = redact_headers(self.raw_headers)
        return {"seq": self.seq, "method": self.method, "path": self.path, "tags": list(self.tags),
                "kind": self.kind, "operation": self.operation, "retry_after_s": self.retry_after_s,
                "query": redact_query(self.raw_query.decode("latin-1")), "status": self.status,
                "started_at": self.started_at, "ended_at": self.ended_at, "duration_ms": self.duration_ms,
                "in_flight": self.in_flight, "fault": self.fault, "request_headers": headers,
                "request_body": redact_text(self.raw_request_body, headers.get("content-type", ""), None),
                "response_headers": redact_headers(self.raw_response_headers),
                "response_body": redact_text(self.raw_response_body)}


def redact_text(body: bytes, content_type: str = "", limit: int | None = BODY_LIMIT) -> str:
    """Body as text (its first `limit` bytes, None: all) with the values of credential-like keys replaced (JSON
    and form bodies)."""
    if not body:
        return ""
    text = body[:limit].decode("utf-8", "replace")
    if limit is not None and len(body) > limit:
        text += "...[truncated]"
    lowered = body[:limit].lower()
    if not any(marker in lowered for marker in _SENSITIVE_MARKERS):
        return text
    if "x-www-form-urlencoded" in content_type or re.match(r"^[\w.%+-]+=[^{\[]", text):
        return re.sub(r"([\w.%-]*(?:secret|password|token|assertion|signature|session)[\w.%-]*)=[^&]*",
                      rf"\1={REDACTED}", text, flags=re.IGNORECASE)
    try:
        return json.dumps(_redact_json(json.loads(text)))
    except (ValueError, RecursionError):  # not JSON, or nested deeper than JSON parsing goes: redact as text
        return re.sub(r'("[^"]*(?:secret|password|token|assertion|signature|session)[^"]*"\s*:\s*)"[^"]*"',
                      rf'\1"{REDACTED}"', text, flags=re.IGNORECASE)


def _redact_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: REDACTED if _SENSITIVE_KEY.search(k) and isinstance(v, str) else _redact_json(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_json(v) for v in value]
    return value


def redact_headers(headers: tuple[tuple[bytes, bytes], ...]) -> dict[str, str]:
    out = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        out[name] = REDACTED if name in SENSITIVE_HEADERS else raw_value.decode("latin-1")
    return out


def redact_query(query: str) -> str:
    if not any(marker.decode() in query.lower() for marker in _SENSITIVE_MARKERS):
        return query
    return re.sub(r"([\w.%-]*(?:secret|password|token|assertion|signature|session)[\w.%-]*)=[^&]*",
                  rf"\1={REDACTED}", query, flags=re.IGNORECASE)


def kept(body: bytes) -> bytes:
    """What the journal stores of a response body: BODY_LIMIT bytes and one more, to know it was cut. (Request
    bodies are kept whole, up to MAX_BODY_BYTES: traffic conformance judges each of them in full.)"""
    return body[:BODY_LIMIT + 1]


class Journal:
    """A bounded, in-memory log of requests: the oldest entries drop off past `capacity` entries or past
    BYTES_LIMIT bytes of bodies and headers (response bodies kept up to BODY_LIMIT, see `kept`). Sequence numbers are
    consecutive, so a cursor (`since`) finds its place without a scan."""

    def __init__(self, capacity: int = 200_000, bytes_limit: int = BYTES_LIMIT):
        self._entries: deque[JournalEntry] = deque(maxlen=capacity)
        self._bytes_limit = bytes_limit
        self._next_seq = 1
        self._bytes = 0
        self.dropped = 0

    def next_seq(self) -> int:
        seq = self._next_seq
        self._next_seq += 1
        return seq

    @property
    def bytes_kept(self) -> int:
        return self._bytes

    def add(self, entry: JournalEntry) -> None:
        if len(self._entries) == self._entries.maxlen:
            self._forget(self._entries[0])
        self._entries.append(entry)
        self._bytes += entry.size
        while self._bytes > self._bytes_limit and len(self._entries) > 1:
            self._forget(self._entries.popleft())

    def _forget(self, entry: JournalEntry) -> None:
        self._bytes -= entry.size
        self.dropped += 1

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0
        self.dropped = 0

    def select(self, method: str | None = None, path_contains: str | None = None, status: int | None = None,
               since_seq: int = 0, limit: int | None = None, tag: str | None = None) -> list[JournalEntry]:
        """Entries after `since_seq` matching every given filter, oldest first, at most `limit`."""
        entries = self._entries
        start = max(0, since_seq + 1 - entries[0].seq) if entries else 0
        found = []
        for entry in itertools.islice(entries, start, None):
            if method and entry.method != method.upper():
                continue
            if tag and tag not in entry.tags:
                continue
            if path_contains and path_contains not in entry.path:
                continue
            if status is not None and entry.status != status:
                continue
            found.append(entry)
            if limit is not None and len(found) >= limit:
                break
        return found


class JournalStage(Stage):
    """Wraps everything: each request to the vendor API is journaled with the tags the stages set.

    Control-plane requests are not journaled. The body of a request refused for its credentials is never
    kept; the stages that answer before the dialect (governance, faults) read the body, so it is kept.
    """

    name = "journal"

    def __init__(self, simulator: Simulator):
        self.journal = simulator.journal

    async def handle(self, exchange: Exchange, call_next: NextStage) -> Response | None:
        request = exchange.request
        started = time.time()
        response = await call_next(exchange)
        if request.path.startswith(CONTROL_PREFIX):
            return response
        if response is None:  # a stage acted on the connection: no answer reached the client
            exchange.tags.update((TAKEN_OVER, FAILED))
        elif not exchange.tags & _REFUSED_BEFORE:
            exchange.tags.add(OK if response.status_code < 400 else REFUSED if response.status_code < 500 else FAILED)
        scope = exchange.scope
        body = b"" if AUTH in exchange.tags else request.body  # refused for credentials: never kept
        self.journal.add(JournalEntry(
            self.journal.next_seq(), request.method, request.path, tuple(sorted(exchange.tags)), exchange.kind,
            exchange.operation, exchange.retry_after_s, scope["query_string"],
            response.status_code if response is not None else 0, started, time.time(), exchange.in_flight,
            tuple(scope["headers"]), body, tuple(response.raw_headers) if response else (),
            kept(response.body) if response else b"", exchange.fault))
        return response

    def reset(self) -> None:
        self.journal.clear()

    def control_routes(self) -> dict[str, ControlHandler]:
        return {"GET journal": self._read, "DELETE journal": self._clear}

    async def _clear(self, request: ApiRequest) -> Response:
        self.journal.clear()
        return json_response({"cleared": True})

    async def _read(self, request: ApiRequest) -> Response:
        """A page of entries: ?since=SEQ&limit=N (default and most PAGE_ENTRIES) and filters
        method, path (substring), status, tag; `next` is the cursor to pass as `since` for more."""
        query = request.query
        since, limit = request.page_cursor(PAGE_ENTRIES)
        status_text = query.get("status") or ""
        if status_text and not status_text.isdigit():
            raise BadRequest("INVALID_REQUEST", "status must be an integer")
        status = int(status_text) if status_text else None
        tag = query.get("tag") or None
        if tag is not None and tag not in TAGS:
            raise BadRequest("INVALID_REQUEST", f"tag must be one of {', '.join(sorted(TAGS))}")
        entries = self.journal.select(query.get("method"), query.get("path"), status, since, limit + 1, tag)
        page, size = [], 0
        for entry in entries[:limit]:
            if page and size + entry.size > PAGE_BYTES:
                break
            page.append(entry)
            size += entry.size
        more = len(page) < len(entries)
        next_since = page[-1].seq if page else since
        return json_response({"entries": [e.as_dict() for e in page], "next": next_since, "more": more,
                              "dropped": self.journal.dropped})
