"""Connection guards for the simulators' HTTP listeners (uvicorn with httptools).

- A header deadline: a client gets HEADER_TIMEOUT_S to send a request's headers, or the connection is
  answered 408 and closed (slow-header clients cannot hold sockets forever).
- A body deadline: once its headers are in, a request gets BODY_TIMEOUT_S to send its body (then 408).
- A connection cap: past MAX_CONNECTIONS open connections, the connection that has waited longest for
  its headers, or sat idle longest between requests, is closed to make room; if every connection is
  busy with a request, the newcomer is answered 503 and closed.
- A request the HTTP parser rejects (an oversized URL or header, garbage) is answered 400 in the
  vendor's error shape, not as plain text.
Each response leaves in one write (status line, headers and body together): uvicorn writes the head
and the body separately, a second system call per request.
"""

from __future__ import annotations

import asyncio
import resource
from typing import Any

from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from syncert.simulators.dialects import ApiDialect

HEADER_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 30.0
MAX_CONNECTIONS = 1_000


def raise_open_file_limit() -> None:
    """Let the process use as many open files as its hard limit allows (each connection is one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 1 << 20, hard))


def _raw_error(dialect: ApiDialect, status: int, code: str, message: str) -> bytes:
    response = dialect.error(status, code, message)
    head = [STATUS_LINE[status]]
    head += [name + b": " + value + b"\r\n" for name, value in response.raw_headers]
    head.append(b"connection: close\r\n\r\n")
    return b"".join(head) + response.body


class CoalescingCycle(RequestResponseCycle):
    """uvicorn's request-response cycle, with the response head held back and written with the body."""

    _head = b""

    async def send(self, message: Any) -> None:
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        if not self.response_started:
            if message["type"] != "http.response.start":
                raise RuntimeError(f"Expected ASGI message 'http.response.start', but got '{message['type']}'.")
            self.response_started = True
            self.waiting_for_100_continue = False
            self._head = self._encode_head(message["status"], [*self.default_headers, *message.get("headers", ())])
        elif not self.response_complete:
            if message["type"] != "http.response.body":
                raise RuntimeError(f"Expected ASGI message 'http.response.body', but got '{message['type']}'.")
            self._send_body(message.get("body", b""), message.get("more_body", False))
        else:
            raise RuntimeError(f"Unexpected ASGI message '{message['type']}' sent, after response already completed.")

    def _encode_head(self, status: int, headers: list[tuple[bytes, bytes]]) -> bytes:
        if HEADER_RE.search(b"".join(name for name, _ in headers)):
            raise RuntimeError("Invalid HTTP header name.")
        if HEADER_VALUE_RE.search(b"".join(value for _, value in headers)):
            raise RuntimeError("Invalid HTTP header value.")
        content = [STATUS_LINE[status]]
        has_connection_close = False
        for raw_name, value in headers:
            name = raw_name.lower()
            if name == b"content-length" and self.chunked_encoding is None:
                self.expected_content_length = int(value.decode())
                self.chunked_encoding = False
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                self.expected_content_length = 0
                self.chunked_encoding = True
            elif name == b"connection" and b"close" in [token.lower().strip() for token in value.split(b",")]:
                self.keep_alive = False
                has_connection_close = True
            content += (name, b": ", value, b"\r\n")
        if not self.keep_alive and not has_connection_close:
            content.append(b"connection: close\r\n")
        if self.chunked_encoding is None and self.scope["method"] != "HEAD" and status not in (204, 304):
            self.chunked_encoding = True
            content.append(b"transfer-encoding: chunked\r\n")
        content.append(b"\r\n")
        return b"".join(content)

    def _send_body(self, body: bytes, more_body: bool) -> None:
        head, self._head = self._head, b""
        if self.scope["method"] == "HEAD":
            self.expected_content_length = 0
            self.transport.write(head)
        elif self.chunked_encoding:
            chunk = b"%x\r\n%b\r\n" % (len(body), body) if body else b""
            self.transport.write(head + chunk + (b"" if more_body else b"0\r\n\r\n"))
        else:
            if len(body) > self.expected_content_length:
                raise RuntimeError("Response content longer than Content-Length")
            self.expected_content_length -= len(body)
            self.transport.write(head + body if head else body)
        if not more_body:
            if self.expected_content_length != 0:
                raise RuntimeError("Response content shorter than Content-Length")
            self.response_complete = True
            self.message_event.set()
            if not self.keep_alive:
                self.transport.close()
            self.on_response()


