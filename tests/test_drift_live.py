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
    unknown, other_dialect, document_only = (_drift(sims, "erp", "no-such-profile"),
                                             _drift(sims, "erp", "sf-account-name-renamed"),
                                             _drift(sims, "erp", "ns-customer-segment-added"))
    assert unknown.status_code == 400 and "ns-page-size-shrunk" in unknown.text  # the list of this dialect's
    assert other_dialect.status_code == 400
    assert document_only.status_code == 400 and "not served live yet" in document_only.text
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
