"""How the connector talks to any API: retries with backoff and jitter, Retry-After, a concurrency cap.

Throttling answers (429, Salesforce's 403 REQUEST_LIMIT_EXCEEDED) mean nothing was done: every
request is sent again after them. 5xx answers, timeouts and broken connections leave the outcome
unknown: only idempotent requests (GET, PUT, PATCH, DELETE, and reads sent as POST) are sent again
after them. A request that is not idempotent (a POST that creates a record) raises AmbiguousWrite
instead, and the caller looks the record up before deciding to send it again. A connection that was
never made is safe to retry for every request, except one refused because the server's certificate does
not verify against the CA bundle: retrying cannot change that, so it fails at once (and no request, no
credential, was sent).

A request gets no answer within REQUEST_TIMEOUT_S: past that it counts as a timeout (outcome unknown),
so a write the server applied but never answered is settled like any other ambiguous failure.

The wait before attempt n+1 is a random value ("jitter") between MIN_BACKOFF_S and base * 2**n,
capped, and never shorter than the server's Retry-After: clients that failed together do not retry
together, and none retries at once (which would only add to a struggling server's load). A Retry-After
asks the client, not only the refused request, to wait: until it has passed, nothing at all is sent to
that server. Other answers are returned to the caller, which decides (401: log in again; other 4xx: give the record up).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, TypeVar

import httpx

MAX_ATTEMPTS = 6
BASE_BACKOFF_S = 0.25
MIN_BACKOFF_S = 0.1
MAX_BACKOFF_S = 8.0
REQUEST_TIMEOUT_S = 15.0  # seconds without an answer before a request times out
NOTHING_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

Signer = Callable[[httpx.Request], Awaitable[None]]
T = TypeVar("T")


class AmbiguousWrite(Exception):
    """A non-idempotent request failed in a way that leaves unknown whether it was applied."""


def certificate_refused(error: BaseException) -> bool:
    """The TLS handshake failed because the server's certificate did not verify (untrusted CA, wrong host)."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def is_throttled(response: httpx.Response) -> bool:
    """The server refused the request for a limit: nothing was done, it may be sent again."""
    return response.status_code == 429 or (response.status_code == 403
                                           and "REQUEST_LIMIT_EXCEEDED" in response.text)


def is_server_error(response: httpx.Response) -> bool:
    return response.status_code >= 500


async def gather(coroutines: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Run coroutines concurrently under an asyncio.TaskGroup and return their results in order. The
    first failure cancels the others and is raised as itself (not wrapped in an ExceptionGroup)."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(coroutine) for coroutine in coroutines]
    except ExceptionGroup as failure:
        raise failure.exceptions[0] from None
    return [task.result() for task in tasks]


def backoff_delay(attempt: int, retry_after: str | None) -> float:
    """Seconds to wait before the next attempt (attempt counts from 1)."""
    delay = random.uniform(MIN_BACKOFF_S, min(MAX_BACKOFF_S, BASE_BACKOFF_S * 2 ** attempt))
    if retry_after and retry_after.strip().isdigit():
        delay = max(delay, float(retry_after))
    return delay


class ResilientClient:
    """An httpx.AsyncClient with a cap on requests in flight and retries that never duplicate a write."""

    def __init__(self, max_in_flight: int = 4, verify: str | bool = True, timeout_s: float = REQUEST_TIMEOUT_S):
        self._client = httpx.AsyncClient(verify=verify, timeout=timeout_s)
        self._slots = asyncio.Semaphore(max_in_flight)
        self._paused_until: dict[str, float] = {}  # host -> loop time: a Retry-After holds every request to it

    async def request(self, method: str, url: str, sign: Signer | None = None,
                      reauthenticate: Callable[[httpx.Response], Awaitable[bool]] | None = None,
                      capped: bool = True, idempotent: bool | None = None, **kwargs: Any) -> httpx.Response:
        """Send with retries; `sign` (re)authenticates each attempt just before it is sent (fresh nonce,
        current token). On a 401, `reauthenticate` (if given) may discard the failed credentials; the
        request is then signed again and resent at once, in the slot it holds, so the new token cannot
        age in the queue. `capped=False` skips the in-flight cap: for logins that signing may need.
        `idempotent` defaults to True for every method but POST."""
        idempotent = method != "POST" if idempotent is None else idempotent
        for attempt in range(1, MAX_ATTEMPTS + 1):
            retry_after = None
            try:
                async with self._slots if capped else contextlib.nullcontext():
                    response = await self._send(method, url, sign, kwargs)
                    if response.status_code == 401 and reauthenticate is not None and await reauthenticate(response):
                        response = await self._send(method, url, sign, kwargs)
            except NOTHING_SENT as error:
                if attempt == MAX_ATTEMPTS or certificate_refused(error):
                    raise
            except httpx.TransportError as error:
                if not idempotent:
                    raise AmbiguousWrite(f"{method} {url}: {type(error).__name__}: {error}") from error
                if attempt == MAX_ATTEMPTS:
                    raise
            else:
                if is_server_error(response) and not idempotent:
                    raise AmbiguousWrite(f"{method} {url}: answered {response.status_code}: {response.text[:300]}")
                if attempt == MAX_ATTEMPTS or not (is_throttled(response) or is_server_error(response)):
                    return response
                retry_after = response.headers.get("Retry-After")
            await asyncio.sleep(backoff_delay(attempt, retry_after))
        raise AssertionError("unreachable")

    async def _send(self, method: str, url: str, sign: Signer | None, kwargs: dict[str, Any]) -> httpx.Response:
        request = self._client.build_request(method, url, **kwargs)
        host = request.url.netloc.decode()
        while (wait := self._paused_until.get(host, 0.0) - asyncio.get_running_loop().time()) > 0:
            await asyncio.sleep(wait)  # a server asked for a pause: nothing goes to it until it is over
        if sign is not None:
            await sign(request)
        response = await self._client.send(request)
        self._note_retry_after(host, response)
        return response

    def _note_retry_after(self, host: str, response: httpx.Response) -> None:
        """A refusal with Retry-After pauses every request to `host` until it has passed."""
        retry_after = response.headers.get("Retry-After", "").strip()
        if retry_after.isdigit() and (is_throttled(response) or is_server_error(response)):
            until = asyncio.get_running_loop().time() + float(retry_after)
            self._paused_until[host] = max(self._paused_until.get(host, 0.0), until)

    async def close(self) -> None:
        await self._client.aclose()
