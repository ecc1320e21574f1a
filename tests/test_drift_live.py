"""Drift served live (`/_sim/drift`): the dialect answers as the drifted API from the next request on, in the
vendor's own shapes, and a reset or DELETE puts the API back."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Sims


def _drift(sims: Sims, side: str, *profiles: str) -> httpx.Response:
    with sims.admin(side) as admin:
        return admin.put("/_sim/drift", json={"profiles": list(profiles)})


def _in_force(sims: Sims, side: str) -> list[str]:
    with sims.admin(side) as admin:
        return [p["id"] for p in admin.get("/_sim/drift").json()["profiles"]]


def _query(crm: httpx.Client, soql: str) -> httpx.Response:
    return crm.get("/query", params={"q": soql})


def test_a_renamed_field_is_served_under_its_new_name_only(sims: Sims) -> None:
    sims.seed("crm", {"account": [{"name": "Renamed Ltd"}]})
    assert _drift(sims, "crm", "sf-account-name-renamed").status_code == 200
    with sims.crm() as crm:
        renamed = _query(crm, "SELECT Id, AccountName FROM Account")
        old = _query(crm, "SELECT Id, Name FROM Account")
        record = crm.get(f"/sobjects/Account/{renamed.json()['records'][0]['Id']}").json()
    assert [r["AccountName"] for r in renamed.json()["records"]] == ["Renamed Ltd"]
    assert old.status_code == 400 and old.json()[0]["errorCode"] == "INVALID_FIELD"
    assert "AccountName" in record and "Name" not in record
    with sims.admin("crm") as admin:
        admin.delete("/_sim/drift")
    with sims.crm() as crm:
        assert _query(crm, "SELECT Id, Name FROM Account").status_code == 200


def test_a_shortened_field_refuses_longer_values_in_the_vendors_shape(sims: Sims) -> None:
    assert _drift(sims, "erp", "ns-company-name-shortened").status_code == 200
    with sims.erp() as erp:
        long_name = erp.post("/record/v1/customer", json={"companyName": "L" * 60, "subsidiary": {"id": "1"}})
        short_name = erp.post("/record/v1/customer", json={"companyName": "S" * 30, "subsidiary": {"id": "1"}})
    assert long_name.status_code == 400, long_name.text
    assert "o:errorDetails" in long_name.json() and short_name.status_code == 204


def test_smaller_pages_are_answered_with_has_more(sims: Sims) -> None:
    sims.seed("erp", {"customer": [{"name": f"Paged {n}"} for n in range(60)]})
    assert _drift(sims, "erp", "ns-page-size-shrunk").status_code == 200
    with sims.erp() as erp:
        page: dict[str, Any] = erp.get("/record/v1/customer", params={"limit": 1000}).json()
    assert page["count"] == 50 and page["hasMore"] is True


def test_a_new_required_field_refuses_creates_without_it(sims: Sims) -> None:
    assert _drift(sims, "erp", "ns-customer-email-required").status_code == 200
    with sims.erp() as erp:
        without = erp.post("/record/v1/customer", json={"companyName": "No Email", "subsidiary": {"id": "1"}})
        with_email = erp.post("/record/v1/customer", json={"companyName": "Email", "email": "a@example.com",
                                                             "subsidiary": {"id": "1"}})
    assert without.status_code == 400 and "email" in without.text.lower()
    assert with_email.status_code == 204


def test_bad_drift_is_refused_and_leaves_the_drift_in_force(sims: Sims) -> None:
    assert _drift(sims, "erp", "ns-page-size-shrunk").status_code == 200
    unknown, other_dialect = _drift(sims, "erp", "no-such-profile"), _drift(sims, "erp", "sf-account-name-renamed")
    with sims.admin("erp") as admin:
        not_a_list = admin.put("/_sim/drift", json={"profiles": "ns-page-size-shrunk"})
    assert unknown.status_code == 400 and "ns-page-size-shrunk" in unknown.text  # the list of this dialect's
    assert other_dialect.status_code == 400
    assert not_a_list.status_code == 400 and "profile id" in not_a_list.text
    assert _in_force(sims, "erp") == ["ns-page-size-shrunk"]
    with sims.admin("erp") as admin:
        admin.post("/_sim/reset")
    assert _in_force(sims, "erp") == []


def test_a_retired_api_version_is_gone_and_no_longer_listed(sims: Sims) -> None:
    assert _drift(sims, "crm", "sf-versions-before-55-retired").status_code == 200
    token = sims.salesforce_token()
    base = sims.plain_url("crm")
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as crm:
        retired = crm.get("/services/data/v50.0/sobjects")
        current = crm.get("/services/data/v59.0/sobjects")
        listed = [v["version"] for v in crm.get("/services/data").json()]
    assert retired.status_code == 410 and retired.json()[0]["errorCode"] == "NOT_FOUND"
    assert current.status_code == 200 and min(float(v) for v in listed) == 55.0


def test_a_new_field_is_answered_on_new_records_and_described(sims: Sims) -> None:
    assert _drift(sims, "crm", "sf-account-region-added").status_code == 200
    sims.seed("crm", {"account": [{"name": "Regional Ltd"}]})
    with sims.crm() as crm:
        rows = _query(crm, "SELECT Id, Name, Region__c FROM Account").json()["records"]
        described = [f["name"] for f in crm.get("/sobjects/Account/describe").json()["fields"]]
    assert rows[0]["Region__c"] == "EMEA" and "Region__c" in described


def test_a_number_turned_text_is_answered_and_taken_as_text(sims: Sims) -> None:
    account = sims.seed("crm", {"account": [{"name": "Balance Ltd", "outstanding_balance": "1250.50"}]})["account"][0]
    assert _drift(sims, "crm", "sf-balance-becomes-text").status_code == 200
    with sims.crm() as crm:
        answered = crm.get(f"/sobjects/Account/{account}").json()["Outstanding_Balance__c"]
        as_number = crm.patch(f"/sobjects/Account/{account}", json={"Outstanding_Balance__c": 99.5})
        as_text = crm.patch(f"/sobjects/Account/{account}", json={"Outstanding_Balance__c": "99.50"})
        not_a_number = crm.patch(f"/sobjects/Account/{account}", json={"Outstanding_Balance__c": "ninety"})
    assert answered == "1250.50"
    assert as_number.status_code == 400 and as_number.json()[0]["errorCode"] == "JSON_PARSER_ERROR"
    assert as_text.status_code == 204 and not_a_number.status_code == 400
    stored = next(a for a in sims.state("crm")["account"] if a["id"] == account)
    assert str(stored["outstanding_balance"]) in ("99.5", "99.50")


def test_absolute_paging_links_point_at_the_same_server(sims: Sims) -> None:
    sims.seed("crm", {"account": [{"name": f"Linked {n}"} for n in range(250)]})
    assert _drift(sims, "crm", "sf-paging-links-absolute").status_code == 200
    with sims.crm() as crm:
        first = crm.get("/query", params={"q": "SELECT Id FROM Account"},
                        headers={"Sforce-Query-Options": "batchSize=200"}).json()
        following = httpx.get(first["nextRecordsUrl"], headers=crm.headers, timeout=30).json()
    assert first["nextRecordsUrl"].startswith(sims.plain_url("crm") + "/services/data/")
    assert len(first["records"]) + len(following["records"]) == 250 and following["done"] is True


def test_a_narrowed_scope_refuses_every_request_on_the_object(sims: Sims) -> None:
    sims.seed("erp", {"customer": [{"name": "Forbidden Co"}]})
    assert _drift(sims, "erp", "ns-customer-access-withdrawn").status_code == 200
    with sims.erp() as erp:
        listed = erp.get("/record/v1/customer")
        created = erp.post("/record/v1/customer", json={"companyName": "New Co", "subsidiary": {"id": "1"}})
        queried = erp.post("/query/v1/suiteql", json={"q": "SELECT id FROM customer"},
                           headers={"Prefer": "transient"})
        items = erp.get("/record/v1/inventoryItem")
    for refused in (listed, created, queried):
        assert refused.status_code == 403, refused.text
        assert refused.json()["o:errorDetails"][0]["o:errorCode"] == "INSUFFICIENT_PERMISSION"
    assert items.status_code == 200
    assert [c["name"] for c in sims.state("erp")["customer"]] == ["Forbidden Co"]  # the refused create left nothing


def test_a_trigger_lays_drift_between_two_pages_of_one_export(sims: Sims) -> None:
    sims.seed("erp", {"customer": [{"name": f"Exported {n}", "phone": f"555-{n:04d}"} for n in range(30)]})
    with sims.admin("erp") as admin:
        set_up = admin.post("/_sim/triggers", json={"after": {"kind": "customer", "operation": "query", "count": 1},
                                                    "drift": ["ns-customer-phone-removed"]})
        unknown = admin.post("/_sim/triggers", json={"after": {}, "drift": ["no-such-profile"]})
        both = admin.post("/_sim/triggers", json={"after": {}, "drift": [], "edit": {}})
    assert set_up.status_code == 201, set_up.text
    assert unknown.status_code == 400 and "no-such-profile" in unknown.text and both.status_code == 400
    with sims.erp() as erp:
        first = erp.get("/record/v1/customer", params={"limit": 20, "offset": 0}).json()
        customer = erp.get(f"/record/v1/customer/{first['items'][0]['id']}").json()
    assert "phone" not in customer
    assert _in_force(sims, "erp") == ["ns-customer-phone-removed"]
    with sims.admin("erp") as admin:
        fired = admin.get("/_sim/triggers").json()["triggers"][0]
    assert fired["fired"] is True and fired["drift"] == ["ns-customer-phone-removed"] and fired["error"] is None
