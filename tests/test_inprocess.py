"""The in-process unit mode (syncert.harness.inprocess): vendor hostnames served by simulators in this process."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from netsuite import Config, NetSuiteRestApi, TokenAuth
from simple_salesforce import Salesforce

from syncert.harness.catalogue import list_scenarios
from syncert.harness.inprocess import (
    InProcessVendors,
    UnroutedRequest,
    netsuite_host,
    salesforce_host,
    simulated_vendors,
)


@pytest.fixture
def vendors() -> Iterator[InProcessVendors]:
    with simulated_vendors(org="acme", account="1234567_SB1") as simulated:
        yield simulated


def salesforce_token(env: dict[str, str], host: str = "login.salesforce.com") -> dict[str, Any]:
    response = httpx.post(f"https://{host}/services/oauth2/token", data={"grant_type": "client_credentials"},
                          auth=(env["SYNCERT_CRM_CLIENT_ID"], env["SYNCERT_CRM_CLIENT_SECRET"]))
    assert response.status_code == 200, response.text
    return response.json()


def test_hostnames_and_environment(vendors: InProcessVendors) -> None:
    assert salesforce_host("Acme-Corp") == "acme-corp.my.salesforce.com"
    assert netsuite_host("1234567_SB1") == "1234567-sb1.suitetalk.api.netsuite.com"
    env = vendors.environment
    assert env["SYNCERT_CRM_URL"] == "https://acme.my.salesforce.com"
    assert env["SYNCERT_ERP_URL"] == "https://1234567-sb1.suitetalk.api.netsuite.com"
    assert env["SYNCERT_ERP_ACCOUNT"] == "1234567_SB1"
    assert {"SYNCERT_CRM_CLIENT_SECRET", "SYNCERT_ERP_TOKEN_SECRET", "SYNCERT_STATE_DIR",
            "SYNCERT_DEAD_LETTER"} <= set(env)
    assert vendors.admin_token not in env.values() and "SYNCERT_ADMIN_TOKEN" not in env
    for bad in ({"org": "acme.evil.com"}, {"account": "1234567/x"}):
        with pytest.raises(ValueError), simulated_vendors(**bad):
            pass


def test_sync_and_async_clients_reach_the_simulators(vendors: InProcessVendors) -> None:
    env = vendors.environment
    for login_host in ("login.salesforce.com", "test.salesforce.com", "acme.my.salesforce.com"):
        assert salesforce_token(env, login_host)["instance_url"] == "https://acme.my.salesforce.com"
    headers = {"Authorization": f"Bearer {salesforce_token(env)['access_token']}"}
    with httpx.Client(base_url=f"{env['SYNCERT_CRM_URL']}/services/data/v59.0", headers=headers) as client:
        created = client.post("/sobjects/Account/", json={"Name": "Sync Co"})
        assert created.status_code == 201, created.text
        assert client.get(f"/sobjects/Account/{created.json()['id']}").json()["Name"] == "Sync Co"

    vendors.set_latency("crm", 200)

    async def concurrently() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=f"{env['SYNCERT_CRM_URL']}/services/data/v59.0",
                                     headers=headers) as client:
            return await asyncio.gather(*(client.post("/sobjects/Account/", json={"Name": f"Async {n}"})
                                          for n in range(4)))

    assert [r.status_code for r in asyncio.run(concurrently())] == [201] * 4
    creates = [e for e in vendors.journal("crm") if e["operation"] == "create"]
    assert max(e["in_flight"] for e in creates) >= 2, "async requests were not served concurrently"
    assert sorted(a["name"] for a in vendors.state("crm")["account"]) == [
        "Async 0", "Async 1", "Async 2", "Async 3", "Sync Co"]


def test_other_hosts_are_refused_and_never_sent(vendors: InProcessVendors) -> None:
    refused = ["https://example.com/", "http://acme.my.salesforce.com/services/data",
               "https://other.my.salesforce.com/services/data", "https://login.salesforce.com/services/data"]
    for url in refused:
        with pytest.raises(UnroutedRequest, match=r"is not served here and was not sent.*acme\.my\.salesforce\.com"):
            httpx.get(url)

    async def async_get() -> None:
        async with httpx.AsyncClient() as client:
            await client.get("https://api.example.com/v1")

    with pytest.raises(UnroutedRequest, match=r"api\.example\.com"):
        asyncio.run(async_get())
    assert not vendors.router.calls  # nothing was routed, nor sent anywhere


def test_a_slow_answer_is_a_read_timeout(vendors: InProcessVendors) -> None:
    vendors.set_latency("erp", 2_000)
    url = f"{vendors.environment['SYNCERT_ERP_URL']}/services/rest/record/v1/customer"
    client = vendors.environment["SYNCERT_ERP_CONSUMER_KEY"], vendors.environment["SYNCERT_ERP_CONSUMER_SECRET"]
    bearer = httpx.post(f"{vendors.environment['SYNCERT_ERP_URL']}/services/rest/auth/oauth2/v1/token",
                        data={"grant_type": "client_credentials"}, auth=client).json()["access_token"]
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(url, headers={"Authorization": f"Bearer {bearer}"}, timeout=0.1)

    async def async_get() -> None:
        async with httpx.AsyncClient(timeout=0.1) as client:
            await client.get(url, headers={"Authorization": f"Bearer {bearer}"})

    with pytest.raises(httpx.ReadTimeout):
        asyncio.run(async_get())


def test_the_netsuite_package_signs_tba_over_the_vendor_url(vendors: InProcessVendors) -> None:
    env = vendors.environment
    api = NetSuiteRestApi(Config(account=env["SYNCERT_ERP_ACCOUNT"], auth=TokenAuth(
        consumer_key=env["SYNCERT_ERP_CONSUMER_KEY"], consumer_secret=env["SYNCERT_ERP_CONSUMER_SECRET"],
        token_id=env["SYNCERT_ERP_TOKEN_ID"], token_secret=env["SYNCERT_ERP_TOKEN_SECRET"])))

    async def scenario() -> tuple[dict, dict]:
        await api.put("/record/v1/customer/eid:C-1", json={"companyName": "Initech"})
        customer = await api.get("/record/v1/customer/eid:C-1")
        rows = await api.suiteql("SELECT id, companyname FROM customer")
        return customer, rows

    customer, rows = asyncio.run(scenario())
    assert customer["companyName"] == "Initech"
    assert customer["links"][0]["href"].startswith("https://1234567-sb1.suitetalk.api.netsuite.com/services/rest/")
    assert rows["items"][0]["companyname"] == "Initech"
    assert [str(call.request.url.host) for call in vendors.router.calls] == [netsuite_host("1234567_SB1")] * 3


def test_simple_salesforce_through_a_requests_session(vendors: InProcessVendors) -> None:
    session = vendors.requests_session()
    token = salesforce_token(vendors.environment)
    sf = Salesforce(instance_url=token["instance_url"], session_id=token["access_token"], session=session,
                    version="59.0")
    created = sf.Account.create({"Name": "Requests Co"})
    assert sf.query("SELECT Name FROM Account")["records"][0]["Name"] == "Requests Co"
    assert vendors.state("crm")["account"][0]["id"] == created["id"]
    with pytest.raises(UnroutedRequest, match=r"example\.com"):
        session.get("https://example.com/")


def test_no_socket_and_no_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the in-process mode touched the network or started a process")

    for name in ("connect", "connect_ex", "bind", "listen"):
        monkeypatch.setattr(socket.socket, name, forbidden)
    monkeypatch.setattr(socket, "getaddrinfo", forbidden)
    monkeypatch.setattr(subprocess.Popen, "__init__", forbidden)
    monkeypatch.setattr(os, "fork", forbidden)
    with pytest.raises(AssertionError, match="touched the network"):  # the guard itself works
        socket.create_connection(("127.0.0.1", 9))

    with simulated_vendors() as vendors:
        vendors.seed("crm", {"account": [{"name": "Offline Co"}]})
        env = vendors.environment
        token = salesforce_token(env)["access_token"]  # a sync client

        async def query() -> httpx.Response:
            async with httpx.AsyncClient() as client:
                return await client.get(f"{env['SYNCERT_CRM_URL']}/services/data/v59.0/query",
                                        params={"q": "SELECT Name FROM Account"},
                                        headers={"Authorization": f"Bearer {token}"})

        assert asyncio.run(query()).json()["records"][0]["Name"] == "Offline Co"
        assert vendors.state("crm")["account"][0]["name"] == "Offline Co"


NO_NETWORK_PLUGIN = '''
import os, socket, subprocess

def _refuse(*args, **kwargs):
    raise AssertionError("a socket or a process was used in an in-process run")

socket.socket.connect = socket.socket.bind = socket.socket.listen = _refuse
socket.getaddrinfo = _refuse
subprocess.Popen.__init__ = _refuse
os.fork = _refuse
'''


def test_unit_scenarios_run_in_process_without_sockets_or_processes(tmp_path: Path) -> None:
    (tmp_path / "no_network.py").write_text(NO_NETWORK_PLUGIN)
    root = Path(__file__).resolve().parent.parent
    finished = subprocess.run(
        [sys.executable, "-m", "pytest", "scenarios/unit", "-q", "-p", "no:cacheprovider", "-p", "no_network",
         "--connector", "connectors/reference/connector-python.toml", "--syncert-in-process"],
        capture_output=True, text=True, timeout=300, cwd=root,
        env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"})
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-2000:]
    unit = sum(1 for entry in list_scenarios() if entry["category"] == "unit")
    assert f"{unit} passed" in finished.stdout


def test_in_process_runs_refuse_a_connector_that_is_not_python(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    finished = subprocess.run(
        [sys.executable, "-m", "pytest", "scenarios/unit", "-q", "-p", "no:cacheprovider",
         "--connector", "connectors/reference/connector.toml", "--syncert-in-process"],
        capture_output=True, text=True, timeout=300, cwd=root)
    assert finished.returncode != 0 and "runs python-mode connectors" in finished.stdout + finished.stderr
