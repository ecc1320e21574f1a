"""One simulated system as an ASGI application: the ordered stages every request passes.

journal (wraps everything) -> durability (group commit) -> control plane -> auth -> governance
-> faults -> drift -> dialect (vendor shape <-> canonical) -> domain engine -> store.
Each stage either answers or passes the request on; see `simulators.stages.base`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from syncert.simulators.domain.store import Store
from syncert.simulators.stages.auth import AuthStage
from syncert.simulators.stages.base import Exchange, NextStage, Stage
from syncert.simulators.stages.control_plane import ControlPlaneStage
from syncert.simulators.stages.dialect import DialectStage
from syncert.simulators.stages.drift import DriftStage
from syncert.simulators.stages.faults import FaultStage
from syncert.simulators.stages.governance import GovernanceStage
from syncert.simulators.stages.journal import JournalStage

if TYPE_CHECKING:
    from syncert.simulators.simulator import Simulator

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


class DurabilityStage(Stage):
    """No answer leaves before the writes it may show are committed; an unexpected error answers 500."""

    name = "durability"

    def __init__(self, simulator: Simulator):
        self.simulator = simulator
        self.group_commit = GroupCommit(simulator.engine.store)

    async def handle(self, exchange: Exchange, call_next: NextStage) -> Response | None:
        try:
            response = await call_next(exchange)
            await self.group_commit.wait()
        except Exception:  # a bug must still answer in the vendor's shape and be journaled
            log.exception("simulator error on %s %s", exchange.request.method, exchange.request.path)
            return self.simulator.dialect.error(500, "UNKNOWN_EXCEPTION",
                                                "An unexpected error occurred in the simulator")
        return response


def standard_stages(simulator: Simulator) -> list[Stage]:
    """The pipeline of PRODUCT.md, in order."""
    stages: list[Stage] = [JournalStage(simulator), DurabilityStage(simulator)]
    drift = DriftStage(simulator)
    rest: list[Stage] = [AuthStage(simulator), GovernanceStage(simulator), FaultStage(simulator, drift), drift,
                         DialectStage(simulator)]
    return [*stages, ControlPlaneStage(simulator, [*stages, *rest]), *rest]


def _unanswered(exchange: Exchange) -> Awaitable[Response | None]:
    raise LookupError(f"no stage answered {exchange.request.method} {exchange.request.path}")


def _link(stage: Stage, call_next: NextStage) -> NextStage:
    """`stage` bound to the rest of the pipeline: one callable per stage, made once, not per request."""
    handle = stage.handle
    return lambda exchange: handle(exchange, call_next)


class SimulatorApp:
    """The ASGI entry point of one simulator: runs each request through its stages.

    The chain of stages is linked once; a stage that does not override `Stage.handle` (a pure
    pass-through) is left out of it.
    """

    def __init__(self, simulator: Simulator, stages: Sequence[Stage] | None = None):
        self.simulator = simulator
        self.stages = list(stages) if stages is not None else standard_stages(simulator)
        chain: NextStage = _unanswered
        for stage in reversed(self.stages):
            if type(stage).handle is not Stage.handle:
                chain = _link(stage, chain)
        self._chain = chain

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        response = await self._chain(Exchange.from_scope(scope, receive, send))
        if response is not None:
            await response(scope, receive, send)
