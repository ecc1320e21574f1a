"""`syncert contracts record` and `replay`: a real client through the recording proxy to a local upstream (a
simulator), no issued secret in the recording in any encoding, replay verification and the parity page."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import pytest
import requests
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256, Client
from simple_salesforce import Salesforce

from syncert.harness.secrets import SecretScrubber
from syncert.simulators.host import SimulatorHost, run_in_background


@dataclass
class Proxy:
    url: str
    process: subprocess.Popen[str]
    out: Path
    ca: str | None

    def stop(self) -> str:
        self.process.send_signal(signal.SIGINT)
        output, _ = self.process.communicate(timeout=30)
        assert self.process.returncode == 0, output
        return output


@pytest.fixture(scope="module")
def upstream() -> Iterator[SimulatorHost]:
    with run_in_background(memory=True) as host:
        yield host


def _syncert(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "syncert", *arguments], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _start_proxy(dialect: str, upstream_url: str, out: Path, *options: str) -> Proxy:
    process = subprocess.Popen([sys.executable, "-m", "syncert", "contracts", "record", dialect, "--upstream",
                                upstream_url, "--port", "0", "--out", str(out), "--duration", "120", *options],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert process.stdout is not None
    ca = None
    for _ in range(5):
        line = process.stdout.readline()
        if "the proxy's CA" in line:
            ca = line.split(": ", 1)[1].strip()
        if "point your client at " in line:
            return Proxy(line.split("point your client at ")[1].split()[0], process, out, ca)
    process.kill()
    raise AssertionError(f"the proxy did not start: {line}")


def _encodings(secret: str) -> set[str]:
    """The forms a grep of the recording looks for, written out independently of the scrubber."""
    raw = secret.encode()
    forms = {secret, quote(secret, safe=""), quote_plus(secret), raw.hex(), raw.hex().upper(),
             json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=True)[1:-1]}
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw), base64.b32encode(raw)):
        forms |= {encoded.decode(), encoded.decode().rstrip("=")}
    return {form for form in forms if len(form) >= 6}


def _assert_no_secret(text: str, secrets: dict[str, str]) -> None:
    for name, secret in secrets.items():
        for form in _encodings(secret) | {secret.lower(), secret.upper(), *secret.split("!")}:
            assert form not in text, f"{name} is in the recording as {form!r}"
    assert SecretScrubber(secrets.values(), min_length=6).find(text) == []


@pytest.fixture(scope="module")
def salesforce_recording(upstream: SimulatorHost, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A session of simple-salesforce through the proxy; the recording and the secrets issued in it."""
    env = upstream.environment()
    # simple-salesforce always speaks https to the instance: the proxy serves TLS with its own CA
    proxy = _start_proxy("salesforce", upstream.url("crm"), tmp_path_factory.mktemp("rec") / "sf.json", "--tls")
    session = requests.Session()
    session.trust_env = False
    session.verify = proxy.ca
    credentials = {"client_id": env["SYNCERT_CRM_CLIENT_ID"], "client_secret": env["SYNCERT_CRM_CLIENT_SECRET"],
                   "username": env["SYNCERT_CRM_USERNAME"], "password": env["SYNCERT_CRM_PASSWORD"]}
    token = session.post(f"{proxy.url}/services/oauth2/token", data={"grant_type": "password", **credentials}).json()
    assert token["instance_url"] == proxy.url  # rewritten: the client stays on the proxy
    sf = Salesforce(instance_url=token["instance_url"], session_id=token["access_token"], session=session,
                    version="59.0")
    created = sf.Account.create({"Name": "Recorded Corp", "Phone": "+1 555 0100",
                                 # a careless client echoing its token into data: the recording still hides it
                                 "BillingStreet": base64.b64encode(token["access_token"].encode()).decode(),
                                 "ShippingStreet": token["access_token"].lower()})
    sf.Account.get(created["id"])
    sf.Account.update(created["id"], {"Name": "Recorded Corporation"})
    sf.query("SELECT Id, Name FROM Account WHERE Name = 'Recorded Corporation'")
    sf.Account.upsert("ERP_Customer_Id__c/REC-1", {"Name": "Upserted"})
    sf.Account.delete(created["id"])
    assert session.get(f"{proxy.url}/services/data/v59.0/sobjects/Account/{created['id']}",
                       headers={"Authorization": f"Bearer {token['access_token']}"}).status_code == 404
    session.close()
    output = proxy.stop()
    assert "8 interactions saved to" in output and token["access_token"] not in output
    return proxy.out, {**credentials, "access_token": token["access_token"]}


