"""The `netsuite` package, unchanged except for its URL, against the simulated NetSuite (OAuth 1.0a TBA)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from netsuite import Config, NetSuiteRestApi, TokenAuth
from netsuite.exceptions import NetsuiteAPIRequestError

from tests.conftest import Sims


class SimulatedNetSuite(NetSuiteRestApi):
    """The real client; only the URL points at the simulator."""

    def __init__(self, config: Config, base_url: str):
        super().__init__(config)
        self._base_url = base_url

    def _make_url(self, subpath: str) -> str:
        return f"{self._base_url}/services/rest{subpath}"


def _client(sims: Sims, **overrides: str) -> SimulatedNetSuite:
    env = sims.env
    auth = {"consumer_key": env["SYNCERT_ERP_CONSUMER_KEY"], "consumer_secret": env["SYNCERT_ERP_CONSUMER_SECRET"],
            "token_id": env["SYNCERT_ERP_TOKEN_ID"], "token_secret": env["SYNCERT_ERP_TOKEN_SECRET"], **overrides}
    config = Config(account=env["SYNCERT_ERP_ACCOUNT"], auth=TokenAuth(**auth))
    return SimulatedNetSuite(config, sims.plain_url("erp"))


def test_create_read_upsert_and_list_with_paging(sims: Sims) -> None:
    api = _client(sims)

    async def scenario() -> None:
        assert await api.post("/record/v1/customer", json={"companyName": "Initech", "externalId": "CRM-1",
                                                           "creditLimit": 5000.5}) is None
        listing = await api.get("/record/v1/customer", params={"q": 'externalId IS "CRM-1"'})
        customer_id = listing["items"][0]["id"]
        customer = await api.get(f"/record/v1/customer/{customer_id}")
        assert customer["companyName"] == "Initech" and customer["creditLimit"] == 5000.5

        await api.put("/record/v1/customer/eid:CRM-2", json={"companyName": "Umbrella"})
        await api.put("/record/v1/customer/eid:CRM-2", json={"companyName": "Umbrella Corp"})
        assert (await api.get("/record/v1/customer/eid:CRM-2"))["companyName"] == "Umbrella Corp"

        for n in range(3, 28):
            await api.put(f"/record/v1/customer/eid:CRM-{n}", json={"companyName": f"Customer {n}"})
        seen, offset = [], 0
        while True:
            page = await api.get("/record/v1/customer", params={"limit": 10, "offset": offset})
            seen += [item["id"] for item in page["items"]]
            if not page["hasMore"]:
                break
            offset += 10
        assert len(seen) == len(set(seen)) == 27 and page["totalResults"] == 27

        rows = await api.suiteql("SELECT id, companyname FROM customer WHERE companyname LIKE 'Umbrella%'")
        assert [r["companyname"] for r in rows["items"]] == ["Umbrella Corp"]

    asyncio.run(scenario())
    assert len(sims.state("erp")["customer"]) == 27


def test_a_contact_of_a_customer_through_the_client(sims: Sims) -> None:
    api = _client(sims)

    async def scenario() -> None:
        await api.put("/record/v1/customer/eid:CRM-1", json={"companyName": "Initech"})
        await api.put("/record/v1/contact/eid:CRM-C1", json={"firstName": "Peter", "lastName": "Gibbons",
                                                             "company": {"externalId": "CRM-1"}})
        await api.patch("/record/v1/contact/eid:CRM-C1", json={"title": "Programmer"})
        contact = await api.get("/record/v1/contact/eid:CRM-C1")
        assert (contact["lastName"], contact["title"]) == ("Gibbons", "Programmer")
        rows = await api.suiteql("SELECT BUILTIN.DF(company) AS company FROM contact WHERE lastname = 'Gibbons'")
        assert [r["company"] for r in rows["items"]] == ["Initech"]
        with pytest.raises(NetsuiteAPIRequestError) as refused:
            await api.post("/record/v1/contact", json={"firstName": "Milton", "company": {"externalId": "CRM-1"}})
        assert refused.value.status_code == 400 and "lastName" in refused.value.response_text

    asyncio.run(scenario())


def test_wrong_signature_is_refused_with_invalid_login(sims: Sims) -> None:
    api = _client(sims, token_secret="0" * 64)
    with pytest.raises(NetsuiteAPIRequestError) as refused:
        asyncio.run(api.get("/record/v1/customer"))
    assert refused.value.status_code == 401
    body = json.loads(refused.value.response_text)
    assert body["o:errorDetails"][0]["o:errorCode"] == "INVALID_LOGIN"
    assert "signature does not match" in body["o:errorDetails"][0]["detail"]


def test_expired_bearer_token_is_refused(sims: Sims) -> None:
    with sims.admin("erp") as admin:
        assert admin.put("/_sim/limits", json={"token_ttl_s": 0.2}).status_code == 200
    token = sims.netsuite_token()
    url = f"{sims.plain_url('erp')}/services/rest/record/v1/customer"
    assert httpx.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    asyncio.run(asyncio.sleep(0.3))
    refused = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401
    assert refused.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_LOGIN"


def test_replayed_nonce_is_refused(sims: Sims) -> None:
    api = _client(sims)
    request = httpx.Request("GET", f"{sims.plain_url('erp')}/services/rest/record/v1/customer")
    signed = next(api._make_auth().auth_flow(request))
    with httpx.Client() as client:
        assert client.send(signed).status_code == 200
        replay = client.send(signed)
    assert replay.status_code == 401 and "already used" in replay.text
