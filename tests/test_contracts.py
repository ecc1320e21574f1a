"""The contracts beside the simulators: contact operations answered as documented, record schemas matching the
field maps. (Generated provider verification of every operation is `syncert contracts verify`, tested in
test_contract_verify.py.)
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import positive_data_acceptance

from syncert.contracts import contract_path
from tests.conftest import Sims

EXAMPLES = 30
SKIPPED_CHECKS = [positive_data_acceptance]


def _load(dialect: str) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_path(str(contract_path(dialect, "openapi.yaml")))
    schema.config.generation.update(modes=["positive", "negative"], max_examples=EXAMPLES,
                                    allow_extra_parameters=False)
    # a stale If-Match is refused (412) before the body is read: that is a rejection too
    schema.config.checks.negative_data_rejection.expected_statuses.append("412")
    return schema


netsuite = _load("netsuite")


def test_netsuite_contact_operations_follow_the_contract(sims: Sims) -> None:
    """The contact record through the contract's operations, each answer checked by schemathesis (the generated
    cases above pick record types at random; these cover every contact operation)."""
    customer = sims.seed("erp", {"customer": [{"name": "Acme"}]})["customer"][0]
    target = {"base_url": sims.plain_url("erp"), "headers": {"Authorization": f"Bearer {sims.netsuite_token()}"}}
    records = "/services/rest/record/v1/{recordType}"

    def call(path: str, method: str, **case: Any) -> Response:
        return netsuite[path][method].Case(**case).call_and_validate(**target, excluded_checks=SKIPPED_CHECKS)

    body = {"firstName": "Ann", "lastName": "Lee", "company": {"id": customer}, "title": "CFO"}
    created = call(records, "POST", path_parameters={"recordType": "contact"}, body=body)
    contact = {"recordType": "contact", "id": created.headers["location"][0].rsplit("/", 1)[-1]}
    by_eid = {"recordType": "contact", "externalId": "SF-003"}
    assert call(f"{records}/eid:{{externalId}}", "PUT", path_parameters=by_eid, body=body).status_code == 204
    assert call(f"{records}/eid:{{externalId}}", "PATCH", path_parameters=by_eid,
                body={"email": "ann@acme.example"}).status_code == 204
    assert call(f"{records}/eid:{{externalId}}", "GET", path_parameters=by_eid).json()["email"] == "ann@acme.example"
    assert call(f"{records}/{{id}}", "PATCH", path_parameters=contact, body={"isInactive": True}).status_code == 204
    assert call(f"{records}/{{id}}", "GET", path_parameters=contact).json()["isInactive"] is True
    listed = call(records, "GET", path_parameters={"recordType": "contact"}, query={"q": 'lastName IS "Lee"'})
    assert listed.json()["totalResults"] == 2
    refused = call(records, "POST", path_parameters={"recordType": "contact"}, body={**body, "lastName": "L" * 33})
    assert refused.status_code == 400
    assert call("/services/rest/query/v1/suiteql", "POST", headers={"Prefer": "transient"},
                body={"q": "SELECT id, firstname, company FROM contact"}).json()["count"] == 2
    assert call(f"{records}/eid:{{externalId}}", "DELETE", path_parameters=by_eid).status_code == 204
    assert call(f"{records}/{{id}}", "DELETE", path_parameters=contact).status_code == 204


@pytest.mark.parametrize("dialect", ["salesforce", "netsuite"])
def test_contract_records_match_the_field_map(dialect: str) -> None:
    """The hand-kept OpenAPI record schemas and the field map name the same fields, no more, no less."""
    from syncert.contracts import load_yaml
    from syncert.simulators.dialects.field_map import load_object_maps

    schemas = load_yaml(dialect, "openapi.yaml")["components"]["schemas"]
    for name, object_map in load_object_maps(dialect).items():
        documented = set(schemas[name]["properties"]) - {"attributes", "links"}
        assert documented == set(object_map.fields), f"{dialect} {name}: contract and field map differ"
