"""Command line of the reference connector.

    python -m syncert_reference sync [--flows a,b]    one sync cycle; exit 0 when it completed (records
                                                      given up on are in the dead-letter file), 1 when
                                                      it could not complete or left records for the next
    python -m syncert_reference serve [--flows a,b]   a service on $SYNCERT_LISTEN_PORT: GET /health,
                                                      POST /webhooks (change events, signature checked),
                                                      a sync cycle every second and right after each webhook

--flows limits the cycle to some flows (default: all of them), e.g. `--flows accounts`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import httpx

from syncert_reference.apis import ApiError
from syncert_reference.flows import ALL_FLOWS, CycleIncomplete, Settings, SyncCycle


def flow_list(text: str) -> tuple[str, ...]:
    flows = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in flows if name not in ALL_FLOWS]
    if unknown or not flows:
        raise argparse.ArgumentTypeError(f"unknown flow(s) {', '.join(unknown) or '(none given)'}; "
                                         f"the flows are {', '.join(ALL_FLOWS)}")
    return flows


def sync_once(settings: Settings) -> int:
    cycle = SyncCycle(settings)
    try:
        asyncio.run(cycle.run())
    except (ApiError, httpx.HTTPError, CycleIncomplete) as error:
        print(f"sync cycle failed: {error}", file=sys.stderr)
        return 1
    print(f"sync cycle done; {cycle.dead_letters} record(s) dead-lettered")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m syncert_reference", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("sync", "serve"))
    parser.add_argument("--flows", type=flow_list, default=ALL_FLOWS, help="comma-separated flows (default: all)")
    args = parser.parse_args(argv)
    settings = Settings.from_environment(args.flows)
    if args.command == "sync":
        return sync_once(settings)
    from syncert_reference.service import serve

    return serve(settings)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
