"""The harness's serve_tls() and rotate_credentials(), with a probe connector (tests/connectors/envprobe.py) that
notes what each of its runs was given and whether it could log in, in command, service and python modes."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from syncert.harness.checks import stale_credential_refusals
from syncert.harness.manifest import load_manifest
from syncert.harness.runner import ScenarioInfo, ScenarioRun
from syncert.simulators.host import SimulatorHost, run_in_background

PROBE = Path(__file__).resolve().parent / "connectors" / "envprobe.py"
RUN = {"command": 'mode = "command"\ncommand = ["python", "envprobe.py", "sync"]',
       "service": 'mode = "service"\ncommand = ["python", "envprobe.py", "serve"]',
       "failing-service": 'mode = "service"\ncommand = ["python", "envprobe.py", "serve-failing"]',
       "python": 'mode = "python"\nentrypoint = "envprobe:Probe"'}


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorHost]:
    with run_in_background(data_dir=tmp_path_factory.mktemp("sim"), memory=True) as running:
        yield running


def _run(host: SimulatorHost, directory: Path, mode: str = "command") -> ScenarioRun:
    shutil.copy(PROBE, directory / "envprobe.py")
    manifest = directory / f"probe-{mode}.toml"
    manifest.write_text('name = "probe"\nversion = "0"\ncrm = "salesforce"\nerp = "netsuite"\nflows = ["accounts"]\n'
                        f"\n[run]\n{RUN[mode]}\ntimeout_s = 20\n")
    return ScenarioRun(ScenarioInfo("TEST-PROBE-01", "error_injection", ("accounts",), 4, "probe"),
                       load_manifest(manifest), host)


def _runs(run: ScenarioRun) -> list[dict]:
    return [json.loads(line) for line in (run.workspace.state_dir / "runs.jsonl").read_text().splitlines()]


def _tls_enabled(host: SimulatorHost) -> list[bool]:
    admin = {"Authorization": f"Bearer {host.admin_token}"}
    return [httpx.get(f"{host.sides[side].listener.url}/_sim/tls", headers=admin, timeout=10).json()["enabled"]
            for side in ("crm", "erp")]


def test_serve_tls_points_the_connector_at_https_with_the_simulators_ca(host: SimulatorHost, tmp_path: Path) -> None:
    run = _run(host, tmp_path)
    try:
        run.serve_tls()
        assert run.cycle().ok
        [probe] = _runs(run)
        assert probe["crm_url"].startswith("https://") and probe["login"] == "ok"
        assert probe["ca_bundle"] == str(host.ca_bundle)
        assert run.tls_answers("crm") and run.tls_answers("erp")
    finally:
        run.close(str)
    assert _tls_enabled(host) == [False, False], "the HTTPS listeners must stop with the scenario"


def test_untrusted_tls_gives_another_ca_that_refuses_the_servers(host: SimulatorHost, tmp_path: Path) -> None:
    run = _run(host, tmp_path)
    try:
        run.serve_tls(trusted=False)
        assert run.cycle().ok
        [probe] = _runs(run)
        assert probe["login"] == "certificate refused" and probe["ca_bundle"] != str(host.ca_bundle)
        assert run.tls_answers("crm") and not run.tls_answers("crm", probe["ca_bundle"])
        assert run.journal("crm") == [], "a refused handshake sends no request"
    finally:
        run.close(str)
    assert _tls_enabled(host) == [False, False]


def test_serve_tls_after_the_connector_ran_is_a_setup_error(host: SimulatorHost, tmp_path: Path) -> None:
    run = _run(host, tmp_path)
    try:
        run.cycle()
        with pytest.raises(RuntimeError, match="before the connector's first cycle"):
            run.serve_tls()
    finally:
        run.close(str)


@pytest.mark.parametrize("mode", ["command", "service", "python"])
def test_rotated_credentials_reach_the_next_run_and_revoke_the_old(host: SimulatorHost, tmp_path: Path,
                                                                    mode: str) -> None:
    run = _run(host, tmp_path, mode)
    try:
        run.serve_tls()
        assert run.cycle().ok
        before = dict(run.env)
        rotated_at = run.rotate_credentials()
        assert run.cycle().ok
        first, second = _runs(run)  # the state dir outlived the rotation
        assert first["client_id"] != second["client_id"] and second["login"] == "ok"
        assert second["crm_url"].startswith("https://"), "the rotation must keep the HTTPS URLs"
        if mode != "command":
            assert first["pid"] != second["pid"], "the long-running process must start again with the new credentials"
        if mode == "service":
            output = run.collect().service_output
            assert output is not None and all(f"process {probe['pid']}" in output[0] for probe in (first, second))
        old_login = httpx.post(f"{host.sides['crm'].listener.url}/services/oauth2/token", timeout=10,
                               data={"grant_type": "client_credentials"},
                               auth=(before["SYNCERT_CRM_CLIENT_ID"], before["SYNCERT_CRM_CLIENT_SECRET"]))
        assert old_login.status_code == 400, "the credentials of the first run must be revoked"
        assert any(entry["started_at"] >= rotated_at and "ok" in entry["tags"] for entry in run.journal("crm"))
        issued = run.issued_secrets()
        assert first["client_id"] in issued and second["client_id"] in issued
    finally:
        run.close(str)


def test_a_service_whose_health_says_it_cannot_sync_fails_its_cycle(host: SimulatorHost, tmp_path: Path) -> None:
    run = _run(host, tmp_path, "failing-service")
    try:
        result = run.cycle()
        assert not result.ok and "answered 503" in result.summary() and "certificate refused" in result.summary()
    finally:
        run.close(str)


def test_credential_refusals_after_a_rotation_beyond_one_stale_session() -> None:
    def entry(started: float, *tags: str) -> dict:
        return {"started_at": started, "ended_at": started + 0.1, "tags": list(tags)}
    stale_session = [entry(9, "auth"), entry(10, "auth"), entry(10.05, "auth"), entry(10.1, "token", "ok"),
                     entry(10.3, "read", "ok"), entry(11, "write", "ok")]
    assert stale_credential_refusals(stale_session, since=10) == []
    old_credentials = [entry(10, "token", "refused"), entry(11, "auth"), entry(12, "read", "ok"), entry(13, "auth")]
    assert stale_credential_refusals(old_credentials, since=10) == [old_credentials[0], old_credentials[3]]
    never_working = [entry(10, "auth"), entry(11, "auth")]
    assert stale_credential_refusals(never_working, since=10) == never_working
