"""What `syncert contracts verify` adds to schemathesis for the vendors' contracts.

Query languages. The contracts name each query parameter's language by `format` (`soql`, `suiteql`,
`netsuite-record-query`) beside a pattern for its skeleton; schemathesis generates instances of those formats
here, over the objects and fields of the dialect's field map, so a generated query is one the vendor runs.

Acceptance. schemathesis's `positive_data_acceptance` fails any schema-valid request the server refuses with
400. A few refusals of the vendors depend on what no request schema can state, and `accepted_or_explained`
(which replaces it) accepts exactly those, each named below with the vendor's error code and the condition
under which it is explained; every other 400 to a schema-valid request fails:
  state        the value is valid, but the org's records make it wrong (a duplicate of a unique value, a
               reference or a query cursor that does not exist, credentials that are not the org's)
  cross-field  two parts of one request disagree (a body that is a record of another type than the path names,
               the external-id field of the path repeated in the body, an end date before the start)
  upsert       a field required to create a record, missing from an upsert that found none to update

Batches. A collection call refuses invalid records one by one in a 200 answer (Salesforce's composite
sObject collections): for those operations `refused_per_record` stands in for `negative_data_rejection`
(`PER_RECORD_OPERATIONS`).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import schemathesis
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from schemathesis import Case, CheckContext, Response
from schemathesis.core.failures import Failure

from syncert.contracts import load_yaml
from syncert.harness.conformance import rule_broken

_WORD = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
_SCALAR_TYPES = {"id", "string", "textarea", "phone", "url", "email", "picklist", "reference", "number", "boolean",
                 "currency", "double", "percent", "date", "datetime"}
_TEXT_TYPES = {"string", "textarea", "phone", "url", "email"}


@cache
def _salesforce_fields() -> dict[str, tuple[list[str], list[str]]]:
    """sObject -> (queryable field names, text field names), from the field map."""
    objects = load_yaml("salesforce", "field_map.yaml")["objects"]
    return {name: ([field for field, spec in obj["fields"].items() if spec["type"] in _SCALAR_TYPES],
                   [field for field, spec in obj["fields"].items() if spec["type"] in _TEXT_TYPES])
            for name, obj in objects.items()}


@cache
def _suiteql_tables() -> dict[str, tuple[list[str], list[str]]]:
    """SuiteQL table -> (columns, text columns) of the record types it holds alone (`transaction` keeps `id`)."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for obj in load_yaml("netsuite", "field_map.yaml")["objects"].values():
        if obj.get("suiteql_table"):
            tables.setdefault(obj["suiteql_table"], []).append(obj["fields"])
    shaped = {}
    for table, field_sets in tables.items():
        fields = field_sets[0] if len(field_sets) == 1 else {"id": {"type": "id"}}
        columns = [name.lower() for name, spec in fields.items() if spec["type"] in _SCALAR_TYPES]
        shaped[table] = (columns, [name.lower() for name, spec in fields.items() if spec["type"] == "string"])
    return shaped


@st.composite
def soql(draw: Any) -> str:
    """A SOQL query over one served sObject: fields, an optional filter on a text field, order and limit."""
    name, (fields, texts) = draw(st.sampled_from(sorted(_salesforce_fields().items())))
    chosen = draw(st.lists(st.sampled_from(fields), min_size=1, max_size=4, unique=True))
    query = f"SELECT {', '.join(chosen)} FROM {name}"
    if texts and draw(st.booleans()):
        query += f" WHERE {draw(st.sampled_from(texts))} = '{draw(_WORD)}'"
    if draw(st.booleans()):
        query += f" ORDER BY {draw(st.sampled_from(fields))}"
    if draw(st.booleans()):
        query += f" LIMIT {draw(st.integers(1, 2000))}"
    return query


