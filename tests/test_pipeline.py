"""The stage pipeline, the connection guards and the inputs that used to break the simulators."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.responses import Response

from syncert.simulators import connections
from syncert.simulators.host import run_in_background
from syncert.simulators.http import ApiRequest, json_response
from syncert.simulators.simulator import build_simulator
from syncert.simulators.stages.base import ControlHandler, Exchange, NextStage, Stage
from syncert.simulators.stages.control_plane import ControlPlaneStage
from syncert.simulators.stages.journal import Journal, JournalEntry
from syncert.simulators.stages.pipeline import SimulatorApp, standard_stages
from tests.conftest import Sims


class _Maintenance(Stage):
    """A test stage: answers every API request 503 while on, with its own route and reset."""

    name = "maintenance"

    def __init__(self) -> None:
        self.on = False
        self.resets = 0

    async def handle(self, exchange: Exchange, call_next: NextStage) -> Response | None:
        if self.on and exchange.api:
            exchange.tags.add("throttled")
            return json_response({"down": True}, 503)
        return await call_next(exchange)

    def reset(self) -> None:
        self.resets += 1
        self.on = False

    def control_routes(self) -> dict[str, ControlHandler]:
        async def switch(request: ApiRequest) -> Response:
            self.on = True
            return json_response({"on": True})
        return {"POST maintenance": switch}


def _call(app: SimulatorApp, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """Run one request through the ASGI app in-process."""
    sent: list[dict] = []
    scope = {"type": "http", "method": method, "path": path, "query_string": b"", "scheme": "http",
             "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]}

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_a_stage_plugs_in_with_its_route_its_reset_and_its_tags() -> None:
    simulator = build_simulator("crm", "salesforce", None, admin_token="admin")
    stages = standard_stages(simulator)
    maintenance = _Maintenance()
    dialect_index = next(i for i, s in enumerate(stages) if s.name == "dialect")
    stages.insert(dialect_index, maintenance)
    control = next(s for s in stages if isinstance(s, ControlPlaneStage))
    stages[stages.index(control)] = ControlPlaneStage(simulator, [s for s in stages if s is not control])
    app = SimulatorApp(simulator, stages)
    admin = {"Authorization": "Bearer admin"}
    token = simulator.dialect.tokens.issue(60)
    api = {"Authorization": f"Bearer {token}"}
    assert _call(app, "GET", "/services/data/v59.0/limits", api)[0] == 200
    assert _call(app, "POST", "/_sim/maintenance", admin)[0] == 200
    assert _call(app, "GET", "/services/data/v59.0/limits", api)[0] == 503
    entries = simulator.journal.select()
    assert [e.status for e in entries] == [200, 503] and "throttled" in entries[1].tags
    assert _call(app, "POST", "/_sim/reset", admin)[0] == 200
    assert maintenance.resets == 1 and not maintenance.on and not simulator.journal.select()


def test_two_stages_cannot_serve_the_same_route() -> None:
    simulator = build_simulator("erp", "netsuite", None, admin_token="admin")
    with pytest.raises(ValueError, match="served twice"):
        ControlPlaneStage(simulator, [_Maintenance(), _Maintenance()])


def test_one_simulator_answers_while_the_other_is_blocked(sims: Sims) -> None:
    crm_loop = sims.host.sides["crm"].thread.loop
    released = threading.Event()
    crm_loop.call_soon_threadsafe(lambda: released.wait(20))  # the CRM's event loop is stuck until released
    try:
        with sims.admin("erp") as erp:
            assert erp.get("/_sim/health").status_code == 200
        answered_while_blocked = not released.is_set()
    finally:
        released.set()
    assert answered_while_blocked


def test_tokens_expire_on_the_simulated_clock(sims: Sims) -> None:
    token = sims.salesforce_token()
    url = f"{sims.plain_url('crm')}/services/data/v59.0/limits"
    assert httpx.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    with sims.admin("crm") as admin:
        assert admin.put("/_sim/clock", json={"offset_s": 3601}).status_code == 200
    expired = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
    assert expired.status_code == 401 and expired.json()[0]["errorCode"] == "INVALID_SESSION_ID"


def test_numbers_beyond_any_field_answer_400_in_the_vendor_shape(sims: Sims) -> None:
    with sims.crm() as crm:
        response = crm.post("/sobjects/Account/", content=b'{"Name": "x", "NumberOfEmployees": ' + b"9" * 100_000
                            + b"}", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()[0]["errorCode"] == "JSON_PARSER_ERROR"
    with sims.erp() as erp:
        response = erp.post("/record/v1/customer", content=b'{"companyName": "x", "creditLimit": 1.' + b"5" * 5000
                            + b"}", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_CONTENT"


def test_unknown_routes_answer_404_in_the_vendor_shape(sims: Sims) -> None:
    response = httpx.get(f"{sims.plain_url('crm')}/nothing/here")
    assert response.status_code == 404 and response.json()[0]["errorCode"] == "NOT_FOUND"
    response = httpx.get(f"{sims.plain_url('erp')}/nothing/here")
    assert response.status_code == 404 and response.json()["status"] == 404


def _raw(url: str, payload: bytes) -> bytes:
    address = urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        connection.sendall(payload)
        return connection.recv(4096)


def test_malformed_and_oversized_requests_answer_400_in_the_vendor_shape(sims: Sims) -> None:
    huge_url = b"GET /services/data/v59.0/" + b"a" * 300_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    for payload in (huge_url, b"NOT HTTP AT ALL\r\n\r\n"):
        answer = _raw(sims.plain_url("crm"), payload)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400") and b'"errorCode":"INVALID_REQUEST"' in body
    head, _, body = _raw(sims.plain_url("erp"), b"NOT HTTP AT ALL\r\n\r\n").partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b'"o:errorDetails"' in body


def test_deeply_nested_bodies_leave_the_journal_readable(sims: Sims) -> None:
    nested = b"[" * 100_000 + b"]" * 100_000
    with sims.crm() as crm:
        assert crm.post("/sobjects/Account/", content=nested, headers={"Content-Type": "application/json"}
                        ).status_code == 400
    httpx.post(f"{sims.plain_url('erp')}/services/rest/record/v1/customer", content=nested,
               headers={"Content-Type": "application/json"})
    for side in ("crm", "erp"):
        with sims.admin(side) as admin:
            assert admin.get("/_sim/journal").status_code == 200


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def test_unauthenticated_large_posts_do_not_grow_memory(sims: Sims) -> None:
    body = b'{"Name": "' + b"x" * (9 * 1024 * 1024) + b'"}'
    url = f"{sims.plain_url('crm')}/services/data/v59.0/sobjects/Account/"
    with httpx.Client(timeout=30) as client:
        client.post(url, content=body)
        before = _rss_bytes()
        statuses = {client.post(url, content=body, headers={"Content-Type": "application/json"}).status_code
                    for _ in range(40)}
    assert statuses == {401}
    assert _rss_bytes() - before < 50 * 1024 * 1024


@pytest.fixture
def guarded_host(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(connections, "HEADER_TIMEOUT_S", 0.5)
    monkeypatch.setattr(connections, "MAX_CONNECTIONS", 5)
    with run_in_background(memory=True) as host:
        yield host


def test_slow_headers_are_cut_and_the_slowest_make_room(guarded_host) -> None:
    address = urlsplit(guarded_host.url("erp"))
    slow = [socket.create_connection((address.hostname, address.port), timeout=10) for _ in range(5)]
    for connection in slow:
        connection.sendall(b"GET /services/rest/record/v1/customer HTTP/1.1\r\nHost: x\r\n")  # never finished
    time.sleep(0.1)
    response = httpx.get(f"{guarded_host.url('erp')}/_sim/health", timeout=5)  # a sixth connection gets in
    assert response.status_code == 200
    answers = [connection.recv(4096) for connection in slow]
    assert all(answer.startswith(b"HTTP/1.1 408") and b'"o:errorDetails"' in answer for answer in answers)
    for connection in slow:
        connection.close()


def test_a_refused_signed_request_keeps_no_body(sims: Sims) -> None:
    response = httpx.post(f"{sims.plain_url('erp')}/services/rest/record/v1/customer",
                          headers={"Authorization": 'OAuth realm="x", oauth_signature="bad"'},
                          json={"companyName": "MARKER"})
    assert response.status_code == 401
    [entry] = sims.host.sides["erp"].simulator.journal.select()
    assert entry.tags == ("auth",) and entry.raw_request_body == b""


def test_the_journal_counts_headers_in_its_byte_budget() -> None:
    journal = Journal(bytes_limit=100_000)
    headers = tuple((b"x-filler-%d" % n, b"y" * 7_000) for n in range(8))
    for seq in range(1, 11):
        journal.add(JournalEntry(seq, "GET", "/p", ("auth",), None, None, None, b"", 401, 0.0, 0.0, 0, headers,
                                 b"", (), b""))
    assert journal.dropped == 9 and journal.bytes_kept <= 100_000


def test_journal_and_state_pages_refuse_a_limit_that_would_never_advance(sims: Sims) -> None:
    with sims.admin("crm") as admin:
        for route in ("/_sim/journal", "/_sim/state"):
            for limit in (0, -5, 10**6):
                assert admin.get(route, params={"limit": limit}).status_code == 400, (route, limit)


def test_a_state_cursor_from_before_a_reset_is_refused(sims: Sims) -> None:
    sims.seed("crm", {"account": [{"name": f"Before {n}"} for n in range(3)]})
    with sims.admin("crm") as admin:
        page = admin.get("/_sim/state").json()
        assert admin.post("/_sim/reset").status_code == 200
        stale = admin.get("/_sim/state", params={"since": page["next"], "epoch": page["epoch"]})
        assert stale.status_code == 409 and stale.json()["error"]["code"] == "STALE_CURSOR"


def test_the_clock_refuses_offsets_beyond_a_century(sims: Sims) -> None:
    with sims.admin("crm") as admin:
        for offset in (1e300, -1e12):
            assert admin.put("/_sim/clock", json={"offset_s": offset}).status_code == 400
        assert admin.get("/_sim/clock").status_code == 200


def test_runaway_soql_date_literals_and_joins_answer_400(sims: Sims) -> None:
    with sims.crm() as crm:
        for literal in ("LAST_N_DAYS:99999999999", "NEXT_N_DAYS:3000000", "LAST_N_DAYS:1000000000"):
            response = crm.get("/query", params={"q": f"SELECT Id FROM Account WHERE CreatedDate = {literal}"})
            assert response.status_code == 400 and response.json()[0]["errorCode"] == "MALFORMED_QUERY", literal
    sims.seed("erp", {"customer": [{"name": f"Cross {n}"} for n in range(1_100)]})
    with sims.erp() as erp:
        response = erp.post("/query/v1/suiteql", headers={"Prefer": "transient"},
                            json={"q": "SELECT COUNT(*) FROM customer a JOIN customer b ON 1 = 1"})
    assert response.status_code == 400 and "row combinations" in response.text


def test_idle_keep_alive_connections_make_room_too(guarded_host) -> None:
    address = urlsplit(guarded_host.url("crm"))
    idle = []
    for _ in range(5):
        connection = socket.create_connection((address.hostname, address.port), timeout=10)
        connection.sendall(b"GET /_sim/health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert connection.recv(4096).startswith(b"HTTP/1.1 200")
        idle.append(connection)
    try:
        response = httpx.get(f"{guarded_host.url('crm')}/_sim/health", timeout=5)
        assert response.status_code == 200
    finally:
        for connection in idle:
            connection.close()


def test_an_empty_or_unprintable_external_id_is_refused(sims: Sims) -> None:
    with sims.erp() as erp:
        for key in ("eid:", "eid:%00%ff", "eid:%20"):
            response = erp.put(f"/record/v1/customer/{key}", json={"companyName": "Odd"})
            assert response.status_code == 400, key
            assert response.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_PARAMETER"
    assert not sims.state("erp")["customer"]
