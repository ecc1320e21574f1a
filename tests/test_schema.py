"""Each simulator has its own schema: changing one simulator's schema leaves every other one alone."""

from __future__ import annotations

import json

from starlette.datastructures import Headers

from syncert.simulators.domain.kinds import ERP_KINDS
from syncert.simulators.http import ApiRequest
from syncert.simulators.simulator import build_simulator


def _post(sim, path: str, body: bytes):
    request = ApiRequest("POST", path, "", Headers({"content-type": "application/json", "host": "sim"}), body, "http")
    return sim.dialect.handle(request)


def test_two_simulators_have_independent_schemas() -> None:
    drifted = build_simulator("erp", "netsuite", None)
    untouched = build_simulator("erp", "netsuite", None)
    assert drifted.schema is not untouched.schema
    drifted.schema.replace_mapping("customer", "companyName", vendor="companyTitle", length=10)
    drifted.schema.replace_field("customer", "name", length=20)

    refused = _post(drifted, "/services/rest/record/v1/customer", b'{"companyTitle": "A name past ten"}')
    assert refused.status_code == 400
    assert b"at most 10" in refused.body and b"companyTitle" in refused.body
    assert _post(drifted, "/services/rest/record/v1/customer", b'{"companyTitle": "Short"}').status_code == 204
    assert _post(drifted, "/services/rest/record/v1/customer", b'{"companyName": "Old name"}').status_code == 400
    assert drifted.engine.kind("customer").by_name["name"].length == 20

    assert _post(untouched, "/services/rest/record/v1/customer", b'{"companyName": "A name past ten"}'
                 ).status_code == 204
    assert untouched.schema.objects["customer"].fields["companyName"].length == 83
    assert untouched.engine.kind("customer").by_name["name"].length == ERP_KINDS["customer"].by_name["name"].length
    assert "companyTitle" not in untouched.schema.objects["customer"].fields


def test_vendor_length_is_the_dialects_and_the_canonical_limit_is_generic() -> None:
    erp = build_simulator("erp", "netsuite", None)
    assert erp.engine.kind("customer").by_name["name"].length == 255
    refused = _post(erp, "/services/rest/record/v1/customer", b'{"companyName": "' + b"c" * 84 + b'"}')
    assert refused.status_code == 400
    detail = json.loads(refused.body)["o:errorDetails"][0]
    assert detail["o:errorCode"] == "USER_ERROR" and detail["o:errorPath"] == "customer.companyName"
    assert "at most 83" in detail["detail"]
    assert erp.engine.create("customer", {"name": "c" * 84})["name"] == "c" * 84  # other dialects may allow it


def test_limits_belong_to_one_simulator() -> None:
    small = build_simulator("crm", "salesforce", None)
    other = build_simulator("crm", "salesforce", None)
    small.schema.limits["collection_records"] = 1
    records = b'{"records": [{"attributes": {"type": "Account"}, "Name": "A"}, ' \
              b'{"attributes": {"type": "Account"}, "Name": "B"}]}'
    assert _post(small, "/services/data/v59.0/composite/sobjects", records).status_code == 400
    assert _post(other, "/services/data/v59.0/composite/sobjects", records).status_code == 200
    assert other.engine.count("account") == 2 and small.engine.count("account") == 0
