"""Engine figures: rule cost with many records, a large seed, and a full paged read of the change feed.

    python benchmarks/engine_rules.py [--orders 2000] [--others 10000] [--seed 100000] [--page 10000]

1. `--orders` sales orders for ONE customer (with a credit limit, so every order weighs the
   customer's open orders) created through the engine while `--others` unrelated records exist.
2. `--seed` customers created through `engine.create_many` (time and growth of the process RSS).
3. A full read of the change feed in pages of `--page`.
Prints figures; it asserts nothing (see tests/ for behaviour).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from syncert.simulators.clock import Clock
from syncert.simulators.domain.erp import ErpEngine, erp_store


def rss_mb() -> float:
    """Current resident set size of this process in MiB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def new_engine(directory: Path, name: str) -> ErpEngine:
    return ErpEngine(erp_store(directory / f"{name}.sqlite3"), Clock(), lambda kind, number: str(number + 100))


def orders_for_one_customer(directory: Path, orders: int, others: int) -> None:
    engine = new_engine(directory, "rules")
    items = engine.create_many("item", [{"sku": f"SKU-{n}", "price": "9.99", "quantity_on_hand": "1000000"}
                                        for n in range(50)])
    other_customers = engine.create_many("customer", [{"name": f"Other {n}"} for n in range(others // 2)])
    for n in range(others - len(other_customers) - len(items)):
        engine.create("sales_order", {"customer_id": other_customers[n % len(other_customers)]["id"],
                                      "lines": [{"item_id": items[n % len(items)]["id"], "quantity": 1}]})
    engine.store.commit()
    customer = engine.create("customer", {"name": "Big Buyer", "credit_limit": "100000000"})
    started = time.perf_counter()
    for n in range(orders):
        engine.create("sales_order", {"customer_id": customer["id"],
                                      "lines": [{"item_id": items[n % len(items)]["id"], "quantity": 2}]})
    elapsed = time.perf_counter() - started
    engine.store.commit()
    print(f"{orders} sales orders for one customer, {others} other records present: {elapsed:.2f} s "
          f"({elapsed / orders * 1000:.2f} ms an order)")


def seed_and_read(directory: Path, seed: int, page: int) -> None:
    engine = new_engine(directory, "seed")
    rows = [{"name": f"Customer {n}", "external_id": f"C-{n}", "credit_limit": "5000"} for n in range(seed)]
    before = rss_mb()
    started = time.perf_counter()
    engine.create_many("customer", rows)
    created = time.perf_counter() - started
    engine.store.commit()
    committed = time.perf_counter() - started
    print(f"seed of {seed} customers through create_many: {created:.2f} s in the engine, {committed:.2f} s "
          f"with the COMMIT; RSS +{rss_mb() - before:.0f} MiB")
    started = time.perf_counter()
    since, pages, records = 0, 0, 0
    while True:
        changes = engine.changes(since=since, limit=page)
        pages, records, since = pages + 1, records + len(changes.records), changes.next_since
        if not changes.more:
            break
    print(f"full paged read of the change feed: {records} records in {pages} pages of {page}: "
          f"{time.perf_counter() - started:.2f} s")
    started = time.perf_counter()
    engine.update("customer", engine.find("customer", "external_id", "C-7")[0]["id"], {"name": "Renamed"})
    tail = engine.changes(since=since, limit=page)
    elapsed_ms = (time.perf_counter() - started) * 1000
    print(f"one more update, then a read from the cursor: {len(tail.records)} record(s) in {elapsed_ms:.2f} ms")
    started = time.perf_counter()
    reopened = new_engine(directory, "seed")
    print(f"restart (load {reopened.count('customer')} customers from SQLite): {time.perf_counter() - started:.2f} s; "
          f"change cursor resumes at {reopened.store.last_seq}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--others", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=100_000)
    parser.add_argument("--page", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        orders_for_one_customer(Path(work), args.orders, args.others)
        seed_and_read(Path(work), args.seed, args.page)


if __name__ == "__main__":
    main()
