"""Provider verification: a server checked against a vendor contract with schemathesis.

`syncert contracts verify DIALECT` starts the simulators (or takes `--url`, any server that claims to speak the
dialect), and runs schemathesis over every operation of `contracts/<dialect>/openapi.yaml` with generated
positive and negative data: answers must have a documented status and match their schema, bad requests must be
refused, and schema-valid requests accepted (`contract_checks.accepted_or_explained` stands in for
schemathesis's `positive_data_acceptance`: it also accepts the few refusals the vendors base on what no request
schema can state, each named there). Queries are generated in their languages (`contract_checks`). The JUnit
report (one case per operation) is written where `--junit` says.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from syncert.contracts import contract_path

DIALECT_SIDES = {"salesforce": "crm", "netsuite": "erp"}
TOKEN_PATHS = {"salesforce": "/services/oauth2/token", "netsuite": "/services/rest/auth/oauth2/v1/token"}
CLIENT_KEYS = {"salesforce": ("SYNCERT_CRM_CLIENT_ID", "SYNCERT_CRM_CLIENT_SECRET"),
               "netsuite": ("SYNCERT_ERP_CONSUMER_KEY", "SYNCERT_ERP_CONSUMER_SECRET")}
EXCLUDED_CHECKS = ("positive_data_acceptance",)


def _settings() -> str:
    """schemathesis.toml: no caches in the user's directory; collection calls refuse records one by one."""
    from syncert.harness.contract_checks import PER_RECORD_OPERATIONS

    return (f"[cache]\nenabled = false\n\n[[operations]]\ninclude-operation-id = {list(PER_RECORD_OPERATIONS)}\n"
            "checks.negative_data_rejection.enabled = false\nchecks.use_after_free.enabled = false\n")


class VerifyError(Exception):
    """Verification could not start (a bad header, a server that gives no token); the message says why."""


@dataclass(frozen=True)
class Target:
    """Where to send the generated requests, and the headers that authenticate them."""

    url: str
    headers: dict[str, str]
    credentials: dict[str, str] = field(default_factory=dict)  # a simulator's: client_id, client_secret, ...


def verify(dialect: str, target: Target, junit: Path, max_examples: int, seed: int | None) -> int:
    """Run schemathesis against `target`; its exit code (0: every check passed on every operation)."""
    from hypothesis.configuration import set_hypothesis_home_dir
    from schemathesis.cli import schemathesis

    from syncert.harness.contract_checks import register_formats

    register_formats()

    arguments = ["run", str(contract_path(dialect, "openapi.yaml")), "--url", target.url,
                 "--exclude-checks", ",".join(EXCLUDED_CHECKS), "--max-examples", str(max_examples),
                 "--report", "junit", "--report-junit-path", str(junit), "--mode", "all",
                 "--generation-database", ":memory:"]
    for name, value in target.headers.items():
        arguments += ["--header", f"{name}: {value}"]
    if seed is not None:
        arguments += ["--seed", str(seed)]
    with tempfile.TemporaryDirectory(prefix="syncert-verify-") as scratch:
        settings = Path(scratch, "schemathesis.toml")
        settings.write_text(_settings())
        set_hypothesis_home_dir(scratch)
        try:
            schemathesis.main(args=["--config-file", str(settings), *arguments], prog_name="syncert contracts verify",
                              standalone_mode=False)
        except SystemExit as finished:
            return finished.code if isinstance(finished.code, int) else 1
        finally:
            set_hypothesis_home_dir(None)
    return 0


def reachable(url: str) -> str:
    """`url` without its trailing slash, once a server there answers; VerifyError says why not."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise VerifyError(f"--url {url!r} is not an http(s) URL")
    try:
        httpx.get(url, timeout=10, trust_env=False)
    except httpx.HTTPError as error:
        raise VerifyError(f"nothing answers at {url} ({type(error).__name__})") from None
    return url.rstrip("/")


def parse_headers(pairs: list[str]) -> dict[str, str]:
    """`Name: value` pairs as a dict; VerifyError names a pair without a colon."""
    headers = {}
    for pair in pairs:
        name, colon, value = pair.partition(":")
        if not colon or not name.strip():
            raise VerifyError(f"--header {pair!r} is not 'Name: value'")
        headers[name.strip()] = value.strip()
    return headers


@contextlib.contextmanager
def simulator_target(dialect: str) -> Iterator[Target]:
    """The simulators, served in the background for the block, with an access token for `dialect`."""
    from syncert.simulators.host import run_in_background

    side = DIALECT_SIDES[dialect]
    with run_in_background(memory=True, **{side: dialect}) as host:
        environment = host.environment()
        url = host.url(side)
        client_id, client_secret = (environment[key] for key in CLIENT_KEYS[dialect])
        answer = httpx.post(url + TOKEN_PATHS[dialect], data={"grant_type": "client_credentials"},
                            auth=(client_id, client_secret), timeout=30)
        if answer.status_code != 200:
            raise VerifyError(f"the {dialect} simulator gave no token ({answer.status_code}: {answer.text[:200]})")
        credentials = {"client_id": client_id, "client_secret": client_secret}
        if side == "crm":
            credentials |= {"username": environment["SYNCERT_CRM_USERNAME"],
                            "password": environment["SYNCERT_CRM_PASSWORD"]}
        yield Target(url, {"Authorization": f"Bearer {answer.json()['access_token']}"}, credentials)
