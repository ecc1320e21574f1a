"""Bad requests never crash a simulator: each gets a 4xx in the vendor's shape naming the problem."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Sims

HUGE = b'{"Name": "' + b"x" * (11 * 1024 * 1024) + b'"}'


def _salesforce_error(response: httpx.Response) -> dict:
    assert 400 <= response.status_code < 500, response.text
    body = response.json()
    assert isinstance(body, list) and set(body[0]) >= {"message", "errorCode"}
    return body[0]


def _netsuite_error(response: httpx.Response) -> dict:
    assert 400 <= response.status_code < 500, response.text
    body = response.json()
    assert body["status"] == response.status_code and body["title"]
    return body["o:errorDetails"][0]


@pytest.mark.parametrize(("content", "code", "names"), [
    (b'{"Name": ', "JSON_PARSER_ERROR", "malformed JSON"),
    (b'[1, 2]', "JSON_PARSER_ERROR", "expected a JSON object"),
    (b'{"Name": "A", "Colour__c": "red"}', "INVALID_FIELD", "Colour__c"),
    (b'{"Name": 12}', "JSON_PARSER_ERROR", "field Name"),
    (b'{"Name": "' + b"n" * 300 + b'"}', "STRING_TOO_LONG", "max length=255"),
    (b'{"Name": "A", "Industry": "Space"}', "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "Space"),
    (b'{"Name": "A", "Outstanding_Balance__c": "lots"}', "JSON_PARSER_ERROR", "Outstanding_Balance__c"),
    (b'{"Name": "A", "Id": "001000000000000AAA"}', "INVALID_FIELD_FOR_INSERT_UPDATE", "Id"),
    (b'{"Name": NaN}', "JSON_PARSER_ERROR", "NaN"),
    (b"\xff\xfe", "JSON_PARSER_ERROR", "UTF-8"),
])
def test_salesforce_rejects_bad_bodies(sims: Sims, content: bytes, code: str, names: str) -> None:
    with sims.crm() as crm:
        error = _salesforce_error(crm.post("/sobjects/Account/", content=content,
                                           headers={"Content-Type": "application/json"}))
    assert error["errorCode"] == code
    assert names in error["message"]


@pytest.mark.parametrize(("soql", "code", "names"), [
    ("SELECT Id FROM", "MALFORMED_QUERY", "end of query"),
    ("SELECT Id FROM Spaceship", "INVALID_TYPE", "Spaceship"),
    ("SELECT Id, Colour__c FROM Account", "INVALID_FIELD", "colour__c"),
    ("SELECT Id FROM Account WHERE Name = 'unterminated", "MALFORMED_QUERY", "unexpected character"),
    ("SELECT Id FROM Account WHERE CreatedDate > 2024-13-45T00:00:00Z", "MALFORMED_QUERY", "invalid date"),
    ("SELECT Id FROM Account LIMIT -1", "MALFORMED_QUERY", "LIMIT"),
    ("SELECT Account.Name FROM Contact", "MALFORMED_QUERY", "relationship"),
])
def test_salesforce_rejects_broken_soql(sims: Sims, soql: str, code: str, names: str) -> None:
    with sims.crm() as crm:
        error = _salesforce_error(crm.get("/query", params={"q": soql}))
    assert error["errorCode"] == code
    assert names.lower() in error["message"].lower()


@pytest.mark.parametrize(("path", "content", "code", "names"), [
    ("/record/v1/customer", b'{"companyName": ', "INVALID_CONTENT", "malformed JSON"),
    ("/record/v1/customer", b'{"companyName": "A", "colour": "red"}', "INVALID_FIELD", "colour"),
    ("/record/v1/customer", b'{"companyName": ["A"]}', "INVALID_FLD_VALUE", "customer.companyName"),
    ("/record/v1/customer", b'{"email": "a@b.example"}', "USER_ERROR", "companyName"),
    ("/record/v1/customer", b'{"companyName": "' + b"c" * 90 + b'"}', "USER_ERROR", "at most 83"),
    ("/record/v1/customer", b'{"companyName": "A", "terms": {"id": "99"}}', "INVALID_FLD_VALUE", "terms"),
    ("/record/v1/customer", b'{"companyName": "A", "balance": 5}', "INVALID_FIELD", "read-only"),
    ("/record/v1/salesOrder", b'{"entity": {"id": "99999"}, "item": {"items": []}}', "INVALID_KEY_OR_REF", "99999"),
    ("/record/v1/salesOrder", b'{"entity": "101"}', "INVALID_FLD_VALUE", "salesOrder.entity"),
    ("/query/v1/suiteql", b'{"q": "SELECT id FROM customer WHERE"}', "INVALID_PARAMETER", "end of query"),
    ("/query/v1/suiteql", b'{"q": "SELECT nope FROM customer"}', "INVALID_PARAMETER", "nope"),
    ("/query/v1/suiteql", b'{"q": "SELECT id FROM planets"}', "INVALID_PARAMETER", "planets"),
    ("/query/v1/suiteql", b'{"query": "SELECT id FROM customer"}', "INVALID_PARAMETER", "q"),
])
def test_netsuite_rejects_bad_requests(sims: Sims, path: str, content: bytes, code: str, names: str) -> None:
    with sims.erp() as erp:
        error = _netsuite_error(erp.post(path, content=content, headers={"Content-Type": "application/json",
                                                                         "Prefer": "transient"}))
    assert error["o:errorCode"] == code
    assert names in error["detail"]


def test_netsuite_rejects_bad_list_parameters(sims: Sims) -> None:
    with sims.erp() as erp:
        assert "limit" in _netsuite_error(erp.get("/record/v1/customer", params={"limit": 5000}))["detail"]
        assert "operator" in _netsuite_error(erp.get("/record/v1/customer", params={"q": "companyName LIKES x"}))[
            "detail"]
        assert "invalid date" in _netsuite_error(
            erp.get("/record/v1/customer", params={"q": 'lastModifiedDate AFTER "13/45/2024"'}))["detail"]
        assert _netsuite_error(erp.get("/record/v1/spaceship"))["o:errorCode"] == "INVALID_RCRD_TYPE"
        assert _netsuite_error(erp.get("/record/v1/customer/abc"))["o:errorCode"] == "INVALID_PARAMETER"
        assert _netsuite_error(erp.get("/record/v1/customer/424242"))["o:errorCode"] == "NONEXISTENT_ID"


def test_huge_bodies_are_refused_in_vendor_shape(sims: Sims) -> None:
    with sims.crm() as crm:
        response = crm.post("/sobjects/Account/", content=HUGE, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()[0]["errorCode"] == "REQUEST_TOO_LARGE"
    with sims.erp() as erp:
        response = erp.post("/record/v1/customer", content=HUGE, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_CONTENT"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(soql=st.one_of(st.text(max_size=80), st.builds(lambda tail: f"SELECT Id FROM Account WHERE {tail}",
                                                      st.text(max_size=40))))
def test_any_soql_gets_an_answer_not_a_crash(sims: Sims, soql: str) -> None:
    with sims.crm() as crm:
        response = crm.get("/query", params={"q": soql})
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.json()[0]["errorCode"] in ("MALFORMED_QUERY", "INVALID_FIELD", "INVALID_TYPE")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(st.sampled_from(["companyName", "email", "creditLimit", "terms", "subsidiary",
                                             "externalId", "isInactive", "addressBook", "phone"]),
                            st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                                      st.text(max_size=100), st.lists(st.integers(), max_size=3),
                                      st.dictionaries(st.sampled_from(["id", "items", "externalId"]),
                                                      st.one_of(st.text(max_size=5), st.integers()), max_size=2))))
def test_any_customer_body_gets_an_answer_not_a_crash(sims: Sims, body: dict) -> None:
    with sims.erp() as erp:
        response = erp.post("/record/v1/customer", json=body)
    assert response.status_code in (204, 400), response.text
    if response.status_code == 400:
        assert response.json()["o:errorDetails"][0]["detail"]


@pytest.mark.parametrize("number", [b"1e999999", b"-1e999999", b"1e-400", b"1234567890123456789"])
def test_netsuite_refuses_numbers_beyond_range_and_keeps_answering(sims: Sims, number: bytes) -> None:
    with sims.erp() as erp:
        error = _netsuite_error(erp.post("/record/v1/customer", content=b'{"companyName": "A", "creditLimit": '
                                         + number + b"}", headers={"Content-Type": "application/json"}))
        assert error["o:errorCode"] == "INVALID_FLD_VALUE" and error["o:errorPath"] == "creditLimit"
        assert "outside the valid range" in error["detail"]
        created = erp.post("/record/v1/customer", json={"companyName": "B", "creditLimit": 123456789012.5})
        assert created.status_code == 204
        assert erp.get(created.headers["Location"].split("/services/rest")[1]).json()["creditLimit"] == 123456789012.5


@pytest.mark.parametrize(("number", "code"), [(b"1e999999", "NUMBER_OUTSIDE_VALID_RANGE"),
                                              (b"12345678901234567", "NUMBER_OUTSIDE_VALID_RANGE"),
                                              (b"1e-400", "NUMBER_OUTSIDE_VALID_RANGE")])
def test_salesforce_refuses_numbers_beyond_range(sims: Sims, number: bytes, code: str) -> None:
    with sims.crm() as crm:
        error = _salesforce_error(crm.post("/sobjects/Account/", content=b'{"Name": "A", "Outstanding_Balance__c": '
                                           + number + b"}", headers={"Content-Type": "application/json"}))
        assert error["errorCode"] == code and error["fields"] == ["Outstanding_Balance__c"]
        assert crm.post("/sobjects/Account/", json={"Name": "B", "Outstanding_Balance__c": 1e15}).status_code == 201


def test_netsuite_names_its_own_field_ids_in_refusals(sims: Sims) -> None:
    with sims.erp() as erp:
        error = _netsuite_error(erp.post("/record/v1/customer", json={"email": "a@b.example"}))
    assert error["o:errorPath"] == "companyName" and error["detail"] == "Please enter value(s) for: companyName"
