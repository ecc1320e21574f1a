"""Shared fixtures: one simulator host per session (TLS on), reset before each test that uses it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from syncert.simulators.host import SimulatorHost, run_in_background


@dataclass
class Sims:
    """The running host plus ready-made clients for tests."""

    host: SimulatorHost
    env: dict[str, str]

    def admin(self, side: str) -> httpx.Client:
        """A control-plane client for "crm" or "erp" (plain HTTP listener)."""
        return httpx.Client(base_url=self.host.sides[side].listener.url,
                            headers={"Authorization": f"Bearer {self.host.admin_token}"}, timeout=30)

    def plain_url(self, side: str) -> str:
        return self.host.sides[side].listener.url

    def seed(self, side: str, records: dict[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
        with self.admin(side) as client:
            response = client.post("/_sim/seed", json={"records": records})
            assert response.status_code == 201, response.text
            return response.json()["ids"]

    def state(self, side: str) -> dict[str, list[dict[str, Any]]]:
        with self.admin(side) as client:
            return client.get("/_sim/state").json()["records"]

    def salesforce_token(self) -> str:
        response = httpx.post(f"{self.plain_url('crm')}/services/oauth2/token",
                              data={"grant_type": "client_credentials"},
                              auth=(self.env["SYNCERT_CRM_CLIENT_ID"], self.env["SYNCERT_CRM_CLIENT_SECRET"]))
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def netsuite_token(self) -> str:
        response = httpx.post(f"{self.plain_url('erp')}/services/rest/auth/oauth2/v1/token",
                              data={"grant_type": "client_credentials"},
                              auth=(self.env["SYNCERT_ERP_CONSUMER_KEY"], self.env["SYNCERT_ERP_CONSUMER_SECRET"]))
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def crm(self) -> httpx.Client:
        """An authenticated Salesforce REST client on the plain listener (base: /services/data/v59.0)."""
        return httpx.Client(base_url=f"{self.plain_url('crm')}/services/data/v59.0",
                            headers={"Authorization": f"Bearer {self.salesforce_token()}"}, timeout=30)

    def erp(self) -> httpx.Client:
        """An authenticated NetSuite REST client (OAuth 2.0 bearer) on the plain listener."""
        return httpx.Client(base_url=f"{self.plain_url('erp')}/services/rest",
                            headers={"Authorization": f"Bearer {self.netsuite_token()}"}, timeout=30)


@pytest.fixture(scope="session")
def running_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorHost]:
    with run_in_background(data_dir=tmp_path_factory.mktemp("sim"), tls=True) as host:
        yield host


@pytest.fixture
def sims(running_host: SimulatorHost) -> Sims:
    for side in ("crm", "erp"):
        with httpx.Client(base_url=running_host.sides[side].listener.url,
                          headers={"Authorization": f"Bearer {running_host.admin_token}"}) as client:
            assert client.post("/_sim/reset").status_code == 200
    return Sims(running_host, running_host.environment())


# the longest files start first: with `-n auto --dist loadfile` they do not make the run's tail
LONGEST_FIRST = ("test_detection.py", "test_reference_certified.py", "test_reference_modes.py", "test_examples.py",
                 "test_hostile_connectors.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
    items.sort(key=rank)
