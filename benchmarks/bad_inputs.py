"""Inputs that used to break the simulators: each must get a 4xx in the vendor's shape, or its rows for the
valid LIKE query, within 1 s, while the other simulator keeps answering.

For every case the script sends the request to one simulator while a thread polls the other simulator's
health route every 20 ms; it prints the answer's status and error code, the time it took, and the longest
wait of the other simulator during it. Also: the memory growth of 40 unauthenticated 9 MiB POSTs.

Run: python benchmarks/bad_inputs.py   (results: benchmarks/results/bad_inputs.json and stdout)
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from syncert.simulators.host import SimulatorHost, run_in_background

RESULTS = Path(__file__).resolve().parent / "results"
LONG_NAME = "a" * 255


class Poller:
    """Polls a health route until stopped; keeps the longest time one poll took."""

    def __init__(self, url: str):
        self.url, self.longest_s, self.polls = url, 0.0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                client.get(self.url)
                self.longest_s = max(self.longest_s, time.perf_counter() - started)
                self.polls += 1
                self._stop.wait(0.02)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()


def _tokens(host: SimulatorHost) -> tuple[str, str]:
    env = host.environment()
    crm = httpx.post(f"{host.url('crm')}/services/oauth2/token", data={"grant_type": "client_credentials"},
                     auth=(env["SYNCERT_CRM_CLIENT_ID"], env["SYNCERT_CRM_CLIENT_SECRET"])).json()["access_token"]
    erp = httpx.post(f"{host.url('erp')}/services/rest/auth/oauth2/v1/token", data={"grant_type": "client_credentials"},
                     auth=(env["SYNCERT_ERP_CONSUMER_KEY"], env["SYNCERT_ERP_CONSUMER_SECRET"])).json()["access_token"]
    return crm, erp


def _raw_get(base_url: str, path: str) -> httpx.Response:
    """A GET sent over a plain socket (HTTP clients refuse URLs this long)."""
    address = urlsplit(base_url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as connection:
        connection.sendall(f"GET {path} HTTP/1.1\r\nHost: {address.netloc}\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return httpx.Response(int(head.split()[1]), content=body)


def _error_code(side: str, response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "(not JSON)"
    if side == "crm":
        return body[0]["errorCode"] if isinstance(body, list) and body else "(rows)"
    details = body.get("o:errorDetails") if isinstance(body, dict) else None
    return details[0]["o:errorCode"] if details else "(rows)"


def cases(host: SimulatorHost) -> list[tuple[str, str, Callable[[httpx.Client], httpx.Response]]]:
    crm_token, erp_token = _tokens(host)
    crm, erp = f"{host.url('crm')}/services/data/v59.0", f"{host.url('erp')}/services/rest"
    sf = {"Authorization": f"Bearer {crm_token}"}
    ns = {"Authorization": f"Bearer {erp_token}", "Prefer": "transient"}
    many_or = " OR ".join(f"companyname = 'n{n}'" for n in range(2_000))
    nested = "(" * 5_000 + "id = 1" + ")" * 5_000
    return [
        ("SOQL LIKE '%a%a%a%a%a%a%a%b' on a 255-char name", "crm", lambda c: c.get(
            f"{crm}/query", headers=sf, params={"q": "SELECT Id FROM Account WHERE Name LIKE '%a%a%a%a%a%a%a%b'"})),
        ("SOQL LIKE '%a%a%a%a%a%a%a%' on a 255-char name (valid: 1 row)", "crm", lambda c: c.get(
            f"{crm}/query", headers=sf, params={"q": "SELECT Id FROM Account WHERE Name LIKE '%a%a%a%a%a%a%a%'"})),
        ("q=companyName AFTER \"1/1/2024\"", "erp", lambda c: c.get(
            f"{erp}/record/v1/customer", headers=ns, params={"q": 'companyName AFTER "1/1/2024"'})),
        ("SuiteQL with 2,000 OR terms", "erp", lambda c: c.post(
            f"{erp}/query/v1/suiteql", headers=ns, json={"q": f"SELECT id FROM customer WHERE {many_or}"})),
        ("SuiteQL with 5,000 nested parentheses", "erp", lambda c: c.post(
            f"{erp}/query/v1/suiteql", headers=ns, json={"q": f"SELECT id FROM customer WHERE {nested}"})),
        ("Account with a 100,000-digit integer", "crm", lambda c: c.post(
            f"{crm}/sobjects/Account", headers={**sf, "Content-Type": "application/json"},
            content=b'{"Name": "x", "NumberOfEmployees": ' + b"9" * 100_000 + b"}")),
        ("customer creditLimit 1e999999", "erp", lambda c: c.post(
            f"{erp}/record/v1/customer", headers={**ns, "Content-Type": "application/json"},
            content=b'{"companyName": "x", "creditLimit": 1e999999}')),
        ("URL of 300,000 characters", "crm", lambda c: _raw_get(host.url("crm"), "/services/data/v59.0/sobjects/"
                                                                + "a" * 300_000)),
        ("body nested 100,000 deep", "crm", lambda c: c.post(
            f"{crm}/sobjects/Account", headers={**sf, "Content-Type": "application/json"},
            content=b"[" * 100_000 + b"]" * 100_000)),
    ]


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


def main() -> None:
    results: dict[str, Any] = {"cases": []}
    with run_in_background(memory=True) as host:
        admin = {"Authorization": f"Bearer {host.admin_token}"}
        httpx.post(f"{host.url('crm')}/_sim/seed", headers=admin,
                   json={"records": {"account": [{"name": LONG_NAME}]}}).raise_for_status()
        with httpx.Client(timeout=60) as client:
            for label, side, send in cases(host):
                other = "erp" if side == "crm" else "crm"
                with Poller(f"{host.url(other)}/_sim/health") as poller:
                    started = time.perf_counter()
                    response = send(client)
                    elapsed = time.perf_counter() - started
                row = {"case": label, "side": side, "status": response.status_code,
                       "error_code": _error_code(side, response), "seconds": round(elapsed, 3),
                       "other_side_longest_wait_s": round(poller.longest_s, 3), "other_side_polls": poller.polls}
                results["cases"].append(row)
                print(f"{label:60} {side} {row['status']} {row['error_code']:28} {elapsed:7.3f}s  "
                      f"other side: {poller.polls} polls, longest {poller.longest_s:.3f}s")
            body = b'{"Name": "' + b"x" * (9 * 1024 * 1024) + b'"}'
            url = f"{host.url('crm')}/services/data/v59.0/sobjects/Account"
            client.post(url, content=body)
            before = _rss_mb()
            statuses = {client.post(url, content=body).status_code for _ in range(40)}
            growth = _rss_mb() - before
    results["unauthenticated_9mib_posts"] = {"count": 40, "statuses": sorted(statuses),
                                             "rss_growth_mb": round(growth, 1)}
    print(f"40 unauthenticated 9 MiB POSTs: statuses {sorted(statuses)}, process grew {growth:.1f} MB")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bad_inputs.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
