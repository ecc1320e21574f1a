"""The fault stage (`/_sim/faults`): each fault as a real client meets it, rule matching and counting, seeded
replay, and bad rules answered with the control plane's error naming the problem."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest

from syncert.harness.checks import retry_after_violations
from tests.conftest import Sims

ACCOUNT_QUERY = {"q": "SELECT Id, Name FROM Account"}


def _schedule(sims: Sims, side: str, rules: list[dict[str, Any]], seed: int = 0) -> dict[str, Any]:
    with sims.admin(side) as admin:
        response = admin.put("/_sim/faults", json={"seed": seed, "rules": rules})
        assert response.status_code == 200, response.text
        return response.json()


def _rules(sims: Sims, side: str) -> list[dict[str, Any]]:
    with sims.admin(side) as admin:
        return admin.get("/_sim/faults").json()["rules"]


def _journal(sims: Sims, side: str) -> list[dict[str, Any]]:
    with sims.admin(side) as admin:
        return admin.get("/_sim/journal").json()["entries"]


def test_answers_in_the_vendors_shape_on_the_nth_matching_call_for_n_calls(sims: Sims) -> None:
    sims.seed("crm", {"account": [{"name": "Acme"}]})
    _schedule(sims, "crm", [{"match": {"kind": "account", "operation": "query"}, "on_call": 2, "calls": 2,
                             "fault": {"type": "unavailable", "retry_after_s": 3}}])
    with sims.crm() as crm:
        crm.get("/sobjects/Product2/describe")  # another kind: not counted
        statuses = [crm.get("/query", params=ACCOUNT_QUERY) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 503, 503, 200]
    assert statuses[1].headers["Retry-After"] == "3"
    assert statuses[1].json()[0]["errorCode"] == "SERVICE_UNAVAILABLE"
    [rule] = _rules(sims, "crm")
    assert (rule["seen"], rule["fired"]) == (4, 2)
    faulted = [e for e in _journal(sims, "crm") if "faulted" in e["tags"]]
    assert [(e["fault"], e["kind"], e["retry_after_s"]) for e in faulted] == [("fault-1:unavailable", "account", 3)] * 2


def test_only_calls_answered_with_success_count_so_throwaway_requests_cannot_use_a_fault_up(sims: Sims) -> None:
    _schedule(sims, "erp", [{"match": {"kind": "customer", "access": "write"}, "fault": {"type": "reset"}}])
    customer = {"companyName": "Target Ltd", "subsidiary": {"id": "1"}}
    with sims.erp() as erp:
        refused = erp.post("/record/v1/customer", json={"companyName": "Bad", "noSuchField": 1})  # refused anyway
        with pytest.raises(httpx.TransportError):
            erp.put("/record/v1/customer/eid:T-1", json=customer)
        written = erp.put("/record/v1/customer/eid:T-1", json=customer)
    assert refused.status_code == 400 and written.status_code == 204
    [rule] = _rules(sims, "erp")
    assert (rule["seen"], rule["fired"]) == (2, 1)  # the refused request was not counted
    assert [c["name"] for c in sims.state("erp")["customer"]] == ["Target Ltd"]  # the reset write left nothing
    assert [e["status"] for e in _journal(sims, "erp")][-3:] == [400, 0, 204]


def test_a_rule_on_the_answer_fires_only_on_reads_that_return_the_record(sims: Sims) -> None:
    sims.seed("crm", {"account": [{"name": "Bystander"}, {"name": "Seeded Target"}]})
    _schedule(sims, "crm", [{"match": {"operation": "query", "answer": "Seeded Target"},
                             "fault": {"type": "malformed"}}])
    with sims.crm() as crm:
        other = crm.get("/query", params={"q": "SELECT Id, Name FROM Account WHERE Name = 'Bystander'"})
        target, again = (crm.get("/query", params=ACCOUNT_QUERY) for _ in range(2))
    assert other.json()["totalSize"] == 1 and again.json()["totalSize"] == 2
    with pytest.raises(json.JSONDecodeError):
        target.json()
    [rule] = _rules(sims, "crm")
    assert (rule["seen"], rule["fired"], rule["match"]["answer"]) == (2, 1, "Seeded Target")  # the bystander: not seen


def test_a_window_on_the_answer_faults_only_the_answers_that_hold_it(sims: Sims) -> None:
    sims.seed("crm", {"account": [{"name": "Bystander"}, {"name": "Seeded Target"}]})
    _schedule(sims, "crm", [{"match": {"operation": "query", "answer": "Seeded Target"}, "for_s": 30,
                             "fault": {"type": "server_error"}}])
    bystander = {"q": "SELECT Id, Name FROM Account WHERE Name = 'Bystander'"}
    with sims.crm() as crm:
        statuses = [crm.get("/query", params=query).status_code for query in (ACCOUNT_QUERY, bystander,
                                                                               ACCOUNT_QUERY, {"q": "SELEC"})]
    assert statuses == [500, 200, 500, 400]  # the window is open; a refused query keeps its own answer


def test_a_body_too_large_for_a_body_rule_is_refused_as_too_large(sims: Sims) -> None:
    _schedule(sims, "erp", [{"match": {"body": "anything"}, "fault": {"type": "server_error"}}])
    with sims.erp() as erp:
        answer = erp.post("/record/v1/customer", content=b"x" * (10 * 1024 * 1024 + 1),
                          headers={"Content-Type": "application/json"})
    assert answer.status_code == 413, answer.text


def test_throttling_is_the_vendors_refusal_on_either_side(sims: Sims) -> None:
    for side in ("crm", "erp"):
        _schedule(sims, side, [{"match": {}, "fault": {"type": "throttle", "retry_after_s": 2}}])
    with sims.crm() as crm:
        refused = crm.get("/query", params=ACCOUNT_QUERY)
    with sims.erp() as erp:
        limited = erp.get("/record/v1/customer")
    assert refused.status_code == 403 and refused.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
    assert limited.json()["o:errorDetails"][0]["o:errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert all("throttled" in e["tags"] for side in ("crm", "erp") for e in _journal(sims, side) if e["fault"])


def test_a_throttle_refuses_until_its_retry_after_and_an_early_request_is_found_on_either_side(sims: Sims) -> None:
    account = sims.seed("crm", {"account": [{"name": "Acme"}]})["account"][0]
    _schedule(sims, "crm", [{"match": {"access": "write"}, "fault": {"type": "throttle", "retry_after_s": 2}}])
    with sims.admin("erp") as admin:  # the ERP's own rate limit: one request, then a refusal
        assert admin.put("/_sim/limits", json={"rate_per_s": 0.1, "burst": 1}).status_code == 200
    with sims.crm() as crm:
        statuses = [crm.patch(f"/sobjects/Account/{account}", json={"Phone": "555"}).status_code]
        time.sleep(0.5)  # past the grace, inside the Retry-After: refused again, whatever the request
        statuses.append(crm.get("/query", params={**ACCOUNT_QUERY, "_": "cache-buster"}).status_code)
        time.sleep(1.6)
        statuses.append(crm.patch(f"/sobjects/Account/{account}", json={"Phone": "555"}).status_code)
    with sims.erp() as erp:
        statuses.append(erp.put("/record/v1/customer/eid:X-1", json={"companyName": "First",
                                                                       "subsidiary": {"id": "1"}}).status_code)
        statuses.append(erp.put("/record/v1/customer/eid:X-1", json={"companyName": "Too Soon",
                                                                       "subsidiary": {"id": "1"}}).status_code)
        time.sleep(0.5)
        statuses.append(erp.get("/record/v1/customer", params={"limit": "1"}).status_code)
    assert statuses == [403, 403, 204, 204, 429, 429]
    for side in ("crm", "erp"):
        journal = _journal(sims, side)
        assert all(e["request_body"] for e in journal if "throttled" in e["tags"] and e["method"] != "GET"), side
        assert retry_after_violations(journal), f"{side}: a request sent inside a Retry-After went unseen"


def test_a_lost_response_applies_the_write_and_resets_the_connection(sims: Sims) -> None:
    _schedule(sims, "erp", [{"match": {"kind": "customer", "operation": "create"}, "fault": {"type": "lost_response"}}])
    with sims.erp() as erp, pytest.raises(httpx.TransportError):
        erp.post("/record/v1/customer", json={"companyName": "Written Anyway", "subsidiary": {"id": "1"}})
    assert [c["name"] for c in sims.state("erp")["customer"]] == ["Written Anyway"]
    [entry] = [e for e in _journal(sims, "erp") if e["fault"]]
    assert {"faulted", "taken_over", "failed", "write"} <= set(entry["tags"]) and entry["status"] == 0


@pytest.mark.parametrize(("fault", "commit"), [("reset", False), ("empty", False), ("reset", True)])
def test_connection_faults_leave_no_answer(sims: Sims, fault: str, commit: bool) -> None:
    _schedule(sims, "erp", [{"match": {"operation": "create"}, "fault": {"type": fault, "commit": commit}}])
    with sims.erp() as erp, pytest.raises(httpx.TransportError):
        erp.post("/record/v1/customer", json={"companyName": "Maybe", "subsidiary": {"id": "1"}})
    assert len(sims.state("erp").get("customer", [])) == (1 if commit else 0)


def test_malformed_and_truncated_answers_are_not_json(sims: Sims) -> None:
    sims.seed("crm", {"account": [{"name": f"Page {n}"} for n in range(3)]})
    _schedule(sims, "crm", [{"match": {"operation": "query"}, "fault": {"type": "malformed"}},
                            {"match": {"operation": "query"}, "on_call": 2, "fault": {"type": "truncated"}}])
    with sims.crm() as crm:
        malformed, truncated, fine = (crm.get("/query", params=ACCOUNT_QUERY) for _ in range(3))
    for answer in (malformed, truncated):
        assert answer.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            answer.json()
    assert fine.json()["totalSize"] == 3


def test_a_held_connection_waits_until_released_then_closes(sims: Sims) -> None:
    _schedule(sims, "erp", [{"match": {"operation": "create"}, "fault": {"type": "timeout", "seconds": 60,
                                                                            "commit": True}}])
    outcome: list[BaseException | httpx.Response] = []

    def write() -> None:
        with sims.erp() as erp:
            try:
                outcome.append(erp.post("/record/v1/customer", json={"companyName": "Held", "subsidiary": {"id": "1"}}))
            except httpx.TransportError as error:
                outcome.append(error)

    writer = threading.Thread(target=write)
    writer.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not _rules(sims, "erp")[0]["holding"]:
        time.sleep(0.05)
    assert _rules(sims, "erp")[0]["holding"] == 1
    assert [c["name"] for c in sims.state("erp")["customer"]] == ["Held"]  # committed while held
    with sims.admin("erp") as admin:
        assert admin.post("/_sim/faults/release").json() == {"released": 1}
    writer.join(10)
    assert isinstance(outcome[0], httpx.TransportError)


def test_a_client_timeout_ends_the_hold(sims: Sims) -> None:
    _schedule(sims, "crm", [{"match": {"operation": "query"}, "fault": {"type": "timeout", "seconds": 300}}])
    with sims.crm() as crm, pytest.raises(httpx.ReadTimeout):
        crm.get("/query", params=ACCOUNT_QUERY, timeout=0.5)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _rules(sims, "crm")[0]["holding"]:
        time.sleep(0.05)
    assert _rules(sims, "crm")[0]["holding"] == 0


def test_an_expired_token_is_refused_until_a_new_one_and_a_revoked_credential_gets_none(sims: Sims) -> None:
    _schedule(sims, "crm", [{"match": {}, "fault": {"type": "expire_token"}},
                            {"match": {}, "on_call": 3, "fault": {"type": "revoke"}}])
    with sims.crm() as crm:
        expired = crm.get("/query", params=ACCOUNT_QUERY)
        again = crm.get("/query", params=ACCOUNT_QUERY)
    assert expired.status_code == 401 and expired.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    assert again.status_code == 401  # the token stays expired
    with sims.crm() as crm:  # a new token works (calls refused by auth never reach the fault stage)
        assert crm.get("/query", params=ACCOUNT_QUERY).status_code == 200
        assert crm.get("/query", params=ACCOUNT_QUERY).status_code == 401  # the third call: revoked
    login = httpx.post(f"{sims.plain_url('crm')}/services/oauth2/token", data={"grant_type": "client_credentials"},
                       auth=(sims.env["SYNCERT_CRM_CLIENT_ID"], sims.env["SYNCERT_CRM_CLIENT_SECRET"]))
    assert login.status_code in (400, 401)


def test_a_rejected_record_fails_alone_in_a_batch(sims: Sims) -> None:
    _schedule(sims, "crm", [{"match": {"kind": "account"},
                             "fault": {"type": "reject", "field": "name", "equals": "Refused Ltd"}}])
    records = [{"attributes": {"type": "Account"}, "Name": name} for name in ("Fine Co", "Refused Ltd", "Also Fine")]
    with sims.crm() as crm:
        answer = crm.post("/composite/sobjects", json={"allOrNone": False, "records": records}).json()
    assert [r["success"] for r in answer] == [True, False, True]
    assert answer[1]["errors"][0]["statusCode"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert sorted(a["name"] for a in sims.state("crm")["account"]) == ["Also Fine", "Fine Co"]
    assert _rules(sims, "crm")[0]["fired"] == 1


def test_latency_distributions_and_a_slow_body(sims: Sims) -> None:
    _schedule(sims, "crm", [{"match": {"operation": "query"}, "calls": 1, "fault": {"type": "latency", "ms": 300}},
                            {"match": {"operation": "query"}, "on_call": 2, "fault": {"type": "slow_body",
                                                                                      "bytes_per_s": 400}}])
    with sims.crm() as crm:
        started = time.monotonic()
        crm.get("/query", params=ACCOUNT_QUERY)
        delayed = time.monotonic() - started
        started = time.monotonic()
        slow = crm.get("/query", params=ACCOUNT_QUERY)
        streamed = time.monotonic() - started
    assert delayed >= 0.3
    assert slow.json()["totalSize"] == 0 and streamed >= len(slow.content) / 400 * 0.8


def test_the_same_seed_gives_the_same_faults(sims: Sims) -> None:
    rules = [{"match": {"operation": "query"}, "calls": None, "probability": 0.4,
              "fault": {"type": "server_error"}},
             {"match": {"operation": "query"}, "calls": None, "probability": 0.3,
              "fault": {"type": "latency", "min_ms": 1, "max_ms": 20}}]

    def run(seed: int) -> list[tuple[int, str | None]]:
        with sims.admin("crm") as admin:
            admin.delete("/_sim/journal")
        _schedule(sims, "crm", rules, seed)
        with sims.crm() as crm:
            for _ in range(30):
                crm.get("/query", params=ACCOUNT_QUERY)
        return [(e["method"], e["path"], e["query"], e["status"], tuple(e["tags"]), e["fault"])
                for e in _journal(sims, "crm")]

    first, second, other = run(7), run(7), run(8)
    assert first == second and first != other
    assert 3 <= sum(1 for entry in first if entry[3] == 500) <= 25


@pytest.mark.parametrize(("rule", "named"), [
    ({"match": {}, "fault": {"type": "explode"}}, "fault type must be one of"),
    ({"match": {}, "fault": {"type": "latency"}}, "give ms, or min_ms and max_ms"),
    ({"match": {}, "on_call": 0, "fault": {"type": "reset"}}, "on_call must be an integer >= 1"),
    ({"match": {}, "probability": 2, "fault": {"type": "reset"}}, "probability must be a number from 0 to 1"),
    ({"match": {"path": "("}, "fault": {"type": "reset"}}, "match.path is not a regular expression"),
    ({"match": {}, "fault": {"type": "status", "status": 200}}, "status must be an integer from 400 to 599"),
    ({"match": {}, "fault": {"type": "reject", "field": "name", "equals": "x"}}, "needs match.kind"),
    ({"match": {}, "window_s": [5, 1], "fault": {"type": "reset"}}, "window_s must be [from, to]"),
    ({"match": {}, "fault": {"type": "reset", "seconds": 3}}, "a reset fault takes"),
    ({"match": {"kind": "custmer"}, "fault": {"type": "reset"}}, "'custmer' is not a kind of this ERP"),
    ({"match": {"operation": "creat"}, "fault": {"type": "reset"}}, "match.operation must be one of"),
    ({"match": {"kind": "customer"}, "fault": {"type": "reject", "field": "nmae", "equals": "x"}}, "no field 'nmae'"),
    ({"match": {"kind": "customer"}, "calls": 2, "fault": {"type": "reject", "field": "name", "equals": "x"}},
     "a reject fault is a validation rule"),
    ({"match": {}, "fault": {"type": "latency", "ms": 5, "max_ms": 9}}, "give ms, or min_ms and max_ms"),
    ({"match": {}, "for_s": 0, "fault": {"type": "unavailable"}}, "for_s must be seconds"),
    ({"match": {"method": "FETCH"}, "fault": {"type": "reset"}}, "match.method must be one of"),
    ({"match": {"answer": ""}, "fault": {"type": "reset"}}, "must not be empty"),
    ({"match": {}, "window_s": [0, 5], "for_s": 2, "fault": {"type": "reset"}}, "not both"),
    ({"match": {}, "fault": {"type": "timeout", "seconds": 0}}, "seconds must be more than 0"),
])
def test_bad_rules_are_refused_naming_the_problem(sims: Sims, rule: dict[str, Any], named: str) -> None:
    with sims.admin("erp") as admin:
        answer = admin.post("/_sim/faults", json=rule)
        assert answer.status_code == 400 and named in answer.json()["error"]["message"], answer.text
        assert admin.get("/_sim/faults").json()["rules"] == []


def test_a_window_is_shared_by_both_sides_and_reset_clears_the_schedule(sims: Sims) -> None:
    origin = time.time()
    for side in ("crm", "erp"):
        with sims.admin(side) as admin:
            assert admin.put("/_sim/faults", json={"origin": origin, "rules": [
                {"match": {}, "window_s": [0, 1.0], "fault": {"type": "maintenance"}}]}).status_code == 200
    with sims.crm() as crm:
        assert crm.get("/query", params=ACCOUNT_QUERY).status_code == 503
        time.sleep(1.1 - (time.time() - origin))
        assert crm.get("/query", params=ACCOUNT_QUERY).status_code == 200
    with sims.admin("erp") as admin:
        assert admin.post("/_sim/reset").status_code == 200
        assert admin.get("/_sim/faults").json()["rules"] == []


def test_a_for_s_window_opens_at_the_first_matching_call_however_late(sims: Sims) -> None:
    _schedule(sims, "crm", [{"match": {"operation": "query"}, "on_call": 2, "for_s": 1.0,
                             "fault": {"type": "maintenance"}}])
    with sims.crm() as crm:
        time.sleep(1.2)  # nothing opens the window before the connector gets there
        statuses = [crm.get("/query", params=ACCOUNT_QUERY).status_code for _ in range(3)]
        [rule] = _rules(sims, "crm")
        time.sleep(max(0.0, rule["open_until"] - time.time()) + 0.05)
        statuses.append(crm.get("/query", params=ACCOUNT_QUERY).status_code)
    assert statuses == [200, 503, 503, 200]


def test_a_suiteql_query_is_matched_by_the_kind_it_reads(sims: Sims) -> None:
    _schedule(sims, "erp", [{"match": {"kind": "customer", "operation": "query"}, "calls": None,
                             "fault": {"type": "server_error"}}])
    with sims.erp() as erp:
        customers = erp.post("/query/v1/suiteql", json={"q": "SELECT id FROM customer"},
                             headers={"Prefer": "transient"})
        items = erp.post("/query/v1/suiteql", json={"q": "SELECT id FROM item"}, headers={"Prefer": "transient"})
    assert (customers.status_code, items.status_code) == (500, 200)
