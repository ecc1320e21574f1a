"""The dialect stage: the vendor's API shape, translated to and from the canonical domain engine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import Response

from syncert.simulators.domain.kinds import DomainError
from syncert.simulators.http import BadRequest
from syncert.simulators.stages.base import MAX_BODY_BYTES, BodyTooLarge, Exchange, NextStage, Stage

if TYPE_CHECKING:
    from syncert.simulators.simulator import Simulator


class DialectStage(Stage):
    """The last stage: tags the request canonically and serves it through the dialect."""

    name = "dialect"

    def __init__(self, simulator: Simulator):
        self.sim = simulator

    async def handle(self, exchange: Exchange, call_next: NextStage) -> Response | None:
        dialect, request = self.sim.dialect, exchange.request
        access, exchange.kind, exchange.operation = dialect.classify(request.method, request.path)
        exchange.tags.add(access)
        try:
            await exchange.read_body()
            response = dialect.handle(request)
            exchange.kind = exchange.kind or request.kind
            return response
        except BodyTooLarge:
            return dialect.error(413, "REQUEST_TOO_LARGE", f"request body exceeds {MAX_BODY_BYTES} bytes")
        except BadRequest as error:
            return dialect.error(400, error.code, error.message)
        except DomainError as error:
            return dialect.error(404 if error.code == "NOT_FOUND" else 400, error.code, error.message, error.fields)
