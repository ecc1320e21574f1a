"""The control plane: admin token, seeding with references, journal redaction and access tags, clock, TLS,
webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from syncert.harness.control import StateMirror
from syncert.simulators.stages.journal import BODY_LIMIT, BYTES_LIMIT, Journal, JournalEntry
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
    ids = sims.seed("erp", {"customer": [{"_ref": "acme", "name": "Acme"}],
                            "contact": [{"last_name": "Doe", "role": "Buyer", "customer_id": {"$ref": "acme"}}]})
    contact = sims.state("erp")["contact"][0]
    assert (contact["customer_id"], contact["role"]) == (ids["customer"][0], "Buyer")


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


def test_journal_tags_each_request_canonically(sims: Sims) -> None:
    with sims.crm() as crm:
        account_id = crm.post("/sobjects/Account/", json={"Name": "Tagged"}).json()["id"]
        crm.get("/query", params={"q": "SELECT Id FROM Account"})
        crm.get("/composite/sobjects/Account", params={"ids": account_id, "fields": "Name"})
        crm.patch(f"/sobjects/Account/{account_id}", json={"Name": "Tagged Again"})
        crm.patch("/sobjects/Account/001000000000000AAA", json={"Name": "Nobody"})
    with sims.erp() as erp:
        erp.post("/query/v1/suiteql", json={"q": "SELECT id FROM customer"}, headers={"Prefer": "transient"})
        erp.put("/record/v1/customer/eid:T-1", json={"companyName": "Tagged"})
    with sims.admin("crm") as crm_admin, sims.admin("erp") as erp_admin:
        crm_entries = crm_admin.get("/_sim/journal").json()["entries"]
        writes = crm_admin.get("/_sim/journal", params={"tag": "write"}).json()["entries"]
        assert crm_admin.get("/_sim/journal", params={"tag": "delete"}).status_code == 400
        erp_entries = erp_admin.get("/_sim/journal").json()["entries"]
    assert [(e["tags"], e["kind"], e["operation"]) for e in crm_entries] == [
        (["ok", "token"], None, "token"), (["ok", "write"], "account", "create"), (["ok", "read"], "account", "query"),
        (["ok", "read"], "account", "read"), (["ok", "write"], "account", "update"),
        (["refused", "write"], "account", "update")]
    assert [e["seq"] for e in writes] == [e["seq"] for e in crm_entries if "write" in e["tags"]]
    assert [(e["tags"], e["kind"], e["operation"]) for e in erp_entries] == [
        (["ok", "token"], None, "token"), (["ok", "read"], "customer", "query"),
        (["ok", "write"], "customer", "upsert")]


def test_journal_pages_with_a_cursor(sims: Sims) -> None:
    with sims.crm() as crm:
        for _ in range(7):
            crm.get("/limits")
    seen, since = [], 0
    with sims.admin("crm") as admin:
        while True:
            page = admin.get("/_sim/journal", params={"since": since, "limit": 3}).json()
            seen.extend(e["seq"] for e in page["entries"])
            if not page["more"]:
                break
            since = page["next"]
        everything = [e["seq"] for e in admin.get("/_sim/journal").json()["entries"]]
    assert len(seen) == 8 and seen == everything  # the token request and seven reads, each once and in order
    assert seen == list(range(seen[0], seen[0] + 8))


def test_dialects_classify_requests(sims: Sims) -> None:
    salesforce = sims.host.sides["crm"].simulator.dialect
    netsuite = sims.host.sides["erp"].simulator.dialect
    for method, path, expected in [
            ("POST", "/services/oauth2/token", ("token", None, "token")),
            ("GET", "/services/data", ("read", None, "versions")),
            ("GET", "/services/data/v59.0/queryAll", ("read", None, "query")),
            ("DELETE", "/services/data/v59.0/composite/sobjects", ("write", None, "delete")),
            ("PATCH", "/services/data/v59.0/sobjects/Account/Ext__c/1", ("write", "account", "upsert")),
            ("GET", "/services/data/v59.0/sobjects/Opportunity/updated", ("read", "opportunity", "changes"))]:
        assert salesforce.classify(method, path) == expected, (method, path)
    for method, path, expected in [
            ("POST", "/services/rest/auth/oauth2/v1/token/", ("token", None, "token")),
            ("POST", "/services/rest/query/v1/suiteql", ("read", None, "query")),
            ("POST", "/services/rest/record/v1/salesOrder/101/!transform/invoice",
             ("write", "sales_order", "transform")),
            ("DELETE", "/services/rest/record/v1/customer/101", ("write", "customer", "delete")),
            ("GET", "/services/rest/record/v1/customer", ("read", "customer", "query"))]:
        assert netsuite.classify(method, path) == expected, (method, path)


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


def test_the_journal_never_reads_the_body_of_an_unauthenticated_request(sims: Sims) -> None:
    body = b'{"Name": "' + b"x" * (9 * 1024 * 1024) + b'"}'
    response = httpx.post(f"{sims.plain_url('crm')}/services/data/v59.0/sobjects/Account/", content=body,
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 401
    [entry] = sims.host.sides["crm"].simulator.journal.select()
    assert entry.raw_request_body == b"" and entry.tags == ("auth",)


def test_the_journal_keeps_a_large_request_body_whole_for_conformance(sims: Sims) -> None:
    body = {"Name": "x" * 300, "Description": "y" * (200 * 1024)}
    with sims.crm() as crm:
        response = crm.post("/sobjects/Account/", json=body)
    assert response.status_code == 400
    entry = sims.host.sides["crm"].simulator.journal.select(tag="write")[-1]
    assert len(entry.raw_request_body) > 2 * BODY_LIMIT
    with sims.admin("crm") as admin:
        shown = admin.get("/_sim/journal", params={"tag": "write"}).json()["entries"][-1]
    assert json.loads(shown["request_body"]) == body


def test_the_journal_drops_its_oldest_entries_past_its_byte_budget() -> None:
    journal = Journal()
    body = b"x" * (BODY_LIMIT + 1)
    count = BYTES_LIMIT // len(body) + 10
    for seq in range(1, count + 1):
        journal.add(JournalEntry(seq, "POST", "/p", ("write",), None, None, None, b"", 200, 0.0, 0.0, 1, (), body,
                                 (), b""))
    kept_entries = journal.select()
    assert len(kept_entries) == BYTES_LIMIT // len(body) and journal.dropped == 10
    assert kept_entries[-1].seq == count


def test_state_pages_by_cursor_and_a_mirror_reads_only_changes(sims: Sims) -> None:
    ids = sims.seed("erp", {"customer": [{"name": f"Paged {n}"} for n in range(12_000)]})["customer"]
    mirror = StateMirror()
    with sims.admin("erp") as admin:
        pages = mirror.catch_up(lambda cursor: admin.get("/_sim/state", params=cursor).json())
        assert pages == 2 and [c["id"] for c in mirror.records()["customer"]] == ids
        assert admin.patch(f"/_sim/records/customer/{ids[5]}", json={"name": "Renamed"}).status_code == 200
        assert admin.delete(f"/_sim/records/customer/{ids[6]}").status_code == 200
        changes = admin.get("/_sim/state", params={"since": mirror.since}).json()
        assert [c["id"] for c in changes["records"]["customer"]] == [ids[5]]
        assert changes["deleted"]["customer"] == [ids[6]] and not changes["more"]
        mirror.apply(changes)
        assert admin.get("/_sim/state", params={"limit": 0}).status_code == 400
    customers = mirror.records()["customer"]
    assert len(customers) == 11_999 and customers[5]["name"] == "Renamed"
