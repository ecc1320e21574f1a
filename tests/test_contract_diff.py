"""`syncert contracts diff`: changes between OpenAPI documents, classified for the clients of the API."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from syncert.harness.contract_diff import breaking, diff_contracts, load_contract, render

ROOT = Path(__file__).resolve().parent.parent
NETSUITE = ROOT / "contracts" / "netsuite" / "openapi.yaml"


@pytest.fixture(scope="module")
def netsuite() -> dict[str, Any]:
    return load_contract(NETSUITE)


def _customer(document: dict[str, Any]) -> dict[str, Any]:
    return document["components"]["schemas"]["customer"]


def _kinds(document: dict[str, Any], changed: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(c.severity, c.kind, c.location) for c in diff_contracts(document, changed)]


def test_a_document_against_itself_has_no_change(netsuite: dict[str, Any]) -> None:
    assert diff_contracts(netsuite, copy.deepcopy(netsuite)) == []


def test_a_renamed_field_is_one_rename_per_direction_not_a_removal_and_an_addition(netsuite: dict[str, Any]) -> None:
    renamed = copy.deepcopy(netsuite)
    properties = _customer(renamed)["properties"]
    properties["legalName"] = properties.pop("companyName")
    assert _kinds(netsuite, renamed) == [
        ("error", "property-renamed", "components.schemas.customer (in requests).companyName"),
        ("error", "property-renamed", "components.schemas.customer (in responses).companyName")]
    assert "renamed to legalName" in diff_contracts(netsuite, renamed)[0].message


def test_additive_changes_are_not_breaking(netsuite: dict[str, Any]) -> None:
    added = copy.deepcopy(netsuite)
    _customer(added)["properties"]["custentity_region"] = {"type": ["string", "null"], "maxLength": 40}
    _customer(added)["properties"]["email"]["maxLength"] = 300
    changes = diff_contracts(netsuite, added)
    assert changes and not breaking(changes)
    assert {c.kind for c in changes} == {"request-property-added", "response-property-added", "maxLength-loosened"}


@pytest.mark.parametrize(("change", "kind"), [
    (lambda c: c["properties"]["email"].update(maxLength=20), "maxLength-tightened"),
    (lambda c: c["properties"]["creditLimit"].update(type=["string", "null"]), "type-changed"),
    (lambda c: c.setdefault("required", []).append("email"), "request-property-became-required"),
    (lambda c: c["properties"].pop("email"), "response-property-removed"),
])
def test_breaking_changes_are_errors(netsuite: dict[str, Any], change: Any, kind: str) -> None:
    drifted = copy.deepcopy(netsuite)
    change(_customer(drifted))
    assert ("error", kind) in {(c.severity, c.kind) for c in diff_contracts(netsuite, drifted)}


def test_a_new_picklist_value_in_answers_is_a_warning(netsuite: dict[str, Any]) -> None:
    drifted = copy.deepcopy(netsuite)
    _customer(drifted)["properties"]["creditHoldOverride"]["properties"]["id"]["enum"].append("REVIEW")
    changes = {(c.severity, c.kind, c.location.split(" (")[1].split(")")[0]) for c in diff_contracts(netsuite, drifted)}
    assert changes == {("warning", "enum-value-added", "in responses"), ("info", "enum-value-added", "in requests")}


def test_a_removed_operation_and_a_withdrawn_scope_are_errors(netsuite: dict[str, Any]) -> None:
    drifted = copy.deepcopy(netsuite)
    drifted["paths"].pop(next(path for path in drifted["paths"] if "query" in path))
    drifted["components"]["securitySchemes"]["narrow"] = {"type": "oauth2", "flows": {}}
    original = copy.deepcopy(netsuite)
    original["components"]["securitySchemes"]["narrow"] = {"type": "oauth2", "flows": {"clientCredentials": {
        "tokenUrl": "/token", "scopes": {"rest_webservices": "REST", "restlets": "RESTlets"}}}}
    kinds = {(c.severity, c.kind) for c in diff_contracts(original, drifted)}
    assert {("error", "operation-removed"), ("error", "scope-removed")} <= kinds


def test_the_command_exits_1_on_breaking_0_on_additive_2_on_unreadable(tmp_path: Path,
                                                                      netsuite: dict[str, Any]) -> None:
    renamed, added = copy.deepcopy(netsuite), copy.deepcopy(netsuite)
    properties = _customer(renamed)["properties"]
    properties["legalName"] = properties.pop("companyName")
    _customer(added)["properties"]["custentity_region"] = {"type": ["string", "null"]}
    for name, document in (("renamed", renamed), ("added", added)):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(document))
    (tmp_path / "broken.yaml").write_text("openapi: [")

    def diff(new: str, *options: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "syncert", "contracts", "diff", str(NETSUITE),
                               str(tmp_path / new), *options], capture_output=True, text=True, timeout=120)

    breaking_run, additive_run, broken_run = diff("renamed.yaml", "--format", "json"), diff("added.yaml"), \
        diff("broken.yaml")
    assert breaking_run.returncode == 1 and json.loads(breaking_run.stdout)["counts"]["error"] == 2
    assert additive_run.returncode == 0 and "0 breaking" in additive_run.stdout
    assert broken_run.returncode == 2 and "broken.yaml: not YAML or JSON" in broken_run.stderr
    assert "Traceback" not in broken_run.stderr


def test_markdown_is_a_table(netsuite: dict[str, Any]) -> None:
    drifted = copy.deepcopy(netsuite)
    _customer(drifted)["properties"].pop("email")
    text = render(diff_contracts(netsuite, drifted), "markdown", "old.yaml", "new.yaml")
    assert "| severity | change | where | what |" in text and "| error | response-property-removed |" in text
