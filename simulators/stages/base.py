"""The protocol every pipeline stage follows, and the exchange a request becomes on its way through.

A stage is one small class: `handle(exchange, call_next)` answers the request itself or passes it on
(and may look at or change the answer on its way back), `reset()` forgets the run, and
`control_routes()` names the control-plane routes it serves. A stage can also act at the connection
level through the exchange's ASGI `send` (a fault that resets the connection); it then answers None.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import Response

from syncert.simulators.http import ApiRequest

MAX_BODY_BYTES = 10 * 1024 * 1024

NextStage = Callable[["Exchange"], Awaitable[Response | None]]
ControlHandler = Callable[[ApiRequest], Awaitable[Response]]

# The journal's canonical tags: what a request was and what became of it, in no vendor's terms.
TOKEN = "token"  # a request for an access token
AUTH = "auth"  # refused: missing, invalid or expired credentials
THROTTLED = "throttled"  # refused by governance, with a Retry-After
READ, WRITE = "read", "write"  # an authenticated API request that reads, or may change, data
OK = "ok"  # answered with success
REFUSED = "refused"  # answered with a client error (validation, not found...)
FAILED = "failed"  # answered with a server error, or not answered
TAKEN_OVER = "taken_over"  # a stage acted on the connection itself (no regular answer)
TRIGGERED = "triggered"  # a control-plane trigger made its edit once this request was answered
FAULTED = "faulted"  # the fault stage injected a fault into this request (the entry's `fault` names it)


class BodyTooLarge(Exception):
    """The request body is over MAX_BODY_BYTES."""


@dataclass
class Exchange:
    """One request on its way through the pipeline, and the canonical tags the stages set on it."""

    scope: dict[str, Any]
    receive: Callable[[], Awaitable[dict[str, Any]]]
    send: Callable[[dict[str, Any]], Awaitable[None]]
    request: ApiRequest
    tags: set[str] = field(default_factory=set)
    kind: str | None = None  # canonical record kind, when the dialect knows it
    operation: str | None = None  # canonical operation: create, read, update, upsert, delete, query...
    api: bool = False  # an authenticated API request (counts toward in-flight and governance)
    in_flight: int = 0  # authenticated API requests being served when this one was admitted
    retry_after_s: int | None = None
    fault: str | None = None  # "<rule id>:<fault type>" when the fault stage injected one
    body_read: bool = False
    body_too_large: bool = False  # read_body found the body over MAX_BODY_BYTES (and says so on every call)

    @classmethod
    def from_scope(cls, scope: dict[str, Any], receive: Any, send: Any) -> Exchange:
        request = ApiRequest(scope["method"], scope["path"], scope["query_string"].decode("latin-1"),
                             Headers(scope=scope), b"", scope.get("scheme", "http"))
        return cls(scope, receive, send, request)

    async def read_body(self) -> bytes:
        """Read the whole body once (later calls return it); raises BodyTooLarge past MAX_BODY_BYTES."""
        if self.body_read:
            if self.body_too_large:
                raise BodyTooLarge
            return self.request.body
        self.body_read = True
        declared, chunked = None, False
        for name, value in self.scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = True
        if declared is None and not chunked:  # HTTP/1.1: no length and no chunks means no body
            return self.request.body
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            self.body_too_large = True
            raise BodyTooLarge
        chunks, size = [], 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                self.body_too_large = True
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        self.request.body = b"".join(chunks)
        return self.request.body

    async def keep_body(self) -> None:
        """Read the body of a request answered before the dialect (throttled, faulted) so that the journal
        keeps it, and a retry is known as the same request; a body over MAX_BODY_BYTES is left out."""
        with contextlib.suppress(BodyTooLarge):
            await self.read_body()


class Stage:
    """One step of the pipeline; subclasses override what they need."""

    name = "stage"

    async def handle(self, exchange: Exchange, call_next: NextStage) -> Response | None:
        return await call_next(exchange)

    def reset(self) -> None:
        """Forget everything about the run (control-plane reset)."""

    def control_routes(self) -> dict[str, ControlHandler]:
        """Control-plane routes this stage serves, keyed "METHOD route" (route relative to /_sim/)."""
        return {}
