"""Change-event webhooks: signed JSON events, delivered at least once with retries, and delivery faults.

Each delivery is a POST of one event, {"id", "system", "dialect", "kind", "object", "record_id",
"operation", "at", "changed_fields", "values"} (`values`: the changed fields' canonical values after the
change, money as exact strings), with headers
    X-Syncert-Event-Id, X-Syncert-Timestamp (unix seconds), X-Syncert-Attempt,
    X-Syncert-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed by the subscription secret>.
A delivery that does not get a 2xx answer is retried with exponential backoff up to `max_attempts` (a
forged delivery, below, is sent once: the answer it is owed is a refusal, a 4xx).
At most `max_in_flight` deliveries are under way at once; the others wait their turn in order.

Delivery faults (`PUT /_sim/webhooks/faults`, {"seed": int, "rules": [...]}) do to events what networks
and attackers do. A rule {"fault", "kind" (null: any), "on_event" (default 1), "events" (default 1, null:
every one from on_event), "probability" (default 1)} counts the change events of its kind from the moment
the rules were set; it acts on the `on_event`-th and the `events - 1` after it, each with `probability`
(drawn from the rule's own random.Random, seeded from the seed and the rule's position, only for events in
that window: the same seed and the same events give the same outcome). The first rule that acts on an event
decides its fault:
    duplicate  delivered twice, the copy (same event id, fresh timestamp and signature) DUPLICATE_DELAY_S later
    reorder    held back until the next delivery to the same subscription has been answered (or
               REORDER_HOLD_S have passed), so a later change arrives first
    drop       lost in transit: never delivered (counted as dropped)
    forge      delivered, and followed by a forged delivery: a payload the simulator never emitted for the
               same record (invented values of the changed fields; or operation "deleted" when the event
               carries no values), signed with a key that is not the subscription's, as an attacker would
`GET /_sim/webhooks/deliveries` lists every delivery attempt (newest DELIVERY_LOG kept), a forged one with the
values it carried (`forged_values`), each with the connector's answer: `status`, or `error` when the transport
failed, and `outcome` in the journal's words (ok: 2xx, refused: 4xx, failed: anything else).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from syncert.simulators.domain.kinds import ChangeEvent
from syncert.simulators.http import BadRequest, exact_json

FAULTS = ("duplicate", "reorder", "drop", "forge")
MAX_RULES = 50
DELIVERY_LOG = 10_000  # delivery attempts kept (newest)
DROPPED_LOG = 1_000  # dropped events kept (newest)
DUPLICATE_DELAY_S = 0.2
FORGE_DELAY_S = 0.1
REORDER_HOLD_S = 2.0
RULE_KEYS = {"fault", "kind", "on_event", "events", "probability"}
FAULTS_USAGE = ('webhook faults need {"seed": <integer>, "rules": [{"fault": "duplicate"|"reorder"|"drop"|"forge", '
                '"kind"?: "<kind>"|null, "on_event"?: <n >= 1>, "events"?: <n >= 1>|null, "probability"?: <0..1>}]}')


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value for one delivery."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


@dataclass
class Subscription:
    id: str
    url: str
    secret: str
    kinds: frozenset[str] = frozenset()
    delivered: int = 0
    failed_attempts: int = 0
    abandoned: int = 0
    dropped: int = 0
    refused_forgeries: int = 0

    def wants(self, event: ChangeEvent) -> bool:
        return not self.kinds or event.kind in self.kinds

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "url": self.url, "kinds": sorted(self.kinds), "delivered": self.delivered,
                "failed_attempts": self.failed_attempts, "abandoned": self.abandoned, "dropped": self.dropped,
                "refused_forgeries": self.refused_forgeries}


@dataclass
class FaultRule:
    """One delivery fault and the events it acts on (see the module docstring)."""

    fault: str
    kind: str | None
    on_event: int
    events: int | None
    probability: float
    rng: random.Random
    seen: int = 0  # change events of `kind` since the rules were set
    fired: int = 0

    def acts_on(self, event: ChangeEvent) -> bool:
        """Count the event if it is of the rule's kind; whether the rule acts on it (a draw only in the window)."""
        if self.kind not in (None, event.kind):
            return False
        self.seen += 1
        if self.seen < self.on_event or (self.events is not None and self.seen >= self.on_event + self.events):
            return False
        if self.rng.random() >= self.probability:
            return False
        self.fired += 1
        return True

    def public(self) -> dict[str, Any]:
        return {"fault": self.fault, "kind": self.kind, "on_event": self.on_event, "events": self.events,
                "probability": self.probability, "seen": self.seen, "fired": self.fired}


