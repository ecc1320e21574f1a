"""The request journal: every request a simulator answered, with credentials redacted."""

from __future__ import annotations

import json
import re
from collections import deque
from typing import Any, NamedTuple

BODY_LIMIT = 64 * 1024  # bytes of each body the journal keeps
BYTES_LIMIT = 256 * 1024 * 1024  # bytes of bodies the whole journal keeps; the oldest entries drop off past it
REDACTED = "[REDACTED]"
SENSITIVE_HEADERS = {"authorization", "cookie", "set-cookie", "x-syncert-admin-token"}
_SENSITIVE_KEY = re.compile(r"secret|password|token|assertion|signature|session", re.IGNORECASE)
_SENSITIVE_MARKERS = (b"secret", b"password", b"token", b"assertion", b"signature", b"session")


class JournalEntry(NamedTuple):
    """One answered request, kept raw; `as_dict` is the redacted view, the only one that leaves the process.

    Immutable values only, so the garbage collector stops tracking entries: a full journal costs no GC time.
    `access` is the dialect's verdict: "auth" (token endpoint), "read" or "write" (may change state);
    `in_flight` counts authenticated API requests being served, this one included if it is one.
    """

    seq: int
    method: str
    path: str
    access: str
    raw_query: bytes
    status: int
    started_at: float
    ended_at: float
    in_flight: int
    raw_headers: tuple[tuple[bytes, bytes], ...]
    raw_request_body: bytes
    raw_response_headers: tuple[tuple[bytes, bytes], ...]
    raw_response_body: bytes

    @property
    def duration_ms(self) -> float:
        return round((self.ended_at - self.started_at) * 1000, 3)

    def as_dict(self) -> dict[str, Any]:
        headers = redact_headers(self.raw_headers)
        return {"seq": self.seq, "method": self.method, "path": self.path, "access": self.access,
                "query": redact_query(self.raw_query.decode("latin-1")), "status": self.status,
                "started_at": self.started_at, "ended_at": self.ended_at, "duration_ms": self.duration_ms,
                "in_flight": self.in_flight, "request_headers": headers,
                "request_body": redact_text(self.raw_request_body, headers.get("content-type", "")),
                "response_headers": redact_headers(self.raw_response_headers),
                "response_body": redact_text(self.raw_response_body)}


def redact_text(body: bytes, content_type: str = "") -> str:
    """Body as text with the values of credential-like keys replaced (JSON and form bodies)."""
    if not body:
        return ""
    text = body[:BODY_LIMIT].decode("utf-8", "replace")
    if len(body) > BODY_LIMIT:
        text += "...[truncated]"
    lowered = body[:BODY_LIMIT].lower()
    if not any(marker in lowered for marker in _SENSITIVE_MARKERS):
        return text
    if "x-www-form-urlencoded" in content_type or re.match(r"^[\w.%+-]+=[^{\[]", text):
        return re.sub(r"([\w.%-]*(?:secret|password|token|assertion|signature|session)[\w.%-]*)=[^&]*",
                      rf"\1={REDACTED}", text, flags=re.IGNORECASE)
    try:
        return json.dumps(_redact_json(json.loads(text)))
    except ValueError:
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
    """What the journal stores of a body: BODY_LIMIT bytes and one more, to know it was cut."""
    return body[:BODY_LIMIT + 1]


class Journal:
    """A bounded, in-memory log of requests: the oldest entries drop off past `capacity` entries or past
    BYTES_LIMIT bytes of bodies (each body is kept up to BODY_LIMIT, see `kept`)."""

    def __init__(self, capacity: int = 200_000):
        self._entries: deque[JournalEntry] = deque(maxlen=capacity)
        self._next_seq = 1
        self._bytes = 0
        self.dropped = 0

    def next_seq(self) -> int:
        seq = self._next_seq
        self._next_seq += 1
        return seq

    def add(self, entry: JournalEntry) -> None:
        if len(self._entries) == self._entries.maxlen:
            self._forget(self._entries[0])
        self._entries.append(entry)
        self._bytes += len(entry.raw_request_body) + len(entry.raw_response_body)
        while self._bytes > BYTES_LIMIT and len(self._entries) > 1:
            self._forget(self._entries.popleft())

    def _forget(self, entry: JournalEntry) -> None:
        self._bytes -= len(entry.raw_request_body) + len(entry.raw_response_body)
        self.dropped += 1

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0
        self.dropped = 0

    def select(self, method: str | None = None, path_contains: str | None = None, status: int | None = None,
               since_seq: int = 0, limit: int | None = None, access: str | None = None) -> list[JournalEntry]:
        """Entries matching every given filter, oldest first."""
        found = []
        for entry in self._entries:
            if entry.seq <= since_seq:
                continue
            if method and entry.method != method.upper():
                continue
            if access and entry.access != access:
                continue
            if path_contains and path_contains not in entry.path:
                continue
            if status is not None and entry.status != status:
                continue
            found.append(entry)
            if limit is not None and len(found) >= limit:
                break
        return found
