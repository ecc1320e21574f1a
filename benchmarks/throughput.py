"""Throughput of the simulated Salesforce against WireMock and Mountebank, side by side in one run.

Workloads (same load generator, wrk, for every server):
  get     GET one Account by id, authenticated (bearer token checked), request journaled
  create  POST one Account, validated (Name required), stored, journaled
syncert runs with its default SQLite (WAL) store; WireMock answers stubs (it cannot store state) with
its request journal on; Mountebank stores created records in its imposter state through an injected
function (`--allowInjection`) and records requests. By default each server is pinned to CPU 0 and wrk
to CPU 1, so every server gets the same single core; with --no-pin every server may use both cores
(the JVM's JIT and GC threads then get a core of their own, which favours WireMock). Rounds alternate
between servers; the median is reported.

Run: python benchmarks/throughput.py [--duration 8] [--rounds 3] [--connections 16] [--no-pin]
Needs wrk (Debian package), Java 17 and npm; WireMock 3.13.2 and Mountebank 2.9.2 are installed with
npm into benchmarks/.tools on first use. Results: benchmarks/results/throughput.json and stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
TOOLS = HERE / ".tools"
RESULTS = HERE / "results"
WIREMOCK_VERSION, MOUNTEBANK_VERSION = "3.13.2", "2.9.2"
PINNING = {"server": ["taskset", "-c", "0"], "load": ["taskset", "-c", "1"]}
TOKEN = "00DBENCH!bench-token"
ACCOUNT_PATH = "/services/data/v59.0/sobjects/Account"
RECORD = {"attributes": {"type": "Account", "url": f"{ACCOUNT_PATH}/0015g0000000001AAA"},
          "Id": "0015g0000000001AAA", "Name": "Bench Account", "Phone": "+1 555 0100", "BillingCity": "Lyon",
          "ERP_Customer_Id__c": "C-1", "Outstanding_Balance__c": 1250.5, "IsDeleted": False}


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


def ensure_tools() -> None:
    if shutil.which("wrk") is None:
        if os.geteuid() != 0:
            sys.exit("wrk is missing: apt-get install -y wrk")
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, stdout=subprocess.DEVNULL)
    if not (TOOLS / "node_modules" / "wiremock").exists() or not (TOOLS / "node_modules" / ".bin" / "mb").exists():
        TOOLS.mkdir(exist_ok=True)
        subprocess.run(["npm", "install", "--silent", "--prefix", str(TOOLS), f"wiremock@{WIREMOCK_VERSION}",
                        f"@mbtest/mountebank@{MOUNTEBANK_VERSION}"], check=True)


@contextmanager
def process(command: list[str], **kwargs) -> Iterator[subprocess.Popen]:
    """Start a server pinned to the server CPU; stop it (and its group) afterwards."""
    proc = subprocess.Popen([*PINNING["server"], *command], start_new_session=True,
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
def syncert_server() -> Iterator[dict[str, dict]]:
    with tempfile.TemporaryDirectory() as data_dir, process(
            [sys.executable, "-m", "syncert", "sim", "--json", "--data-dir", data_dir],
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


@contextmanager
def wiremock_server(journal: bool = True) -> Iterator[dict[str, dict]]:
    port = free_port()
    jar = next((TOOLS / "node_modules" / "wiremock" / "build").glob("wiremock-standalone-*.jar"))
    journal_option = ["--max-request-journal-entries", "200000"] if journal else ["--no-request-journal"]
    with process(["java", "-jar", str(jar), "--port", str(port), "--bind-address", "127.0.0.1",
                  "--disable-banner", *journal_option]):
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/__admin/health")
        auth = {"Authorization": {"equalTo": f"Bearer {TOKEN}"}}
        stubs = [
            {"request": {"method": "GET", "url": f"{ACCOUNT_PATH}/0015g0000000001AAA", "headers": auth},
             "response": {"status": 200, "jsonBody": RECORD}},
            {"request": {"method": "POST", "url": f"{ACCOUNT_PATH}/", "headers": auth,
                         "bodyPatterns": [{"matchesJsonPath": "$.Name"}]},
             "response": {"status": 201, "jsonBody": {"id": "0015g0000000002AAA", "success": True, "errors": []}}},
        ]
        for stub in stubs:
            httpx.post(f"{base}/__admin/mappings", json=stub).raise_for_status()
        headers = {"Authorization": f"Bearer {TOKEN}"}
        yield {"get": {"url": f"{base}{ACCOUNT_PATH}/0015g0000000001AAA", "headers": headers},
               "create": {"url": f"{base}{ACCOUNT_PATH}/", "headers": headers}}


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
def mountebank_server() -> Iterator[dict[str, dict]]:
    admin_port, port = free_port(), free_port()
    with process([str(TOOLS / "node_modules" / ".bin" / "mb"), "--port", str(admin_port), "--host", "127.0.0.1",
                  "--allowInjection", "--loglevel", "error", "--nologfile"]):
        wait_for(f"http://127.0.0.1:{admin_port}/imposters")
        auth = {"Authorization": f"Bearer {TOKEN}"}
        imposter = {"port": port, "protocol": "http", "host": "127.0.0.1", "recordRequests": True, "stubs": [
            {"predicates": [{"equals": {"method": "GET", "path": f"{ACCOUNT_PATH}/0015g0000000001AAA",
                                        "headers": auth}}],
             "responses": [{"is": {"statusCode": 200, "headers": {"Content-Type": "application/json"},
                                   "body": json.dumps(RECORD)}}]},
            {"predicates": [{"equals": {"method": "POST", "path": f"{ACCOUNT_PATH}/", "headers": auth}}],
             "responses": [{"inject": MOUNTEBANK_CREATE}]},
        ]}
        httpx.post(f"http://127.0.0.1:{admin_port}/imposters", json=imposter).raise_for_status()
        base = f"http://127.0.0.1:{port}"
        yield {"get": {"url": f"{base}{ACCOUNT_PATH}/0015g0000000001AAA", "headers": auth},
               "create": {"url": f"{base}{ACCOUNT_PATH}/", "headers": auth}}


def run_wrk(target: dict, workload: str, duration_s: int, connections: int) -> float:
    """Requests per second; raises if any answer was not the expected success."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        if workload == "create":
            script.write('wrk.method = "POST"\nwrk.body = \'{"Name": "Bench Account", "BillingCity": "Lyon"}\'\n'
                         'wrk.headers["Content-Type"] = "application/json"\n')
    command = [*PINNING["load"], "wrk", "-t1", f"-c{connections}", f"-d{duration_s}s", "-s", script.name]
    for name, value in target["headers"].items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, target["url"]], capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    failures = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: .*", output)
    if failures or errors:
        raise RuntimeError(f"{target['url']} answered errors under load:\n{output}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]


SERVERS = {"syncert": syncert_server, "wiremock": wiremock_server, "mountebank": mountebank_server,
           # context only: WireMock without its request journal does not meet the workloads' definition
           "wiremock-unjournaled": lambda: wiremock_server(journal=False)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=8, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per server")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--no-pin", action="store_true", help="let servers and wrk use any core")
    args = parser.parse_args()
    if args.no_pin:
        PINNING.update(server=[], load=[])
    ensure_tools()
    samples: dict[str, dict[str, list[float]]] = {s: {"get": [], "create": []} for s in SERVERS}
    for round_number in range(1, args.rounds + 1):
        for server, start in SERVERS.items():
            with start() as targets:
                for workload in ("get", "create"):
                    run_wrk(targets[workload], workload, 3, args.connections)  # warm-up (JIT, caches)
                    rate = run_wrk(targets[workload], workload, args.duration, args.connections)
                    samples[server][workload].append(rate)
                    print(f"round {round_number} {server:20} {workload:6} {rate:10.0f} req/s", flush=True)
    medians = {s: {w: statistics.median(v) for w, v in by.items()} for s, by in samples.items()}
    ratios = {"get_vs_wiremock": medians["syncert"]["get"] / medians["wiremock"]["get"],
              "create_vs_mountebank": medians["syncert"]["create"] / medians["mountebank"]["create"],
              "get_vs_mountebank": medians["syncert"]["get"] / medians["mountebank"]["get"],
              "create_vs_wiremock_stub": medians["syncert"]["create"] / medians["wiremock"]["create"],
              "get_vs_wiremock_unjournaled": medians["syncert"]["get"] / medians["wiremock-unjournaled"]["get"]}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"throughput{'-unpinned' if args.no_pin else ''}.json").write_text(json.dumps(
        {"settings": vars(args), "samples": samples, "medians": medians, "ratios": ratios,
         "versions": {"wiremock": WIREMOCK_VERSION, "mountebank": MOUNTEBANK_VERSION}}, indent=2))
    print("\nmedian req/s              get    create")
    for server, values in medians.items():
        print(f"{server:20} {values['get']:8.0f} {values['create']:9.0f}")
    for name, value in ratios.items():
        print(f"{name:26} {value:5.2f}x")


if __name__ == "__main__":
    main()
