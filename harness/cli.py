"""The `syncert` command line.

Exit codes: 0 success (certified at the requested level; no regression), 1 not certified or a
regression found, 2 usage, manifest or installation error (one paragraph on stderr, no traceback),
130 / 143 interrupted by SIGINT / SIGTERM (the report is written, verdict `interrupted`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from syncert.harness.replay import Replay

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
MAX_JOBS = 32


def _parser() -> argparse.ArgumentParser:
    from syncert.scenarios.volume.profiles import PROFILES
    from syncert.simulators.dialects import CRM_DIALECTS, ERP_DIALECTS

    parser = argparse.ArgumentParser(prog="syncert", description="Certify ERP<->CRM sync connectors against "
                                                                 "simulated vendor APIs.",
                                     epilog="exit codes: 0 certified / no regression, 1 not certified / "
                                            "regression, 2 usage, manifest or installation error, 130/143 "
                                            "interrupted (report written)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    certify = commands.add_parser(
        "certify", help="run the scenario catalogue against a connector and write a report",
        description="Run the scenario catalogue against the connector described by MANIFEST (default: the bundled "
                    "reference connector) and write reports/<run-id>/ (report.json, junit.xml, report.html, "
                    "summary.md) and reports/latest. Exit 0 when certified at --level, 1 when not, 2 on a "
                    "usage or manifest error, 128+N when signal N stopped the run (130 SIGINT, 143 SIGTERM; the "
                    "report is written with verdict interrupted).")
    certify.add_argument("manifest", nargs="?", help="connector.toml (or its directory)")
    certify.add_argument("--level", type=int, default=4, choices=(1, 2, 3, 4),
                         help="certification level required for exit 0 (default 4, production-ready)")
    certify.add_argument("--only", metavar="PATTERN",
                         help="run only scenarios whose id matches this glob (E2E-*) or contains this text")
    certify.add_argument("--seed", type=int, help="seed for generated data (default: random, recorded)")
    certify.add_argument("--replay", metavar="FILE", type=Path,
                         help="run again the failing case a generated scenario saved in its report (a replay file: "
                              "its scenario only, with its seed)")
    certify.add_argument("--report-dir", type=Path, default=Path("reports"), help="where reports go (default reports/)")
    certify.add_argument("--baseline", type=Path, help="a previous report.json: exit 1 on any regression against it")
    certify.add_argument("--threshold", type=float, default=0.20, help="metric regression threshold (default 0.20)")
    certify.add_argument("--keep-state", action="store_true",
                         help="copy each scenario's connector state dir into the report (secrets scrubbed)")
    certify.add_argument("--jobs", type=int, default=1, metavar="N",
                         help="scenarios run N at a time (1-32), each worker with its own simulators (default 1: "
                              "one by one; side by side, a connector could reach another scenario's processes, so "
                              "use N > 1 for fast feedback on a connector you trust)")
    surge = commands.add_parser(
        "surge", help="run one surge profile with Locust while the connector syncs, and write its report",
        description="Run one volume scenario: Locust acts out a surge profile (deals closing, the invoice run, "
                    "payments, imports; interactive ERP users measured) on the simulators while the connector "
                    "syncs, then the connector catches up. The report has the sync lag per record "
                    "(p50/p95/p99/max), records per second, backlog over time, API calls per synced record, "
                    "throttling met, the ERP's interactive latency before and during, the reconciliation, and "
                    "charts (SVG, in report.html and beside it). Exit 0 when the profile's thresholds are met, 1 "
                    "when not, 2 on a usage error.")
    surge.add_argument("--profile", default="month-end", choices=sorted(PROFILES),
                       help="the surge to run (default month-end)")
    surge.add_argument("--scale", type=float, default=1.0, metavar="N",
                       help="multiplies the users making business records and the accounts they buy from "
                            "(default 1: about a minute here; higher scales are the real test)")
    surge.add_argument("--workers", type=int, default=0, metavar="N",
                       help="run Locust as a master and N workers on 127.0.0.1 (its distributed mode; default 0: "
                            "one process)")
    surge.add_argument("--connector", metavar="MANIFEST", help="connector.toml (default: the bundled reference)")
    surge.add_argument("--seed", type=int, help="seed for generated data (default: random, recorded)")
    surge.add_argument("--report-dir", type=Path, default=Path("reports"), help="where reports go (default reports/)")
    catalogue = commands.add_parser("scenarios", help="list the scenario catalogue",
                                    description="List the catalogue: id, level, category, flows and intent.")
    catalogue.add_argument("--json", action="store_true", help="one JSON document for scripts")
    mapping = commands.add_parser("mapping", help="show the CRM<->ERP sync mapping in canonical and vendor terms",
                                  description="Print, per flow, how records are paired and which fields a connector "
                                              "reads and writes (Markdown), for the manifest's mapping and dialects "
                                              "(default: the standard mapping, Salesforce and NetSuite).")
    mapping.add_argument("manifest", nargs="?", help="connector.toml (or its directory)")
    compare = commands.add_parser("compare", help="the regression gate: compare a report with a baseline",
                                  description="Exit 1 when a scenario that passed in BASELINE does not pass in "
                                              "CURRENT, or a metric is worse by more than --threshold.")
    compare.add_argument("baseline", type=Path, help="baseline report.json (or its directory)")
    compare.add_argument("current", type=Path, help="current report.json (or its directory)")
    compare.add_argument("--threshold", type=float, default=0.20, help="metric regression threshold (default 0.20)")
    contracts = commands.add_parser("contracts", help="contract tools: diff two OpenAPI documents, verify a server",
                                    description="Tools for the vendors' API contracts (OpenAPI documents).")
    tools = contracts.add_subparsers(dest="tool", required=True, metavar="TOOL")
    diff = tools.add_parser("diff", help="the changes from OLD to NEW, classified for clients",
                            description="List the changes from OLD to NEW (OpenAPI 3, YAML or JSON) as errors "
                                        "(a client that worked against OLD can fail: removed or renamed fields, "
                                        "new required fields, changed types, tightened limits, withdrawn scopes), "
                                        "warnings and additive changes. Exit 1 when any change is breaking, 0 "
                                        "when none is, 2 when a document cannot be read.")
    diff.add_argument("old", type=Path, help="the OpenAPI document clients were written against")
    diff.add_argument("new", type=Path, help="the changed OpenAPI document")
    diff.add_argument("--format", choices=("text", "markdown", "json"), default="text", help="output (default text)")
    verify = tools.add_parser("verify", help="check a server against a vendor contract (schemathesis, JUnit)",
                              description="Provider verification: generated requests for every operation of "
                                          "contracts/<DIALECT>/openapi.yaml (valid and invalid data), sent to the "
                                          "simulator (default) or to --url; every answer must be documented and "
                                          "match its schema, and invalid requests must be refused. Exit 0 when "
                                          "every check passed, 1 when one failed, 2 on a usage error.")
    verify.add_argument("dialect", choices=("salesforce", "netsuite"), help="the contract to verify against")
    verify.add_argument("--url", help="the server to verify (default: syncert's simulator, started for the run)")
    verify.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                        help="a header for every request to --url, e.g. 'Authorization: Bearer ...' (repeatable)")
    verify.add_argument("--junit", type=Path, default=Path("contract-verify.xml"),
                        help="where the JUnit report goes (default contract-verify.xml)")
    verify.add_argument("--max-examples", type=int, default=30, help="generated cases per operation (default 30)")
    verify.add_argument("--seed", type=int, help="seed for the generated data (default: random)")
    record = tools.add_parser("record", help="a recording proxy in front of a vendor org (secrets redacted)",
                              description="Serve a proxy on 127.0.0.1 that forwards every request to --upstream "
                                          "and saves each interaction into one JSON file, with every credential "
                                          "redacted (in any encoding) and the fields that vary from run to run "
                                          "marked volatile. Point a client at the proxy; stop with Ctrl-C (or "
                                          "--max-interactions / --duration). The file is complete after each "
                                          "interaction.")
    record.add_argument("dialect", choices=("salesforce", "netsuite"), help="the API the upstream speaks")
    record.add_argument("--upstream", required=True, help="the server to record, e.g. https://acme.my.salesforce.com")
    record.add_argument("--port", type=int, default=8787, help="the proxy's port on 127.0.0.1 (default 8787; 0: any)")
    record.add_argument("--out", type=Path,
                        help="the recording (default contracts/recordings/DIALECT/DIALECT-<time>.json here)")
    record.add_argument("--upstream-ca", type=Path, help="a CA bundle to trust for the upstream's TLS certificate")
    record.add_argument("--tls", action="store_true",
                        help="serve HTTPS with a CA made for the run (its PEM path is printed for the client)")
    record.add_argument("--max-interactions", type=int, help="stop after this many interactions")
    record.add_argument("--duration", type=float, help="stop after this many seconds")
    replay = tools.add_parser("replay", help="replay recordings against the simulators; the parity page",
                              description="Replay each recording, in order, against a fresh simulator of its "
                                          "dialect: every answer must have the recorded status, shape and key "
                                          "values (volatile fields ignored). Exit 0 when every interaction is "
                                          "answered as recorded, 1 when one is not, 2 when a recording cannot be "
                                          "read.")
    replay.add_argument("recordings", nargs="*", type=Path,
                        help="recording files or folders (default: the recordings shipped with syncert)")
    replay.add_argument("--parity", type=Path, help="write the parity page (Markdown) here")
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
    commands = {"sim": _sim, "certify": _certify, "surge": _surge, "scenarios": _scenarios, "compare": _compare,
                "mapping": _mapping, "contracts": _contracts}
    try:
        args = _parser().parse_args(argv)
        return commands[args.command](args)
    except KeyboardInterrupt:  # Ctrl-C before a command had its own handling in place (e.g. while importing)
        return 128 + signal.SIGINT
    except BrokenPipeError:  # the output went to a reader that stopped (`syncert scenarios | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 128 + signal.SIGPIPE


def _contracts(args: argparse.Namespace) -> int:
    return {"verify": _verify, "diff": _diff, "record": _record, "replay": _replay_recordings}[args.tool](args)


def _diff(args: argparse.Namespace) -> int:
    from syncert.harness.contract_diff import ContractError, breaking, diff_contracts, load_contract, render

    try:
        old, new = load_contract(args.old), load_contract(args.new)
    except ContractError as error:
        print(f"syncert contracts diff: {error}", file=sys.stderr)
        return EXIT_USAGE
    changes = diff_contracts(old, new)
    print(render(changes, args.format, str(args.old), str(args.new)))
    return EXIT_FAILED if breaking(changes) else EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from syncert.harness.contract_verify import (
        Target,
        VerifyError,
        parse_headers,
        reachable,
        simulator_target,
        verify,
    )

    try:
        if not 1 <= args.max_examples <= 10_000:
            raise VerifyError("--max-examples must be 1-10000")
        headers = parse_headers(args.header)
        if headers and args.url is None:
            raise VerifyError("--header goes with --url (the simulator's token is fetched for you)")
        if not args.junit.resolve().parent.is_dir():
            raise VerifyError(f"--junit {args.junit}: no such folder {args.junit.parent}")
        if args.url is not None:
            return verify(args.dialect, Target(reachable(args.url), headers), args.junit, args.max_examples,
                          args.seed)
        with simulator_target(args.dialect) as target:
            return verify(args.dialect, target, args.junit, args.max_examples, args.seed)
    except VerifyError as error:
        print(f"syncert contracts verify: {error}", file=sys.stderr)
        return EXIT_USAGE


def _record(args: argparse.Namespace) -> int:
    from syncert.harness.recording import RecordingError, serve_recording_proxy

    out = args.out or Path("contracts", "recordings", args.dialect,
                           f"{args.dialect}-{time.strftime('%Y%m%d-%H%M%S')}.json")
    try:
        return serve_recording_proxy(args.dialect, args.upstream, out, args.port, args.upstream_ca,
                                     args.max_interactions, args.duration, args.tls)
    except RecordingError as error:
        print(f"syncert contracts record: {error}", file=sys.stderr)
        return EXIT_USAGE


def _replay_recordings(args: argparse.Namespace) -> int:
    from syncert.contracts import contract_path
    from syncert.harness.recording import RecordingError, recordings_in
    from syncert.harness.recording_replay import parity_page, replay

    files = [path for path in args.recordings if path.is_file()]
    folders = [path for path in args.recordings if path.is_dir()]
    missing = [path for path in args.recordings if not path.exists()]
    if missing:
        print(f"syncert contracts replay: no such file or folder: {missing[0]}", file=sys.stderr)
        return EXIT_USAGE
    if not args.recordings:
        folders = [contract_path("recordings", "")]
    paths = sorted(set(files) | set(recordings_in(folders)))
    results = []
    try:
        for path in paths:
            result = replay(path)
            results.append(result)
            answered = sum(outcome.verified for outcome in result.outcomes)
            print(f"{path}: {answered} of {len(result.outcomes)} interactions answered as recorded")
            for outcome in result.outcomes:
                for difference in outcome.differences:
                    print(f"  #{outcome.number} {outcome.request}: {difference}")
    except RecordingError as error:
        print(f"syncert contracts replay: {error}", file=sys.stderr)
        return EXIT_USAGE
    if args.parity:
        args.parity.write_text(parity_page(results, paths), encoding="utf-8")
        print(f"parity page: {args.parity}")
    if not paths:
        print("no recordings to replay (make one with `syncert contracts record`)")
        return EXIT_OK if args.parity else EXIT_USAGE
    return EXIT_OK if all(result.verified for result in results) else EXIT_FAILED


def _installation_complete(command: str) -> bool:
    """Import what running the catalogue needs; on failure say which module is missing (no traceback)."""
    try:
        import syncert.harness.certify  # noqa: F401  (the harness, its pytest plugin and the checks)
    except ImportError as error:
        print(f"syncert {command}: cannot import {error.name or error}: syncert's installation is incomplete. "
              "Reinstall it with `pip install syncert` (all its runtime dependencies are declared).", file=sys.stderr)
        return False
    return True


def _report_dir_problem(directory: Path) -> str | None:
    """Why reports cannot be written under `directory` (checked before a run, not after it), or None."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return f"--report-dir {directory} cannot be created: {error.strerror or error}"
    if not directory.is_dir() or not os.access(directory, os.W_OK | os.X_OK):
        return f"--report-dir {directory} is not a directory this user can write to"
    return None


