"""Level-4 scenarios: credentials rotated between two runs; servers whose certificates the connector must not trust."""

from __future__ import annotations

from typing import Any

from syncert.harness.checks import stale_credential_refusals
from syncert.harness.control import SIDES
from syncert.harness.pytest_plugin import scenario
from syncert.harness.runner import ConnectorFailed, ScenarioRun
from syncert.scenarios.setups import assert_converges, require


def _described(entries: list[dict[str, Any]]) -> str:
    return "; ".join(f"{'/'.join(e['tags'])} {e['operation'] or ''} {e['kind'] or ''}".strip() for e in entries[:3])


@scenario(id="ERR-ROTATE-01", category="error_injection", flows=("accounts",), level=4,
          intent="Credentials rotated between two runs (every old credential and token revoked): the next run "
                 "syncs the users' new work with the new credentials, and nothing is refused for using old ones")
def test_credentials_rotated_between_runs(sync: ScenarioRun) -> None:
    before = sync.seed("crm", {"account": [{"name": f"Before Rotation {n}"} for n in range(3)]})["account"]
    assert_converges(sync, "accounts", stage="before the credentials were rotated")
    rotated_at = sync.rotate_credentials()
    sync.edit("crm", "account", before[0], {"phone": "+1 415 555 0142"})
    sync.seed("crm", {"account": [{"name": f"After Rotation {n}"} for n in range(3)]})
    sync.run_until(lambda s: s.reconcile("accounts").all_synced)
    result = sync.reconcile("accounts")
    refused = {side: stale_credential_refusals(sync.journal(side), rotated_at) for side in SIDES}
    sync.record_check("requests after the rotation", {f"{side}_refused_for_old_credentials": len(entries)
                                                      for side, entries in refused.items()})
    failed = [c.summary() for c in sync.evidence.cycles if not c.ok]
    assert not failed, f"cycles failed after the credentials were rotated (old credentials kept?): {failed[:3]}"
    for side, entries in refused.items():
        assert not entries, (f"the {side.upper()} refused {len(entries)} request(s) sent after the rotation with "
                             f"credentials it no longer issued (first: {_described(entries)})")
    assert result.all_synced, f"after the credentials were rotated: {result.explain()}"


@scenario(id="ERR-TLS-01", category="error_injection", flows=("accounts",), level=4,
          intent="Servers whose certificates come from a CA the connector was not given: not one request (not even "
                 "a login) reaches them, so no credential leaves the connector, and the cycle fails loudly")
def test_untrusted_certificate_authority(sync: ScenarioRun) -> None:
    sync.serve_tls(trusted=False)
    require(all(sync.tls_answers(side) for side in SIDES),
            "the simulators' HTTPS listeners do not answer a client that trusts their CA")
    require(not any(sync.tls_answers(side, sync.env["SYNCERT_CA_BUNDLE"]) for side in SIDES),
            "the CA bundle given to the connector verifies the simulators' certificates")
    ids = sync.seed("crm", {"account": [{"name": f"Untrusted Link {n}"} for n in range(3)]})["account"]
    failed = []
    try:
        sync.run_until(lambda s: any(s.journal(side) for side in SIDES), deadline_s=60, max_cycles=1)
    except ConnectorFailed as failure:  # a service that says from the start that it cannot sync never gets ready
        failed.append(str(failure))
    require(all(sync.tls_answers(side) for side in SIDES), "the simulators' HTTPS listeners stopped during the cycle")
    reached = {side: sync.journal(side) for side in SIDES}
    failed += [c.summary() for c in sync.evidence.cycles if not c.ok]
    given_up = {letter["source_id"] for letter in sync.workspace.dead_letters()}
    sync.record_check("connections to untrusted servers", {
        **{f"{side}_requests_received": len(entries) for side, entries in reached.items()},
        "failed_cycles": len(failed), "accounts_dead_lettered": len(given_up & set(ids))})
    for side, entries in reached.items():
        assert not entries, (f"{len(entries)} request(s) reached the {side.upper()} although its certificate does not "
                             f"verify against SYNCERT_CA_BUNDLE (first: {_described(entries)}): certificate "
                             "verification is off, or another trust store was used")
    assert failed or set(ids) <= given_up, (
        "the connector could not reach either system, yet no cycle failed and its accounts were not dead-lettered: "
        "a silent failure")
