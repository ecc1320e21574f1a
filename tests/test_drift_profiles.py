"""Drift profiles (contracts/drift/): each is defined once; its drifted document is classified by
`syncert contracts diff` as the profile says, and a bad profile is refused naming its file and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncert.contracts import load_yaml
from syncert.harness.contract_diff import breaking, diff_contracts
from syncert.simulators.drift.profiles import KINDS, ProfileError, load_profile, load_profiles

PROFILES = load_profiles()


def test_there_is_a_profile_of_every_kind() -> None:
    assert {p.kind for p in PROFILES.values()} == set(KINDS)


@pytest.mark.parametrize("profile_id", sorted(PROFILES))
def test_the_drifted_document_is_classified_as_the_profile_says(profile_id: str) -> None:
    profile = PROFILES[profile_id]
    base = load_yaml(profile.dialect, "openapi.yaml")
    changes = diff_contracts(base, profile.drifted_document(base))
    assert breaking(changes) == profile.breaking, [c.text() for c in changes]
    if profile.kind == "field_renamed":
        assert {c.kind for c in changes} == {"property-renamed"}  # one change, not a removal and an addition


@pytest.mark.parametrize(("text", "named"), [
    ("id: other\n", "id must be the file's name"),
    ("id: bad\ntitle: t\ndialect: sap\nkind: field_removed\nchanges: [{op: remove_field}]\n"
     "expect: {breaking: true, connector: tolerate}\n", "dialect must be one of"),
    ("id: bad\ntitle: t\ndialect: netsuite\nkind: field_removed\nchanges: [{op: explode}]\n"
     "expect: {breaking: true, connector: tolerate}\n", "op must be one of"),
    ("id: bad\ntitle: t\ndialect: netsuite\nkind: field_removed\nchanges: [{op: remove_field, object: customer, "
     "field: nmae}]\nexpect: {breaking: true, connector: tolerate}\n", "customer has no field 'nmae'"),
    ("id: bad\ntitle: t\ndialect: netsuite\nkind: field_removed\nchanges: [{op: remove_field, object: customer, "
     "field: phone, colour: red}]\nexpect: {breaking: true, connector: tolerate}\n", "not ['colour']"),
])
def test_a_bad_profile_is_refused_naming_the_problem(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ProfileError, match=r"bad\.yaml") as refused:
        load_profile(path)
    assert named in str(refused.value)
