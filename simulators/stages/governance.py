"""Governance: request-rate, concurrency and daily limits, set per run, answered with the vendor's refusal."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from syncert.simulators.http import ApiRequest, json_response
from syncert.simulators.stages.base import THROTTLED, ControlHandler, Exchange, NextStage, Stage

if TYPE_CHECKING:
    from syncert.simulators.simulator import Simulator


@dataclass
class Limits:
    """Per-run limits; None disables a limit. Changed through the control plane."""

    concurrency: int | None = None
    rate_per_s: float | None = None
    burst: int | None = None
    daily_api_requests: int = 100_000
    token_ttl_s: float = 3600.0

    def update(self, values: dict[str, Any]) -> None:
        """Apply a partial update; raises ValueError naming a bad key or value."""
        known = {f.name: f for f in fields(self)}
        for key, value in values.items():
            if key not in known:
                raise ValueError(f"unknown limit {key!r}; known limits: {', '.join(known)}")
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float | Decimal)
                                      or value < 0):
                raise ValueError(f"limit {key!r} must be a non-negative number or null, not {value!r}")
            if value is None and key in ("daily_api_requests", "token_ttl_s"):
                raise ValueError(f"limit {key!r} cannot be null")
        for key, value in values.items():
            setattr(self, key, float(value) if isinstance(value, Decimal) else value)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Rejection:
    reason: str  # "concurrency" | "rate" | "daily"
    retry_after_s: int
    message: str


class Governor:
    """Admits or rejects requests by the current limits; counts requests in flight."""

    def __init__(self) -> None:
        self.limits = Limits()
        self.in_flight = 0
        self.requests_today = 0
        self._tokens = 0.0
        self._refilled_at = time.monotonic()

    def reset(self) -> None:
        """Back to the default limits (in place: dialects hold a reference to `limits`)."""
        for default in fields(Limits):
            setattr(self.limits, default.name, default.default)
        self.requests_today = 0
        self._tokens = 0.0
        self._refilled_at = time.monotonic()

    def set_limits(self, values: dict[str, Any]) -> None:
        self.limits.update(values)
        self._tokens = float(self._capacity())
        self._refilled_at = time.monotonic()

    def _capacity(self) -> float:
        rate = self.limits.rate_per_s or 0.0
        return float(self.limits.burst or max(1.0, rate))

    def admit(self) -> Rejection | None:
        """Check a new request (already counted in `in_flight`) against the limits."""
        limits = self.limits
        if limits.concurrency is not None and self.in_flight > limits.concurrency:
            return Rejection("concurrency", 1, f"concurrency limit of {limits.concurrency} requests exceeded")
        if limits.rate_per_s:
            now = time.monotonic()
            self._tokens = min(self._capacity(), self._tokens + (now - self._refilled_at) * limits.rate_per_s)
            self._refilled_at = now
            if self._tokens < 1.0:
                wait = max(1, math.ceil((1.0 - self._tokens) / limits.rate_per_s))
                return Rejection("rate", wait, f"request rate limit of {limits.rate_per_s}/s exceeded")
            self._tokens -= 1.0
        self.requests_today += 1
        if self.requests_today > limits.daily_api_requests:
            return Rejection("daily", 3600, f"daily limit of {limits.daily_api_requests} API requests exceeded")
        return None


class GovernanceStage(Stage):
    """Counts authenticated API requests in flight and refuses those over a limit, with Retry-After."""

    name = "governance"

    def __init__(self, simulator: Simulator):
        self.sim = simulator
        self.governor = simulator.governor

    async def handle(self, exchange: Exchange, call_next: NextStage) -> Response | None:
        if not exchange.api:
            return await call_next(exchange)
        governor, dialect = self.governor, self.sim.dialect
        governor.in_flight += 1
        exchange.in_flight = governor.in_flight
        try:
            rejection = governor.admit()
            if rejection is not None:
                exchange.tags.add(THROTTLED)
                exchange.retry_after_s = rejection.retry_after_s
                await exchange.keep_body()
                return dialect.throttled(rejection)
            response = await call_next(exchange)
        finally:
            governor.in_flight -= 1
        if response is not None:
            dialect.decorate(response)
        return response

    def reset(self) -> None:
        self.governor.reset()

    def control_routes(self) -> dict[str, ControlHandler]:
        return {"GET limits": self._limits, "PUT limits": self._limits}

    async def _limits(self, request: ApiRequest) -> Response:
        """Governance limits (see Limits); PUT changes some of them."""
        if request.method == "PUT":
            self.governor.set_limits(request.json_object())
        return json_response(self.governor.limits.as_dict())
