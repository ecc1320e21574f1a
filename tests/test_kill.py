"""Killing the connector with SIGKILL at a chosen call (ScenarioRun.cycle_killed_at), in each mode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from syncert.harness.manifest import load_manifest
from syncert.harness.runner import ScenarioInfo, ScenarioRun, ScenarioSetupError
from syncert.simulators.host import SimulatorHost

REFERENCE = Path(__file__).resolve().parent.parent / "connectors" / "reference"
INFO = ScenarioInfo("TEST-KILL", "test", ("accounts",), 4, "kill the connector mid-cycle")
MANIFESTS = {"command": "connector.toml", "service": "connector-service.toml", "python": "connector-python.toml"}


@pytest.fixture(params=["command", "service", "python"])
def run(request: pytest.FixtureRequest, running_host: SimulatorHost) -> Iterator[ScenarioRun]:
    scenario = ScenarioRun(INFO, load_manifest(REFERENCE / MANIFESTS[request.param]), running_host)
    yield scenario
    scenario.close(lambda text: text)


def _linked(run: ScenarioRun) -> bool:
    return all(account.get("erp_customer_id") for account in run.state("crm")["account"])


def test_killed_after_an_applied_write_then_restarted_with_its_state(run: ScenarioRun) -> None:
    point = run.arm_kill("erp", kind="customer", access="write", on_call=1)
    for n in range(3):
        run.seed("crm", {"account": [{"name": f"Killed Customer {n}"}]})
    killed = run.cycle_killed_at(point)
    assert killed.killed_at == "the 1st ERP customer write (applied, its answer held)"
    assert not killed.ok and "killed with SIGKILL" in killed.summary()
    assert run.containment.processes() == []  # the whole process group is gone, nothing left running
    assert run.state("erp")["customer"], "the held write was applied before the kill"
    assert not any(rule["holding"] for rule in run.faults("erp"))
    assert run.run_until(_linked, deadline_s=60), run.evidence.notes
    assert len(run.state("erp")["customer"]) == 3  # the reference's upserts by external id: nothing twice


def test_a_kill_point_the_cycle_never_reaches_is_a_scenario_error(running_host: SimulatorHost) -> None:
    run = ScenarioRun(INFO, load_manifest(REFERENCE / MANIFESTS["command"]), running_host)
    try:
        with pytest.raises(ScenarioSetupError, match="its cycle ended before it got there"):
            run.cycle_killed_at("erp", kind="invoice", access="write")
        assert run.evidence.cycles[-1].ok and run.evidence.cycles[-1].killed_at is None
    finally:
        run.close(lambda text: text)
