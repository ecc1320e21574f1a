"""The control plane under /_sim/: test-harness operations, guarded by the admin token.

Routes (JSON in and out; errors as {"error": {"code", "message"}}):
    GET  /_sim/health                  liveness (no token needed)
    POST /_sim/reset                   drop records, journal, limits, clock offset, webhooks, session expiry
    POST /_sim/seed                    bulk-create canonical records: {"records": {kind: [values...]}}
    GET  /_sim/state                   canonical state of every live record (money as exact strings)
    GET  /_sim/journal                 ?method=&path=&status=&access=&since=&limit=; DELETE clears it
    GET|PUT /_sim/limits               governance limits (see simulators.governance.Limits)
    GET|PUT /_sim/clock                {"offset_s": seconds} moves the simulated clock
    GET|PUT /_sim/tls                  {"enabled": bool} starts or stops the HTTPS listener
    GET|POST /_sim/webhooks            subscriptions; DELETE /_sim/webhooks/{id}
    GET  /_sim/credentials             the SYNCERT_* environment for a connector
    POST /_sim/credentials/rotate      fresh credentials, every access token revoked; answers the new environment
    GET  /_sim/secrets                 {"secrets": [...]}: every secret issued since start (newest 100,000)
    POST /_sim/sessions/expire         {"after_requests": N}: revoke the tokens issued so far once N more
                                       authenticated API requests are answered (default 0: now)
    PATCH|DELETE /_sim/records/{kind}/{id}   change a record as a user would (canonical fields)
In seed records, "_ref": "name" names a record and {"$ref": "name"} anywhere in a later record is
replaced by that record's id.
"""

from __future__ import annotations

import hmac
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from syncert.simulators.domain.kinds import DomainError
from syncert.simulators.http import ApiRequest, BadRequest, json_response

if TYPE_CHECKING:
    from syncert.simulators.simulator import Simulator


def _error(status: int, code: str, message: str) -> Response:
    return json_response({"error": {"code": code, "message": message}}, status)


