"""Traffic conformance: journal entries judged against the vendors' contracts (harness.conformance)."""

from __future__ import annotations

import json
from typing import Any

from syncert.harness.conformance import ContractJudge, violations
from tests.conftest import Sims

CUSTOMER = "/services/rest/record/v1/customer/eid:SF-0015g0000000001AAA"
ACCOUNT = "/services/data/v59.0/sobjects/Account/0015g0000000001AAA"


def _entry(method: str, path: str, body: Any = None, status: int = 204, seq: int = 1, **headers: str) -> dict:
    text = "" if body is None else body if isinstance(body, str) else json.dumps(body)
    return {"seq": seq, "method": method, "path": path, "query": "", "status": status, "request_body": text,
            "request_headers": {"content-type": "application/json", "content-length": str(len(text)), **headers}}


def test_a_request_as_the_vendor_documents_it_conforms() -> None:
    netsuite, salesforce = ContractJudge("erp", "netsuite"), ContractJudge("crm", "salesforce")
    assert netsuite.violation(_entry("PUT", CUSTOMER, {"companyName": "Acme", "subsidiary": {"id": "1"}})) is None
    assert netsuite.violation(_entry("GET", "/services/rest/record/v1/customer/101")) is None
    assert salesforce.violation(_entry("PATCH", ACCOUNT + "/", {"Phone": "+1 555 0100"})) is None  # trailing /


def test_a_malformed_body_is_reported_with_the_rule_it_broke() -> None:
    judge = ContractJudge("erp", "netsuite")
    found = judge.violation(_entry("PUT", CUSTOMER, {"companyName": "Acme", "subsidiary": "1"}, status=400))
    assert found is not None and found.kind == "shape" and found.status == 400
    assert found.rule == "request body: subsidiary: type ['object', 'null'] (got '1')"
    assert found.request == f"PUT {CUSTOMER}"
    unknown = judge.violation(_entry("PUT", CUSTOMER, {"companyName": "Acme", "phoneNumber": "1"}, seq=2))
    assert unknown is not None and unknown.kind == "shape" and "'phoneNumber' was unexpected" in unknown.rule


def test_an_operation_the_api_lacks_is_malformed_and_data_that_does_not_fit_is_a_value_violation() -> None:
    judge = ContractJudge("erp", "netsuite")
    widget = judge.violation(_entry("POST", "/services/rest/record/v1/widget", {}, status=404))
    too_long = judge.violation(_entry("PUT", CUSTOMER, {"companyName": "L" * 120}, status=400))
    assert widget is not None and widget.kind == "shape" and "recordType" in widget.rule
    assert too_long is not None and too_long.kind == "value"
    assert too_long.rule.startswith("request body: companyName: maxLength 83 (got 'LLLL")


def test_requests_of_one_shape_are_judged_once_and_each_malformed_one_is_reported() -> None:
    judge = ContractJudge("erp", "netsuite")
    entries = [_entry("PUT", CUSTOMER.replace("1AAA", f"{n}AAA"), {"companyName": f"Co {n}", "subsidiary": "1"},
                      seq=n) for n in range(1, 6)]
    assert [v.seq for v in violations({"erp": entries}, {"erp": "netsuite"}, {})] == [1, 2, 3, 4, 5]
    assert len(judge._judged) == 0 and [judge.violation(e) is not None for e in entries] == [True] * 5
    assert len(judge._judged) == 1


def test_a_request_the_drifted_api_takes_conforms_in_a_drift_scenario() -> None:
    renamed = _entry("PATCH", ACCOUNT, {"Business_Phone__c": "+1 555 0100"})
    assert ContractJudge("crm", "salesforce").violation(renamed) is not None
    assert ContractJudge("crm", "salesforce", ("sf-account-phone-renamed",)).violation(renamed) is None


def test_bodies_never_read_are_not_judged() -> None:
    unread = {**_entry("PUT", CUSTOMER), "request_headers": {"content-length": "120"}}  # refused before reading
    assert ContractJudge("erp", "netsuite").violation(unread) is None


def test_a_body_padded_past_the_journals_excerpt_is_kept_whole_and_judged(sims: Sims) -> None:
    padded = json.dumps({"companyName": "Acme", "phoneNumber": "+1 555 0100"}) + " " * 70_000
    with sims.erp() as erp:
        erp.put("/record/v1/customer/eid:PAD-1", content=padded,
                headers={"Content-Type": "application/json", "X-NetSuite-PropertyNameValidation": "ignore"})
    with sims.admin("erp") as admin:
        [entry] = admin.get("/_sim/journal", params={"path": "eid:PAD-1"}).json()["entries"]
    assert len(entry["request_body"]) == len(padded)
    found = ContractJudge("erp", "netsuite").violation(entry)
    assert found is not None and found.kind == "shape" and "phoneNumber" in found.rule
