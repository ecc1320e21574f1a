"""simple-salesforce, unchanged, against the simulated Salesforce over TLS with the run's CA."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)

from tests.conftest import Sims


@pytest.fixture
def sf(sims: Sims) -> Iterator[Salesforce]:
    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment overrides `verify`
    session.verify = sims.env["SYNCERT_CA_BUNDLE"]
    token = session.post(f"{sims.env['SYNCERT_CRM_URL']}/services/oauth2/token",
                         data={"grant_type": "password", "client_id": sims.env["SYNCERT_CRM_CLIENT_ID"],
                               "client_secret": sims.env["SYNCERT_CRM_CLIENT_SECRET"],
                               "username": sims.env["SYNCERT_CRM_USERNAME"],
                               "password": sims.env["SYNCERT_CRM_PASSWORD"]}).json()
    assert sims.env["SYNCERT_CRM_URL"].startswith("https://")
    with session:
        yield Salesforce(instance_url=token["instance_url"], session_id=token["access_token"], session=session,
                         version="59.0")


def test_create_read_update_delete(sf: Salesforce) -> None:
    created = sf.Account.create({"Name": "Acme Corp", "Phone": "+1 555 0100", "BillingCity": "Lyon"})
    assert created["success"] is True
    record = sf.Account.get(created["id"])
    assert (record["Name"], record["BillingCity"]) == ("Acme Corp", "Lyon")

    assert sf.Account.update(created["id"], {"Name": "Acme Corporation"}) == 204
    assert sf.Account.get(created["id"])["Name"] == "Acme Corporation"

    assert sf.Account.delete(created["id"]) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get(created["id"])


def test_upsert_by_external_id_creates_then_updates(sf: Salesforce, sims: Sims) -> None:
    assert sf.Account.upsert("ERP_Customer_Id__c/CUST-42", {"Name": "Globex"}) == 201
    assert sf.Account.upsert("ERP_Customer_Id__c/CUST-42", {"Name": "Globex Intl"}) == 200
    accounts = sims.state("crm")["account"]
    assert [(a["name"], a["erp_customer_id"]) for a in accounts] == [("Globex Intl", "CUST-42")]
    assert sf.Account.get_by_custom_id("ERP_Customer_Id__c", "CUST-42")["Name"] == "Globex Intl"


def test_query_all_pages_over_2000_records(sf: Salesforce, sims: Sims) -> None:
    sims.seed("crm", {"account": [{"name": f"Account {n:04d}", "erp_customer_id": f"C{n}"} for n in range(2150)]})
    first = sf.query("SELECT Id, Name FROM Account ORDER BY Name")
    assert first["done"] is False and len(first["records"]) == 2000 and "nextRecordsUrl" in first

    result = sf.query_all("SELECT Id, Name FROM Account WHERE Name LIKE 'Account %' ORDER BY Name")
    assert result["totalSize"] == 2150
    names = [r["Name"] for r in result["records"]]
    assert len(names) == 2150 and names == sorted(names) and len(set(names)) == 2150


def test_incremental_query_with_datetime_literal(sf: Salesforce) -> None:
    sf.Account.create({"Name": "Before"})
    after = sf.query("SELECT SystemModstamp FROM Account")["records"][0]["SystemModstamp"]
    soql = f"SELECT Id, Name FROM Account WHERE SystemModstamp > {after.replace('+0000', 'Z')} OR Name IN ('x')"
    assert sf.query(soql)["totalSize"] == 0
    sf.Account.create({"Name": "After"})
    assert [r["Name"] for r in sf.query(soql)["records"]] == ["After"]


def test_client_exceptions_for_400_401_404(sf: Salesforce, sims: Sims) -> None:
    with pytest.raises(SalesforceMalformedRequest) as malformed:
        sf.Account.create({"Phone": "123"})
    assert malformed.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert malformed.value.content[0]["message"] == "Required fields are missing: [Name]"
    assert malformed.value.content[0]["fields"] == ["Name"]

    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get("001000000000000AAA")

    expired = Salesforce(instance_url=sims.env["SYNCERT_CRM_URL"], session_id="not-a-token", session=sf.session)
    with pytest.raises(SalesforceExpiredSession):
        expired.Account.get("001000000000000AAA")


def test_describe_exposes_external_ids_and_picklists(sf: Salesforce) -> None:
    fields = {f["name"]: f for f in sf.Account.describe()["fields"]}
    assert fields["ERP_Customer_Id__c"]["externalId"] is True
    assert fields["Name"]["nillable"] is False and fields["Name"]["length"] == 255
    assert "Manufacturing" in [v["value"] for v in fields["Industry"]["picklistValues"]]
    assert fields["SystemModstamp"]["type"] == "datetime" and fields["SystemModstamp"]["updateable"] is False


def test_upsert_answers_300_when_the_external_id_matches_several_records(sf: Salesforce, sims: Sims) -> None:
    from simple_salesforce.exceptions import SalesforceMoreThanOneRecord

    ids = sims.seed("crm", {"product": [{"name": "Widget", "sku": "W-1"}, {"name": "Widget (old)", "sku": "W-1"}]})
    with pytest.raises(SalesforceMoreThanOneRecord) as several:
        sf.Product2.upsert("ProductCode/W-1", {"Name": "Widget 2"})
    assert sorted(url.rsplit("/", 1)[1] for url in several.value.content) == sorted(ids["product"])


def test_upsert_update_answers_204_before_v46(sims: Sims) -> None:
    token = sims.salesforce_token()
    url = f"{sims.plain_url('crm')}/services/data/v45.0/sobjects/Account/ERP_Customer_Id__c/OLD-1"
    headers = {"Authorization": f"Bearer {token}"}
    import httpx

    assert httpx.patch(url, json={"Name": "Old API"}, headers=headers).status_code == 201
    assert httpx.patch(url, json={"Name": "Old API 2"}, headers=headers).status_code == 204
