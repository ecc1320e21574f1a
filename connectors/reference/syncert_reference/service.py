"""Service mode: sync continuously, and at once when a signed change event arrives.

GET /health answers 200 {"status": "ok"} while the sync loop runs. A cycle that fails is logged and
the loop goes on. While the last cycle failed because it cannot sync at all (a server certificate that
does not verify against SYNCERT_CA_BUNDLE, credentials refused), /health answers 503 {"status":
"failing", "reason": ...}; if the loop itself dies (a bug), it is logged with its traceback and /health
answers 503 {"status": "failed", "reason": ...}: the service never looks healthy while not syncing.
While it cannot sync, change events no longer wake the loop, and each later try waits twice as long as
the one before (up to MAX_BLOCKED_WAIT_S): credentials that were revoked are not sent again and again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import sys
import traceback
from collections.abc import AsyncIterator

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncert_reference.apis import ApiError
from syncert_reference.flows import CycleIncomplete, Settings, SyncCycle
from syncert_reference.resilience import certificate_refused

POLL_INTERVAL_S = 1.0
MAX_BLOCKED_WAIT_S = 300.0


def signature_valid(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def cannot_sync(error: Exception) -> bool:
    """The cycle failed for a reason no retry will cure: the servers are not trusted, or the credentials refused."""
    return certificate_refused(error) or (isinstance(error, ApiError) and error.unauthorized)


def build_app(settings: Settings, secret: str) -> Starlette:
    wake = asyncio.Event()
    crash: list[str] = []  # why the sync loop died, once it has
    blocked: list[str] = []  # why the last cycle could not sync at all, if it could not

    async def health(request: Request) -> Response:
        if crash:
            return JSONResponse({"status": "failed", "reason": crash[0]}, status_code=503)
        if blocked:
            return JSONResponse({"status": "failing", "reason": blocked[0]}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def webhook(request: Request) -> Response:
        body = await request.body()
        if not signature_valid(secret, request.headers.get("x-syncert-timestamp", ""), body,
                               request.headers.get("x-syncert-signature", "")):
            return JSONResponse({"error": "bad signature"}, status_code=401)
        wake.set()
        return Response(status_code=204)

    async def sync_forever() -> None:
        blocked_wait = POLL_INTERVAL_S
        while True:
            reason = None
            try:
                await SyncCycle(settings).run()
            except (ApiError, httpx.HTTPError, CycleIncomplete) as error:
                print(f"sync cycle failed: {error}", file=sys.stderr, flush=True)
                if cannot_sync(error):
                    reason = f"sync cycle failed: {error}"
            blocked[:] = [reason] if reason else []
            wake.clear()
            if blocked:
                print(f"cannot sync; next try in {blocked_wait:.0f}s", file=sys.stderr, flush=True)
                await asyncio.sleep(blocked_wait)
                blocked_wait = min(2 * blocked_wait, MAX_BLOCKED_WAIT_S)
                continue
            blocked_wait = POLL_INTERVAL_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), POLL_INTERVAL_S)

    def loop_ended(task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        crash.append(f"the sync loop stopped: {type(error).__name__}: {error}")
        print(crash[0], file=sys.stderr, flush=True)
        traceback.print_exception(error, file=sys.stderr)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(sync_forever())
        task.add_done_callback(loop_ended)
        yield
        task.cancel()

    return Starlette(routes=[Route("/health", health), Route("/webhooks", webhook, methods=["POST"])],
                     lifespan=lifespan)


def serve(settings: Settings) -> int:
    port = int(os.environ.get("SYNCERT_LISTEN_PORT", "0"))
    app = build_app(settings, os.environ.get("SYNCERT_WEBHOOK_SECRET", ""))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    return 0
