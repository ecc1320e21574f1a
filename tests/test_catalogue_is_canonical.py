"""Scenarios are written once against the canonical domain: no vendor path, status code, vendor field name
or vendor id convention appears in the catalogue's code (the journal's tags and the mapping say it all)."""

from __future__ import annotations

import re
from pathlib import Path

from syncert.contracts import load_yaml
from syncert.harness.catalogue import CATALOGUE, list_scenarios

SCENARIO_FILES = sorted(CATALOGUE.rglob("*.py"))
VENDOR_PATHS = ("/services/", "/record/v1", "sobjects", "suiteql", "/query", "eid:", "SF-", "_sim/")
STATUS_CODE = re.compile(r"(?:status\w*|code)\W[^\n]{0,40}?(?<![\w.-])([1-5]\d\d)(?![\w.])")


def _vendor_field_names() -> set[str]:
    """Vendor names that are not plain words: camelCase, PascalCase compounds, custom `__c` fields."""
    names = set()
    for dialect in ("salesforce", "netsuite"):
        for vendor_object, spec in load_yaml(dialect, "field_map.yaml")["objects"].items():
            names.add(vendor_object)
            for vendor_field, field_spec in spec["fields"].items():
                names.add(vendor_field)
                names.update((field_spec.get("fields") or {}).keys())
    return {n for n in names if "_" in n or re.search(r"[a-z][A-Z]", n)}


def _code(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_scenarios_name_no_vendor_field() -> None:
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, sorted(_vendor_field_names(), key=len, reverse=True)))
                         + r")\b")
    found = {f"{path.relative_to(CATALOGUE)}: {match}" for path in SCENARIO_FILES
             for match in pattern.findall(_code(path))
             if match not in _canonical_names()}
    assert not found, f"scenarios name vendor fields: {sorted(found)}"


def _canonical_names() -> set[str]:
    from syncert.simulators.domain.kinds import CRM_KINDS, ERP_KINDS

    names = {name for kinds in (CRM_KINDS, ERP_KINDS) for name in kinds}
    for kinds in (CRM_KINDS, ERP_KINDS):
        for kind in kinds.values():
            names.update(f.name for f in kind.fields)
            for f in kind.fields:
                names.update(line.name for line in f.line_fields)
    return names


def test_scenarios_name_no_vendor_path_or_id_convention() -> None:
    found = [f"{path.relative_to(CATALOGUE)}: {fragment}" for path in SCENARIO_FILES for fragment in VENDOR_PATHS
             if fragment in _code(path)]
    assert not found, f"scenarios name vendor paths or id conventions: {found}"


def test_scenarios_name_no_status_code() -> None:
    found = [f"{path.relative_to(CATALOGUE)}: {code}" for path in SCENARIO_FILES
             for code in STATUS_CODE.findall(_code(path))]
    assert not found, f"scenarios name HTTP status codes (use the journal's tags): {found}"


def test_the_canonical_check_would_catch_a_vendor_name() -> None:
    names = _vendor_field_names()
    assert {"ERP_Customer_Id__c", "companyName", "StageName", "quantityAvailable"} <= names
    assert STATUS_CODE.findall('if entry["status"] == 429:') == ["429"]
    assert STATUS_CODE.findall("response.status_code in (401, 403)")
    assert not STATUS_CODE.findall('sku = "W-100"; credit_limit="500"; status = "billed"; total = 200.5')


def test_the_catalogue_has_the_unit_and_end_to_end_scenarios_it_promises() -> None:
    entries = list_scenarios()
    by_category = {category: [e["id"] for e in entries if e["category"] == category]
                   for category in ("unit", "end_to_end")}
    assert len(by_category["unit"]) >= 15 and len(by_category["end_to_end"]) >= 12, by_category
    assert all(e["intent"] and 1 <= e["level"] <= 4 for e in entries)
    assert len({e["id"] for e in entries}) == len(entries), "scenario ids must be unique"


def test_the_readme_lists_every_scenario_and_the_defect_it_catches() -> None:
    import sys

    root = CATALOGUE.parent
    sys.path.insert(0, str(root / "connectors" / "flawed"))
    from run_flawed import DEFECTS

    readme = (root / "README.md").read_text(encoding="utf-8")
    missing = [entry["id"] for entry in list_scenarios() if f"| {entry['id']} |" not in readme]
    missing += [defect for defect in DEFECTS if f"`{defect}`" not in readme]
    assert not missing, f"README's catalogue table lacks: {missing}"


def test_the_protocol_levels_table_lists_every_scenario() -> None:
    protocol = (CATALOGUE.parent / "docs" / "protocol.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(): line for line in protocol.splitlines()
            if re.match(r"^\| [1-4] \| ", line)}
    missing = [e["id"] for e in list_scenarios() if f"{e['id']} (" not in rows.get(str(e["level"]), "")]
    assert not missing, f"docs/protocol.md's levels table lacks: {missing}"


def test_scenarios_import_the_installed_package_only() -> None:
    # `scenarios.x` resolves in a checkout only; an installed syncert has `syncert.scenarios.x`
    found = [f"{path.relative_to(CATALOGUE)}: {line.strip()}" for path in SCENARIO_FILES
             for line in _code(path).splitlines()
             if re.match(r"\s*(from|import) (scenarios|harness|simulators|connectors|contracts)\b", line)]
    assert not found, f"imports that only work in a checkout: {found}"