@st.composite
def suiteql(draw: Any) -> str:
    """A SuiteQL query over one table: columns, an optional filter on a text column, order."""
    table, (columns, texts) = draw(st.sampled_from(sorted(_suiteql_tables().items())))
    chosen = draw(st.lists(st.sampled_from(columns), min_size=1, max_size=4, unique=True))
    query = f"SELECT {', '.join(chosen)} FROM {table}"
    if texts and draw(st.booleans()):
        query += f" WHERE {draw(st.sampled_from(texts))} = '{draw(_WORD)}'"
    if draw(st.booleans()):
        query += f" ORDER BY {draw(st.sampled_from(columns))}"
    return query


@st.composite
def netsuite_record_query(draw: Any) -> str:
    """A record-collection filter every record type takes: on its id, or on when it was last modified."""
    ids = draw(st.lists(st.integers(1, 10_000), min_size=1, max_size=3))
    by_id = f"id ANY_OF [{', '.join(map(str, ids))}]"
    since = f'lastModifiedDate ON_OR_AFTER "{draw(st.integers(1, 12))}/{draw(st.integers(1, 28))}/2024"'
    return draw(st.sampled_from([by_id, since, f"{since} AND {by_id}"]))


@st.composite
def sobject_field_list(draw: Any) -> str:
    """A comma-separated list of fields of the served sObjects (which of them the path's sObject has varies)."""
    names = sorted({name for fields, _ in _salesforce_fields().values() for name in fields})
    return ",".join(draw(st.lists(st.sampled_from(names), min_size=1, max_size=4, unique=True)))


def register_formats() -> None:
    """Teach schemathesis to generate the query languages the contracts name by format."""
    schemathesis.openapi.format("soql", soql())
    schemathesis.openapi.format("sobject-field-list", sobject_field_list())
    schemathesis.openapi.format("suiteql", suiteql())
    schemathesis.openapi.format("netsuite-record-query", netsuite_record_query())


def _errors(response: Response) -> list[dict[str, Any]]:
    """The vendor errors of an answer, as {code, fields}: Salesforce's list, NetSuite's o:errorDetails, OAuth's."""
    try:
        body = json.loads(response.content or b"null")
    except ValueError:
        return []
    if isinstance(body, list):
        return [{"code": e.get("errorCode"), "fields": e.get("fields") or [], "message": str(e.get("message"))}
                for e in body if isinstance(e, dict)]
    if isinstance(body, dict) and "o:errorDetails" in body:
        return [{"code": e.get("o:errorCode"), "fields": [e["o:errorPath"]] if e.get("o:errorPath") else [],
                 "message": str(e.get("detail"))} for e in body["o:errorDetails"] if isinstance(e, dict)]
    if isinstance(body, dict) and "error" in body:
        return [{"code": body["error"], "fields": [], "message": str(body.get("error_description"))}]
    return []


_STATE_CODES = {
    "DUPLICATE_VALUE": "a unique field already holds this value in another record",
    "DUP_RCRD": "a unique field already holds this value in another record",
    "INVALID_CROSS_REFERENCE_KEY": "a reference to a record that does not exist",
    "INVALID_KEY_OR_REF": "a reference to a record that does not exist",
    "INVALID_QUERY_LOCATOR": "a query cursor that does not exist or has expired",
    "INVALID_REPLICATION_DATE": "an end date before the start date",
    "invalid_client_id": "a client that is not the org's",
    "invalid_client": "a client that is not the org's",
    "invalid_grant": "credentials that are not the org's",
}


def explained(case: Case, response: Response) -> str | None:
    """Why the vendor refused this schema-valid request although its schema holds, or None if nothing does."""
    errors = _errors(response)
    if not errors:
        return None
    reasons = [_explanation(case, error) for error in errors]
    return None if any(reason is None for reason in reasons) else "; ".join(dict.fromkeys(reasons))  # type: ignore


