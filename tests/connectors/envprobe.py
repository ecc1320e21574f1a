"""A connector that syncs nothing: each run notes what it was given and whether it could log in to the CRM.

Command mode: `python envprobe.py sync`. Service mode: `python envprobe.py serve` notes once at start, then
answers GET /health with 200; `serve-failing` answers 200 once, then 503 (a service that cannot sync).
Python mode: entrypoint `envprobe:Probe` notes at each sync(). Notes are JSON lines in
$SYNCERT_STATE_DIR/runs.jsonl: the process id, the CRM URL and client id, the CA bundle, and the outcome
of a CRM login ("ok", "refused" or "certificate refused").
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx


def _login() -> str:
    try:
        response = httpx.post(f"{os.environ['SYNCERT_CRM_URL']}/services/oauth2/token",
                              data={"grant_type": "client_credentials"}, timeout=10, trust_env=False,
                              auth=(os.environ["SYNCERT_CRM_CLIENT_ID"], os.environ["SYNCERT_CRM_CLIENT_SECRET"]),
                              verify=os.environ.get("SYNCERT_CA_BUNDLE") or True)
    except httpx.ConnectError as error:
        if "CERTIFICATE_VERIFY_FAILED" in str(error):
            return "certificate refused"
        raise
    return "ok" if response.status_code == 200 else "refused"


def note() -> None:
    run = {"pid": os.getpid(), "crm_url": os.environ["SYNCERT_CRM_URL"],
           "client_id": os.environ["SYNCERT_CRM_CLIENT_ID"], "ca_bundle": os.environ.get("SYNCERT_CA_BUNDLE"),
           "login": _login()}
    with (Path(os.environ["SYNCERT_STATE_DIR"]) / "runs.jsonl").open("a", encoding="utf-8") as runs:
        runs.write(json.dumps(run) + "\n")


class Probe:
    def sync(self) -> None:
        note()


class Health(BaseHTTPRequestHandler):
    answered = 0

    def do_GET(self) -> None:
        failing = sys.argv[1] == "serve-failing" and Health.answered > 0
        Health.answered += 1
        body = b'{"status": "failing", "reason": "certificate refused"}' if failing else b""
        self.send_response(503 if failing else 200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        """Quiet."""


if __name__ == "__main__":
    note()
    if sys.argv[1] in ("serve", "serve-failing"):
        print(f"probe serving as process {os.getpid()}", flush=True)
        HTTPServer(("127.0.0.1", int(os.environ["SYNCERT_LISTEN_PORT"])), Health).serve_forever()
