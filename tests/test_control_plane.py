"""The control plane: admin token, seeding with references, journal redaction, clock, TLS, webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from tests.conftest import Sims


def test_control_plane_needs_the_admin_token(sims: Sims) -> None:
    url = f"{sims.plain_url('crm')}/_sim/state"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": f"Bearer {sims.salesforce_token()}"}).status_code == 401
    assert httpx.get(f"{sims.plain_url('crm')}/_sim/health").json()["status"] == "ok"


def test_seed_resolves_references(sims: Sims) -> None:
    ids = sims.seed("crm", {"account": [{"_ref": "acme", "name": "Acme"}],
                            "contact": [{"last_name": "Doe", "account_id": {"$ref": "acme"}}]})
    contact = sims.state("crm")["contact"][0]
    assert contact["account_id"] == ids["account"][0]


def test_journal_records_requests_without_secrets(sims: Sims) -> None:
    token = sims.salesforce_token()
    with sims.crm() as crm:
        crm.post("/sobjects/Account/", json={"Name": "Journaled"})
    with sims.admin("crm") as admin:
        entries = admin.get("/_sim/journal").json()["entries"]
    text = json.dumps(entries)
    for secret in (token, sims.env["SYNCERT_CRM_CLIENT_SECRET"], sims.env["SYNCERT_CRM_CLIENT_ID"]):
        assert secret not in text
    create = next(e for e in entries if e["method"] == "POST" and e["path"].endswith("/Account/"))
    assert create["status"] == 201 and "Journaled" in create["request_body"]
    assert create["request_headers"]["authorization"] == "[REDACTED]"
    assert create["ended_at"] >= create["started_at"] and create["in_flight"] >= 1


def test_clock_offset_moves_timestamps(sims: Sims) -> None:
    with sims.admin("crm") as admin:
        now = admin.get("/_sim/clock").json()["now"]
        moved = admin.put("/_sim/clock", json={"offset_s": 86400 * 30}).json()["now"]
    assert moved[:10] > now[:10]
    sims.seed("crm", {"account": [{"name": "Future"}]})
    assert sims.state("crm")["account"][0]["created_at"][:10] == moved[:10]


def test_tls_switches_on_and_off(sims: Sims) -> None:
    with sims.admin("erp") as admin:
        status = admin.get("/_sim/tls").json()
        assert status["enabled"] is True and status["url"].startswith("https://")
        off = admin.put("/_sim/tls", json={"enabled": False}).json()
        assert off == {**status, "enabled": False, "url": None}
        on = admin.put("/_sim/tls", json={"enabled": True}).json()
    health = httpx.get(f"{on['url']}/_sim/health", verify=on["ca_bundle"])
    assert health.json()["dialect"] == "netsuite"


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict, bytes]] = []
    failures_left = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if _Receiver.failures_left > 0:
            _Receiver.failures_left -= 1
            self.send_response(503)
        else:
            _Receiver.received.append((dict(self.headers), body))
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_webhooks_are_signed_and_retried_until_delivered(sims: Sims) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.received, _Receiver.failures_left = [], 2
    try:
        with sims.admin("erp") as admin:
            subscription = admin.post("/_sim/webhooks", json={"url": f"http://127.0.0.1:{server.server_port}/hook",
                                                              "kinds": ["customer"]}).json()
        sims.seed("erp", {"customer": [{"name": "Hooked"}], "item": [{"sku": "NOT-SENT"}]})
        deadline = time.monotonic() + 10
        while not _Receiver.received and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.shutdown()
    assert len(_Receiver.received) == 1
    headers, body = _Receiver.received[0]
    event = json.loads(body)
    assert (event["kind"], event["object"], event["operation"]) == ("customer", "customer", "created")
    assert headers["X-Syncert-Attempt"] == "3"
    expected = hmac.new(subscription["secret"].encode(), headers["X-Syncert-Timestamp"].encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    assert headers["X-Syncert-Signature"] == f"sha256={expected}"