def _explanation(case: Case, error: dict[str, Any]) -> str | None:
    code, fields = error["code"], error["fields"]
    if code == "USER_ERROR" and error["message"].startswith("Please enter value(s) for"):
        code = "REQUIRED_FIELD_MISSING"  # NetSuite's words for it
    if code in _STATE_CODES:
        return f"{code}: {_STATE_CODES[code]}"
    parameters = case.path_parameters or {}
    record_type = parameters.get("sobject") or parameters.get("recordType")
    cross_type_codes = ("INVALID_FIELD", "REQUIRED_FIELD_MISSING", "INVALID_TYPE")
    if code in cross_type_codes and record_type and _of_another_type(case, str(record_type), fields):
        return f"{code}: the request names fields or a record of another type than {record_type}"
    if code == "INVALID_FIELD" and fields and set(fields) == {parameters.get("externalIdField")}:
        return "INVALID_FIELD: the external-id field of the path repeated in the body"
    if code == "REQUIRED_FIELD_MISSING" and case.operation.definition.raw.get("operationId") == "upsertRecord":
        return "REQUIRED_FIELD_MISSING: an upsert that created the record lacked a field creation requires"
    if code == "INVALID_FLD_VALUE" and fields == ["externalId"] and "externalId" in parameters:
        return "INVALID_FLD_VALUE: an externalId in the body other than the path's"
    return None


def _of_another_type(case: Case, record_type: str, fields: list[str]) -> bool:
    """Whether the body is valid only as a record of another type than the path's, or the fields refused are all
    fields of other types (the schemas of a body and of a field list cannot depend on the path)."""
    document = case.operation.schema.raw_schema
    schemas = document.get("components", {}).get("schemas", {})
    if record_type not in schemas:
        return False
    if isinstance(case.body, dict):
        schema: dict[str, Any] = {"$ref": f"#/components/schemas/{record_type}"}
        if case.operation.definition.raw.get("operationId") == "createRecord":
            schema = next((branch for branch in schemas.get("NewRecord", {}).get("anyOf", [])
                           if branch["allOf"][0]["$ref"].endswith(f"/{record_type}")), schema)
        if not Draft202012Validator({**schema, "components": document["components"]}).is_valid(case.body):
            return True
    own = set(schemas[record_type].get("properties", {}))
    others = {name for kind, schema in schemas.items() if kind != record_type and isinstance(schema, dict)
              for name in schema.get("properties", {})}
    return bool(fields) and all(field not in own and field in others for field in fields)


@schemathesis.check
def accepted_or_explained(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """A schema-valid request is accepted, unless refused for a reason no request schema can state (above)."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return None
    if not _schema_valid(case, response):
        return None  # e.g. a request built from a link found in an answer (a URL template): not schema-valid data
    if explained(case, response) is None:
        raise Failure(operation=case.operation.label, title="Schema-valid request refused",
                      message=f"400 to a request the contract allows: {response.content[:300]!r}")
    return None


def _schema_valid(case: Case, response: Response) -> bool:
    """Whether the request sent is valid against its contract (syncert's own traffic conformance judges it)."""
    sent = response.request
    url = urlsplit(str(sent.url))
    body = sent.body.decode("utf-8", "replace") if isinstance(sent.body, bytes) else (sent.body or "")
    dialect = "salesforce" if "/services/data" in url.path or "/services/oauth2" in url.path else "netsuite"
    return rule_broken(dialect, str(sent.method), url.path, url.query, sent.headers.get("content-type", ""),
                       body) is None


PER_RECORD_OPERATIONS = ("createCollection", "updateCollection", "deleteCollection", "upsertCollection")


@schemathesis.check
def refused_per_record(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """A collection call given invalid data refuses it: an error status, or a 200 with records refused one by one."""
    meta = case.meta
    operation_id = case.operation.definition.raw.get("operationId")
    if meta is None or meta.generation.mode.is_positive or operation_id not in PER_RECORD_OPERATIONS:
        return None
    if not 200 <= response.status_code < 300:
        return None
    try:
        results = json.loads(response.content or b"null")
    except ValueError:
        results = None
    if isinstance(results, list) and any(isinstance(r, dict) and r.get("success") is False for r in results):
        return None
    raise Failure(operation=case.operation.label, title="Invalid records accepted",
                  message=f"{response.status_code} and no record refused: {response.content[:300]!r}")
