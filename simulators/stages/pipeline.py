"""One simulated system as an ASGI application, and the pipeline every request passes.

journal (wraps everything) -> control-plane routing -> auth -> governance -> dialect handler
-> domain engine -> store. Faults and drift plug in between governance and the dialect.
Only authenticated API requests count as in flight (for the concurrency limit and the journal) and
toward a scheduled session expiry; control-plane and token requests do not.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from starlette.datastructures import Headers
from starlette.responses import Response

from syncert.simulators.domain.kinds import DomainError
from syncert.simulators.domain.store import Store
from syncert.simulators.http import ApiRequest, BadRequest
from syncert.simulators.stages.journal import JournalEntry, kept

if TYPE_CHECKING:
    from syncert.simulators.simulator import Simulator

MAX_BODY_BYTES = 10 * 1024 * 1024
CONTROL_PREFIX = "/_sim/"
log = logging.getLogger("syncert.simulator")


class GroupCommit:
    """Writes made while serving the requests of one event-loop turn share one COMMIT.

    Every request waits for the commit of all writes made so far before its response is sent, so an
    answered write is durable and no answer shows data that is not.
    """

    def __init__(self, store: Store):
        self.store = store
        self._pending: asyncio.Future[None] | None = None

    async def wait(self) -> None:
        if not self.store.has_uncommitted:
            return
        if self._pending is None:
            loop = asyncio.get_running_loop()
            self._pending = loop.create_future()
            loop.call_soon(self._commit)
        await asyncio.shield(self._pending)

    def _commit(self) -> None:
        future, self._pending = self._pending, None
        assert future is not None
        try:
            self.store.commit()
        except Exception as error:  # every waiting request answers 500 and logs it
            future.set_exception(error)
        else:
            future.set_result(None)


class SimulatorApp:
    """The ASGI entry point of one simulator."""

    def __init__(self, simulator: Simulator):
        from syncert.simulators.stages.control_plane import ControlPlane

        self.simulator = simulator
        self.control_plane = ControlPlane(simulator)
        self.group_commit = GroupCommit(simulator.engine.store)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        sim = self.simulator
        dialect, governor = sim.dialect, sim.governor
        method, path = scope["method"], scope["path"]
        started = time.time()
        in_flight = governor.in_flight  # API requests in flight; an API request counts itself below
        api = False
        raw_body = b""
        try:
            headers = Headers(scope=scope)
            raw_body, too_large = await _read_body(receive, headers)
            request = ApiRequest(method, path, scope["query_string"].decode("latin-1"), headers, raw_body,
                                 scope.get("scheme", "http"))
            if too_large:
                response = dialect.error(413, "REQUEST_TOO_LARGE", f"request body exceeds {MAX_BODY_BYTES} bytes")
            elif path.startswith(CONTROL_PREFIX):
                response = await self.control_plane.handle(request)
            elif dialect.is_public(request):
                response = await dialect.handle_public(request)
            elif (refusal := dialect.authenticate(request)) is not None:
                response = refusal
            else:
                api = True
                governor.in_flight += 1
                in_flight = governor.in_flight
                response = await self._serve(request)
            await self.group_commit.wait()
        except Exception:  # a bug must still answer in the vendor's shape and be journaled
            log.exception("simulator error on %s %s", method, path)
            response = dialect.error(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred in the simulator")
        finally:
            if api:
                governor.in_flight -= 1
        if api:
            dialect.tokens.answered()
        if not path.startswith(CONTROL_PREFIX):
            sim.journal.add(JournalEntry(sim.journal.next_seq(), method, path, dialect.access(method, path),
                                         scope["query_string"], response.status_code, started, time.time(),
                                         in_flight, tuple(scope["headers"]), kept(raw_body),
                                         tuple(response.raw_headers), kept(response.body)))
        await response(scope, receive, send)

    async def _serve(self, request: ApiRequest) -> Response:
        """An authenticated API request: governance, then the dialect's handler."""
        sim = self.simulator
        dialect = sim.dialect
        rejection = sim.governor.admit()
        if rejection is not None:
            return dialect.throttled(rejection)
        if sim.governor.limits.latency_ms:
            await asyncio.sleep(sim.governor.limits.latency_ms / 1000)
        try:
            response = dialect.handle(request)
        except BadRequest as error:
            response = dialect.error(400, error.code, error.message)
        except DomainError as error:
            response = dialect.error(404 if error.code == "NOT_FOUND" else 400, error.code, error.message,
                                     error.fields)
        dialect.decorate(response)
        return response


async def _read_body(receive: Any, headers: Headers) -> tuple[bytes, bool]:
    """Read the whole body, stopping (and reporting) past MAX_BODY_BYTES."""
    declared = headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return b"", True
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return b"", True
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks), False
