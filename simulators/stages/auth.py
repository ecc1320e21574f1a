"""The auth stage: token endpoints, credential checks in the vendor's way, and the run's credentials.

Requests outside the dialect's API answer the vendor's 404 before any credential check; token endpoints
are served here; every other request needs valid credentials or gets the vendor's 401. A body is read
only when the credential check needs it (a signature over a form body), so a refused request's body is
never kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import Response

from syncert.simulators.http import ApiRequest, BadRequest, json_response
from syncert.simulators.stages.base import (
    AUTH,
    MAX_BODY_BYTES,
    BodyTooLarge,
    ControlHandler,
    Exchange,
    NextStage,
    Stage,
)

if TYPE_CHECKING:
    from syncert.simulators.simulator import Simulator


class AuthStage(Stage):
    name = "auth"

    def __init__(self, simulator: Simulator):
        self.sim = simulator

    async def handle(self, exchange: Exchange, call_next: NextStage) -> Response | None:
        dialect, request = self.sim.dialect, exchange.request
        if not dialect.serves(request.path):
            return dialect.error(404, "NOT_FOUND", "The requested resource does not exist")
        try:
            if dialect.is_public(request):
                access, exchange.kind, exchange.operation = dialect.classify(request.method, request.path)
                exchange.tags.add(access)
                await exchange.read_body()
                return await dialect.handle_public(request)
            if dialect.auth_needs_body(request):
                await exchange.read_body()
        except BodyTooLarge:
            return dialect.error(413, "REQUEST_TOO_LARGE", f"request body exceeds {MAX_BODY_BYTES} bytes")
        refusal = dialect.authenticate(request)
        if refusal is not None:
            exchange.tags.add(AUTH)
            return refusal
        exchange.api = True
        try:
            return await call_next(exchange)
        finally:
            dialect.tokens.answered()

    def reset(self) -> None:
        self.sim.dialect.tokens.cancel_expiry()

    def control_routes(self) -> dict[str, ControlHandler]:
        return {"GET credentials": self._credentials, "POST credentials/rotate": self._rotate,
                "GET secrets": self._secrets, "POST sessions/expire": self._expire}

    async def _credentials(self, request: ApiRequest) -> Response:
        """The SYNCERT_* environment a connector needs (secrets included)."""
        return json_response(self.sim.dialect.environment(request.base_url))

    async def _rotate(self, request: ApiRequest) -> Response:
        """Fresh credentials, every access token revoked; answers the new environment."""
        self.sim.dialect.rotate_credentials()
        return json_response(self.sim.dialect.environment(request.base_url))

    async def _secrets(self, request: ApiRequest) -> Response:
        """Every secret issued since start (the newest 100,000), for scrubbing reports."""
        return json_response({"secrets": self.sim.dialect.secrets.values()})

    async def _expire(self, request: ApiRequest) -> Response:
        """{"after_requests": N}: revoke the tokens issued so far once N more API requests are answered."""
        body = request.json_object() if request.body.strip() else {}
        after = body.get("after_requests", 0)
        if set(body) - {"after_requests"} or isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise BadRequest("INVALID_REQUEST", "sessions/expire needs {\"after_requests\": <integer >= 0>}")
        self.sim.dialect.tokens.expire_after(after)
        return json_response({"after_requests": after, "expired": after == 0})
