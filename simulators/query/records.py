"""A row source over a domain engine's records, for the dialects.

Each table lists the canonical kinds its rows come from and how a record becomes rows. Rows are built
once per record and query, so index lookups and scans hand the evaluator the same objects. Lookups go
through `find` for columns that carry an indexed canonical field unchanged; any other column scans.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from syncert.simulators.query.evaluate import Row

Record = dict[str, Any]


@dataclass(frozen=True)
class RecordTable:
    kinds: tuple[str, ...]
    to_rows: Callable[[str, Record], list[Row]]  # (kind, record) -> the record's rows
    indexed: Mapping[str, str] = field(default_factory=dict)  # column -> canonical field with the same value
    fixed_rows: tuple[Row, ...] = ()  # reference data served whatever the records


class RecordSource:
    """`records(kind)` lists a kind's records; `find(kind, field, value)` answers from an index and raises
    KeyError when the field has none (None: never look up, e.g. when deleted records count too)."""

    def __init__(self, tables: Mapping[str, RecordTable], records: Callable[[str], Iterable[Record]],
                 find: Callable[[str, str, Any], Iterable[Record]] | None,
                 display: Callable[[RecordSource, str, str, Any], Any] | None = None):
        self.tables, self.records, self.find, self.displayer = tables, records, find, display
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

    def display(self, table: str, column: str, value: Any) -> Any:
        return value if self.displayer is None else self.displayer(self, table, column, value)

    def _rows_of(self, table: str, kind: str, record: Record) -> list[Row]:
        key = (table, kind, str(record["id"]))
        if key not in self._rows:
            self._rows[key] = self.tables[table].to_rows(kind, record)
        return self._rows[key]
