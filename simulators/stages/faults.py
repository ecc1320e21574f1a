"""The fault stage: what production does to a connector, injected between governance and the dialect.

Today it holds the run's added latency (`GET|PUT /_sim/latency`, {"latency_ms": N}) and triggers
(`GET|POST /_sim/triggers`): a user's edit applied once the connector's Nth matching API request has been
answered, so that a record changes in the middle of a cycle. The fault engine (errors, resets, held
connections, lost responses) plugs in here.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from syncert.simulators.domain.kinds import DomainError
from syncert.simulators.http import ApiRequest, BadRequest, json_response
from syncert.simulators.stages.base import TRIGGERED, ControlHandler, Exchange, NextStage, Stage

if TYPE_CHECKING:
    from syncert.simulators.simulator import Simulator

MAX_LATENCY_MS = 600_000
MAX_TRIGGERS = 100
TRIGGER_USAGE = ('a trigger needs {"after": {"kind"?: "<kind>", "operation"?: "<operation>", "count"?: <n >= 1>}, '
                 '"edit": {"kind": "<kind>", "id": "<record id>", "changes": {<canonical fields>}}}')


@dataclass
class Trigger:
    """An edit made as a user once `count` successful API requests matching `kind` and `operation` (the
    journal's canonical names; None matches any) have been answered."""

    id: int
    kind: str | None
    operation: str | None
    count: int
    edit_kind: str
    edit_id: str
    changes: dict[str, Any]
    seen: int = 0
    fired: bool = False
    error: str | None = None

    def matches(self, exchange: Exchange) -> bool:
        return (not self.fired and self.kind in (None, exchange.kind)
                and self.operation in (None, exchange.operation))

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "after": {"kind": self.kind, "operation": self.operation, "count": self.count},
                "edit": {"kind": self.edit_kind, "id": self.edit_id, "changes": self.changes},
                "seen": self.seen, "fired": self.fired, "error": self.error}


class FaultStage(Stage):
    name = "faults"

    def __init__(self, simulator: Simulator):
        self.engine = simulator.engine
        self.latency_ms = 0.0
        self.triggers: list[Trigger] = []

    async def handle(self, exchange: Exchange, call_next: NextStage) -> Response | None:
        if exchange.api and self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        response = await call_next(exchange)
        if self.triggers and exchange.api and response is not None and response.status_code < 400:
            self._count(exchange)
        return response

    def _count(self, exchange: Exchange) -> None:
        """The answer is built (the connector sees the data as it was): fire the triggers it completes."""
        for trigger in self.triggers:
            if not trigger.matches(exchange):
                continue
            trigger.seen += 1
            if trigger.seen == trigger.count:
                trigger.fired = True
                try:
                    self.engine.update(trigger.edit_kind, trigger.edit_id, trigger.changes)
                except DomainError as error:  # e.g. the record was deleted since: the trigger says so
                    trigger.error = f"{error.code}: {error}"
                else:
                    exchange.tags.add(TRIGGERED)

    def reset(self) -> None:
        self.latency_ms = 0.0
        self.triggers.clear()

    def control_routes(self) -> dict[str, ControlHandler]:
        return {"GET latency": self._latency, "PUT latency": self._latency,
                "GET triggers": self._triggers, "POST triggers": self._triggers}

    async def _latency(self, request: ApiRequest) -> Response:
        """Latency added to every authenticated API request, in milliseconds."""
        if request.method == "PUT":
            value = request.json_object().get("latency_ms")
            if (isinstance(value, bool) or not isinstance(value, int | float | Decimal) or not math.isfinite(value)
                    or not 0 <= value <= MAX_LATENCY_MS):
                raise BadRequest("INVALID_REQUEST", f"latency needs {{\"latency_ms\": <0..{MAX_LATENCY_MS}>}}")
            self.latency_ms = float(value)
        return json_response({"latency_ms": self.latency_ms})

    async def _triggers(self, request: ApiRequest) -> Response:
        """The run's triggers; POST adds one (its edit is checked at once, then rolled back)."""
        if request.method == "GET":
            return json_response({"triggers": [t.public() for t in self.triggers]}, exact=True)
        body = request.json_object()
        after, edit = body.get("after", {}), body.get("edit")
        if not isinstance(after, dict) or not isinstance(edit, dict) or body.keys() - {"after", "edit"}:
            raise BadRequest("INVALID_REQUEST", TRIGGER_USAGE)
        kind, operation, count = after.get("kind"), after.get("operation"), after.get("count", 1)
        changes = edit.get("changes")
        if (after.keys() - {"kind", "operation", "count"} or edit.keys() != {"kind", "id", "changes"}
                or not all(isinstance(v, str | None) for v in (kind, operation)) or not isinstance(edit["id"], str)
                or isinstance(count, bool) or not isinstance(count, int) or count < 1
                or not isinstance(changes, dict) or not changes):
            raise BadRequest("INVALID_REQUEST", TRIGGER_USAGE)
        if len(self.triggers) >= MAX_TRIGGERS:
            raise BadRequest("INVALID_REQUEST", f"at most {MAX_TRIGGERS} triggers a run")
        if kind is not None:
            self.engine.kind(kind)
        with self.engine.transaction() as check:  # a bad edit is refused now, not when it fires
            self.engine.update(edit["kind"], edit["id"], changes)
            check.rollback()
        trigger = Trigger(len(self.triggers) + 1, kind, operation, count, edit["kind"], edit["id"], changes)
        self.triggers.append(trigger)
        return json_response(trigger.public(), 201, exact=True)
