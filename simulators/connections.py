"""Connection guards for the simulators' HTTP listeners (uvicorn with httptools).

- A header deadline: a client gets HEADER_TIMEOUT_S to send a request's headers, or the connection is
  answered 408 and closed (slow-header clients cannot hold sockets forever).
- A connection cap: past MAX_CONNECTIONS open connections, the connection that has waited longest for
  its headers is closed to make room; if none is waiting, the newcomer is answered 503 and closed.
- A request the HTTP parser rejects (an oversized URL or header, garbage) is answered 400 in the
  vendor's error shape, not as plain text.
"""

from __future__ import annotations

import asyncio
import resource
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from syncert.simulators.dialects import ApiDialect

HEADER_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 1_000
_STATUS_TEXT = {400: "Bad Request", 408: "Request Timeout", 503: "Service Unavailable"}


def raise_open_file_limit() -> None:
    """Let the process use as many open files as its hard limit allows (each connection is one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 1 << 20, hard))


def _raw_error(dialect: ApiDialect, status: int, code: str, message: str) -> bytes:
    response = dialect.error(status, code, message)
    head = [f"HTTP/1.1 {status} {_STATUS_TEXT[status]}".encode()]
    head += [name + b": " + value for name, value in response.raw_headers]
    head.append(b"connection: close")
    return b"\r\n".join(head) + b"\r\n\r\n" + response.body


def guarded_protocol(dialect: ApiDialect) -> type[HttpToolsProtocol]:
    """An httptools protocol class that applies the guards above and answers in `dialect`'s shape."""
    header_timeout_s, max_connections = HEADER_TIMEOUT_S, MAX_CONNECTIONS

    class GuardedProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._header_timer: asyncio.TimerHandle | None = None
            self._waiting_since = 0.0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._await_headers()
            if len(self.connections) > max_connections and not self._evict_slowest():
                self._refuse(503, "SERVER_UNAVAILABLE", "too many open connections; retry later")

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_waiting()
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._header_timer is None:
                self._await_headers()

        def on_headers_complete(self) -> None:
            self._stop_waiting()
            super().on_headers_complete()

        def send_400_response(self, msg: str) -> None:
            self._refuse(400, "INVALID_REQUEST", f"malformed HTTP request: {msg.rstrip('.')}")

        def _await_headers(self) -> None:
            self._waiting_since = self.loop.time()
            self._header_timer = self.loop.call_later(header_timeout_s, self._headers_too_slow)

        def _stop_waiting(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            self._refuse(408, "REQUEST_TIMEOUT", f"request headers not received within {header_timeout_s:g} s")

        def _evict_slowest(self) -> bool:
            waiting = [c for c in self.connections if isinstance(c, GuardedProtocol) and c is not self
                       and c._header_timer is not None and not c.transport.is_closing()]
            if not waiting:
                return False
            slowest = min(waiting, key=lambda c: c._waiting_since)
            slowest._stop_waiting()
            slowest._refuse(408, "REQUEST_TIMEOUT", "connection closed to make room: request headers too slow")
            return True

        def _refuse(self, status: int, code: str, message: str) -> None:
            self._stop_waiting()
            if not self.transport.is_closing():
                self.transport.write(_raw_error(dialect, status, code, message))
                self.transport.close()

    return GuardedProtocol
