"""Throughput of the simulated Salesforce against WireMock and Mountebank, side by side in one run.

What is measured (wrk, one thread, --connections keep-alive connections, for every server):
  syncert get          GET one Account by id: bearer token checked, governance (limits, in-flight count),
                       journaled (tags, kind, operation, bodies), read from the SQLite (WAL) store
  syncert create       POST one Account: token checked, governance, validated (Name required), stored in
                       SQLite and committed (group commit) before the answer, journaled
  wiremock-nojournal   GET of a stub matched on URL and bearer token, WireMock run with
                       --no-request-journal (how its users run load tests)
  wiremock-journal     the same stub, WireMock run with --max-request-journal-entries JOURNAL_ENTRIES
  mountebank create    POST one Account: an injected function validates Name and stores the record in
                       the imposter's state; the imposter records requests (its journal)
WireMock stubs cannot store state, so WireMock is measured on GET only; Mountebank on create only.

Each pass starts all four servers once and keeps them running. Every server and workload first gets
--warmup seconds of unmeasured load (the JVM's JIT warm-up for WireMock; the same for the others), then
--rounds alternating rounds of --duration seconds each; the order of servers rotates every round and
the median of the rounds is reported. Two passes by default: pinned (every server on CPU 0, wrk on
CPU 1, so every server gets the same single core) and unpinned (servers and wrk on any core; the JVM's
JIT and GC threads then get a core of their own, which favours WireMock).

Ratios: syncert get / wiremock-nojournal get, syncert get / wiremock-journal get, syncert create /
mountebank create. Goal (issue 13): get >= 1.5x WireMock without journal, create >= 2x Mountebank.

Run: python benchmarks/throughput.py [--duration 8] [--rounds 5] [--warmup 20] [--connections 16]
                                     [--pinning both|pinned|unpinned]
Needs wrk (Debian package), Java 17 and npm; WireMock 3.13.2 and Mountebank 2.9.2 are installed with
npm into benchmarks/.tools on first use. Results: benchmarks/results/throughput.json and stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
TOOLS = HERE / ".tools"
RESULTS = HERE / "results"
WIREMOCK_VERSION, MOUNTEBANK_VERSION = "3.13.2", "2.9.2"
JOURNAL_ENTRIES = 10_000
PINNING = {"pinned": {"server": ["taskset", "-c", "0"], "load": ["taskset", "-c", "1"]},
           "unpinned": {"server": [], "load": []}}
TOKEN = "00DBENCH!bench-token"
ACCOUNT_PATH = "/services/data/v59.0/sobjects/Account"
RECORD = {"attributes": {"type": "Account", "url": f"{ACCOUNT_PATH}/0015g0000000001AAA"},
          "Id": "0015g0000000001AAA", "Name": "Bench Account", "Phone": "+1 555 0100", "BillingCity": "Lyon",
          "ERP_Customer_Id__c": "C-1", "Outstanding_Balance__c": 1250.5, "IsDeleted": False}
CREATE_BODY = '{"Name": "Bench Account", "BillingCity": "Lyon"}'
Targets = dict[str, dict]
Server = Callable[[list[str]], AbstractContextManager[Targets]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout_s:.0f}s")


def ensure_wrk() -> None:
    if shutil.which("wrk") is None:
        if os.geteuid() != 0:
            sys.exit("wrk is missing: apt-get install -y wrk")
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, stdout=subprocess.DEVNULL)


def ensure_tools() -> None:
    ensure_wrk()
    if not (TOOLS / "node_modules" / "wiremock").exists() or not (TOOLS / "node_modules" / ".bin" / "mb").exists():
        TOOLS.mkdir(exist_ok=True)
        subprocess.run(["npm", "install", "--silent", "--prefix", str(TOOLS), f"wiremock@{WIREMOCK_VERSION}",
                        f"@mbtest/mountebank@{MOUNTEBANK_VERSION}"], check=True)


@contextmanager
def process(command: list[str], pin: list[str], **kwargs) -> Iterator[subprocess.Popen]:
    """Start a server (pinned with `pin`); stop it and its process group afterwards."""
    proc = subprocess.Popen([*pin, *command], start_new_session=True,
                            stdout=kwargs.pop("stdout", subprocess.DEVNULL), stderr=subprocess.DEVNULL, **kwargs)
    try:
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@contextmanager
def syncert_server(pin: list[str]) -> Iterator[Targets]:
    with tempfile.TemporaryDirectory() as data_dir, process(
            [sys.executable, "-m", "syncert", "sim", "--json", "--data-dir", data_dir], pin,
            stdout=subprocess.PIPE, text=True, cwd=HERE.parent) as proc:
        env = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
        base = env["SYNCERT_CRM_URL"]
        httpx.put(f"{base}/_sim/limits", json={"daily_api_requests": 100_000_000},  # the 100k default runs out
                  headers={"Authorization": f"Bearer {env['SYNCERT_ADMIN_TOKEN']}"}).raise_for_status()
        token = httpx.post(f"{base}/services/oauth2/token", data={"grant_type": "client_credentials"},
                           auth=(env["SYNCERT_CRM_CLIENT_ID"], env["SYNCERT_CRM_CLIENT_SECRET"])).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        created = httpx.post(f"{base}{ACCOUNT_PATH}/", json={k: v for k, v in RECORD.items()
                                                            if k not in ("attributes", "Id", "IsDeleted")},
                             headers=headers).json()
        yield {"get": {"url": f"{base}{ACCOUNT_PATH}/{created['id']}", "headers": headers},
               "create": {"url": f"{base}{ACCOUNT_PATH}/", "headers": headers}}


def wiremock_server(journal_option: list[str]) -> Server:
    @contextmanager
    def start(pin: list[str]) -> Iterator[Targets]:
        port = free_port()
        jar = next((TOOLS / "node_modules" / "wiremock" / "build").glob("wiremock-standalone-*.jar"))
        with process(["java", "-jar", str(jar), "--port", str(port), "--bind-address", "127.0.0.1",
                      "--disable-banner", *journal_option], pin):
            base = f"http://127.0.0.1:{port}"
            wait_for(f"{base}/__admin/health")
            stub = {"request": {"method": "GET", "url": f"{ACCOUNT_PATH}/0015g0000000001AAA",
                                "headers": {"Authorization": {"equalTo": f"Bearer {TOKEN}"}}},
                    "response": {"status": 200, "jsonBody": RECORD}}
            httpx.post(f"{base}/__admin/mappings", json=stub).raise_for_status()
            yield {"get": {"url": f"{base}{ACCOUNT_PATH}/0015g0000000001AAA",
                           "headers": {"Authorization": f"Bearer {TOKEN}"}}}
    return start


MOUNTEBANK_CREATE = """
function (config) {
  var body;
  try { body = JSON.parse(config.request.body); } catch (e) { body = null; }
  if (!body || typeof body.Name !== 'string' || body.Name.length === 0) {
    return { statusCode: 400, headers: {'Content-Type': 'application/json'},
             body: JSON.stringify([{message: 'Required fields are missing: [Name]',
                                    errorCode: 'REQUIRED_FIELD_MISSING', fields: ['Name']}]) };
  }
  config.state.accounts = config.state.accounts || {};
  config.state.count = (config.state.count || 0) + 1;
  var id = '0015g' + ('0000000000' + config.state.count).slice(-10) + 'AAA';
  body.Id = id;
  config.state.accounts[id] = body;
  return { statusCode: 201, headers: {'Content-Type': 'application/json'},
           body: JSON.stringify({id: id, success: true, errors: []}) };
}
"""


@contextmanager
def mountebank_server(pin: list[str]) -> Iterator[Targets]:
    admin_port, port = free_port(), free_port()
    with process([str(TOOLS / "node_modules" / ".bin" / "mb"), "--port", str(admin_port), "--host", "127.0.0.1",
                  "--allowInjection", "--loglevel", "error", "--nologfile"], pin):
        wait_for(f"http://127.0.0.1:{admin_port}/imposters")
        auth = {"Authorization": f"Bearer {TOKEN}"}
        imposter = {"port": port, "protocol": "http", "host": "127.0.0.1", "recordRequests": True, "stubs": [
            {"predicates": [{"equals": {"method": "POST", "path": f"{ACCOUNT_PATH}/", "headers": auth}}],
             "responses": [{"inject": MOUNTEBANK_CREATE}]},
        ]}
        httpx.post(f"http://127.0.0.1:{admin_port}/imposters", json=imposter).raise_for_status()
        yield {"create": {"url": f"http://127.0.0.1:{port}{ACCOUNT_PATH}/", "headers": auth}}


SERVERS: dict[str, Server] = {
    "syncert": syncert_server,
    "wiremock-nojournal": wiremock_server(["--no-request-journal"]),
    "wiremock-journal": wiremock_server(["--max-request-journal-entries", str(JOURNAL_ENTRIES)]),
    "mountebank": mountebank_server,
}


def run_wrk(target: dict, workload: str, duration_s: int, connections: int, pin: list[str]) -> float:
    """Requests per second; raises if any answer was not the expected success."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        if workload == "create":
            script.write(f'wrk.method = "POST"\nwrk.body = \'{CREATE_BODY}\'\n'
                         'wrk.headers["Content-Type"] = "application/json"\n')
    command = [*pin, "wrk", "-t1", f"-c{connections}", f"-d{duration_s}s", "-s", script.name]
    for name, value in target["headers"].items():
        command += ["-H", f"{name}: {value}"]
    try:
        output = subprocess.run([*command, target["url"]], capture_output=True, text=True, check=True,
                                timeout=duration_s + 30).stdout
    finally:
        os.unlink(script.name)
    if re.search(r"Non-2xx or 3xx responses: (\d+)", output) or re.search(r"Socket errors: .*", output):
        raise RuntimeError(f"{target['url']} answered errors under load:\n{output}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]


def measure(pinning: str, args: argparse.Namespace) -> dict:
    """One pass: start every server, warm each up, then alternate measured rounds; medians and ratios."""
    pin = PINNING[pinning]
    with ExitStack() as stack:
        targets = {name: stack.enter_context(start(pin["server"])) for name, start in SERVERS.items()}
        cases = [(server, workload) for server, by in targets.items() for workload in by]
        for server, workload in cases:
            print(f"[{pinning}] warm-up {server} {workload}: {args.warmup} s", flush=True)
            run_wrk(targets[server][workload], workload, args.warmup, args.connections, pin["load"])
        samples: dict[str, list[float]] = {f"{s} {w}": [] for s, w in cases}
        for round_number in range(args.rounds):
            shift = round_number % len(cases)
            for server, workload in cases[shift:] + cases[:shift]:
                rate = run_wrk(targets[server][workload], workload, args.duration, args.connections, pin["load"])
                samples[f"{server} {workload}"].append(rate)
                print(f"[{pinning}] round {round_number + 1} {server:20} {workload:6} {rate:9.0f} req/s", flush=True)
    medians = {case: statistics.median(rates) for case, rates in samples.items()}
    ratios = {"get_vs_wiremock_nojournal": medians["syncert get"] / medians["wiremock-nojournal get"],
              "get_vs_wiremock_journal": medians["syncert get"] / medians["wiremock-journal get"],
              "create_vs_mountebank": medians["syncert create"] / medians["mountebank create"]}
    return {"samples": samples, "medians": medians, "ratios": ratios}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=8, help="seconds per measured round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating measured rounds")
    parser.add_argument("--warmup", type=int, default=20, help="seconds of unmeasured load per server and workload")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--pinning", choices=("both", "pinned", "unpinned"), default="both")
    args = parser.parse_args()
    ensure_tools()
    passes = ["pinned", "unpinned"] if args.pinning == "both" else [args.pinning]
    started = time.monotonic()
    results = {pinning: measure(pinning, args) for pinning in passes}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "throughput.json").write_text(json.dumps(
        {"settings": {**vars(args), "journal_entries": JOURNAL_ENTRIES, "wall_s": round(time.monotonic() - started)},
         "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
         "versions": {"wiremock": WIREMOCK_VERSION, "mountebank": MOUNTEBANK_VERSION},
         "results": results}, indent=2) + "\n")
    print(f"\n{args.rounds} rounds of {args.duration} s after {args.warmup} s of warm-up per server and workload "
          f"(JIT warm-up for WireMock); {args.connections} connections; medians in req/s")
    for pinning, result in results.items():
        print(f"\n[{pinning}]")
        for case, value in result["medians"].items():
            print(f"  {case:26} {value:9.0f}")
        for name, value in result["ratios"].items():
            print(f"  {name:26} {value:6.2f}x")


if __name__ == "__main__":
    main()
