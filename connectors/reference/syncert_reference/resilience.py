"""How the connector talks to any API: retries with backoff and jitter, Retry-After, a concurrency cap.

Retried: 429, Salesforce's 403 REQUEST_LIMIT_EXCEEDED, 5xx and connection errors. The wait before
attempt n is a random ("full jitter") value up to base * 2**n, capped, and never shorter than the
server's Retry-After. Everything else is returned to the caller, which decides (401: refresh the
token; other 4xx: dead-letter the record).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable

import httpx

MAX_ATTEMPTS = 6
BASE_BACKOFF_S = 0.25
MAX_BACKOFF_S = 8.0


def is_throttled(response: httpx.Response) -> bool:
    if response.status_code == 429 or response.status_code >= 500:
        return True
    return response.status_code == 403 and "REQUEST_LIMIT_EXCEEDED" in response.text


def backoff_delay(attempt: int, retry_after: str | None) -> float:
    """Seconds to wait before the next attempt (attempt counts from 1)."""
    delay = random.uniform(0, min(MAX_BACKOFF_S, BASE_BACKOFF_S * 2 ** attempt))
    if retry_after and retry_after.strip().isdigit():
        delay = max(delay, float(retry_after))
    return delay


class ResilientClient:
    """An httpx.AsyncClient with a cap on requests in flight and retries on throttling."""

    def __init__(self, max_in_flight: int = 4, verify: str | bool = True, timeout_s: float = 30.0):
        self._client = httpx.AsyncClient(verify=verify, timeout=timeout_s)
        self._slots = asyncio.Semaphore(max_in_flight)

    async def request(self, method: str, url: str, sign: Callable[[httpx.Request], Awaitable[None]] | None = None,
                      reauthenticate: Callable[[httpx.Response], Awaitable[bool]] | None = None,
                      capped: bool = True, **kwargs) -> httpx.Response:
        """Send with retries; `sign` (re)authenticates each attempt just before it is sent (fresh nonce,
        current token). On a 401, `reauthenticate` (if given) may discard the failed credentials; the
        request is then signed again and resent at once, in the slot it holds, so the new token cannot
        age in the queue. `capped=False` skips the in-flight cap: for logins that signing may need."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                async with self._slots if capped else contextlib.nullcontext():
                    response = await self._send(method, url, sign, kwargs)
                    if response.status_code == 401 and reauthenticate is not None and await reauthenticate(response):
                        response = await self._send(method, url, sign, kwargs)
            except httpx.TransportError:
                if attempt == MAX_ATTEMPTS:
                    raise
                await asyncio.sleep(backoff_delay(attempt, None))
                continue
            if not is_throttled(response) or attempt == MAX_ATTEMPTS:
                return response
            await asyncio.sleep(backoff_delay(attempt, response.headers.get("Retry-After")))
        raise AssertionError("unreachable")

    async def _send(self, method: str, url: str, sign: Callable[[httpx.Request], Awaitable[None]] | None,
                    kwargs: dict) -> httpx.Response:
        request = self._client.build_request(method, url, **kwargs)
        if sign is not None:
            await sign(request)
        return await self._client.send(request)

    async def close(self) -> None:
        await self._client.aclose()
