"""The control plane under /_sim/: test-harness operations, guarded by the admin token.

The stage serves the simulator-wide routes below and the routes every other stage declares
(`Stage.control_routes`: journal, limits, latency, credentials...). JSON in and out; errors as
{"error": {"code", "message"}}:
    GET  /_sim/health                  liveness (no token needed)
    POST /_sim/reset                   drop records, and let every stage forget the run
    POST /_sim/seed                    bulk-create canonical records: {"records": {kind: [values...]}}
    GET  /_sim/state                   canonical state of every live record (money as exact strings)
    GET|PUT /_sim/clock                {"offset_s": seconds} moves the simulated clock (tokens expire on it);
                                       {"frozen": true} stops it (every stamp the same millisecond), false lets it run
    GET|PUT /_sim/tls                  {"enabled": bool} starts or stops the HTTPS listener
    GET|POST /_sim/webhooks            subscriptions; DELETE /_sim/webhooks/{id}
    GET|PUT /_sim/webhooks/faults      delivery faults {"seed", "rules": [...]} (simulators/webhooks.py)
    GET  /_sim/webhooks/deliveries     every delivery attempt: event, fault, forged, attempt, answer, times
    GET|PATCH|DELETE /_sim/records/{kind}/{id}   open, change or delete a record as a user would (canonical fields)
    GET  /_sim/routes                  every control-plane route and the stage that serves it
In seed records, "_ref": "name" names a record and {"$ref": "name"} anywhere in a later record is
replaced by that record's id.
"""

from __future__ import annotations

import hmac
import math
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from syncert.simulators.domain.kinds import DomainError
from syncert.simulators.http import ApiRequest, BadRequest, json_response
from syncert.simulators.stages.base import (
    MAX_BODY_BYTES,
    BodyTooLarge,
    ControlHandler,
    Exchange,
    NextStage,
    Stage,
)

if TYPE_CHECKING:
    from syncert.simulators.simulator import Simulator


CONTROL_PREFIX = "/_sim/"
STATE_PAGE = 10_000  # records one state read returns at most
MAX_CLOCK_OFFSET_S = 100 * 365 * 86_400


def _error(status: int, code: str, message: str) -> Response:
    return json_response({"error": {"code": code, "message": message}}, status)