@dataclass
class _Delivery:
    subscription: Subscription
    event_id: str
    body: bytes
    event: dict[str, Any]
    fault: str | None = None
    forged: bool = False
    attempt: int = 1
    due: float = field(default_factory=time.monotonic)


class WebhookDispatcher:
    """Queues change events per subscription and delivers them from a background task."""

    def __init__(self, object_name: Callable[[str], str], dialect: str, max_attempts: int = 8,
                 first_backoff_s: float = 0.5, timeout_s: float = 5.0, max_in_flight: int = 16):
        self.subscriptions: dict[str, Subscription] = {}
        self._object_name = object_name
        self._dialect = dialect
        self._max_attempts = max_attempts
        self._first_backoff_s = first_backoff_s
        self._timeout_s = timeout_s
        self._max_in_flight = max_in_flight
        self._queue: asyncio.Queue[_Delivery] | None = None
        self._worker: asyncio.Task | None = None
        self._attempts: set[asyncio.Task] = set()
        self.seed = 0
        self.rules: list[FaultRule] = []
        self.deliveries: deque[dict[str, Any]] = deque(maxlen=DELIVERY_LOG)
        self.dropped: deque[dict[str, Any]] = deque(maxlen=DROPPED_LOG)
        self._held: dict[str, list[_Delivery]] = {}  # subscription id -> deliveries a reorder holds back

    def subscribe(self, url: str, secret: str | None = None, kinds: list[str] | None = None) -> Subscription:
        subscription = Subscription(uuid.uuid4().hex, url, secret or secrets.token_urlsafe(24),
                                    frozenset(kinds or ()))
        self.subscriptions[subscription.id] = subscription
        return subscription

    def unsubscribe(self, subscription_id: str) -> bool:
        return self.subscriptions.pop(subscription_id, None) is not None

    def clear(self) -> None:
        """Forget the run: subscriptions, fault rules, the delivery log, and deliveries held back."""
        self.subscriptions.clear()
        self.rules, self.seed = [], 0
        self.deliveries.clear()
        self.dropped.clear()
        self._held.clear()

    # -- faults -----------------------------------------------------------------------------------

    def set_faults(self, body: dict[str, Any], known_kinds: set[str]) -> None:
        """Replace the fault rules (their counts start again); raises BadRequest naming what is wrong."""
        seed, rules = body.get("seed", 0), body.get("rules")
        if body.keys() - {"seed", "rules"} or not isinstance(rules, list):
            raise BadRequest("INVALID_REQUEST", FAULTS_USAGE)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise BadRequest("INVALID_REQUEST", f"webhook faults: seed must be an integer, not {seed!r}")
        if len(rules) > MAX_RULES:
            raise BadRequest("INVALID_REQUEST", f"webhook faults: at most {MAX_RULES} rules")
        self.rules = [_rule(index, rule, seed, known_kinds) for index, rule in enumerate(rules, 1)]
        self.seed = seed

    def faults(self) -> dict[str, Any]:
        return {"seed": self.seed, "rules": [rule.public() for rule in self.rules], "dropped": list(self.dropped)}

    def _rule_for(self, event: ChangeEvent) -> FaultRule | None:
        """Every rule counts the event; the first that acts on it decides its fault."""
        acting = [rule for rule in self.rules if rule.acts_on(event)]
        return acting[0] if acting else None

    # -- delivering -------------------------------------------------------------------------------

    def on_event(self, event: ChangeEvent) -> None:
        """Engine listener: enqueue the event for every interested subscription (faults applied)."""
        targets = [s for s in self.subscriptions.values() if s.wants(event)]
        if not targets:
            return
        rule = self._rule_for(event) if self.rules else None
        fault = rule.fault if rule else None
        payload = {"id": uuid.uuid4().hex, "system": event.system, "dialect": self._dialect, "kind": event.kind,
                   "object": self._object_name(event.kind), "record_id": event.record_id,
                   "operation": event.operation, "at": event.at, "changed_fields": list(event.changed_fields),
                   "values": event.values}
        summary = {"event_id": payload["id"], "kind": event.kind, "record_id": event.record_id,
                   "operation": event.operation}
        if fault == "drop":
            for subscription in targets:
                subscription.dropped += 1
            self.dropped.append({**summary, "at": event.at})
            return
        body = exact_json(payload)
        queue = self._ensure_worker()
        now = time.monotonic()
        for subscription in targets:
            delivery = _Delivery(subscription, payload["id"], body, summary)
            if fault == "reorder":
                delivery.fault = "reorder"
                self._hold(delivery)
                continue
            queue.put_nowait(delivery)
            if fault == "duplicate":
                queue.put_nowait(_Delivery(subscription, payload["id"], body, summary, "duplicate",
                                           due=now + DUPLICATE_DELAY_S))
            elif rule is not None and fault == "forge":
                forged = _forged(payload, rule.rng)
                queue.put_nowait(_Delivery(subscription, forged["id"], exact_json(forged),
                                           {**summary, "event_id": forged["id"], "operation": forged["operation"]},
                                           "forge", forged=True, due=now + FORGE_DELAY_S))

    def _hold(self, delivery: _Delivery) -> None:
        """Hold a reordered delivery back until the next one to its subscription is answered, or a while."""
        self._ensure_worker()
        self._held.setdefault(delivery.subscription.id, []).append(delivery)
        asyncio.get_running_loop().call_later(REORDER_HOLD_S, self._release, delivery)

    def _release(self, delivery: _Delivery) -> None:
        held = self._held.get(delivery.subscription.id, [])
        if delivery in held and self._queue is not None:
            held.remove(delivery)
            delivery.due = time.monotonic()
            self._queue.put_nowait(delivery)

    def _ensure_worker(self) -> asyncio.Queue[_Delivery]:
        if self._queue is None or self._worker is None or self._worker.done():
            self._queue = self._queue or asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._run())
        return self._queue

    async def _run(self) -> None:
        assert self._queue is not None
        slots = asyncio.Semaphore(self._max_in_flight)  # thousands of changes never become thousands of connections

        def done(attempt: asyncio.Task) -> None:
            self._attempts.discard(attempt)
            slots.release()
        async with httpx.AsyncClient(timeout=self._timeout_s) as client:
            while True:
                delivery = await self._queue.get()
                wait = delivery.due - time.monotonic()
                if wait > 0:
                    asyncio.get_running_loop().call_later(wait, self._queue.put_nowait, delivery)
                    continue
                await slots.acquire()
                attempt = asyncio.get_running_loop().create_task(self._deliver(client, delivery))
                self._attempts.add(attempt)
                attempt.add_done_callback(done)

    async def close(self) -> None:
        """Stop delivering (pending deliveries are dropped) and wait for the tasks to end."""
        tasks = [t for t in (self._worker, *self._attempts) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._worker = None
        self._held.clear()

    async def _deliver(self, client: httpx.AsyncClient, delivery: _Delivery) -> None:
        subscription = delivery.subscription
        if subscription.id not in self.subscriptions:
            return
        timestamp = str(int(time.time()))
        key = secrets.token_urlsafe(24) if delivery.forged else subscription.secret  # an attacker's guess
        headers = {"Content-Type": "application/json", "X-Syncert-Event-Id": delivery.event_id,
                   "X-Syncert-Timestamp": timestamp, "X-Syncert-Attempt": str(delivery.attempt),
                   "X-Syncert-Signature": sign(key, timestamp, delivery.body)}
        record = {**delivery.event, "fault": delivery.fault, "forged": delivery.forged,
                  "forged_values": json.loads(delivery.body)["values"] if delivery.forged else None,
                  "attempt": delivery.attempt, "status": None, "outcome": None, "error": None, "sent_at": _now()}
        self.deliveries.append(record)
        status: int | None = None
        try:
            response = await client.post(subscription.url, content=delivery.body, headers=headers)
            status = record["status"] = response.status_code
        except httpx.HTTPError as error:
            record["error"] = f"{type(error).__name__}: {error}"[:300]
        record["answered_at"] = _now()
        record["outcome"] = _outcome(status)
        if delivery.fault != "reorder":
            for held in list(self._held.get(subscription.id, [])):
                self._release(held)
        if status is not None and 200 <= status < 300:
            if not delivery.forged:
                subscription.delivered += 1
            return
        if delivery.forged:  # an attacker does not retry; a refusal is what the receiver owes it
            if status is not None and 400 <= status < 500:
                subscription.refused_forgeries += 1
            return
        subscription.failed_attempts += 1
        if delivery.attempt >= self._max_attempts:
            subscription.abandoned += 1
            return
        delivery.attempt += 1
        delivery.due = time.monotonic() + self._first_backoff_s * 2 ** (delivery.attempt - 2)
        assert self._queue is not None
        self._queue.put_nowait(delivery)


def _forged(payload: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """What an attacker sends for the same record: invented values of the changed fields, or a deletion."""
    forged = {**payload, "id": uuid.uuid4().hex, "at": _now()}
    invented = {name: _invented(value, rng) for name, value in payload["values"].items()
                if name not in ("id", "created_at", "modified_at", "is_deleted")}
    if invented:
        forged.update(operation="updated", changed_fields=sorted(invented), values=invented)
    else:
        forged.update(operation="deleted", changed_fields=[], values={})
    return forged


def _outcome(status: int | None) -> str:
    """The journal's canonical word for the connector's answer: ok (2xx), refused (4xx) or failed."""
    if status is not None and 200 <= status < 300:
        return "ok"
    return "refused" if status is not None and 400 <= status < 500 else "failed"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _invented(value: Any, rng: random.Random) -> Any:
    """A value of the same type that nobody wrote."""
    tag = f"{rng.randrange(16 ** 8):08x}"
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1 + rng.randrange(1000)
    if isinstance(value, Decimal):
        return value + 1 + rng.randrange(1000)
    if isinstance(value, str) and "@" in value:
        return f"forged-{tag}@example.com"
    if isinstance(value, str | None):
        return f"forged-{tag}"
    return value


def _rule(index: int, rule: Any, seed: int, known_kinds: set[str]) -> FaultRule:
    where = f"webhook fault rule {index}"
    if not isinstance(rule, dict):
        raise BadRequest("INVALID_REQUEST", f"{where} is not a JSON object; " + FAULTS_USAGE)
    if rule.keys() - RULE_KEYS:
        raise BadRequest("INVALID_REQUEST", f"{where}: unknown keys {sorted(rule.keys() - RULE_KEYS)}; " + FAULTS_USAGE)
    fault, kind = rule.get("fault"), rule.get("kind")
    on_event, events, probability = rule.get("on_event", 1), rule.get("events", 1), rule.get("probability", 1)
    if fault not in FAULTS:
        raise BadRequest("INVALID_REQUEST", f"{where}: fault must be one of {', '.join(FAULTS)}, not {fault!r}")
    if kind is not None and kind not in known_kinds:
        raise BadRequest("INVALID_REQUEST", f"{where}: unknown kind {kind!r}; known: {sorted(known_kinds)}")
    for name, value in (("on_event", on_event), ("events", events)):
        if (value is not None or name == "on_event") and (isinstance(value, bool) or not isinstance(value, int)
                                                          or value < 1):
            raise BadRequest("INVALID_REQUEST", f"{where}: {name} must be an integer >= 1"
                                                + (" or null" if name == "events" else "") + f", not {value!r}")
    if (isinstance(probability, bool) or not isinstance(probability, int | float | Decimal)
            or not 0 <= probability <= 1):
        raise BadRequest("INVALID_REQUEST", f"{where}: probability must be a number from 0 to 1, not {probability!r}")
    return FaultRule(fault, kind, on_event, events, float(probability), random.Random(f"{seed}:{index}"))

