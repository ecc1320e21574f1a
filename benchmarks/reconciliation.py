"""Reconciliation at volume: 100,000 CRM accounts against 100,000 ERP customers with 1% mismatches.

    python benchmarks/reconciliation.py [--records 100000] [--mismatch 0.01] [--missing 0.5]

Seeds both simulators through the control plane (accounts with phones and billing addresses; customers
linked to them by CRM id, a `--mismatch` share of them with another name or left out), reads both states
into the harness's mirrors, writes each customer's id back on its account (in memory), then times
`reconcile()` of the accounts flow alone (the harness's verdict per business key: keyed pairing first,
field comparison on the pairs, deepdiff only where a field differs).
Prints the figures and checks the verdicts: every corrupted and missing key found, the rest synced.
"""

from __future__ import annotations

import argparse
import time

import httpx

from syncert.harness.control import StateMirror
from syncert.harness.mapping import load_mapping
from syncert.harness.reconciliation import VendorNames, reconcile
from syncert.simulators.host import run_in_background

BATCH = 10_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--mismatch", type=float, default=0.01)
    parser.add_argument("--missing", type=float, default=0.5,
                        help="the share of the mismatched records left out of the ERP (the rest get another name)")
    args = parser.parse_args()
    mismatched = max(2, int(args.records * args.mismatch))
    missing = round(mismatched * args.missing)
    wrong = mismatched - missing  # corrupted: the first `wrong` keys; missing: the next `missing`
    with run_in_background(memory=True) as host:
        clients = {side: httpx.Client(base_url=host.url(side), timeout=600,
                                      headers={"Authorization": f"Bearer {host.admin_token}"})
                   for side in ("crm", "erp")}
        started = time.perf_counter()
        account_ids: list[str] = []
        for first in range(0, args.records, BATCH):
            rows = [{"name": f"Account {n}", "phone": f"+1 555 {n:07d}",
                     "billing_address": {"street": f"{n} Main St", "city": "Springfield", "postal_code": "12345",
                                         "country": "US"}}
                    for n in range(first, min(first + BATCH, args.records))]
            response = clients["crm"].post("/_sim/seed", json={"records": {"account": rows}})
            response.raise_for_status()
            account_ids += response.json()["ids"]["account"]
        customers = [{"name": f"Account {n}" if n >= wrong else f"Acount {n}", "phone": f"+1 555 {n:07d}",
                      "crm_id": account_id,
                      "billing_address": {"street": f"{n} Main St", "city": "Springfield", "postal_code": "12345",
                                          "country": "US"}}
                     for n, account_id in enumerate(account_ids) if not wrong <= n < wrong + missing]
        for first in range(0, len(customers), BATCH):
            clients["erp"].post("/_sim/seed", json={"records": {"customer": customers[first:first + BATCH]}}
                                ).raise_for_status()
        seeded = time.perf_counter() - started
        mirrors = {side: StateMirror() for side in clients}
        for side, mirror in mirrors.items():
            mirror.catch_up(lambda cursor, side=side: clients[side].get("/_sim/state", params=cursor).json())
        sides = {side: mirror.records() for side, mirror in mirrors.items()}
        for client in clients.values():
            client.close()
    # the connector's write-back, as a synced pair holds it (in memory: 100,000 edits through the control
    # plane would measure the control plane)
    customer_of = {customer["crm_id"]: customer["id"] for customer in sides["erp"]["customer"]}
    for account in sides["crm"]["account"]:
        account["erp_customer_id"] = customer_of.get(account["id"])
    flow = load_mapping().flow("accounts")
    vendor = VendorNames({"crm": "salesforce", "erp": "netsuite"})
    started = time.perf_counter()
    result = reconcile(flow, sides, vendor)
    took = time.perf_counter() - started
    counts = result.counts()
    print(f"seeded {len(sides['crm']['account']):,} accounts and {len(sides['erp']['customer']):,} customers in "
          f"{seeded:.1f} s")
    print(f"reconcile accounts: {took:.2f} s for {args.records:,} keys ({args.records / took:,.0f} keys/s): {counts}")
    assert counts.get("corrupted", 0) == wrong and counts.get("missing", 0) == missing, counts
    assert counts.get("synced") == args.records - mismatched, counts


if __name__ == "__main__":
    main()
