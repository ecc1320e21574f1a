"""The fault stage: what production does to a connector, injected between governance and the dialect.

Today it holds the run's added latency (`GET|PUT /_sim/latency`, {"latency_ms": N}); the fault engine
(errors, resets, held connections, lost responses) plugs in here.
"""

from __future__ import annotations

import asyncio
import math
from decimal import Decimal
from typing import TYPE_CHECKING

from starlette.responses import Response

from syncert.simulators.http import ApiRequest, BadRequest, json_response
from syncert.simulators.stages.base import ControlHandler, Exchange, NextStage, Stage

if TYPE_CHECKING:
    from syncert.simulators.simulator import Simulator

MAX_LATENCY_MS = 600_000


class FaultStage(Stage):
    name = "faults"

    def __init__(self, simulator: Simulator):
        self.latency_ms = 0.0

    async def handle(self, exchange: Exchange, call_next: NextStage) -> Response | None:
        if exchange.api and self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        return await call_next(exchange)

    def reset(self) -> None:
        self.latency_ms = 0.0

    def control_routes(self) -> dict[str, ControlHandler]:
        return {"GET latency": self._latency, "PUT latency": self._latency}

    async def _latency(self, request: ApiRequest) -> Response:
        """Latency added to every authenticated API request, in milliseconds."""
        if request.method == "PUT":
            value = request.json_object().get("latency_ms")
            if (isinstance(value, bool) or not isinstance(value, int | float | Decimal) or not math.isfinite(value)
                    or not 0 <= value <= MAX_LATENCY_MS):
                raise BadRequest("INVALID_REQUEST", f"latency needs {{\"latency_ms\": <0..{MAX_LATENCY_MS}>}}")
            self.latency_ms = float(value)
        return json_response({"latency_ms": self.latency_ms})