def test_recording_holds_each_interaction_with_its_operation_and_volatile_fields(salesforce_recording) -> None:
    path, _ = salesforce_recording
    recording = json.loads(path.read_text())
    interactions = recording["interactions"]
    assert recording["dialect"] == "salesforce" and len(interactions) == 8
    assert [i["operation"] for i in interactions[:3]] == [
        "POST /services/oauth2/token", "POST /services/data/{version}/sobjects/{sobject}",
        "GET /services/data/{version}/sobjects/{sobject}/{id}"]
    token_request, create = interactions[0], interactions[1]
    assert token_request["request"]["body"]["client_secret"] == "[REDACTED]"
    assert token_request["request"]["body"]["grant_type"] == "password"
    assert token_request["response"]["body"]["access_token"] == "[REDACTED]"
    assert create["request"]["headers"]["authorization"] == "Bearer [REDACTED]"
    assert create["request"]["body"]["Name"] == "Recorded Corp"
    assert "root['body']['id']" in create["volatile"] and "root['body']['success']" not in create["volatile"]
    assert interactions[-1]["response"]["status"] == 404


def test_a_recording_holds_no_issued_secret_in_any_encoding(salesforce_recording) -> None:
    path, secrets = salesforce_recording
    text = path.read_text()
    basic = base64.b64encode(f"{secrets['client_id']}:{secrets['client_secret']}".encode()).decode()
    _assert_no_secret(text, {**secrets, "basic credentials": basic})


def test_oauth1_headers_and_cookies_are_redacted(upstream: SimulatorHost, tmp_path: Path) -> None:
    env = upstream.environment()
    upstream_url = upstream.url("erp")
    proxy = _start_proxy("netsuite", upstream_url, tmp_path / "ns.json")
    signer = Client(env["SYNCERT_ERP_CONSUMER_KEY"], client_secret=env["SYNCERT_ERP_CONSUMER_SECRET"],
                    resource_owner_key=env["SYNCERT_ERP_TOKEN_ID"],
                    resource_owner_secret=env["SYNCERT_ERP_TOKEN_SECRET"], realm=env["SYNCERT_ERP_ACCOUNT"],
                    signature_method=SIGNATURE_HMAC_SHA256)
    # OAuth 1.0a signs the host: a client recording NetSuite signs for the upstream and sends to the proxy
    path = "/services/rest/record/v1/customer?limit=5"
    _, headers, _ = signer.sign(upstream_url + path, http_method="GET")
    answer = httpx.get(proxy.url + path, headers={**headers, "Cookie": "JSESSIONID=session-cookie-value-1"})
    assert answer.status_code == 200, answer.text
    signature = headers["Authorization"].split('oauth_signature="')[1].split('"')[0]
    proxy.stop()
    text = proxy.out.read_text()
    recorded = json.loads(text)["interactions"][0]["request"]["headers"]
    assert 'oauth_signature="[REDACTED]"' in recorded["authorization"]
    assert 'oauth_signature_method="HMAC-SHA256"' in recorded["authorization"]
    assert recorded["cookie"] == "[REDACTED]"
    _assert_no_secret(text, {"consumer key": env["SYNCERT_ERP_CONSUMER_KEY"], "token id": env["SYNCERT_ERP_TOKEN_ID"],
                             "signature": signature, "cookie": "session-cookie-value-1"})


