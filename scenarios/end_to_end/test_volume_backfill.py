"""End-to-end scenario at volume (level 2): the initial backfill of a CRM with thousands of accounts."""

from __future__ import annotations

import time

from syncert.harness.pytest_plugin import scenario
from syncert.harness.runner import ScenarioRun
from syncert.scenarios.setups import seed_in_batches

BACKFILL_ACCOUNTS = 5_000  # pages on both sides: 2,000 records a CRM query page, 1,000 an ERP list or query page


@scenario(id="E2E-BACKFILL-01", category="end_to_end", flows=("accounts",), level=2, expected_s=30,
          intent=f"A first sync of {BACKFILL_ACCOUNTS:,} CRM accounts (many pages of results) creates each ERP "
                 "customer exactly once and links every account back")
def test_initial_backfill(sync: ScenarioRun) -> None:
    started = time.monotonic()
    ids = seed_in_batches(sync, "crm", "account", [{"name": f"Backfill {n:05d}", "phone": f"+1 555 {n:05d}"}
                                                   for n in range(BACKFILL_ACCOUNTS)], batch=1_000)
    seeded = time.monotonic()

    def linked(run: ScenarioRun) -> bool:
        return all(a.get("erp_customer_id") for a in run.state("crm")["account"])
    sync.run_until(linked, deadline_s=600, max_cycles=8)
    synced = time.monotonic()
    result = sync.reconcile("accounts")
    customers = len(sync.state("erp")["customer"])
    sync.record_check("backfill", {"accounts": len(ids), "customers": customers, **result.counts(),
                                   "seed_s": round(seeded - started, 1), "sync_s": round(synced - seeded, 1),
                                   "cycles": len(sync.evidence.cycles)})
    assert result.all_synced, f"{customers} ERP customers for {len(ids)} accounts: {result.explain()}"
    assert customers == len(ids), f"{customers} ERP customers for {len(ids)} accounts (no account is unpaired)"
