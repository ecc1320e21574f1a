"""The NetSuite `contact` record (canonical ERP kind `contact`): a person at a customer, over REST and SuiteQL."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Sims

RECORDS = "/record/v1"


def _customer(sims: Sims, name: str = "Acme") -> str:
    return sims.seed("erp", {"customer": [{"name": name}]})["customer"][0]


def _error(response: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status and body["type"].startswith("https://www.rfc-editor.org/rfc/")
    return body["o:errorDetails"][0]


def _suiteql(erp: httpx.Client, text: str) -> list[dict[str, Any]]:
    response = erp.post("/query/v1/suiteql", json={"q": text}, headers={"Prefer": "transient"})
    assert response.status_code == 200, response.text
    return [{k: v for k, v in item.items() if k != "links"} for item in response.json()["items"]]


def test_create_upsert_get_patch_and_delete_a_contact(sims: Sims) -> None:
    customer = _customer(sims)
    with sims.erp() as erp:
        created = erp.post(f"{RECORDS}/contact", json={"firstName": "Ann", "lastName": "Lee",
                                                       "company": {"id": customer}, "title": "CFO"})
        assert created.status_code == 204, created.text
        ann = created.headers["Location"].rsplit("/", 1)[-1]

        body = {"firstName": "Bob", "lastName": "Ray", "email": "bob@acme.example", "company": {"id": customer},
                "custentity_syncert_crm_id": "003000000000001AAA"}
        first = erp.put(f"{RECORDS}/contact/eid:SF-003000000000001AAA", json=body)
        second = erp.put(f"{RECORDS}/contact/eid:SF-003000000000001AAA", json={**body, "phone": "555-0100"})
        assert first.status_code == second.status_code == 204
        assert first.headers["Location"] == second.headers["Location"]
        bob = second.headers["Location"].rsplit("/", 1)[-1]

        record = erp.get(f"{RECORDS}/contact/{bob}").json()
        assert {k: v for k, v in record.items() if k not in ("links", "dateCreated", "lastModifiedDate")} == {
            "id": bob, "firstName": "Bob", "lastName": "Ray", "email": "bob@acme.example", "phone": "555-0100",
            "company": {"id": customer}, "custentity_syncert_crm_id": "003000000000001AAA", "isInactive": False,
            "externalId": "SF-003000000000001AAA"}
        assert erp.get(f"{RECORDS}/contact/eid:SF-003000000000001AAA").json()["id"] == bob

        assert erp.patch(f"{RECORDS}/contact/{ann}", json={"title": "CEO", "isInactive": True}).status_code == 204
        assert erp.get(f"{RECORDS}/contact/{ann}", params={"fields": "title"}).json() == {
            "links": [{"rel": "self", "href": f"{sims.plain_url('erp')}/services/rest{RECORDS}/contact/{ann}"}],
            "id": ann, "title": "CEO"}
        assert {c["id"]: c.get("role") for c in sims.state("erp")["contact"]}[ann] == "CEO"  # title is `role`

        assert erp.delete(f"{RECORDS}/contact/{ann}").status_code == 204
        assert _error(erp.get(f"{RECORDS}/contact/{ann}"), 404)["o:errorCode"] == "NONEXISTENT_ID"
    contacts = sims.state("erp")["contact"]
    assert [(c["id"], c["customer_id"], c["crm_id"], c["external_id"]) for c in contacts] == [
        (bob, customer, "003000000000001AAA", "SF-003000000000001AAA")]


def test_list_contacts_with_q_and_paging_and_query_them_with_suiteql(sims: Sims) -> None:
    acme, other = _customer(sims, "Acme"), _customer(sims, "Other Co")
    with sims.erp() as erp:
        for n, company in enumerate((acme, acme, other), start=1):
            assert erp.put(f"{RECORDS}/contact/eid:C-{n}", json={
                "lastName": f"Person {n}", "firstName": "Pat", "email": f"p{n}@example.com",
                "company": {"id": company}, "custentity_syncert_crm_id": f"003-{n}"}).status_code == 204

        page = erp.get(f"{RECORDS}/contact", params={"limit": 2}).json()
        assert (page["count"], page["hasMore"], page["totalResults"]) == (2, True, 3)
        rest = erp.get(f"{RECORDS}/contact", params={"limit": 2, "offset": 2}).json()
        assert len({item["id"] for item in page["items"] + rest["items"]}) == 3 and not rest["hasMore"]

        found = erp.get(f"{RECORDS}/contact", params={"q": 'custentity_syncert_crm_id IS "003-2"'}).json()
        assert [item["id"] for item in found["items"]] == [erp.get(f"{RECORDS}/contact/eid:C-2").json()["id"]]
        since = erp.get(f"{RECORDS}/contact", params={"q": 'lastModifiedDate ON_OR_AFTER "1/1/2020"'}).json()
        assert since["totalResults"] == 3

        rows = _suiteql(erp, "SELECT id, firstname, lastname, email, company, custentity_syncert_crm_id FROM contact "
                             f"WHERE company = {acme} AND lastname LIKE 'Person%' ORDER BY lastname")
        assert [{k: v for k, v in row.items() if k != "id"} for row in rows] == [
            {"firstname": "Pat", "lastname": f"Person {n}", "email": f"p{n}@example.com", "company": acme,
             "custentity_syncert_crm_id": f"003-{n}"} for n in (1, 2)]
        joined = _suiteql(erp, "SELECT c.lastname, BUILTIN.DF(c.company) AS customer FROM contact c JOIN customer cu "
                               "ON cu.id = c.company WHERE cu.companyname = 'Other Co'")
        assert joined == [{"lastname": "Person 3", "customer": "Other Co"}]


def test_contacts_are_refused_in_netsuite_shape(sims: Sims) -> None:
    customer = _customer(sims)
    with sims.erp() as erp:
        too_long = _error(erp.post(f"{RECORDS}/contact", json={"firstName": "F" * 33, "lastName": "Lee",
                                                                "company": {"id": customer}}))
        assert too_long["o:errorCode"] == "USER_ERROR" and too_long["o:errorPath"] == "contact.firstName"
        assert "at most 32" in too_long["detail"]
        assert erp.post(f"{RECORDS}/contact", json={"firstName": "F" * 32, "lastName": "Lee",
                                                     "company": {"id": customer}}).status_code == 204

        missing = _error(erp.post(f"{RECORDS}/contact", json={"firstName": "Ann", "company": {"id": customer}}))
        assert missing == {"detail": "Please enter value(s) for: lastName", "o:errorCode": "USER_ERROR",
                           "o:errorPath": "lastName"}
        no_company = _error(erp.post(f"{RECORDS}/contact", json={"lastName": "Lee"}))
        assert no_company["o:errorPath"] == "company"
        unknown = _error(erp.post(f"{RECORDS}/contact", json={"lastName": "Lee", "company": {"id": "99999"}}))
        assert unknown["o:errorCode"] == "INVALID_KEY_OR_REF" and "contact.company" in unknown["detail"]
        read_only = _error(erp.post(f"{RECORDS}/contact", json={"lastName": "Lee", "company": {"id": customer},
                                                                 "dateCreated": "2024-01-01T00:00:00Z"}))
        assert read_only["o:errorCode"] == "INVALID_FIELD"
    assert len(sims.state("erp")["contact"]) == 1


def test_a_customers_contacts_go_with_it_and_a_company_may_be_named_by_external_id(sims: Sims) -> None:
    kept = _customer(sims, "Kept")
    with sims.erp() as erp:
        assert erp.put(f"{RECORDS}/customer/eid:SF-001", json={"companyName": "Gone"}).status_code == 204
        gone = erp.get(f"{RECORDS}/customer/eid:SF-001").json()["id"]
        for n, company in enumerate(({"externalId": "SF-001"}, {"id": gone}, {"id": kept})):
            assert erp.put(f"{RECORDS}/contact/eid:C-{n}", json={"lastName": f"L{n}", "company": company}
                           ).status_code == 204
        assert erp.get(f"{RECORDS}/contact/eid:C-0").json()["company"] == {"id": gone}

        assert erp.delete(f"{RECORDS}/customer/{gone}").status_code == 204
        assert _error(erp.get(f"{RECORDS}/contact/eid:C-1"), 404)["o:errorCode"] == "NONEXISTENT_ID"
        assert erp.get(f"{RECORDS}/contact").json()["totalResults"] == 1
    with sims.admin("erp") as admin:
        deleted = admin.get("/_sim/state", params={"kinds": "contact"}).json()["deleted"]["contact"]
    assert len(deleted) == 2


def test_contact_requests_are_classified_as_the_contact_kind(sims: Sims) -> None:
    netsuite = sims.host.sides["erp"].simulator.dialect
    assert netsuite.classify("PUT", "/services/rest/record/v1/contact/eid:SF-1") == ("write", "contact", "upsert")
    assert netsuite.classify("GET", "/services/rest/record/v1/contact") == ("read", "contact", "query")
    assert netsuite.object_name("contact") == "contact"