class ControlPlaneStage(Stage):
    """Answers every request under /_sim/; passes the others on."""

    name = "control_plane"

    def __init__(self, simulator: Simulator, stages: list[Stage]):
        self.sim = simulator
        self.stages = stages
        self.epoch = 0  # counts resets: a state cursor from an earlier epoch is refused
        own = {"POST reset": self._reset, "POST seed": self._seed_route, "GET state": self._state,
               "GET clock": self._clock, "PUT clock": self._clock, "GET tls": self._tls, "PUT tls": self._tls,
               "GET webhooks": self._webhooks, "POST webhooks": self._webhooks,
               "DELETE webhooks/*": self._unsubscribe, "GET webhooks/faults": self._webhook_faults,
               "PUT webhooks/faults": self._webhook_faults, "GET webhooks/deliveries": self._webhook_deliveries,
               "GET records/*/*": self._record, "PATCH records/*/*": self._record,
               "DELETE records/*/*": self._record, "GET routes": self._routes}
        self.routes: dict[str, tuple[str, ControlHandler]] = {key: (self.name, handler) for key, handler in own.items()}
        for stage in stages:
            for key, handler in stage.control_routes().items():
                if key in self.routes:
                    raise ValueError(f"control-plane route {key} is served twice")
                self.routes[key] = (stage.name, handler)

    async def handle(self, exchange: Exchange, call_next: NextStage) -> Response | None:
        request = exchange.request
        if not request.path.startswith(CONTROL_PREFIX):
            return await call_next(exchange)
        route = request.path[len(CONTROL_PREFIX):].rstrip("/")
        if route == "health":
            return json_response({"status": "ok", "dialect": self.sim.dialect.name})
        if not self._authorized(request):
            return _error(401, "UNAUTHORIZED", "the control plane needs the admin token "
                                               "(Authorization: Bearer <SYNCERT_ADMIN_TOKEN>)")
        handler = self._find(request.method, route)
        if handler is None:
            return _error(404, "NOT_FOUND", f"no control-plane route {request.method} /_sim/{route}")
        try:
            await exchange.read_body()
            return await handler(request)
        except BodyTooLarge:
            return _error(413, "REQUEST_TOO_LARGE", f"request body exceeds {MAX_BODY_BYTES} bytes")
        except BadRequest as error:
            return _error(400, error.code, error.message)
        except DomainError as error:
            return _error(404 if error.code == "NOT_FOUND" else 400, error.code, error.message)
        except ValueError as error:
            return _error(400, "INVALID_REQUEST", str(error))

    def _find(self, method: str, route: str) -> ControlHandler | None:
        exact = self.routes.get(f"{method} {route}")
        if exact is not None:
            return exact[1]
        parts = route.split("/")
        for key, (_, handler) in self.routes.items():
            key_method, _, pattern = key.partition(" ")
            pattern_parts = pattern.split("/")
            if key_method == method and len(pattern_parts) == len(parts) and all(
                    want in ("*", part) and part for want, part in zip(pattern_parts, parts, strict=True)):
                return handler
        return None

    def _authorized(self, request: ApiRequest) -> bool:
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else request.headers.get("x-syncert-admin-token", "")
        return hmac.compare_digest(token.encode(), self.sim.admin_token.encode())

    async def _routes(self, request: ApiRequest) -> Response:
        ordered = sorted(self.routes.items(), key=lambda item: (item[0].partition(" ")[2], item[0]))
        return json_response({"routes": {"GET /_sim/health": self.name,
                                         **{f"{key.partition(' ')[0]} /_sim/{key.partition(' ')[2]}": stage
                                            for key, (stage, _) in ordered}}})

    async def _reset(self, request: ApiRequest) -> Response:
        sim = self.sim
        sim.engine.reset()
        self.epoch += 1
        sim.clock.reset()
        sim.webhooks.clear()
        for stage in self.stages:
            stage.reset()
        return json_response({"reset": True})

    async def _seed_route(self, request: ApiRequest) -> Response:
        return json_response({"ids": self._seed(request.json_object())}, 201)

    async def _state(self, request: ApiRequest) -> Response:
        """Canonical records written after cursor `since` (default 0: everything), a page at a time.

        ?since=SEQ&kinds=a,b&limit=N (default and most STATE_PAGE)&epoch=E. Answers `records` (live records
        by kind, money as exact strings), `deleted` (ids by kind), `kinds` (every kind asked for), `next` (the
        cursor to pass as `since`), `more`, and `epoch` (counts resets: passed back, a cursor read before a
        reset answers 409). A reader that keeps `next` and `epoch` reads only what changed."""
        engine, query = self.sim.engine, request.query
        since, limit = request.page_cursor(STATE_PAGE)
        epoch = query.get("epoch")
        if epoch is not None and epoch != str(self.epoch):
            return _error(409, "STALE_CURSOR", f"the state was reset since cursor {since} was read (epoch {epoch}, "
                                               f"now {self.epoch}): read again from since=0")
        kinds = [kind for kind in (query.get("kinds") or "").split(",") if kind] or list(engine.kinds)
        for kind in kinds:
            engine.kind(kind)
        page = engine.changes(since, kinds, limit)
        records: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
        deleted: dict[str, list[str]] = {kind: [] for kind in kinds}
        for kind, record in page.records:
            if record.get("is_deleted"):
                deleted[kind].append(record["id"])
            else:
                records[kind].append(record)
        return json_response({"system": engine.system, "dialect": self.sim.dialect.name, "epoch": self.epoch,
                              "kinds": kinds,
                              "records": records, "deleted": deleted, "next": page.next_since, "more": page.more},
                             exact=True)

    async def _clock(self, request: ApiRequest) -> Response:
        clock = self.sim.clock
        if request.method == "PUT":
            body = request.json_object()
            offset, frozen = body.get("offset_s", clock.offset_s), body.get("frozen", clock.frozen)
            if (not body.keys() & {"offset_s", "frozen"} or body.keys() - {"offset_s", "frozen"}
                    or isinstance(offset, bool) or not isinstance(offset, int | float | Decimal)
                    or not math.isfinite(offset) or abs(offset) > MAX_CLOCK_OFFSET_S or not isinstance(frozen, bool)):
                raise BadRequest("INVALID_REQUEST", "clock needs {\"offset_s\": <seconds, at most 100 years either "
                                                    "way>} and/or {\"frozen\": true|false}")
            clock.offset_s = float(offset)
            clock.freeze(frozen)
        return json_response({"now": clock.iso(), "offset_s": clock.offset_s, "frozen": clock.frozen})

    async def _tls(self, request: ApiRequest) -> Response:
        tls = self.sim.tls
        if tls is None:
            return _error(409, "TLS_UNAVAILABLE", "this simulator host does not serve TLS")
        if request.method == "PUT":
            enabled = request.json_object().get("enabled")
            if not isinstance(enabled, bool):
                raise BadRequest("INVALID_REQUEST", "tls needs {\"enabled\": true|false}")
            await (tls.enable() if enabled else tls.disable())
        return json_response(tls.status())

    async def _webhooks(self, request: ApiRequest) -> Response:
        sim = self.sim
        if request.method == "POST":
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

    async def _webhook_faults(self, request: ApiRequest) -> Response:
        if request.method == "PUT":
            self.sim.webhooks.set_faults(request.json_object(), set(self.sim.engine.kinds))
        return json_response(self.sim.webhooks.faults(), exact=True)

    async def _webhook_deliveries(self, request: ApiRequest) -> Response:
        return json_response({"deliveries": list(self.sim.webhooks.deliveries)}, exact=True)

    async def _unsubscribe(self, request: ApiRequest) -> Response:
        if self.sim.webhooks.unsubscribe(request.path.rstrip("/").rsplit("/", 1)[1]):
            return json_response({"deleted": True})
        return _error(404, "NOT_FOUND", "no such webhook subscription")

    async def _record(self, request: ApiRequest) -> Response:
        kind, record_id = request.path.rstrip("/").split("/")[-2:]
        if request.method == "GET":
            return json_response(self.sim.engine.get(kind, record_id), exact=True)
        if request.method == "DELETE":
            self.sim.engine.delete(kind, record_id)
            return json_response({"deleted": True})
        return json_response(self.sim.engine.update(kind, record_id, request.json_object()), exact=True)

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