def test_replay_verifies_a_recording_and_writes_the_parity_page(salesforce_recording, tmp_path: Path) -> None:
    path, _ = salesforce_recording
    result = _syncert("contracts", "replay", str(path), "--parity", str(tmp_path / "parity.md"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 of 8 interactions answered as recorded" in result.stdout
    page = (tmp_path / "parity.md").read_text()
    assert "| `POST /services/data/{version}/sobjects/{sobject}` | 1 | verified |" in page
    assert "| `GET /services/data/{version}/sobjects/{sobject}/{id}` | 2 | verified |" in page
    assert "| `GET /services/data/{version}/limits` | 0 | not recorded |" in page


def test_replay_names_what_the_simulator_answers_differently(salesforce_recording, tmp_path: Path) -> None:
    path, _ = salesforce_recording
    recording = json.loads(path.read_text())
    recording["interactions"][2]["response"]["body"]["Phone"] = "+1 555 0199"  # the read after the create
    recording["interactions"][7]["response"]["status"] = 410
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(recording))
    result = _syncert("contracts", "replay", str(tampered), cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "6 of 8 interactions answered as recorded" in result.stdout
    assert "root['body']['Phone']" in result.stdout and "+1 555 0199" in result.stdout
    assert "status 410 recorded, 404 replayed" in result.stdout


@pytest.mark.parametrize(("change", "message"), [
    ({"request": {"method": "GET", "path": "http://127.0.0.1:9/steal"}}, "is not a path on the server"),
    ({"request": {"method": "GET", "path": "//elsewhere.example/x"}}, "is not a path on the server"),
    ({"request": None}, "needs a 'request' and a 'response' object"),
    ({"response": {"status": "201"}}, "status '201' is not an integer")])
def test_replay_refuses_an_interaction_it_cannot_play(salesforce_recording, tmp_path: Path, change: dict,
                                                      message: str) -> None:
    path, _ = salesforce_recording
    recording = json.loads(path.read_text())
    recording["interactions"][1].update(change)
    (tmp_path / "bad.json").write_text(json.dumps(recording))
    result = _syncert("contracts", "replay", str(tmp_path / "bad.json"), cwd=tmp_path)
    assert result.returncode == 2 and "interaction 2: " in result.stderr and message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_request_refused_for_its_credentials_is_replayed_with_refused_ones(salesforce_recording,
                                                                              tmp_path: Path) -> None:
    path, _ = salesforce_recording
    recording = json.loads(path.read_text())
    read = recording["interactions"][2]
    read["response"] = {"status": 401, "headers": {}, "body_format": "json",
                        "body": [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID",
                                  "fields": []}]}
    read["volatile"] = []
    recording["interactions"] = recording["interactions"][:3]
    (tmp_path / "refused.json").write_text(json.dumps(recording))
    result = _syncert("contracts", "replay", str(tmp_path / "refused.json"), cwd=tmp_path)
    assert result.returncode == 0 and "3 of 3 interactions answered as recorded" in result.stdout, result.stdout


def test_record_and_replay_refuse_bad_input_with_a_message(tmp_path: Path) -> None:
    not_a_recording = tmp_path / "x.json"
    not_a_recording.write_text('{"hello": 1}')
    result = _syncert("contracts", "replay", str(not_a_recording), cwd=tmp_path)
    assert result.returncode == 2 and "not a syncert recording" in result.stderr and "Traceback" not in result.stderr
    not_a_recording.write_text('{"syncert_recording": 99, "dialect": "salesforce", "interactions": []}')
    result = _syncert("contracts", "replay", str(not_a_recording), cwd=tmp_path)
    assert result.returncode == 2 and "format 99 is not supported" in result.stderr
    result = _syncert("contracts", "record", "salesforce", "--upstream", "ftp://example", cwd=tmp_path)
    assert result.returncode == 2 and "is not an http(s) URL" in result.stderr


def test_the_parity_page_in_docs_is_the_one_the_shipped_recordings_give(tmp_path: Path) -> None:
    result = _syncert("contracts", "replay", "--parity", str(tmp_path / "parity.md"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    checked_in = Path(__file__).parents[1] / "docs" / "parity.md"
    assert (tmp_path / "parity.md").read_text() == checked_in.read_text(), "regenerate docs/parity.md"
