"""Ordered indexes on created_at/modified_at: store ranges, the evaluator's range lookups, modified-since polls."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncert.simulators.clock import Clock, format_datetime
from syncert.simulators.domain.erp import ErpEngine, erp_store
from syncert.simulators.domain.repository import Repository
from syncert.simulators.domain.store import Record, Store
from syncert.simulators.query import netsuite_filter, soql, suiteql
from syncert.simulators.query.ast import (
    Between,
    Column,
    Comparison,
    Condition,
    Literal,
    Select,
    SelectItem,
    TableRef,
    conjunction,
)
from syncert.simulators.query.evaluate import InMemoryRows, Row, Semantics, evaluate
from syncert.simulators.query.records import RecordSource, RecordTable
from tests.conftest import Sims

BASE = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _at(milliseconds: int) -> str:
    return format_datetime(BASE + timedelta(milliseconds=milliseconds))


# -- the store's ordered index --------------------------------------------------------------------

_WRITE = st.tuples(st.integers(0, 7), st.integers(0, 40))  # (record number, modified_at in ms after BASE)
_BLOCK = st.tuples(st.lists(_WRITE, max_size=5), st.booleans())  # writes in a savepoint; True: roll back
_BOUND = st.one_of(st.none(), st.integers(-5, 45))


def _between_by_scan(store: Store, low: str | None, high: str | None, include_low: bool,
                     include_high: bool) -> list[tuple[str, str]]:
    return sorted((r["modified_at"], r["id"]) for r in store.all("customer")
                  if (low is None or (r["modified_at"] >= low if include_low else r["modified_at"] > low))
                  and (high is None or (r["modified_at"] <= high if include_high else r["modified_at"] < high)))


@settings(max_examples=150, deadline=None)
@given(blocks=st.lists(_BLOCK, max_size=8), queries=st.lists(st.tuples(_BOUND, _BOUND, st.booleans(), st.booleans()),
                                                               min_size=1, max_size=6))
def test_store_ranges_match_a_scan_through_savepoints_and_rollbacks(
        blocks: list[tuple[list[tuple[int, int]], bool]],
        queries: list[tuple[int | None, int | None, bool, bool]]) -> None:
    store = Store(None)
    for writes, roll_back in blocks:
        mark = store.savepoint()
        for number, milliseconds in writes:
            store.put("customer", {"id": f"C{number}", "created_at": _at(0), "modified_at": _at(milliseconds)})
        if roll_back:
            store.rollback_to(mark)
        store.release(mark)
    for low, high, include_low, include_high in queries:
        low_text, high_text = (None if b is None else _at(b) for b in (low, high))
        found = store.between("customer", "modified_at", low_text, high_text, include_low, include_high)
        assert [(r["modified_at"], r["id"]) for r in found] == _between_by_scan(
            store, low_text, high_text, include_low, include_high)


def test_bounds_are_inclusive_or_exclusive_exactly() -> None:
    store = Store(None)
    for number, milliseconds in enumerate((0, 10, 10, 20)):
        store.put("customer", {"id": f"C{number}", "modified_at": _at(milliseconds)})

    def ids(low: int | None, high: int | None, include_low: bool = True, include_high: bool = True) -> list[str]:
        return [r["id"] for r in store.between("customer", "modified_at", None if low is None else _at(low),
                                               None if high is None else _at(high), include_low, include_high)]
    assert ids(10, 10) == ["C1", "C2"]
    assert ids(10, 10, include_low=False) == [] and ids(10, 10, include_high=False) == []
    assert ids(10, None, include_low=False) == ["C3"]
    assert ids(None, 10, include_high=False) == ["C0"]
    assert ids(0, 20, False, False) == ["C1", "C2"]
    assert ids(20, 0) == [] and ids(None, None) == ["C0", "C1", "C2", "C3"]
    with pytest.raises(KeyError):
        store.between("customer", "name", None, None)


def test_reload_and_clear_keep_the_index(tmp_path: Any) -> None:
    store = Store(tmp_path / "erp.db")
    store.put("customer", {"id": "C1", "modified_at": _at(5)})
    store.put("customer", {"id": "C1", "modified_at": _at(30)})
    store.close()
    reopened = Store(tmp_path / "erp.db")
    assert reopened.between("customer", "modified_at", _at(10), None) == [{"id": "C1", "modified_at": _at(30)}]
    assert reopened.between("customer", "modified_at", None, _at(10)) == []
    reopened.clear()
    assert reopened.between("customer", "modified_at", None, None) == []


# -- the engine: transactions and a clock that moves ----------------------------------------------

def _erp() -> tuple[ErpEngine, Clock]:
    clock = Clock()
    return ErpEngine(erp_store(None), clock, lambda kind, n: str(n + 100)), clock


def test_rollback_leaves_the_index_right() -> None:
    erp, clock = _erp()
    kept = erp.create("customer", {"name": "Kept"})
    since = kept["modified_at"]
    clock.offset_s = 60
    with erp.transaction() as block:
        erp.update("customer", kept["id"], {"name": "Renamed"})
        erp.create("customer", {"name": "Gone"})
        assert len(erp.records_between("customer", "modified_at", since, None, include_low=False)) == 2
        block.rollback()
    assert erp.records_between("customer", "modified_at", since, None, include_low=False) == []
    assert erp.records_between("customer", "modified_at", since, since) == [kept]


def test_a_clock_moved_backwards_between_writes() -> None:
    erp, clock = _erp()
    late = erp.create("customer", {"name": "Late"})
    clock.offset_s = -3600  # the next write is an hour earlier, though later in write order
    early = erp.create("customer", {"name": "Early"})
    middle = format_datetime(datetime.now(UTC) - timedelta(minutes=30))
    assert erp.records_between("customer", "modified_at", middle, None) == [late]
    assert erp.records_between("customer", "modified_at", None, middle) == [early]
    assert [r["id"] for r in erp.records_between("customer", "modified_at", None, None)] == [early["id"], late["id"]]
    clock.offset_s = 0
    erp.delete("customer", late["id"])
    assert erp.records_between("customer", "modified_at", middle, None) == []  # tombstones are not live


# -- the evaluator: range lookups agree with scans and never scan ---------------------------------

def _truncated_rows(kind: str, record: Record) -> list[Row]:
    """NetSuite-style rows: datetimes shown to whole seconds."""
    return [{"id": record["id"], "lastmodifieddate": record["modified_at"][:19] + "Z"}]


def _exact_rows(kind: str, record: Record) -> list[Row]:
    """Salesforce-style rows: milliseconds and +0000."""
    return [{"id": record["id"], "lastmodifieddate": record["modified_at"][:-1] + "+0000"}]


class _NoScan(RecordSource):
    def rows(self, table: str) -> list[Row]:
        raise AssertionError("scanned")


def _source(repository: Repository, to_rows: Any, scan: bool = True) -> RecordSource:
    table = RecordTable(("customer",), to_rows, ordered={"lastmodifieddate": "modified_at"})
    return (RecordSource if scan else _NoScan)({"customer": table}, repository.records, None,
                                               between=repository.records_between)


_MOMENT = st.builds(lambda ms, hours, as_date: (BASE + timedelta(milliseconds=ms)).date() if as_date else (
    BASE + timedelta(milliseconds=ms)).astimezone(timezone(timedelta(hours=hours))),
                    st.integers(-500, 3_000), st.integers(-12, 12), st.booleans())
_RANGE = st.one_of(
    st.builds(lambda op, moment, flip: Comparison(op, Literal(moment), Column("lastmodifieddate")) if flip else
              Comparison(op, Column("lastmodifieddate"), Literal(moment)),
              st.sampled_from(["<", "<=", ">", ">="]), _MOMENT, st.booleans()),
    st.builds(lambda low, high: Between(Column("lastmodifieddate"), Literal(low), Literal(high)), _MOMENT, _MOMENT))
_SEMANTICS = [soql.SEMANTICS, suiteql.SEMANTICS, netsuite_filter.SEMANTICS]


@settings(max_examples=120, deadline=None)
@given(stamps=st.lists(st.integers(0, 2_500), min_size=1, max_size=25), terms=st.lists(_RANGE, min_size=1, max_size=3),
       truncated=st.booleans(), semantics=st.sampled_from(_SEMANTICS))
def test_range_queries_match_a_scan(stamps: list[int], terms: list[Condition], truncated: bool,
                                    semantics: Semantics) -> None:
    erp, clock = _erp()
    for milliseconds in stamps:  # modified_at out of write order, several per millisecond
        clock.offset_s = (BASE + timedelta(milliseconds=milliseconds)).timestamp() - time.time()
        erp.create("customer", {"name": "C"})
    repository, to_rows = Repository(erp), _truncated_rows if truncated else _exact_rows
    select = Select(items=(SelectItem(Column("id")),), source=TableRef("customer"), where=conjunction(terms))
    schema = {"customer": ["id", "lastmodifieddate"]}
    scanned = evaluate(select, InMemoryRows({"customer": [row for r in repository.records("customer")
                                                          for row in to_rows("customer", r)]}), schema, semantics)
    indexed = evaluate(select, _source(repository, to_rows, scan=False), schema, semantics)
    assert sorted(r["id"] for r in indexed.rows) == sorted(r["id"] for r in scanned.rows)


def _polled(text: str, language: str, repository: Repository) -> list[str]:
    schema = {"customer": ["id", "lastmodifieddate"]}
    if language == "soql":
        select, semantics = soql.parse_soql(text, lambda: BASE), soql.SEMANTICS
    elif language == "suiteql":
        select, semantics = suiteql.parse_suiteql(text), suiteql.SEMANTICS
    else:
        select = Select(items=(), source=TableRef("customer"),
                        where=netsuite_filter.parse_filter(text, lambda name: "datetime"))
        semantics = netsuite_filter.SEMANTICS
    result = evaluate(select, _source(repository, _truncated_rows, scan=False), schema, semantics)
    return sorted(source_row["id"] for source_row, *_ in result.matches)  # type: ignore[index]


def test_each_front_end_polls_without_scanning() -> None:
    erp, clock = _erp()
    ids = {}
    for name, minutes in (("old", -90), ("new", 30), ("newest", 90)):
        clock.offset_s = (BASE + timedelta(minutes=minutes)).timestamp() - time.time()
        ids[name] = erp.create("customer", {"name": name})["id"]
    repository = Repository(erp)
    new = sorted([ids["new"], ids["newest"]])
    assert _polled("SELECT Id FROM customer WHERE LastModifiedDate > 2026-11-23T10:00:00Z", "soql", repository) == new
    assert _polled("SELECT Id FROM customer WHERE LastModifiedDate >= 2026-11-23T11:00:00+01:00 AND "
                   "LastModifiedDate < 2026-11-23T11:00:00Z", "soql", repository) == [ids["new"]]
    assert _polled("SELECT Id FROM customer WHERE LastModifiedDate >= 2026-11-23", "soql",
                   repository) == sorted(ids.values())
    assert _polled("SELECT id FROM customer WHERE lastmodifieddate >= "
                   "TO_DATE('2026-11-23 10:00', 'YYYY-MM-DD HH24:MI')", "suiteql", repository) == new
    assert _polled("SELECT id FROM customer WHERE lastmodifieddate BETWEEN TO_TIMESTAMP('2026-11-23T08:00:00Z') "
                   "AND TO_TIMESTAMP('2026-11-23T10:00:00Z')", "suiteql", repository) == [ids["old"]]
    assert _polled('lastmodifieddate ON_OR_AFTER "11/23/2026 10:00 am"', "q", repository) == new
    assert _polled('lastmodifieddate AFTER "11/23/2026 11:00 am"', "q", repository) == [ids["newest"]]
    assert _polled('lastmodifieddate BEFORE "11/23/2026 10:00 am"', "q", repository) == [ids["old"]]
    assert _polled('lastmodifieddate WITHIN ["11/23/2026 10:00 am", "11/23/2026 11:00 am"]', "q",
                   repository) == [ids["new"]]
    assert _polled('lastmodifieddate ON "11/23/2026"', "q", repository) == sorted(ids.values())


def test_other_conditions_still_scan() -> None:
    erp, _ = _erp()
    erp.create("customer", {"name": "C"})
    source = _source(Repository(erp), _exact_rows, scan=False)
    select = Select(items=(), source=TableRef("customer"), where=Comparison(
        ">", Column("lastmodifieddate"), Literal("2026-11-23T10:00:00Z")))  # text, not a datetime: compared as text
    with pytest.raises(AssertionError, match="scanned"):
        evaluate(select, source, {"customer": ["id", "lastmodifieddate"]}, suiteql.SEMANTICS)


def test_date_literal_against_a_datetime_field() -> None:
    erp, clock = _erp()
    clock.offset_s = (BASE.replace(hour=0) - timedelta(minutes=1)).timestamp() - time.time()
    erp.create("customer", {"name": "Yesterday evening"})
    clock.offset_s = BASE.timestamp() - time.time()
    today = erp.create("customer", {"name": "Today"})
    assert _polled(f"SELECT Id FROM customer WHERE LastModifiedDate >= {date(2026, 11, 23).isoformat()}", "soql",
                   Repository(erp)) == [today["id"]]


# -- through the real HTTP dialects ---------------------------------------------------------------

def _move_clock(sims: Sims, side: str, seconds: float) -> str:
    with sims.admin(side) as admin:
        response = admin.put("/_sim/clock", json={"offset_s": seconds})
        assert response.status_code == 200, response.text
        return response.json()["now"]


def test_soql_modified_since_poll_returns_exactly_the_changed_accounts(sims: Sims) -> None:
    ids = sims.seed("crm", {"account": [{"name": f"Account {n}"} for n in range(30)]})["account"]
    marker = datetime.fromisoformat(_move_clock(sims, "crm", 60)) + timedelta(milliseconds=1)
    _move_clock(sims, "crm", 120)
    changed = ids[3:6]
    with sims.crm() as crm:
        for record_id in changed:
            assert crm.patch(f"/sobjects/Account/{record_id}", json={"Name": "Changed"}).status_code == 204
        since = marker.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        for field in ("SystemModstamp", "LastModifiedDate"):
            body = crm.get("/query", params={"q": f"SELECT Id, Name FROM Account WHERE {field} > {since}"}).json()
            assert sorted(r["Id"] for r in body["records"]) == sorted(changed), body
        body = crm.get("/query", params={"q": f"SELECT Id FROM Account WHERE SystemModstamp <= {since}"}).json()
        assert body["totalSize"] == 27


def test_netsuite_on_or_after_poll_returns_exactly_the_changed_customers(sims: Sims) -> None:
    ids = sims.seed("erp", {"customer": [{"name": f"Customer {n}"} for n in range(30)]})["customer"]
    marker = datetime.fromisoformat(_move_clock(sims, "erp", 60))
    _move_clock(sims, "erp", 120)
    changed = ids[10:14]
    with sims.erp() as erp:
        for record_id in changed:
            assert erp.patch(f"/record/v1/customer/{record_id}", json={"companyName": "Changed"}).status_code == 204
        since = marker.strftime("%m/%d/%Y %I:%M %p").lower()  # minute precision, within the minute before
        body = erp.get("/record/v1/customer", params={"q": f'lastModifiedDate ON_OR_AFTER "{since}"'}).json()
        assert sorted(item["id"] for item in body["items"]) == sorted(changed), body
        body = erp.get("/record/v1/customer", params={"q": f'lastModifiedDate BEFORE "{since}"'}).json()
        assert body["totalResults"] == 26
