"""`syncert contracts verify`: provider verification with schemathesis, JUnit out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from syncert.contracts import load_yaml
from syncert.simulators.host import run_in_background


def _verify(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "syncert", "contracts", "verify", *arguments],
                          capture_output=True, text=True, timeout=600)


def _cases(junit: Path) -> tuple[int, int]:
    suite = ElementTree.parse(junit).getroot().find("testsuite")
    assert suite is not None
    return int(suite.get("tests", "0")), int(suite.get("failures", "0")) + int(suite.get("errors", "0"))


@pytest.mark.parametrize("dialect", ["salesforce", "netsuite"])
def test_each_simulator_verifies_against_its_contract(dialect: str, tmp_path: Path) -> None:
    """Valid and invalid data for every operation, schema-valid requests accepted (contract_checks)."""
    junit = tmp_path / f"{dialect}.xml"
    finished = _verify(dialect, "--max-examples", "10", "--seed", "1", "--junit", str(junit))
    operations = sum(len([m for m in item if m in ("get", "post", "put", "patch", "delete")])
                     for item in load_yaml(dialect, "openapi.yaml")["paths"].values())
    assert finished.returncode == 0, finished.stdout[-3000:]
    assert _cases(junit) == (operations + 1, 0)  # and one case for the stateful phase (links between operations)


def test_a_server_that_does_not_speak_the_contract_fails_with_the_operations_named(tmp_path: Path) -> None:
    junit = tmp_path / "wrong.xml"
    with run_in_background(memory=True) as host:  # NetSuite's simulator is no Salesforce
        finished = _verify("salesforce", "--url", host.url("erp"), "--header", "Authorization: Bearer not-a-token",
                           "--max-examples", "2", "--seed", "1", "--junit", str(junit))
    tests, failed = _cases(junit)
    assert finished.returncode == 1 and failed > 0 and tests > failed / 2, finished.stdout[-2000:]
    assert "/services/data/{version}/sobjects/{sobject}" in junit.read_text()
    assert "not-a-token" not in junit.read_text() + finished.stdout


def test_usage_errors_are_named() -> None:
    no_colon = _verify("netsuite", "--url", "http://127.0.0.1:9", "--header", "Authorization Bearer x")
    header_alone = _verify("netsuite", "--header", "Authorization: Bearer x")
    assert no_colon.returncode == 2 and "is not 'Name: value'" in no_colon.stderr
    assert header_alone.returncode == 2 and "--header goes with --url" in header_alone.stderr
    assert "Traceback" not in no_colon.stderr + header_alone.stderr
