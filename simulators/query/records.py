"""A row source over a domain engine's records, for the dialects.

Each table lists the canonical kinds its rows come from and how a record becomes rows. Rows are built
once per record and query, so index lookups and scans hand the evaluator the same objects. Lookups go
through `find` for columns that carry an indexed canonical field unchanged, range lookups through
`between` for columns that show an ordered canonical datetime (created_at, modified_at); any other
column scans.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from syncert.simulators.clock import format_datetime
from syncert.simulators.query.evaluate import Row

Record = dict[str, Any]
Between = Callable[[str, str, str | None, str | None, bool, bool], Iterable[Record]]
# A column may show its canonical datetime truncated (NetSuite: whole seconds), so a row can compare at
# or below an upper bound its record is above: upper bounds are widened by this much, inclusive.
ROW_TRUNCATION = timedelta(seconds=1)


@dataclass(frozen=True)
class RecordTable:
    kinds: tuple[str, ...]
    to_rows: Callable[[str, Record], list[Row]]  # (kind, record) -> the record's rows
    indexed: Mapping[str, str] = field(default_factory=dict)  # column -> canonical field with the same value
    ordered: Mapping[str, str] = field(default_factory=dict)  # column -> canonical datetime it shows (truncated)
    fixed_rows: tuple[Row, ...] = ()  # reference data served whatever the records


class RecordSource:
    """`records(kind)` lists a kind's records; `find(kind, field, value)` answers from an index and raises
    KeyError when the field has none (None: never look up, e.g. when deleted records count too);
    `between(kind, field, low, high, include_low, include_high)` likewise for ranges of canonical datetime text."""

    def __init__(self, tables: Mapping[str, RecordTable], records: Callable[[str], Iterable[Record]],
                 find: Callable[[str, str, Any], Iterable[Record]] | None,
                 display: Callable[[RecordSource, str, str, Any], Any] | None = None,
                 between: Between | None = None):
        self.tables, self.records, self.find, self.displayer, self.between = tables, records, find, display, between
        self.memo: dict[Any, Any] = {}  # for `display`: lookups it builds once per query
        self._rows: dict[tuple[str, str, str], list[Row]] = {}
        self._tables: dict[str, list[Row]] = {}

    def rows(self, table: str) -> list[Row]:
        if table not in self._tables:
            spec = self.tables[table]
            rows = list(spec.fixed_rows)
            for kind in spec.kinds:
                for record in self.records(kind):
                    rows.extend(self._rows_of(table, kind, record))
            self._tables[table] = rows
        return self._tables[table]

    def lookup(self, table: str, column: str, value: Any) -> list[Row] | None:
        spec = self.tables[table]
        canonical = spec.indexed.get(column)
        if self.find is None or canonical is None or not isinstance(value, str) or spec.fixed_rows:
            return None
        found: list[Row] = []
        for kind in spec.kinds:
            try:
                records = self.find(kind, canonical, value)
            except KeyError:
                return None
            for record in records:
                found.extend(self._rows_of(table, kind, record))
        return found

    def range_lookup(self, table: str, column: str, low: datetime | None, high: datetime | None,
                     include_low: bool, include_high: bool) -> list[Row] | None:
        """Rows in the interval through `between`; the upper bound is widened by ROW_TRUNCATION, inclusive."""
        spec = self.tables[table]
        canonical = spec.ordered.get(column)
        if self.between is None or canonical is None or spec.fixed_rows:
            return None
        try:
            # Canonical text has milliseconds: a bound truncated to them still keeps every match.
            low_text = None if low is None else format_datetime(low)
            high_text = None if high is None else format_datetime(high + ROW_TRUNCATION)
        except OverflowError:
            return None
        found: list[Row] = []
        for kind in spec.kinds:
            try:
                records = self.between(kind, canonical, low_text, high_text, include_low, True)
            except KeyError:
                return None
            for record in records:
                found.extend(self._rows_of(table, kind, record))
        return found

    def display(self, table: str, column: str, value: Any) -> Any:
        return value if self.displayer is None else self.displayer(self, table, column, value)

    def _rows_of(self, table: str, kind: str, record: Record) -> list[Row]:
        key = (table, kind, str(record["id"]))
        if key not in self._rows:
            self._rows[key] = self.tables[table].to_rows(kind, record)
        return self._rows[key]
