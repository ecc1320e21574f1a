"""Record store for one simulated system: SQLite (WAL) on disk by default, or memory only.

Records are canonical dicts grouped by kind. Every read is served from an in-memory mirror with
indexes on chosen fields. Writes change the mirror at once and are written to SQLite by `commit()`,
so several writes share one COMMIT (the simulator commits before it answers: see
simulators.stages.pipeline.GroupCommit). A committed write survives a kill -9 of the simulator.

Savepoints make writes undoable: `savepoint()` marks the undo log, `rollback_to(mark)` restores
every record, index entry and sequence number written since, `release(mark)` keeps them. Counters
(`next_number`) are not rolled back: like database sequences, a number handed out stays used.
Every write also gets the next change sequence number, stored with the record (see change_feed).
`created_at` and `modified_at` of every kind are also kept in ordered indexes (value, id), so a range
of them (`between`) costs O(log n + k) whatever order the records were written in.
A store is used from one thread at a time (the simulator's event loop).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from sortedcontainers import SortedList

from syncert.simulators.domain.change_feed import ChangeLog

Record = dict[str, Any]
SEQ_COUNTER = "change_seq"
ORDERED_FIELDS = ("created_at", "modified_at")  # canonical ISO datetime text, which sorts as it orders

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    seq INTEGER,
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
    """Canonical records by kind and id, with in-memory indexes, savepoints and a change log."""

    def __init__(self, path: Path | None, indexed_fields: dict[str, Iterable[str]] | None = None):
        self._indexed_fields = {kind: tuple(fields) for kind, fields in (indexed_fields or {}).items()}
        self._db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False,
                                   isolation_level=None)
        if path:
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives a crash of the process (not of the OS).
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        if "seq" not in {row[1] for row in self._db.execute("PRAGMA table_info(records)")}:
            self._db.execute("ALTER TABLE records ADD COLUMN seq INTEGER")  # a store from before change feeds
        self._records: dict[str, dict[str, Record]] = {}
        self._seqs: dict[str, dict[str, int]] = {}
        self._live: dict[str, int] = {}
        self._indexes: dict[tuple[str, str], dict[Any, set[str]]] = {}
        self._ordered: dict[tuple[str, str], SortedList] = {}  # (kind, field) -> sorted (value, id)
        self._counters: dict[str, int] = {}
        self._dirty_counters: dict[str, int] = {}
        self._unwritten: dict[tuple[str, str], tuple[Record, int] | None] = {}  # None: delete the row
        self._cleared = False
        self._undo: list[tuple[str, str, Record | None, int | None]] = []
        self._open_savepoints = 0
        self._log = ChangeLog(lambda kind, record_id: self._seqs.get(kind, {}).get(record_id))
        self._load()

    def _load(self) -> None:
        self._counters = dict(self._db.execute("SELECT name, value FROM counters"))
        seq = 0
        rows = self._db.execute("SELECT kind, id, data, seq FROM records ORDER BY seq IS NOT NULL, seq, rowid")
        for kind, record_id, data, stored_seq in rows:
            seq = stored_seq if stored_seq is not None else seq + 1
            self._place(kind, record_id, json.loads(data, object_hook=_decode), seq)
            self._log.append(kind, record_id, seq)
        self._counters[SEQ_COUNTER] = max(seq, self._counters.get(SEQ_COUNTER, 0))

    # -- reading ---------------------------------------------------------------------------------

    def get(self, kind: str, record_id: str) -> Record | None:
        return self._records.get(kind, {}).get(record_id)

    def find(self, kind: str, field: str, value: Any) -> list[Record]:
        """Records of `kind` whose indexed `field` equals `value` (several when the field is not unique)."""
        if field not in self._indexed_fields.get(kind, ()):
            raise KeyError(f"{kind}.{field} is not indexed")
        ids = self._indexes.get((kind, field), {}).get(value, ())
        return [self._records[kind][record_id] for record_id in sorted(ids)]

    def between(self, kind: str, field: str, low: str | None, high: str | None, include_low: bool = True,
                include_high: bool = True) -> list[Record]:
        """Records of `kind` whose ordered `field` lies between `low` and `high` (None: unbounded), in field order."""
        if field not in ORDERED_FIELDS:
            raise KeyError(f"{kind}.{field} has no ordered index")
        index = self._ordered.get((kind, field))
        if not index:
            return []
        # (v,) sorts before every (v, id) and v + "\0" right after every v, so bounds bisect exactly.
        start = 0 if low is None else index.bisect_left((low if include_low else low + "\0",))
        stop = len(index) if high is None else index.bisect_left((high + "\0" if include_high else high,))
        table = self._records[kind]
        return [table[record_id] for _, record_id in index.islice(start, stop)]

    def all(self, kind: str) -> Iterator[Record]:
        return iter(list(self._records.get(kind, {}).values()))

    def count(self, kind: str) -> int:
        """Live (not deleted) records of `kind`."""
        return self._live.get(kind, 0)

    def changes(self, since: int, kinds: Collection[str], limit: int) -> tuple[list[tuple[str, Record]], int, bool]:
        """Records of `kinds` written after sequence number `since`, in write order, up to `limit`.

        Returns (kind, record) pairs, the cursor to read on from and whether more changes remain.
        """
        entries, more = self._log.read(since, kinds, limit)
        records = [(kind, self._records[kind][record_id]) for _, kind, record_id in entries]
        next_since = entries[-1][0] if more else max(since, self._counters.get(SEQ_COUNTER, 0))
        return records, next_since, more

    @property
    def last_seq(self) -> int:
        """The sequence number of the newest write."""
        return self._counters.get(SEQ_COUNTER, 0)

    # -- writing ---------------------------------------------------------------------------------

    def next_number(self, name: str) -> int:
        """Return the next value of a counter (ids, document numbers); durable at the next commit."""
        value = self._counters.get(name, 0) + 1
        self._counters[name] = value
        self._dirty_counters[name] = value
        return value

    def put(self, kind: str, record: Record) -> None:
        """Insert or replace a record."""
        self.put_many(kind, [record])

    def put_many(self, kind: str, records: list[Record]) -> None:
        """Insert or replace several records, each with the next change sequence number."""
        table, seqs = self._records.get(kind, {}), self._seqs.get(kind, {})
        for record in records:
            record_id = record["id"]
            seq = self.next_number(SEQ_COUNTER)
            if self._open_savepoints:
                self._undo.append((kind, record_id, table.get(record_id), seqs.get(record_id)))
            self._place(kind, record_id, record, seq)
            self._log.append(kind, record_id, seq)
            self._unwritten[(kind, record_id)] = (record, seq)
            table, seqs = self._records[kind], self._seqs[kind]

    def _place(self, kind: str, record_id: str, record: Record | None, seq: int | None) -> None:
        """Set the mirror's version of one record (None removes it), keeping indexes and counts."""
        table = self._records.setdefault(kind, {})
        previous = table.get(record_id)
        if previous is not None:
            self._index(kind, previous, remove=True)
            self._live[kind] = self._live.get(kind, 0) - (not previous.get("is_deleted"))
        if record is None:
            table.pop(record_id, None)
            self._seqs.setdefault(kind, {}).pop(record_id, None)
            return
        table[record_id] = record
        self._seqs.setdefault(kind, {})[record_id] = seq  # type: ignore[assignment]
        self._index(kind, record)
        self._live[kind] = self._live.get(kind, 0) + (not record.get("is_deleted"))

    def _index(self, kind: str, record: Record, remove: bool = False) -> None:
        for field in ORDERED_FIELDS:
            value = record.get(field)
            if isinstance(value, str):
                ordered = self._ordered.setdefault((kind, field), SortedList())
                if remove:
                    ordered.discard((value, record["id"]))
                else:
                    ordered.add((value, record["id"]))
        for field in self._indexed_fields.get(kind, ()):
            value = record.get(field)
            if value is None:
                continue
            index = self._indexes.setdefault((kind, field), {})
            if remove:
                ids = index.get(value)
                if ids is not None:
                    ids.discard(record["id"])
                    if not ids:
                        del index[value]
            else:
                index.setdefault(value, set()).add(record["id"])

    # -- savepoints ------------------------------------------------------------------------------

    def savepoint(self) -> int:
        """Open a savepoint; returns the mark to roll back to or release."""
        self._open_savepoints += 1
        return len(self._undo)

    def rollback_to(self, mark: int) -> None:
        """Undo every write since `mark`; the savepoint stays open."""
        while len(self._undo) > mark:
            kind, record_id, previous, previous_seq = self._undo.pop()
            self._place(kind, record_id, previous, previous_seq)
            self._log.pop(kind)
            self._unwritten[(kind, record_id)] = None if previous is None else (previous, previous_seq or 0)

    def release(self, mark: int) -> None:
        """Close the savepoint opened at `mark`, keeping its writes."""
        self._open_savepoints -= 1
        if self._open_savepoints == 0:
            self._undo.clear()
            for kind, table in self._records.items():
                self._log.compact(kind, len(table))

    @property
    def in_savepoint(self) -> bool:
        return self._open_savepoints > 0

    # -- durability ------------------------------------------------------------------------------

    def clear(self) -> None:
        """Remove every record and counter (the change sequence goes on, so cursors stay meaningful)."""
        if self._open_savepoints:
            raise RuntimeError("cannot clear a store inside a transaction")
        self._records.clear()
        self._seqs.clear()
        self._live.clear()
        self._indexes.clear()
        self._ordered.clear()
        self._log.clear()
        self._unwritten.clear()
        self._counters = {SEQ_COUNTER: self.last_seq}
        self._dirty_counters = {SEQ_COUNTER: self.last_seq}
        self._cleared = True

    @property
    def has_uncommitted(self) -> bool:
        return bool(self._unwritten or self._dirty_counters or self._cleared) or self._db.in_transaction

    def commit(self) -> None:
        """Make every write so far durable, in one SQLite transaction."""
        if self._open_savepoints:
            raise RuntimeError("cannot commit inside an open transaction: it could still roll back")
        if not self.has_uncommitted:
            return
        if not self._db.in_transaction:
            self._db.execute("BEGIN")
        if self._cleared:
            self._db.execute("DELETE FROM records")
            self._db.execute("DELETE FROM counters")
            self._cleared = False
        gone = [key for key, row in self._unwritten.items() if row is None]
        rows = [(kind, record_id, json.dumps(row[0], default=_encode, separators=(",", ":")), row[1])
                for (kind, record_id), row in self._unwritten.items() if row is not None]
        self._db.executemany("DELETE FROM records WHERE kind = ? AND id = ?", gone)
        self._db.executemany("INSERT OR REPLACE INTO records(kind, id, data, seq) VALUES (?, ?, ?, ?)", rows)
        self._db.executemany("INSERT INTO counters(name, value) VALUES (?, ?) "
                             "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                             list(self._dirty_counters.items()))
        self._unwritten.clear()
        self._dirty_counters.clear()
        self._db.execute("COMMIT")

    def close(self) -> None:
        self.commit()
        self._db.close()