class ControlPlane:
    def __init__(self, simulator: Simulator):
        self.sim = simulator

    async def handle(self, request: ApiRequest) -> Response:
        route = request.path[len("/_sim/"):].rstrip("/")
        if route == "health":
            return json_response({"status": "ok", "dialect": self.sim.dialect.name})
        if not self._authorized(request):
            return _error(401, "UNAUTHORIZED", "the control plane needs the admin token "
                                               "(Authorization: Bearer <SYNCERT_ADMIN_TOKEN>)")
        try:
            return await self._route(request, route)
        except BadRequest as error:
            return _error(400, error.code, error.message)
        except DomainError as error:
            return _error(404 if error.code == "NOT_FOUND" else 400, error.code, error.message)
        except ValueError as error:
            return _error(400, "INVALID_REQUEST", str(error))

    def _authorized(self, request: ApiRequest) -> bool:
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else request.headers.get("x-syncert-admin-token", "")
        return hmac.compare_digest(token.encode(), self.sim.admin_token.encode())

    async def _route(self, request: ApiRequest, route: str) -> Response:
        sim, method = self.sim, request.method
        if route == "reset" and method == "POST":
            sim.engine.reset()
            sim.journal.clear()
            sim.governor.reset()
            sim.clock.offset_s = 0.0
            sim.webhooks.clear()
            sim.dialect.tokens.cancel_expiry()
            return json_response({"reset": True})
        if route == "seed" and method == "POST":
            return json_response({"ids": self._seed(request.json_object())}, 201)
        if route == "state" and method == "GET":
            return json_response({"system": sim.engine.system, "dialect": sim.dialect.name,
                                  "records": sim.engine.dump()}, exact=True)
        if route == "journal":
            return self._journal(request)
        if route == "limits":
            if method == "PUT":
                sim.governor.set_limits(request.json_object())
            return json_response(sim.governor.limits.as_dict())
        if route == "clock":
            if method == "PUT":
                offset = request.json_object().get("offset_s")
                if isinstance(offset, bool) or not isinstance(offset, int | float | Decimal):
                    raise BadRequest("INVALID_REQUEST", "clock needs {\"offset_s\": <number of seconds>}")
                sim.clock.offset_s = float(offset)
            return json_response({"now": sim.clock.iso(), "offset_s": sim.clock.offset_s})
        if route == "tls":
            if sim.tls is None:
                return _error(409, "TLS_UNAVAILABLE", "this simulator host does not serve TLS")
            if method == "PUT":
                enabled = request.json_object().get("enabled")
                if not isinstance(enabled, bool):
                    raise BadRequest("INVALID_REQUEST", "tls needs {\"enabled\": true|false}")
                await (sim.tls.enable() if enabled else sim.tls.disable())
            return json_response(sim.tls.status())
        if route == "webhooks":
            if method == "POST":
                body = request.json_object()
                url = body.get("url")
                if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                    raise BadRequest("INVALID_REQUEST", "webhooks need {\"url\": \"http(s)://...\"}")
                kinds = body.get("kinds") or []
                unknown = [k for k in kinds if k not in sim.engine.kinds]
                if unknown:
                    raise BadRequest("INVALID_REQUEST", f"unknown kinds {unknown}; known: {sorted(sim.engine.kinds)}")
                subscription = sim.webhooks.subscribe(url, body.get("secret"), kinds)
                return json_response({**subscription.public(), "secret": subscription.secret}, 201)
            return json_response({"subscriptions": [s.public() for s in sim.webhooks.subscriptions.values()]})
        if route.startswith("webhooks/") and method == "DELETE":
            if sim.webhooks.unsubscribe(route.split("/", 1)[1]):
                return json_response({"deleted": True})
            return _error(404, "NOT_FOUND", "no such webhook subscription")
        if route.startswith("records/") and method in ("PATCH", "DELETE") and route.count("/") == 2:
            _, kind, record_id = route.split("/")
            if method == "DELETE":
                sim.engine.delete(kind, record_id)
                return json_response({"deleted": True})
            return json_response(sim.engine.update(kind, record_id, request.json_object()), exact=True)
        if route == "credentials" and method == "GET":
            return json_response(sim.dialect.environment(request.base_url))
        if route == "credentials/rotate" and method == "POST":
            sim.dialect.rotate_credentials()
            return json_response(sim.dialect.environment(request.base_url))
        if route == "secrets" and method == "GET":
            return json_response({"secrets": sim.dialect.secrets.values()})
        if route == "sessions/expire" and method == "POST":
            body = request.json_object() if request.body.strip() else {}
            after = body.get("after_requests", 0)
            if set(body) - {"after_requests"} or isinstance(after, bool) or not isinstance(after, int) or after < 0:
                raise BadRequest("INVALID_REQUEST", "sessions/expire needs {\"after_requests\": <integer >= 0>}")
            sim.dialect.tokens.expire_after(after)
            return json_response({"after_requests": after, "expired": after == 0})
        return _error(404, "NOT_FOUND", f"no control-plane route {method} /_sim/{route}")

    def _journal(self, request: ApiRequest) -> Response:
        journal = self.sim.journal
        if request.method == "DELETE":
            journal.clear()
            return json_response({"cleared": True})
        query = request.query
        try:
            status = int(query["status"]) if query.get("status") else None
            since = int(query.get("since") or 0)
            limit = int(query["limit"]) if query.get("limit") else None
        except ValueError:
            raise BadRequest("INVALID_REQUEST", "status, since and limit must be integers") from None
        access = query.get("access") or None
        if access not in (None, "auth", "read", "write"):
            raise BadRequest("INVALID_REQUEST", "access must be auth, read or write")
        entries = journal.select(query.get("method"), query.get("path"), status, since, limit, access)
        return json_response({"entries": [e.as_dict() for e in entries], "dropped": journal.dropped})

    def _seed(self, body: dict[str, Any]) -> dict[str, list[str]]:
        records = body.get("records")
        if not isinstance(records, dict) or not all(isinstance(v, list) for v in records.values()):
            raise BadRequest("INVALID_REQUEST", "seed needs {\"records\": {\"<kind>\": [ {fields...}, ... ]}}")
        refs: dict[str, str] = {}
        ids: dict[str, list[str]] = {}
        for kind, rows in records.items():
            self.sim.engine.kind(kind)
            names = [row.pop("_ref", None) if isinstance(row, dict) else None for row in rows]
            if not all(isinstance(row, dict) for row in rows):
                raise BadRequest("INVALID_REQUEST", f"seed records of {kind!r} must be JSON objects")
            created = self.sim.engine.create_many(kind, [_resolve(row, refs) for row in rows])
            for name, record in zip(names, created, strict=True):
                if name:
                    refs[name] = record["id"]
            ids.setdefault(kind, []).extend(record["id"] for record in created)
        return ids


def _resolve(value: Any, refs: dict[str, str]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$ref"}:
            if value["$ref"] not in refs:
                raise BadRequest("INVALID_REQUEST", f"seed reference {value['$ref']!r} names no earlier record")
            return refs[value["$ref"]]
        return {k: _resolve(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, refs) for v in value]
    return value
