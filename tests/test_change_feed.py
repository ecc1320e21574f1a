"""The change feed: cursors over every write, each record once with its latest values, tombstones."""

from __future__ import annotations

from pathlib import Path

from syncert.simulators.clock import Clock
from syncert.simulators.domain.erp import ErpEngine, erp_store


def _erp(path: Path | None = None) -> ErpEngine:
    return ErpEngine(erp_store(path), Clock(), lambda kind, n: str(n + 100))


def _read_all(erp: ErpEngine, since: int = 0, limit: int = 10_000, kinds=None) -> tuple[list, int, int]:
    seen, pages = [], 0
    while True:
        page = erp.changes(since=since, kinds=kinds, limit=limit)
        seen += page.records
        pages, since = pages + 1, page.next_since
        if not page.more:
            return seen, since, pages


def test_paging_returns_each_record_once_with_latest_values() -> None:
    erp = _erp()
    customers = erp.create_many("customer", [{"name": f"C{n}", "external_id": f"E{n}"} for n in range(25_000)])
    first = erp.changes(since=0, limit=10_000)
    assert len(first.records) == 10_000 and first.more
    erp.update("customer", customers[5]["id"], {"name": "Moved after the cursor"})  # already read: comes again
    erp.update("customer", customers[20_000]["id"], {"name": "Updated ahead"})  # not read yet: comes once
    rest, since, pages = _read_all(erp, first.next_since)
    assert pages == 2
    ids = [r["id"] for _, r in first.records + rest]
    assert len(ids) == 25_001 and len(set(ids)) == 25_000
    latest = {r["id"]: r["name"] for _, r in rest}
    assert latest[customers[5]["id"]] == "Moved after the cursor"
    assert latest[customers[20_000]["id"]] == "Updated ahead"
    assert [r["id"] for _, r in rest][-2:] == [customers[5]["id"], customers[20_000]["id"]]
    assert erp.changes(since=since).records == []


def test_deletes_are_tombstones_and_kinds_filter() -> None:
    erp = _erp()
    item = erp.create("item", {"sku": "W-1", "quantity_on_hand": "1"})
    customer = erp.create("customer", {"name": "Gone soon"})
    cursor = erp.changes().next_since
    erp.delete("customer", customer["id"])
    page = erp.changes(since=cursor)
    assert [(kind, r["id"], r["is_deleted"]) for kind, r in page.records] == [("customer", customer["id"], True)]
    assert erp.count("customer") == 0
    assert [r["id"] for _, r in erp.changes(kinds=["item"]).records] == [item["id"]]


def test_cursor_survives_a_restart(tmp_path: Path) -> None:
    erp = _erp(tmp_path / "erp.sqlite3")
    erp.create_many("customer", [{"name": f"C{n}"} for n in range(10)])
    cursor = erp.changes().next_since
    erp.store.close()
    reopened = _erp(tmp_path / "erp.sqlite3")
    assert reopened.changes(since=cursor).records == []
    assert len(reopened.changes().records) == 10
    created = reopened.create("customer", {"name": "After restart"})
    assert [r["id"] for _, r in reopened.changes(since=cursor).records] == [created["id"]]


def test_reset_keeps_the_sequence_going() -> None:
    erp = _erp()
    erp.create("customer", {"name": "Before reset"})
    cursor = erp.changes().next_since
    erp.reset()
    created = erp.create("customer", {"name": "After reset"})
    assert [r["id"] for _, r in erp.changes(since=cursor).records] == [created["id"]]
