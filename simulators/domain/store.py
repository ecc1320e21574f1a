"""Record store for one simulated system: SQLite (WAL) on disk by default, or memory only.

Records are canonical dicts grouped by kind. Every read is served from an in-memory mirror; every
write goes to SQLite inside an open transaction that `commit()` makes durable, so several writes can
share one COMMIT (the simulator commits before it answers: see simulators.stages.pipeline.GroupCommit). A
committed write survives a kill -9 of the simulator process. Lookup fields (external ids, numbers)
are indexed in memory. A store is used from one thread at a time (the simulator's event loop).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

Record = dict[str, Any]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    raise TypeError(f"cannot store {type(value).__name__}")


def _decode(obj: dict) -> Any:
    if len(obj) == 1 and "$decimal" in obj:
        return Decimal(obj["$decimal"])
    return obj


class Store:
    """Canonical records by kind and id, with in-memory indexes on chosen fields."""

    def __init__(self, path: Path | None, indexed_fields: dict[str, Iterable[str]] | None = None):
        self._indexed_fields = {kind: tuple(fields) for kind, fields in (indexed_fields or {}).items()}
        self._db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False,
                                   isolation_level=None)
        if path:
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives a crash of the process (not of the OS).
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._records: dict[str, dict[str, Record]] = {}
        self._indexes: dict[tuple[str, str], dict[Any, set[str]]] = {}
        self._counters: dict[str, int] = {}
        self._dirty_counters: dict[str, int] = {}
        self._load()

    def _load(self) -> None:
        for kind, record_id, data in self._db.execute("SELECT kind, id, data FROM records"):
            record = json.loads(data, object_hook=_decode)
            self._records.setdefault(kind, {})[record_id] = record
            self._index(kind, record)
        self._counters = dict(self._db.execute("SELECT name, value FROM counters"))

    def _index(self, kind: str, record: Record, remove: bool = False) -> None:
        for field in self._indexed_fields.get(kind, ()):
            value = record.get(field)
            if value is None:
                continue
            ids = self._indexes.setdefault((kind, field), {}).setdefault(value, set())
            if remove:
                ids.discard(record["id"])
            else:
                ids.add(record["id"])

    def next_number(self, name: str) -> int:
        """Return the next value of a counter (ids, document numbers).

        The new value is persisted by the next commit, with the records that use it.
        """
        value = self._counters.get(name, 0) + 1
        self._counters[name] = value
        self._dirty_counters[name] = value
        return value

    def get(self, kind: str, record_id: str) -> Record | None:
        return self._records.get(kind, {}).get(record_id)

    def find(self, kind: str, field: str, value: Any) -> list[Record]:
        """Records of `kind` whose indexed `field` equals `value` (several when the field is not unique)."""
        if field not in self._indexed_fields.get(kind, ()):
            raise KeyError(f"{kind}.{field} is not indexed")
        ids = self._indexes.get((kind, field), {}).get(value, ())
        return [self._records[kind][record_id] for record_id in sorted(ids)]

    def all(self, kind: str) -> Iterator[Record]:
        return iter(list(self._records.get(kind, {}).values()))

    def put(self, kind: str, record: Record) -> None:
        """Insert or replace a record (durable at the next commit)."""
        self.put_many(kind, [record])

    def put_many(self, kind: str, records: list[Record]) -> None:
        """Insert or replace several records."""
        rows = [(kind, r["id"], json.dumps(r, default=_encode, separators=(",", ":"))) for r in records]
        self._begin()
        self._db.executemany("INSERT OR REPLACE INTO records(kind, id, data) VALUES (?, ?, ?)", rows)
        table = self._records.setdefault(kind, {})
        for record in records:
            previous = table.get(record["id"])
            if previous is not None:
                self._index(kind, previous, remove=True)
            table[record["id"]] = record
            self._index(kind, record)

    def delete(self, kind: str, record_id: str) -> None:
        self._begin()
        self._db.execute("DELETE FROM records WHERE kind = ? AND id = ?", (kind, record_id))
        previous = self._records.get(kind, {}).pop(record_id, None)
        if previous is not None:
            self._index(kind, previous, remove=True)

    def clear(self) -> None:
        """Remove every record and counter."""
        self._begin()
        self._db.execute("DELETE FROM records")
        self._db.execute("DELETE FROM counters")
        self._records.clear()
        self._indexes.clear()
        self._counters.clear()
        self._dirty_counters.clear()

    @property
    def has_uncommitted(self) -> bool:
        return self._db.in_transaction or bool(self._dirty_counters)

    def commit(self) -> None:
        """Make every write so far durable, in one transaction."""
        if self._dirty_counters:
            self._begin()
            self._db.executemany("INSERT INTO counters(name, value) VALUES (?, ?) "
                                 "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                                 list(self._dirty_counters.items()))
            self._dirty_counters.clear()
        if self._db.in_transaction:
            self._db.execute("COMMIT")

    def _begin(self) -> None:
        if not self._db.in_transaction:
            self._db.execute("BEGIN")

    def close(self) -> None:
        self.commit()
        self._db.close()
