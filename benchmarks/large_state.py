"""A large seed and a paged state read through the control plane, as a scenario and the harness do them.

    python benchmarks/large_state.py [--records 100000] [--batch 10000]

Seeds `--records` ERP customers through `POST /_sim/seed` in batches, reads the whole state page by page
into the harness's StateMirror, changes one record and reads again from the cursor. Prints figures.
"""

from __future__ import annotations

import argparse
import time

import httpx

from syncert.harness.control import StateMirror
from syncert.simulators.host import run_in_background


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10_000)
    args = parser.parse_args()
    with run_in_background() as host, httpx.Client(base_url=host.url("erp"), timeout=600,
                                                   headers={"Authorization": f"Bearer {host.admin_token}"}) as admin:
        started = time.perf_counter()
        for first in range(0, args.records, args.batch):
            rows = [{"name": f"Customer {n}", "external_id": f"C-{n}"}
                    for n in range(first, min(first + args.batch, args.records))]
            admin.post("/_sim/seed", json={"records": {"customer": rows}}).raise_for_status()
        seeded = time.perf_counter() - started
        print(f"seed of {args.records} customers in batches of {args.batch}: {seeded:.2f} s "
              f"({args.records / seeded:,.0f} records/s)")
        mirror, started = StateMirror(), time.perf_counter()
        pages = mirror.catch_up(lambda cursor: admin.get("/_sim/state", params=cursor).json())
        count = len(mirror.records()["customer"])
        print(f"paged state read: {count} customers in {pages} pages: {time.perf_counter() - started:.2f} s")
        some_id = mirror.records()["customer"][0]["id"]
        admin.patch(f"/_sim/records/customer/{some_id}", json={"name": "Renamed"}).raise_for_status()
        started = time.perf_counter()
        changes = admin.get("/_sim/state", params={"since": mirror.since}).json()
        print(f"read from the cursor after one change: {len(changes['records']['customer'])} record(s) in "
              f"{(time.perf_counter() - started) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
