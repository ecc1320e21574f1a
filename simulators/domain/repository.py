"""What a dialect may do with its system's records: canonical reads, validated writes, transactions.

A dialect holds a Repository, never the engine's store: every write goes through the engine's
rules and transactions, and every read sees live canonical records.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from syncert.simulators.domain.engine import Engine, Transaction
from syncert.simulators.domain.kinds import Kind
from syncert.simulators.domain.store import Record


class Repository:
    """Canonical records of one system, as a dialect sees them."""

    def __init__(self, engine: Engine):
        self._engine = engine

    @property
    def kinds(self) -> dict[str, Kind]:
        return self._engine.kinds

    def kind(self, name: str) -> Kind:
        """The kind named `name`; DomainError UNKNOWN_KIND otherwise."""
        return self._engine.kind(name)

    def get(self, kind: str, record_id: str) -> Record:
        """The live record; NotFound when it does not exist or is deleted."""
        return self._engine.get(kind, record_id)

    def get_or_none(self, kind: str, record_id: str) -> Record | None:
        """The live record, or None."""
        return self._engine.get_or_none(kind, record_id)

    def find(self, kind: str, field: str, value: Any) -> list[Record]:
        """Live records whose indexed `field` equals `value`."""
        return self._engine.find(kind, field, value)

    def records_between(self, kind: str, field: str, low: str | None, high: str | None, include_low: bool = True,
                        include_high: bool = True) -> list[Record]:
        """Live records whose created_at or modified_at lies between canonical `low` and `high` (None: open)."""
        return self._engine.records_between(kind, field, low, high, include_low, include_high)

    def records(self, kind: str, include_deleted: bool = False) -> list[Record]:
        """Live records of `kind` (with tombstones when `include_deleted`)."""
        return self._engine.records(kind, include_deleted)

    def create(self, kind: str, values: dict[str, Any]) -> Record:
        return self._engine.create(kind, values)

    def update(self, kind: str, record_id: str, values: dict[str, Any]) -> Record:
        return self._engine.update(kind, record_id, values)

    def delete(self, kind: str, record_id: str) -> None:
        self._engine.delete(kind, record_id)

    def transaction(self) -> AbstractContextManager[Transaction]:
        """A transaction block (a savepoint when nested): see Engine.transaction."""
        return self._engine.transaction()
