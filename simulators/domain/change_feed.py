"""The change feed: every write gets a sequence number; readers page through changes from a cursor.

Each kind keeps an append-only log of (sequence number, record id). A log entry is current while the
record still carries that number; a later write of the record appends a new entry and leaves the old
one stale. A read bisects each requested kind's log to the cursor and merges the logs in sequence
order, so its cost follows the number of writes after the cursor, not the size of the tables.
Stale entries are dropped when they outnumber the current ones.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

COMPACT_SLACK = 1024


@dataclass(frozen=True)
class ChangePage:
    """One page of changes: (kind, canonical record) in sequence order, tombstones included.

    Pass `next_since` back as `since` to read on; `more` is True when changes after it remain.
    """

    records: list[tuple[str, dict[str, Any]]]
    next_since: int
    more: bool


class ChangeLog:
    """Per-kind logs of (sequence number, record id), in sequence order."""

    def __init__(self, current_seq: Callable[[str, str], int | None]):
        self._current_seq = current_seq
        self._seqs: dict[str, list[int]] = {}
        self._ids: dict[str, list[str]] = {}

    def append(self, kind: str, record_id: str, seq: int) -> None:
        self._seqs.setdefault(kind, []).append(seq)
        self._ids.setdefault(kind, []).append(record_id)

    def pop(self, kind: str) -> None:
        """Remove the newest entry of `kind` (undoing the write that appended it)."""
        self._seqs[kind].pop()
        self._ids[kind].pop()

    def clear(self) -> None:
        self._seqs.clear()
        self._ids.clear()

    def read(self, since: int, kinds: Collection[str], limit: int) -> tuple[list[tuple[int, str, str]], bool]:
        """Up to `limit` current entries (seq, kind, id) after `since`, and whether more follow."""
        merged = heapq.merge(*(self._current_after(kind, since) for kind in kinds))
        entries = list(islice(merged, limit + 1))
        return entries[:limit], len(entries) > limit

    def _current_after(self, kind: str, since: int) -> Iterator[tuple[int, str, str]]:
        seqs, ids = self._seqs.get(kind, []), self._ids.get(kind, [])
        for position in range(bisect.bisect_right(seqs, since), len(seqs)):
            seq, record_id = seqs[position], ids[position]
            if self._current_seq(kind, record_id) == seq:
                yield seq, kind, record_id

    def compact(self, kind: str, live_entries: int) -> None:
        """Drop stale entries of `kind` once they outnumber the current ones (amortised cost)."""
        seqs = self._seqs.get(kind, [])
        if len(seqs) <= 2 * live_entries + COMPACT_SLACK:
            return
        ids = self._ids[kind]
        kept = [(seq, record_id) for seq, record_id in zip(seqs, ids, strict=True)
                if self._current_seq(kind, record_id) == seq]
        self._seqs[kind] = [seq for seq, _ in kept]
        self._ids[kind] = [record_id for _, record_id in kept]
