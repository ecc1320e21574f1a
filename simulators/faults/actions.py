"""What each fault does to one exchange: answers in the vendor's shape, mangled bodies, and acts on the
connection itself (reset, close, hold), through the ASGI `send` of the network listener."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from syncert.simulators.http import ApiRequest
from syncert.simulators.stages.base import THROTTLED, Exchange
from syncert.simulators.stages.governance import Rejection

if TYPE_CHECKING:
    from syncert.simulators.dialects import ApiDialect
    from syncert.simulators.faults.rules import FaultRule

MALFORMED_BODY = (b"<html><head><title>Gateway error</title></head><body><h1>The upstream answered with an "
                  b"error</h1><p>Please try again later.</p></body></html>")


class ConnectionFaultUnavailable(RuntimeError):
    """A connection fault on an exchange that has no network connection (an in-process simulator)."""


def vendor_answer(dialect: ApiDialect, exchange: Exchange, rule: FaultRule) -> Response:
    """The answer of a fault that refuses the request in the vendor's own shape."""
    fault, retry_after = rule.fault, rule.fault.get("retry_after_s")
    match rule.type:
        case "throttle" | "concurrency":
            reason = "rate" if rule.type == "throttle" else "concurrency"
            wait = 1 if retry_after is None else retry_after
            exchange.tags.add(THROTTLED)
            exchange.retry_after_s = wait
            return dialect.throttled(Rejection(reason, wait, f"{reason} limit exceeded (injected)"))
        case "server_error":
            response = dialect.error(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred. Please try again.")
        case "unavailable":
            response = dialect.error(503, "SERVICE_UNAVAILABLE", "The service is temporarily unavailable.")
        case "maintenance":
            response = dialect.error(503, "SERVER_UNAVAILABLE",
                                     "The service is down for maintenance. Please try again later.")
        case "version_conflict":
            response = dialect.error(412, "PRECONDITION_FAILED",
                                     "The record was modified by someone else since it was read.")
        case "status":
            response = dialect.error(fault["status"], fault.get("code") or "INJECTED_FAULT",
                                     fault.get("message") or f"Injected fault {rule.id}")
        case _:
            raise ValueError(f"{rule.type} is not answered in the vendor's shape")
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
        exchange.retry_after_s = retry_after
    return response


def session_refusal(dialect: ApiDialect, request: ApiRequest) -> Response:
    """The vendor's answer to credentials that no longer hold (after an expiry or a revocation)."""
    return dialect.authenticate(request) or dialect.error(401, "SESSION_EXPIRED", "Session expired or invalid")


def mangled(response: Response, how: str) -> Response:
    """The served answer with its body made unreadable: cut in half (`truncated`) or not JSON at all."""
    body = response.body[:len(response.body) // 2] if how == "truncated" else MALFORMED_BODY
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in response.raw_headers
               if name != b"content-length"}
    return Response(body, response.status_code if how == "truncated" else 200, headers)


class SlowBodyResponse(Response):
    """The same answer, its body sent in small pieces at `bytes_per_s`."""

    def __init__(self, response: Response, bytes_per_s: float):
        self.status_code, self.body, self.background = response.status_code, response.body, None
        self.raw_headers = list(response.raw_headers)
        self.bytes_per_s = bytes_per_s

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        piece = max(1, int(self.bytes_per_s / 10))
        for start in range(0, len(self.body), piece):
            await asyncio.sleep(piece / self.bytes_per_s)
            await send({"type": "http.response.body", "body": self.body[start:start + piece], "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _cycle(exchange: Exchange) -> Any:
    """The listener's request-response cycle behind `send` (uvicorn's), which holds the transport."""
    cycle = getattr(exchange.send, "__self__", None)
    if getattr(cycle, "transport", None) is None:
        raise ConnectionFaultUnavailable("connection faults need a simulator served on a network listener")
    return cycle


async def reset_connection(exchange: Exchange) -> None:
    """Abort the connection with a TCP reset: the client sees 'connection reset by peer', no answer."""
    cycle = _cycle(exchange)
    sock = cycle.transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    cycle.disconnected = True
    cycle.transport.abort()


async def close_connection(exchange: Exchange) -> None:
    """Close the connection cleanly without sending a byte: the client sees an empty answer."""
    cycle = _cycle(exchange)
    cycle.disconnected = True
    cycle.transport.close()


async def hold(exchange: Exchange, seconds: float, released: asyncio.Event) -> None:
    """Keep the request waiting until `seconds` pass, the hold is released, or the client goes away."""
    _cycle(exchange)
    await exchange.read_body()
    gone = asyncio.ensure_future(_disconnected(exchange))
    release = asyncio.ensure_future(released.wait())
    try:
        await asyncio.wait({gone, release}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        release.cancel()


async def _disconnected(exchange: Exchange) -> None:
    while (await exchange.receive())["type"] != "http.disconnect":
        pass
