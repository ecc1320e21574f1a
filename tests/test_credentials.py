"""Credentials per scenario: rotation revokes the old ones, every secret issued is listed, sessions expire on cue."""

from __future__ import annotations

import httpx
import pytest
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256, Client

from tests.conftest import Sims

SF_LIMITS = "/services/data/v59.0/limits"
NS_CUSTOMERS = "/services/rest/record/v1/customer"


def _salesforce_login(sims: Sims, env: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{sims.plain_url('crm')}/services/oauth2/token",
                      data={"grant_type": "password", "client_id": env["SYNCERT_CRM_CLIENT_ID"],
                            "client_secret": env["SYNCERT_CRM_CLIENT_SECRET"],
                            "username": env["SYNCERT_CRM_USERNAME"], "password": env["SYNCERT_CRM_PASSWORD"]})


def _bearer_get(url: str, token: str) -> httpx.Response:
    return httpx.get(url, headers={"Authorization": f"Bearer {token}"})


def _tba_get(sims: Sims, env: dict[str, str]) -> httpx.Response:
    """GET the customer list signed with OAuth 1.0a TBA from the credentials in `env`."""
    client = Client(env["SYNCERT_ERP_CONSUMER_KEY"], client_secret=env["SYNCERT_ERP_CONSUMER_SECRET"],
                    resource_owner_key=env["SYNCERT_ERP_TOKEN_ID"],
                    resource_owner_secret=env["SYNCERT_ERP_TOKEN_SECRET"],
                    signature_method=SIGNATURE_HMAC_SHA256, realm=env["SYNCERT_ERP_ACCOUNT"])
    url, headers, _ = client.sign(f"{sims.plain_url('erp')}{NS_CUSTOMERS}")
    return httpx.get(url, headers=headers)


