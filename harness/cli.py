"""The `syncert` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from simulators.dialects import CRM_DIALECTS, ERP_DIALECTS

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="syncert", description="Certify ERP<->CRM sync connectors against "
                                                                 "simulated vendor APIs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sim = commands.add_parser("sim", help="serve the simulated CRM and ERP on 127.0.0.1",
                              description="Serve the simulated CRM and ERP on 127.0.0.1 until Ctrl-C or SIGTERM. "
                                          "Prints the base URLs and the credentials a connector needs.")
    sim.add_argument("--crm", default="salesforce", choices=sorted(CRM_DIALECTS), help="CRM dialect")
    sim.add_argument("--erp", default="netsuite", choices=sorted(ERP_DIALECTS), help="ERP dialect")
    sim.add_argument("--crm-port", type=int, default=0, help="CRM port (default: a free port)")
    sim.add_argument("--erp-port", type=int, default=0, help="ERP port (default: a free port)")
    sim.add_argument("--data-dir", type=Path, help="keep the SQLite stores here (default: a new temporary dir)")
    sim.add_argument("--memory", action="store_true", help="keep records in memory only")
    sim.add_argument("--tls", action="store_true", help="serve HTTPS with a CA generated for this run")
    sim.add_argument("--json", action="store_true", help="print one line of JSON (SYNCERT_* keys) for scripts")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "sim":
        return _sim(args)
    return EXIT_USAGE


def _sim(args: argparse.Namespace) -> int:
    from simulators.host import SimulatorHost

    for option in ("crm_port", "erp_port"):
        if not 0 <= getattr(args, option) <= 65535:
            print(f"syncert sim: --{option.replace('_', '-')} must be 0-65535", file=sys.stderr)
            return EXIT_USAGE
    host = SimulatorHost(args.crm, args.erp, data_dir=args.data_dir, memory=args.memory, crm_port=args.crm_port,
                         erp_port=args.erp_port, tls=args.tls)

    async def serve() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await host.start()
        except OSError as error:
            print(f"syncert sim: {error}", file=sys.stderr)
            return EXIT_USAGE
        env = host.environment()
        if args.json:
            print(json.dumps(env), flush=True)
        else:
            print(f"CRM ({args.crm}): {host.url('crm')}\nERP ({args.erp}): {host.url('erp')}\n"
                  f"Store: {'memory' if args.memory else host.work_dir}\n\nexport these for a connector:")
            for key, value in env.items():
                print(f"  export {key}={value}")
            print("\nControl plane: <URL>/_sim/ with 'Authorization: Bearer $SYNCERT_ADMIN_TOKEN'. "
                  "Ctrl-C to stop.", flush=True)
        await stop.wait()
        await host.stop()
        if not args.json:
            print("simulators stopped", file=sys.stderr)
        return EXIT_OK

    with asyncio.Runner(loop_factory=_fast_loop_factory()) as runner:
        return runner.run(serve())


def _fast_loop_factory():
    """uvloop's event loop when installed (it is, with uvicorn[standard]); else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    sys.exit(main())
