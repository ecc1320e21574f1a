"""Command line of the reference connector.

    python -m syncert_reference sync    one sync cycle; exit 0 when it completed (records it gave up
                                        on are in the dead-letter file), 1 when it could not complete
    python -m syncert_reference serve   a service on $SYNCERT_LISTEN_PORT: GET /health, POST /webhooks
                                        (change events, signature checked), a sync cycle every second
                                        and right after each webhook
"""

from __future__ import annotations

import asyncio
import sys

import httpx

from syncert_reference.apis import ApiError
from syncert_reference.flows import Settings, SyncCycle


def sync_once() -> int:
    settings = Settings.from_environment()
    cycle = SyncCycle(settings)
    try:
        asyncio.run(cycle.run())
    except (ApiError, httpx.HTTPError) as error:
        print(f"sync cycle failed: {error}", file=sys.stderr)
        return 1
    print(f"sync cycle done; {cycle.dead_letters} record(s) dead-lettered")
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["sync"]:
        return sync_once()
    if argv[:1] == ["serve"]:
        from syncert_reference.service import serve

        return serve()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