def _replay_problem(replay: Replay, args: argparse.Namespace) -> str | None:
    """Why a replay file cannot run with these options, or None."""
    from syncert.harness.catalogue import list_scenarios

    if args.only or (args.seed is not None and args.seed != replay.seed):
        return (f"--replay runs {replay.scenario} with seed {replay.seed}, as the file says; leave out --only and "
                "--seed")
    if replay.scenario not in {entry["id"] for entry in list_scenarios() if entry["nodeid"]}:
        return f"{args.replay} names the scenario {replay.scenario!r}, which is not in the catalogue"
    return None


def _certify(args: argparse.Namespace) -> int:
    if not _installation_complete("certify"):
        return EXIT_USAGE
    from syncert.harness.catalogue import CatalogueError
    from syncert.harness.certify import SelectionError, certify, manifest_for
    from syncert.harness.compare import ReportError, load_report, regressions
    from syncert.harness.manifest import ManifestError
    from syncert.harness.replay import ReplayError, load_replay
    from syncert.harness.reports import counts_text, level_text, time_text

    if args.threshold < 0:
        print("syncert certify: --threshold must be 0 or more (0.20 allows a metric 20% worse)", file=sys.stderr)
        return EXIT_USAGE
    if not 1 <= args.jobs <= MAX_JOBS:
        print(f"syncert certify: --jobs must be 1 to {MAX_JOBS} (scenarios run at a time)", file=sys.stderr)
        return EXIT_USAGE
    problem = _report_dir_problem(args.report_dir)
    if problem:
        print(f"syncert certify: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        manifest = manifest_for(args.manifest)
        baseline = load_report(args.baseline) if args.baseline else None
        replay = load_replay(args.replay) if args.replay else None
    except (ManifestError, ReportError, ReplayError) as error:
        print(f"syncert certify: {error}", file=sys.stderr)
        return EXIT_USAGE
    if replay is not None:
        problem = _replay_problem(replay, args)
        if problem:
            print(f"syncert certify: {problem}", file=sys.stderr)
            return EXIT_USAGE
        if replay.connector and (replay.connector["name"], replay.connector["version"]) != (manifest.name,
                                                                                              manifest.version):
            print(f"syncert certify: warning: {args.replay} failed {replay.connector['name']} "
                  f"{replay.connector['version']}; it now runs against {manifest.name} {manifest.version}",
                  file=sys.stderr)
    try:
        report, directory, interrupted = certify(
            manifest, args.report_dir, args.level, replay.scenario if replay else args.only,
            replay.seed if replay else args.seed, args.keep_state, args.replay if replay else None,
            jobs=args.jobs)
    except (CatalogueError, SelectionError) as error:
        print(f"syncert certify: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as stop:  # a signal after the scenarios ended, while the report was written
        signum = getattr(stop, "signum", signal.SIGINT)
        print(f"syncert certify: interrupted by {signal.Signals(signum).name} while writing the report",
              file=sys.stderr)
        return 128 + signum
    print(f"\n{report['verdict'].upper()}: {level_text(report)}; {counts_text(report)}")
    for number, entry in ({} if report["selection"] or interrupted else report["levels"]).items():
        print(f"  level {number} {entry['name']:<17} {entry['status'].replace('_', ' '):<15} {entry['reason'][:160]}")
    print(time_text(report))
    print(f"report: {directory / 'report.html'}")
    if interrupted is not None:
        return 128 + interrupted
    if not report["scenarios"]:
        print("syncert certify: no scenario ran (check --only)", file=sys.stderr)
        return EXIT_FAILED
    failed = report["verdict"] not in ("certified", "passed")
    if baseline is not None:
        found = regressions(baseline, report, args.threshold)
        for line in found:
            print(f"REGRESSION {line}")
        failed = failed or bool(found)
    return EXIT_FAILED if failed else EXIT_OK


MAX_SURGE_WORKERS = 16


def _surge(args: argparse.Namespace) -> int:
    if not _installation_complete("surge"):
        return EXIT_USAGE
    from syncert.harness.catalogue import CatalogueError
    from syncert.harness.certify import SelectionError, certify, manifest_for
    from syncert.harness.manifest import ManifestError
    from syncert.harness.reports import counts_text
    from syncert.harness.surge import SurgeSettings, surge_lines
    from syncert.scenarios.volume.profiles import PROFILES

    if not 0 < args.scale <= 1000:
        print("syncert surge: --scale must be more than 0 and at most 1000", file=sys.stderr)
        return EXIT_USAGE
    if not 0 <= args.workers <= MAX_SURGE_WORKERS:
        print(f"syncert surge: --workers must be 0 to {MAX_SURGE_WORKERS}", file=sys.stderr)
        return EXIT_USAGE
    problem = _report_dir_problem(args.report_dir)
    if problem:
        print(f"syncert surge: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        manifest = manifest_for(args.connector)
    except ManifestError as error:
        print(f"syncert surge: {error}", file=sys.stderr)
        return EXIT_USAGE
    profile = PROFILES[args.profile]
    if (profile.accounts and round(profile.accounts * args.scale) == 0) or sum(
            profile.planned_changes(args.scale).values()) < 1:
        print(f"syncert surge: --scale {args.scale:g} is too small for the {profile.id} surge: its users would have "
              "nothing to act on (no account) or no change to make", file=sys.stderr)
        return EXIT_USAGE
    missing = sorted(set(profile.flows) - set(manifest.flows))
    if missing:
        print(f"syncert surge: the {profile.id} surge needs flow(s) {', '.join(missing)}, which {manifest.name} does "
              "not declare", file=sys.stderr)
        return EXIT_USAGE
    try:
        report, directory, interrupted = certify(manifest, args.report_dir, 4, profile.scenario_id, args.seed,
                                                 surge=SurgeSettings(args.scale, args.workers))
    except (CatalogueError, SelectionError) as error:
        print(f"syncert surge: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as stop:
        signum = getattr(stop, "signum", signal.SIGINT)
        return 128 + signum
    [result] = [s for s in report["scenarios"] if s["id"] == profile.scenario_id] or [None]
    print(f"\n{report['verdict'].upper()}: {counts_text(report)}")
    if result is not None:
        for line in surge_lines(result):
            print(f"  {line}")
    print(f"report: {directory / 'report.html'}")
    if interrupted is not None:
        return 128 + interrupted
    return EXIT_OK if report["verdict"] == "passed" else EXIT_FAILED


def _scenarios(args: argparse.Namespace) -> int:
    if not _installation_complete("scenarios"):
        return EXIT_USAGE
    from syncert.harness.catalogue import CatalogueError, list_scenarios

    try:
        entries = list_scenarios()
    except CatalogueError as error:
        print(f"syncert scenarios: {error}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(entries, indent=2))
        return EXIT_OK
    for entry in entries:
        needs = (",".join(entry["flows"]) or "(all)") + (" +webhooks" if entry["needs_webhooks"] else "")
        print(f"{entry['id']:<21} L{entry['level']}  {entry['category']:<16} {needs:<28} {entry['intent']}")
    return EXIT_OK


def _mapping(args: argparse.Namespace) -> int:
    if not _installation_complete("mapping"):
        return EXIT_USAGE
    from syncert.harness.manifest import ManifestError, load_manifest
    from syncert.harness.mapping import load_mapping
    from syncert.harness.mapping_doc import render
    from syncert.harness.reconciliation import VendorNames

    try:
        manifest = load_manifest(args.manifest) if args.manifest else None
    except ManifestError as error:
        print(f"syncert mapping: {error}", file=sys.stderr)
        return EXIT_USAGE
    dialects = {"crm": manifest.crm, "erp": manifest.erp} if manifest else {"crm": "salesforce", "erp": "netsuite"}
    print(render(load_mapping(manifest.mapping if manifest else None), VendorNames(dialects)), end="")
    return EXIT_OK


def _compare(args: argparse.Namespace) -> int:
    from syncert.harness.compare import ReportError, load_report, regressions

    if args.threshold < 0:
        print("syncert compare: --threshold must be 0 or more (0.20 allows a metric 20% worse)", file=sys.stderr)
        return EXIT_USAGE
    try:
        baseline, current = load_report(args.baseline), load_report(args.current)
    except ReportError as error:
        print(f"syncert compare: {error}", file=sys.stderr)
        return EXIT_USAGE
    names = [report.get("connector", {}).get("name") for report in (baseline, current)]
    if names[0] != names[1]:
        print(f"syncert compare: warning: the baseline is of connector {names[0]!r}, the current report of "
              f"{names[1]!r}", file=sys.stderr)
    found = regressions(baseline, current, args.threshold)
    for line in found:
        print(f"REGRESSION {line}")
    if not found:
        print(f"no regression: {sum(s['status'] == 'passed' for s in current['scenarios'])} scenarios pass, "
              f"metrics within {args.threshold * 100:.0f}% of the baseline")
    return EXIT_FAILED if found else EXIT_OK


def _sim(args: argparse.Namespace) -> int:
    from syncert.simulators.host import SimulatorHost

    for option in ("crm_port", "erp_port"):
        if not 0 <= getattr(args, option) <= 65535:
            print(f"syncert sim: --{option.replace('_', '-')} must be 0-65535", file=sys.stderr)
            return EXIT_USAGE
    try:
        host = SimulatorHost(args.crm, args.erp, data_dir=args.data_dir, memory=args.memory, crm_port=args.crm_port,
                             erp_port=args.erp_port, tls=args.tls)
    except KeyboardInterrupt:
        return 128 + signal.SIGINT

    async def serve() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await host.start()
        except OSError as error:
            print(f"syncert sim: {error}", file=sys.stderr)
            host.remove_work_dir()
            return EXIT_USAGE
        env = host.environment()
        if args.json:
            print(json.dumps(env), flush=True)
        else:
            admin_token = env.pop("SYNCERT_ADMIN_TOKEN")
            print(f"CRM ({args.crm}): {host.url('crm')}\nERP ({args.erp}): {host.url('erp')}\n"
                  f"Store: {'memory' if args.memory else host.work_dir}\n\nexport these for a connector:")
            for key, value in env.items():
                print(f"  export {key}={value}")
            print("\nfor you and your scripts only, never for a connector:\n"
                  f"  export SYNCERT_ADMIN_TOKEN={admin_token}")
            print("\nControl plane: <URL>/_sim/ with 'Authorization: Bearer $SYNCERT_ADMIN_TOKEN'. "
                  "Ctrl-C to stop.", flush=True)
        await stop.wait()
        await host.stop()
        if not args.json:
            print("simulators stopped", file=sys.stderr)
        return EXIT_OK

    try:
        return asyncio.run(serve())
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were in place
        host.remove_work_dir()
        return 128 + signal.SIGINT


if __name__ == "__main__":
    sys.exit(main())