def guarded_protocol(dialect: ApiDialect) -> type[HttpToolsProtocol]:
    """An httptools protocol class that applies the guards above and answers in `dialect`'s shape."""
    header_timeout_s, body_timeout_s, max_connections = HEADER_TIMEOUT_S, BODY_TIMEOUT_S, MAX_CONNECTIONS

    class GuardedProtocol(HttpToolsProtocol):
        # One sweep per listener checks every connection's header deadline and keep-alive timeout (uvicorn
        # and a header timer would arm and cancel two timers per request); both are met within
        # a tenth of the header deadline.
        _sweep: asyncio.TimerHandle | None = None

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._waiting_since: float | None = None
            self._idle_since: float | None = None
            self._body_since: float | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._waiting_since = self.loop.time()
            if GuardedProtocol._sweep is None:
                GuardedProtocol._sweep = self.loop.call_later(header_timeout_s / 10, self._sweep_deadlines)
            if len(self.connections) > max_connections and not self._evict_slowest():
                self._refuse(503, "SERVER_UNAVAILABLE", "too many open connections; retry later")

        def connection_lost(self, exc: Exception | None) -> None:
            self._waiting_since = None
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._waiting_since is None:
                self._waiting_since = self.loop.time()

        def on_headers_complete(self) -> None:
            self._waiting_since = None
            self._body_since = self.loop.time()
            super().on_headers_complete()
            if type(self.cycle) is RequestResponseCycle:  # not an upgrade: the cycle's task has not run yet
                self.cycle.__class__ = CoalescingCycle

        def on_message_complete(self) -> None:
            self._body_since = None
            super().on_message_complete()

        def on_response_complete(self) -> None:
            self.server_state.total_requests += 1
            if self.transport.is_closing():
                return
            self.flow.resume_reading()
            if self.pipeline:
                cycle, app = self.pipeline.pop()
                self._start_asgi_task(cycle, app)
            else:
                self._idle_since = self.loop.time()

        def _unset_keepalive_if_required(self) -> None:
            self._idle_since = None

        def send_400_response(self, msg: str) -> None:
            self._refuse(400, "INVALID_REQUEST", f"malformed HTTP request: {msg.rstrip('.')}")

        def _sweep_deadlines(self) -> None:
            now = self.loop.time()
            for connection in list(self.connections):
                if not isinstance(connection, GuardedProtocol):
                    continue
                if connection._waiting_since is not None and connection._waiting_since <= now - header_timeout_s:
                    connection._refuse(408, "REQUEST_TIMEOUT",
                                       f"request headers not received within {header_timeout_s:g} s")
                elif connection._body_since is not None and connection._body_since <= now - body_timeout_s:
                    connection._refuse(408, "REQUEST_TIMEOUT", f"request body not received within {body_timeout_s:g} s")
                elif (connection._idle_since is not None
                      and connection._idle_since <= now - connection.timeout_keep_alive):
                    connection._idle_since = None
                    connection.timeout_keep_alive_handler()
            GuardedProtocol._sweep = (self.loop.call_later(header_timeout_s / 10, self._sweep_deadlines)
                                      if self.connections else None)

        def _stalled_since(self) -> float | None:
            """Since when this connection waits for headers or sits idle between requests (None: busy)."""
            return self._waiting_since if self._waiting_since is not None else self._idle_since

        def _evict_slowest(self) -> bool:
            """Close the connection waiting longest for headers, or idle longest between requests."""
            candidates = [c for c in self.connections if isinstance(c, GuardedProtocol) and c is not self
                          and not c.transport.is_closing() and c._stalled_since() is not None]
            if not candidates:
                return False
            slowest = min(candidates, key=lambda c: c._stalled_since() or 0.0)
            slowest._refuse(408, "REQUEST_TIMEOUT", "connection closed to make room: idle or too slow")
            return True

        def _refuse(self, status: int, code: str, message: str) -> None:
            self._waiting_since = None
            if not self.transport.is_closing():
                self.transport.write(_raw_error(dialect, status, code, message))
                self.transport.close()

    return GuardedProtocol
