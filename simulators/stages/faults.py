"""The fault stage: what production does to a connector, injected between governance and the dialect.

- The fault schedule (`GET|PUT|POST|DELETE /_sim/faults`, `POST /_sim/faults/release`): seeded rules that
  match calls by canonical kind and operation, method, path or body and inject a fault on the Nth call, for
  N calls, with a probability or in a time window (see `simulators.faults.rules` for the rule format and
  the faults). Faulted requests are tagged `faulted` in the journal, with the rule that fired.
- The run's added latency (`GET|PUT /_sim/latency`, {"latency_ms": N}).
- Triggers (`GET|POST /_sim/triggers`): a user's edit, or drift profiles laid over the API, applied once the
  connector's Nth matching API request has been answered, so that a record or the API changes in the middle
  of a cycle (between two pages of one export).
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from syncert.simulators.domain.kinds import DomainError, ValidationRule
from syncert.simulators.drift.profiles import DriftProfile, ProfileError
from syncert.simulators.faults.actions import (
    SlowBodyResponse,
    close_connection,
    hold,
    mangled,
    reset_connection,
    session_refusal,
    vendor_answer,
)
from syncert.simulators.faults.rules import FaultRule, RuleError, Schedule, add_rule, parse_schedule
from syncert.simulators.http import ApiRequest, BadRequest, json_response
from syncert.simulators.stages.base import (
    FAULTED,
    THROTTLED,
    TRIGGERED,
    ControlHandler,
    Exchange,
    NextStage,
    Stage,
)
from syncert.simulators.stages.governance import Rejection

if TYPE_CHECKING:
    from syncert.simulators.simulator import Simulator
    from syncert.simulators.stages.drift import DriftStage

MAX_LATENCY_MS = 600_000
MAX_TRIGGERS = 100
TRIGGER_USAGE = ('a trigger needs {"after": {"kind"?: "<kind>", "operation"?: "<operation>", "count"?: <n >= 1>}, '
                 'and either "edit": {"kind": "<kind>", "id": "<record id>", "changes": {<canonical fields>}} '
                 'or "drift": ["<drift profile id>", ...]}')


@dataclass
class Trigger:
    """An edit made as a user (`edit`: kind, id, changes), or drift profiles laid over the API (`drift`), once
    `count` successful API requests matching `kind` and `operation` (the journal's canonical names; None
    matches any) have been answered."""

    id: int
    kind: str | None
    operation: str | None
    count: int
    edit: dict[str, Any] | None
    drift: list[DriftProfile]
    seen: int = 0
    fired: bool = False
    error: str | None = None

    def matches(self, exchange: Exchange) -> bool:
        return (not self.fired and self.kind in (None, exchange.kind)
                and self.operation in (None, exchange.operation))

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "after": {"kind": self.kind, "operation": self.operation, "count": self.count},
                **({"edit": self.edit} if self.edit else {"drift": [profile.id for profile in self.drift]}),
                "seen": self.seen, "fired": self.fired, "error": self.error}


class FaultStage(Stage):
    name = "faults"

    def __init__(self, simulator: Simulator, drift: DriftStage):
        self.sim = simulator
        self.engine = simulator.engine
        self.drift = drift
        self.latency_ms = 0.0
        self.triggers: list[Trigger] = []
        self.schedule = Schedule()
        self._released = asyncio.Event()
        self._refusing: tuple[float, FaultRule] | None = None  # a throttle's Retry-After: (until, rule)

    async def handle(self, exchange: Exchange, call_next: NextStage) -> Response | None:
        if not exchange.api:
            return await call_next(exchange)
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        if self._refusing is not None:
            if time.monotonic() < self._refusing[0]:  # a limit keeps refusing until its Retry-After is over
                return await self._still_limited(exchange, self._refusing)
            self._refusing = None
        rules = await self._matching_rules(exchange) if self.schedule.rules else []
        if not rules:
            response = await call_next(exchange)
        else:
            elapsed = self.schedule.elapsed_s()
            at_once = [rule for rule in rules if rule.timed and rule.match.answer is None]
            timed = next((rule for rule in at_once if rule.fires(elapsed)), None)
            if timed is not None:
                response = await self._inject(timed, exchange, None, call_next)
            else:
                later = [rule for rule in rules if rule not in at_once]
                rule, answer = await self._attempt(exchange, later, elapsed, call_next)
                response = answer if rule is None else await self._inject(rule, exchange, answer, call_next)
        if self.triggers and response is not None and response.status_code < 400:
            self._count(exchange)
        return response

    async def _matching_rules(self, exchange: Exchange) -> list[FaultRule]:
        """The rules whose match the request meets, before it is served (match.answer is checked after)."""
        dialect, request = self.sim.dialect, exchange.request
        access, kind, operation = dialect.classify(request.method, request.path)
        if operation == "query" and kind is None:
            await exchange.keep_body()  # a query may be in the body (SuiteQL)
            kind = dialect.query_kind(request)
        matching = []
        for rule in self.schedule.rules:
            match = rule.match
            if rule.type == "reject" or (match.kind and match.kind != kind) or (
                    match.operation and match.operation != operation) or (match.access and match.access != access) or (
                    match.method and match.method != request.method) or (match.path and not match.path.search(
                    request.path)):
                continue
            if match.body is not None:
                await exchange.keep_body()
                if exchange.body_too_large or match.body not in request.body:
                    continue
            matching.append(rule)
        if matching:  # journaled as what it was, even if the dialect never sees it
            exchange.kind, exchange.operation = kind, operation
            exchange.tags.add(access)
        return matching

    async def _attempt(self, exchange: Exchange, rules: list[FaultRule], elapsed_s: float,
                       call_next: NextStage) -> tuple[FaultRule | None, Response | None]:
        """Serve the request, then count it toward `rules` if it was answered with success (and holds each
        rule's match.answer; a time window with an answer faults only the answers that hold it); returns the
        rule that fires on it, if any, and the answer.

        A fault that stands in for the request undoes what serving it wrote. The body is read first, so the
        rest of the pipeline runs without giving way to another request: nothing else can write meanwhile.
        """
        await exchange.keep_body()
        firing: FaultRule | None = None
        with self.engine.transaction() as attempt:
            answer = await call_next(exchange)
            if answer is not None and answer.status_code < 400:
                for rule in rules:
                    if (rule.match.answer is None or rule.match.answer in answer.body) and rule.fires(elapsed_s) \
                            and firing is None:
                        firing = rule
            if firing is not None and not firing.applies_first:
                attempt.rollback()
        return firing, answer

    async def _inject(self, rule: FaultRule, exchange: Exchange, answer: Response | None,
                      call_next: NextStage) -> Response | None:
        """Serve `exchange` with `rule`'s fault; None when the fault took the connection over. `answer` is the
        one the request got, if it was served (kept only when the rule applies requests first)."""
        exchange.tags.add(FAULTED)
        exchange.fault = f"{rule.id}:{rule.type}"
        dialect, fault = self.sim.dialect, rule.fault
        if answer is None and rule.applies_first:
            answer = await call_next(exchange)
        match rule.type:
            case "latency":
                await asyncio.sleep(rule.latency_s())
                return answer
            case "slow_body":
                return None if answer is None else SlowBodyResponse(answer, fault.get("bytes_per_s", 256))
            case "malformed" | "truncated":
                return None if answer is None else mangled(answer, rule.type)
            case "expire_token":
                dialect.tokens.revoke_all()
                return session_refusal(dialect, exchange.request)
            case "revoke":
                dialect.rotate_credentials()
                return session_refusal(dialect, exchange.request)
            case "reset" | "empty" | "lost_response":
                await exchange.keep_body()
                await (close_connection if rule.type == "empty" else reset_connection)(exchange)
                return None
            case "timeout":
                return await self._hold(rule, exchange, answer if rule.applies_first else None, call_next)
        await exchange.keep_body()
        refusal = vendor_answer(dialect, exchange, rule)
        if rule.type in ("throttle", "concurrency") and exchange.retry_after_s:
            self._refusing = (time.monotonic() + exchange.retry_after_s, rule)
        return refusal

    async def _still_limited(self, exchange: Exchange, refusing: tuple[float, FaultRule]) -> Response:
        """A call inside the Retry-After of a throttle: refused the same way, with the time left."""
        until, rule = refusing
        exchange.tags.update((FAULTED, THROTTLED))
        exchange.fault = f"{rule.id}:{rule.type}"
        dialect, request = self.sim.dialect, exchange.request
        exchange.tags.add(dialect.classify(request.method, request.path)[0])
        await exchange.keep_body()
        refusal = Rejection("rate" if rule.type == "throttle" else "concurrency",
                            max(1, math.ceil(until - time.monotonic())), "limit exceeded (Retry-After not over)")
        exchange.retry_after_s = refusal.retry_after_s
        return dialect.throttled(refusal)

    async def _hold(self, rule: FaultRule, exchange: Exchange, answer: Response | None,
                    call_next: NextStage) -> Response | None:
        """Hold the connection; `answer` is the request's, when the rule applied it first."""
        fault = rule.fault
        rule.holding += 1
        try:
            await hold(exchange, fault.get("seconds", 30.0), self._released)
        finally:
            rule.holding -= 1
        then = fault.get("then", "close")
        if then == "answer":
            return answer if answer is not None else await call_next(exchange)
        await (reset_connection if then == "reset" else close_connection)(exchange)
        return None

    def _count(self, exchange: Exchange) -> None:
        """The answer is built (the connector sees the data as it was): fire the triggers it completes."""
        for trigger in self.triggers:
            if not trigger.matches(exchange):
                continue
            trigger.seen += 1
            if trigger.seen == trigger.count:
                trigger.fired = True
                try:
                    if trigger.edit:
                        self.engine.update(trigger.edit["kind"], trigger.edit["id"], trigger.edit["changes"])
                    else:
                        self.drift.add(trigger.drift)
                except DomainError as error:  # e.g. the record was deleted since: the trigger says so
                    trigger.error = f"{error.code}: {error}"
                except ProfileError as error:
                    trigger.error = str(error)
                else:
                    exchange.tags.add(TRIGGERED)

    def reset(self) -> None:
        self.latency_ms = 0.0
        self.triggers.clear()
        self._replace(Schedule())

    def _replace(self, schedule: Schedule) -> None:
        """Use `schedule` from now on: the connections the old one held are let go."""
        self._let_go()
        self._refusing = None
        self.schedule = schedule
        self._install_validation_rules()

    def _let_go(self) -> int:
        held = sum(rule.holding for rule in self.schedule.rules)
        self._released.set()
        self._released = asyncio.Event()
        return held

    def _install_validation_rules(self) -> None:
        """The schedule's reject faults, as validations of the engine (so batches fail record by record)."""
        self.engine.set_validation_rules([
            ValidationRule(rule.match.kind, rule.fault["field"], rule.fault["equals"],
                           rule.fault.get("message") or f"{rule.match.kind} refused by a validation rule ({rule.id})",
                           rule.count_refusal)
            for rule in self.schedule.rules if rule.type == "reject" and rule.match.kind])

    def control_routes(self) -> dict[str, ControlHandler]:
        return {"GET latency": self._latency, "PUT latency": self._latency,
                "GET triggers": self._triggers, "POST triggers": self._triggers,
                "GET faults": self._faults, "PUT faults": self._faults, "POST faults": self._faults,
                "DELETE faults": self._faults, "POST faults/release": self._release}

    async def _faults(self, request: ApiRequest) -> Response:
        """The fault schedule and each rule's counters; PUT replaces it, POST adds one rule, DELETE clears it."""
        try:
            if request.method == "PUT":
                schedule = parse_schedule(request.json_object(), self.sim.dialect.side, time.time())
                for rule in schedule.rules:
                    self._check_names(rule)
                self._replace(schedule)
            elif request.method == "POST":
                trial = Schedule(self.schedule.seed, self.schedule.origin, list(self.schedule.rules))
                self._check_names(add_rule(trial, request.json_object(), self.sim.dialect.side))
                self.schedule.rules = trial.rules
                self._install_validation_rules()
            elif request.method == "DELETE":
                self._replace(Schedule())
        except RuleError as error:
            raise BadRequest("INVALID_REQUEST", str(error)) from None
        return json_response(self.schedule.public(), 201 if request.method == "POST" else 200, exact=True)

    def _check_names(self, rule: FaultRule) -> None:
        """A rule names kinds and fields this system has (a typo would make a rule that never fires)."""
        kind = rule.match.kind
        if kind is None:
            return
        try:
            definition = self.engine.kind(kind)
        except DomainError:
            raise RuleError(f"{rule.id}: match.kind {kind!r} is not a kind of this {self.sim.dialect.side.upper()}; "
                            f"its kinds are {', '.join(sorted(self.engine.schema.kinds))}") from None
        if rule.type == "reject" and rule.fault["field"] not in definition.by_name:
            raise RuleError(f"{rule.id}: {kind} has no field {rule.fault['field']!r}")

    async def _release(self, request: ApiRequest) -> Response:
        """Let every held connection go now (each then does what its rule says: close, reset or answer)."""
        return json_response({"released": self._let_go()})

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
        after, edit, drift = body.get("after", {}), body.get("edit"), body.get("drift")
        if (not isinstance(after, dict) or (edit is None) == (drift is None)
                or body.keys() - {"after", "edit", "drift"}):
            raise BadRequest("INVALID_REQUEST", TRIGGER_USAGE)
        kind, operation, count = after.get("kind"), after.get("operation"), after.get("count", 1)
        if (after.keys() - {"kind", "operation", "count"}
                or not all(isinstance(v, str | None) for v in (kind, operation))
                or isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise BadRequest("INVALID_REQUEST", TRIGGER_USAGE)
        if edit is not None and (not isinstance(edit, dict) or edit.keys() != {"kind", "id", "changes"}
                                 or not isinstance(edit["id"], str) or not isinstance(edit["changes"], dict)
                                 or not edit["changes"]):
            raise BadRequest("INVALID_REQUEST", TRIGGER_USAGE)
        if len(self.triggers) >= MAX_TRIGGERS:
            raise BadRequest("INVALID_REQUEST", f"at most {MAX_TRIGGERS} triggers a run")
        if kind is not None:
            self.engine.kind(kind)
        profiles: list[DriftProfile] = []
        if edit is not None:
            with self.engine.transaction() as check:  # a bad edit is refused now, not when it fires
                self.engine.update(edit["kind"], edit["id"], edit["changes"])
                check.rollback()
        else:
            try:
                profiles = self.drift.profiles(drift)
            except ProfileError as error:
                raise BadRequest("INVALID_REQUEST", f"{error} ({TRIGGER_USAGE})") from None
        trigger = Trigger(len(self.triggers) + 1, kind, operation, count, edit, profiles)
        self.triggers.append(trigger)
        return json_response(trigger.public(), 201, exact=True)
