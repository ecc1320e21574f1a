"""Change-event webhooks: signed JSON events, delivered at least once with retries.

Each delivery is a POST of one event with headers
    X-Syncert-Event-Id, X-Syncert-Timestamp (unix seconds), X-Syncert-Attempt,
    X-Syncert-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed by the subscription secret>.
A delivery that does not get a 2xx answer is retried with exponential backoff up to `max_attempts`.
At most `max_in_flight` deliveries are under way at once; the others wait their turn in order.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from syncert.simulators.domain.kinds import ChangeEvent


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

    def wants(self, event: ChangeEvent) -> bool:
        return not self.kinds or event.kind in self.kinds

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "url": self.url, "kinds": sorted(self.kinds), "delivered": self.delivered,
                "failed_attempts": self.failed_attempts, "abandoned": self.abandoned}


@dataclass
class _Delivery:
    subscription: Subscription
    event_id: str
    body: bytes
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

    def subscribe(self, url: str, secret: str | None = None, kinds: list[str] | None = None) -> Subscription:
        subscription = Subscription(uuid.uuid4().hex, url, secret or secrets.token_urlsafe(24),
                                    frozenset(kinds or ()))
        self.subscriptions[subscription.id] = subscription
        return subscription

    def unsubscribe(self, subscription_id: str) -> bool:
        return self.subscriptions.pop(subscription_id, None) is not None

    def clear(self) -> None:
        self.subscriptions.clear()

    def on_event(self, event: ChangeEvent) -> None:
        """Engine listener: enqueue the event for every interested subscription."""
        targets = [s for s in self.subscriptions.values() if s.wants(event)]
        if not targets:
            return
        event_id = uuid.uuid4().hex
        body = json.dumps({
            "id": event_id, "system": event.system, "dialect": self._dialect, "kind": event.kind,
            "object": self._object_name(event.kind), "record_id": event.record_id,
            "operation": event.operation, "at": event.at, "changed_fields": list(event.changed_fields),
        }).encode()
        queue = self._ensure_worker()
        for subscription in targets:
            queue.put_nowait(_Delivery(subscription, event_id, body))

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

    async def _deliver(self, client: httpx.AsyncClient, delivery: _Delivery) -> None:
        subscription = delivery.subscription
        if subscription.id not in self.subscriptions:
            return
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "X-Syncert-Event-Id": delivery.event_id,
                   "X-Syncert-Timestamp": timestamp, "X-Syncert-Attempt": str(delivery.attempt),
                   "X-Syncert-Signature": sign(subscription.secret, timestamp, delivery.body)}
        try:
            response = await client.post(subscription.url, content=delivery.body, headers=headers)
            ok = 200 <= response.status_code < 300
        except httpx.HTTPError:
            ok = False
        if ok:
            subscription.delivered += 1
            return
        subscription.failed_attempts += 1
        if delivery.attempt >= self._max_attempts:
            subscription.abandoned += 1
            return
        delivery.attempt += 1
        delivery.due = time.monotonic() + self._first_backoff_s * 2 ** (delivery.attempt - 2)
        assert self._queue is not None
        self._queue.put_nowait(delivery)