def _assert_invalid_session(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.json()[0]["message"] == "Session expired or invalid"
    assert response.json()[0]["errorCode"] == "INVALID_SESSION_ID"


def _assert_invalid_login(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_LOGIN"


def test_salesforce_rotation_revokes_tokens_and_old_credentials(sims: Sims) -> None:
    old = sims.env
    token = _salesforce_login(sims, old).json()["access_token"]
    url = f"{sims.plain_url('crm')}{SF_LIMITS}"
    assert _bearer_get(url, token).status_code == 200
    with sims.admin("crm") as admin:
        rotated = admin.post("/_sim/credentials/rotate")
        assert rotated.status_code == 200
        new = rotated.json()
        assert admin.get("/_sim/credentials").json() == new
    assert set(new) == {"SYNCERT_CRM_URL", "SYNCERT_CRM_CLIENT_ID", "SYNCERT_CRM_CLIENT_SECRET",
                        "SYNCERT_CRM_USERNAME", "SYNCERT_CRM_PASSWORD"}
    assert new["SYNCERT_CRM_USERNAME"] == old["SYNCERT_CRM_USERNAME"]
    for key in ("SYNCERT_CRM_CLIENT_ID", "SYNCERT_CRM_CLIENT_SECRET", "SYNCERT_CRM_PASSWORD"):
        assert new[key] != old[key]
    _assert_invalid_session(_bearer_get(url, token))
    assert _salesforce_login(sims, old).status_code == 400
    old_secret = _salesforce_login(sims, {**new, "SYNCERT_CRM_CLIENT_SECRET": old["SYNCERT_CRM_CLIENT_SECRET"]})
    assert old_secret.status_code == 400 and old_secret.json()["error"] == "invalid_client"
    old_password = _salesforce_login(sims, {**new, "SYNCERT_CRM_PASSWORD": old["SYNCERT_CRM_PASSWORD"]})
    assert old_password.status_code == 400 and old_password.json()["error"] == "invalid_grant"
    fresh = _salesforce_login(sims, new)
    assert fresh.status_code == 200 and _bearer_get(url, fresh.json()["access_token"]).status_code == 200
    with sims.admin("crm") as admin:
        refused = admin.get("/_sim/journal", params={"status": 401}).json()["entries"]
    assert [e["path"] for e in refused] == [SF_LIMITS]


def test_netsuite_rotation_refuses_old_signatures_and_tokens(sims: Sims) -> None:
    old = sims.env
    url = f"{sims.plain_url('erp')}{NS_CUSTOMERS}"
    bearer = sims.netsuite_token()
    assert _tba_get(sims, old).status_code == 200 and _bearer_get(url, bearer).status_code == 200
    with sims.admin("erp") as admin:
        new = admin.post("/_sim/credentials/rotate").json()
    assert new["SYNCERT_ERP_ACCOUNT"] == old["SYNCERT_ERP_ACCOUNT"]
    for key in ("SYNCERT_ERP_CONSUMER_KEY", "SYNCERT_ERP_CONSUMER_SECRET", "SYNCERT_ERP_TOKEN_ID",
                "SYNCERT_ERP_TOKEN_SECRET"):
        assert new[key] != old[key]
    _assert_invalid_login(_tba_get(sims, old))
    _assert_invalid_login(_tba_get(sims, {**new, "SYNCERT_ERP_TOKEN_SECRET": old["SYNCERT_ERP_TOKEN_SECRET"]}))
    _assert_invalid_login(_bearer_get(url, bearer))
    token_url = f"{sims.plain_url('erp')}/services/rest/auth/oauth2/v1/token"
    assert httpx.post(token_url, data={"grant_type": "client_credentials"},
                      auth=(old["SYNCERT_ERP_CONSUMER_KEY"], old["SYNCERT_ERP_CONSUMER_SECRET"])).status_code == 401
    assert _tba_get(sims, new).status_code == 200


def test_secrets_lists_every_secret_issued(sims: Sims) -> None:
    old = sims.env
    crm_login = _salesforce_login(sims, old).json()
    erp_token = sims.netsuite_token()
    with sims.admin("crm") as crm_admin, sims.admin("erp") as erp_admin:
        new = {**crm_admin.post("/_sim/credentials/rotate").json(), **erp_admin.post("/_sim/credentials/rotate").json()}
        crm_secrets = crm_admin.get("/_sim/secrets").json()["secrets"]
        erp_secrets = erp_admin.get("/_sim/secrets").json()["secrets"]
        assert httpx.get(f"{sims.plain_url('crm')}/_sim/secrets").status_code == 401
    for env in (old, new):
        for key in ("CLIENT_ID", "CLIENT_SECRET", "PASSWORD"):
            assert env[f"SYNCERT_CRM_{key}"] in crm_secrets
        for key in ("CONSUMER_KEY", "CONSUMER_SECRET", "TOKEN_ID", "TOKEN_SECRET"):
            assert env[f"SYNCERT_ERP_{key}"] in erp_secrets
    assert crm_login["access_token"] in crm_secrets and crm_login["signature"] in crm_secrets
    assert erp_token in erp_secrets
    for listed in (crm_secrets, erp_secrets):
        assert sims.host.admin_token not in listed
    assert old["SYNCERT_CRM_USERNAME"] not in crm_secrets and old["SYNCERT_ERP_ACCOUNT"] not in erp_secrets


def test_sessions_expire_after_n_api_requests(sims: Sims) -> None:
    url = f"{sims.plain_url('crm')}{SF_LIMITS}"
    before = sims.salesforce_token()
    with sims.admin("crm") as admin:
        scheduled = admin.post("/_sim/sessions/expire", json={"after_requests": 2})
        assert scheduled.json() == {"after_requests": 2, "expired": False}
        admin.get("/_sim/journal")  # control-plane requests do not count
    issued_meanwhile = sims.salesforce_token()  # neither do token requests; this token dies too
    assert _bearer_get(url, before).status_code == 200
    assert _bearer_get(url, issued_meanwhile).status_code == 200
    _assert_invalid_session(_bearer_get(url, before))
    _assert_invalid_session(_bearer_get(url, issued_meanwhile))
    after = sims.salesforce_token()
    assert [_bearer_get(url, after).status_code for _ in range(3)] == [200, 200, 200]  # one shot
    with sims.admin("crm") as admin:
        statuses = [e["status"] for e in admin.get("/_sim/journal", params={"path": SF_LIMITS}).json()["entries"]]
    assert statuses == [200, 200, 401, 401, 200, 200, 200]


def test_session_expiry_at_once_and_cleared_by_reset(sims: Sims) -> None:
    url = f"{sims.plain_url('erp')}{NS_CUSTOMERS}"
    token = sims.netsuite_token()
    with sims.admin("erp") as admin:
        assert admin.post("/_sim/sessions/expire").json() == {"after_requests": 0, "expired": True}
    _assert_invalid_login(_bearer_get(url, token))
    assert _tba_get(sims, sims.env).status_code == 200  # TBA has no session to expire
    token = sims.netsuite_token()
    with sims.admin("erp") as admin:
        admin.post("/_sim/sessions/expire", json={"after_requests": 1})
        admin.post("/_sim/reset")
    assert [_bearer_get(url, token).status_code for _ in range(3)] == [200, 200, 200]


@pytest.mark.parametrize("body", [b'{"after_requests": -1}', b'{"after_requests": "2"}', b'{"after_requests": true}',
                                  b'{"after_requests": 1.5}', b'{"after_requests": null}', b'{"after": 1}', b"[1]",
                                  b"{"])
def test_session_expiry_validates_its_body(sims: Sims, body: bytes) -> None:
    token = sims.salesforce_token()
    with sims.admin("crm") as admin:
        response = admin.post("/_sim/sessions/expire", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and set(response.json()["error"]) == {"code", "message"}
    assert _bearer_get(f"{sims.plain_url('crm')}{SF_LIMITS}", token).status_code == 200


def test_tls_private_key_is_readable_by_its_owner_only(sims: Sims) -> None:
    assert (sims.host.work_dir / "server-key.pem").stat().st_mode & 0o777 == 0o600
