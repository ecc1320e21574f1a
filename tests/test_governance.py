"""Concurrency and rate limits, answered in each vendor's own way with Retry-After."""

from __future__ import annotations

import asyncio
import socket
import time
from urllib.parse import urlsplit

import httpx

from tests.conftest import Sims


async def _burst(url: str, headers: dict, count: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(headers=headers, timeout=30) as client:
        return await asyncio.gather(*(client.get(url) for _ in range(count)))


def test_netsuite_concurrency_limit_answers_429(sims: Sims) -> None:
    with sims.admin("erp") as admin:
        assert admin.put("/_sim/limits", json={"concurrency": 2}).status_code == 200
        assert admin.put("/_sim/latency", json={"latency_ms": 300}).status_code == 200
    token = sims.netsuite_token()
    responses = asyncio.run(_burst(f"{sims.plain_url('erp')}/services/rest/record/v1/customer",
                                   {"Authorization": f"Bearer {token}"}, 6))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 2 and statuses.count(429) == 4, statuses
    rejected = next(r for r in responses if r.status_code == 429)
    assert rejected.headers["Retry-After"] == "1"
    assert rejected.json()["o:errorDetails"][0]["o:errorCode"] == "CONCURRENCY_LIMIT_EXCEEDED"
    with sims.admin("erp") as admin:
        entries = admin.get("/_sim/journal", params={"path": "/record/v1/customer"}).json()["entries"]
    assert max(e["in_flight"] for e in entries) >= 3


def _held_open(url: str, request_head: str) -> socket.socket:
    """A connection whose request has its headers sent and its body not yet: the simulator is serving it."""
    address = urlsplit(url)
    connection = socket.create_connection((address.hostname, address.port))
    connection.sendall(f"{request_head}\r\nHost: {address.netloc}\r\nContent-Length: 100\r\n\r\n{{".encode())
    return connection


def test_control_plane_and_token_requests_do_not_count_as_in_flight(sims: Sims) -> None:
    with sims.admin("erp") as admin:
        assert admin.put("/_sim/limits", json={"concurrency": 1}).status_code == 200
    url = sims.plain_url("erp")
    held = [_held_open(url, f"GET /_sim/state HTTP/1.1\r\nAuthorization: Bearer {sims.host.admin_token}"),
            _held_open(url, "POST /services/rest/auth/oauth2/v1/token HTTP/1.1")]
    try:
        time.sleep(0.3)
        with sims.erp() as erp:
            assert erp.get("/record/v1/customer").status_code == 200
    finally:
        for connection in held:
            connection.close()
    with sims.admin("erp") as admin:
        entries = admin.get("/_sim/journal", params={"path": "/record/v1/customer"}).json()["entries"]
    assert [e["in_flight"] for e in entries] == [1]


def test_salesforce_rate_limit_answers_403_request_limit_exceeded(sims: Sims) -> None:
    with sims.admin("crm") as admin:
        assert admin.put("/_sim/limits", json={"rate_per_s": 2, "burst": 3}).status_code == 200
    with sims.crm() as crm:
        statuses = [crm.get("/limits").status_code for _ in range(6)]
        assert statuses[:3] == [200, 200, 200] and 403 in statuses[3:]
        refused = crm.get("/limits")
    assert refused.status_code == 403
    assert refused.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert int(refused.headers["Retry-After"]) >= 1


def test_salesforce_reports_api_usage(sims: Sims) -> None:
    with sims.crm() as crm:
        crm.get("/limits")
        response = crm.get("/limits")
    assert response.headers["Sforce-Limit-Info"] == "api-usage=2/100000"
    assert response.json()["DailyApiRequests"] == {"Max": 100000, "Remaining": 99998}


def test_bad_limits_are_refused(sims: Sims) -> None:
    with sims.admin("crm") as admin:
        response = admin.put("/_sim/limits", json={"concurency": 2})
    assert response.status_code == 400 and "concurency" in response.json()["error"]["message"]
