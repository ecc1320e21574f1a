"""Service mode: sync continuously, and at once when a signed change event arrives."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import sys

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncert_reference.apis import ApiError
from syncert_reference.flows import Settings, SyncCycle

POLL_INTERVAL_S = 1.0


def signature_valid(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def build_app(settings: Settings, secret: str) -> Starlette:
    wake = asyncio.Event()

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def webhook(request: Request) -> Response:
        body = await request.body()
        if not signature_valid(secret, request.headers.get("x-syncert-timestamp", ""), body,
                               request.headers.get("x-syncert-signature", "")):
            return JSONResponse({"error": "bad signature"}, status_code=401)
        wake.set()
        return Response(status_code=204)

    async def sync_forever() -> None:
        while True:
            try:
                await SyncCycle(settings).run()
            except (ApiError, httpx.HTTPError) as error:
                print(f"sync cycle failed: {error}", file=sys.stderr, flush=True)
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), POLL_INTERVAL_S)

    async def lifespan(app: Starlette):
        task = asyncio.create_task(sync_forever())
        yield
        task.cancel()

    return Starlette(routes=[Route("/health", health), Route("/webhooks", webhook, methods=["POST"])],
                     lifespan=lifespan)


def serve() -> int:
    settings = Settings.from_environment()
    port = int(os.environ.get("SYNCERT_LISTEN_PORT", "0"))
    app = build_app(settings, os.environ.get("SYNCERT_WEBHOOK_SECRET", ""))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    return 0
