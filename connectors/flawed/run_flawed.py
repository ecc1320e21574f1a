"""Run the reference connector with one known defect: `python run_flawed.py <defect> sync|serve`.

Each defect is a small, deliberate change to the reference connector, named after what goes wrong.
The catalogue proves itself on them: the scenario named in DEFECTS must fail, the reference must pass.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "reference"))

from syncert_reference import apis, flows, resilience, state
from syncert_reference.__main__ import main


def marks_every_product_active() -> None:
    """Sends IsActive = true for discontinued items too."""
    upsert = apis.Salesforce.upsert

    async def flawed(self, sobject, field, value, body):
        if sobject == "Product2" and "IsActive" in body:
            body = {**body, "IsActive": True}
        return await upsert(self, sobject, field, value, body)
    apis.Salesforce.upsert = flawed


def skips_credit_flow() -> None:
    """Declares the credit flow but never syncs credit holds."""
    async def nothing(self):
        return None
    flows.SyncCycle.credit_to_accounts = nothing


def creates_instead_of_upserting() -> None:
    """POSTs a new customer on every pass instead of updating the linked one or upserting by external id."""
    async def create(self, account_id, customer_id, values):
        response = await self.erp.call("POST", "/record/v1/customer", content=apis.dumps(values).encode(),
                                       headers={"Content-Type": "application/json"})
        return response.headers["Location"].rsplit("/", 1)[-1]
    flows.SyncCycle._write_customer = create
    changed = state.SyncState.changed
    state.SyncState.changed = lambda self, key, values: key.startswith("account:") or changed(self, key, values)


def ignores_line_discount() -> None:
    """Sends the list unit price, dropping the line discount."""
    order_line = flows.SyncCycle._order_line

    async def flawed(self, line, items):
        return await order_line(self, {**line, "Discount": 0}, items)
    flows.SyncCycle._order_line = flawed


def writes_every_cycle() -> None:
    """Forgets what it synced: writes every record on every cycle (an echo loop)."""
    state.SyncState.changed = lambda self, key, values: True


def ignores_retry_after() -> None:
    """Retries throttled requests at once, ignoring Retry-After and backoff."""
    resilience.backoff_delay = lambda attempt, retry_after: 0.0


def never_refreshes_token() -> None:
    """Keeps using an expired Salesforce session instead of logging in again on 401."""
    async def call(self, method, path, **kwargs):
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        response = await self.http.request(method, url, sign=self._sign, **kwargs)  # no reauthenticate
        if response.status_code >= 400:
            raise apis.ApiError("salesforce", response)
        return response
    apis.Salesforce.call = call


def unbounded_concurrency() -> None:
    """Sends as many requests at once as it has records, ignoring the ERP's concurrency limit."""
    flows.MAX_IN_FLIGHT = 1000


def drops_failures_silently() -> None:
    """Swallows records it cannot sync instead of dead-lettering them."""
    flows.SyncCycle.give_up = lambda self, flow, system, source_id, reason: None


def logs_credentials() -> None:
    """Writes its Salesforce login, client secret included, to its debug log."""
    login = apis.Salesforce._login

    async def flawed(self):
        print(f"debug: logging in to {self.base_url} as {self._client_id}:{self._client_secret}", file=sys.stderr)
        await login(self)
    apis.Salesforce._login = flawed


DEFECTS: dict[str, tuple[Callable[[], None], str]] = {
    "marks-every-product-active": (marks_every_product_active, "E2E-ITEMS-01"),
    "skips-credit-flow": (skips_credit_flow, "E2E-CREDIT-01"),
    "creates-instead-of-upserting": (creates_instead_of_upserting, "E2E-ACC-01"),
    "ignores-line-discount": (ignores_line_discount, "E2E-Q2C-01"),
    "writes-every-cycle": (writes_every_cycle, "E2E-ECHO-01"),
    "ignores-retry-after": (ignores_retry_after, "ERR-RATE-01"),
    "drops-failures-silently": (drops_failures_silently, "ERR-LOUD-01"),
    "never-refreshes-token": (never_refreshes_token, "ERR-TOKEN-01"),
    "unbounded-concurrency": (unbounded_concurrency, "ERR-CONC-01"),
    "logs-credentials": (logs_credentials, "SEC-LEAK-01"),
}

if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in DEFECTS:
        sys.exit(f"usage: run_flawed.py <{'|'.join(DEFECTS)}> sync|serve")
    DEFECTS[sys.argv[1]][0]()
    sys.exit(main(sys.argv[2:]))
