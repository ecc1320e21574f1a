"""The generic domain engine: validated CRUD over canonical records, in transactions, with change events.

The CRM and ERP engines subclass it and add their business rules through the `_apply_rules`,
`_after_write`, `_before_delete` and `_after_delete` hooks. An engine never sees vendor shapes:
dialects hand it canonical field names (through a Repository).

Every write runs inside a transaction (one is opened for the call when none is open). Transactions
nest as savepoints: a block left by an exception, or rolled back explicitly, leaves no trace in
records, indexes or the change feed; change events are held until the outermost block commits, so
rolled-back writes publish nothing. Id and document-number counters are not rolled back (a number
handed out stays used, as with database sequences). Durability is the store's: `store.commit()`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from syncert.simulators.clock import Clock, parse_datetime
from syncert.simulators.domain.change_feed import ChangePage
from syncert.simulators.domain.kinds import (
    ADDRESS_PARTS,
    SYSTEM_FIELDS,
    ChangeEvent,
    DomainError,
    Field,
    Kind,
    NotFound,
    ValidationRule,
    short_repr,
)
from syncert.simulators.domain.schema import Schema
from syncert.simulators.domain.store import Record, Store

IdFormat = Callable[[str, int], str]
Listener = Callable[[ChangeEvent], None]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_INTEGER_DIGITS = 18  # canonical numbers: |x| < 10**18 (Salesforce and NetSuite: 18 digits in all)
MAX_DECIMAL_PLACES = 18
DEFAULT_CHANGE_PAGE = 10_000


class Transaction:
    """An open transaction block (a savepoint when nested); `rollback()` undoes its writes so far."""

    def __init__(self, engine: Engine, mark: int, first_event: int):
        self._engine = engine
        self.mark = mark
        self.first_event = first_event

    def rollback(self) -> None:
        """Undo every write of this block so far and drop its events; the block stays open."""
        self._engine.store.rollback_to(self.mark)
        del self._engine._held_events[self.first_event:]


class Engine:
    """Canonical records of one system, validated against its schema's kinds and kept in `store`."""

    system = "generic"

    def __init__(self, schema: Schema, store: Store, clock: Clock, id_format: IdFormat):
        self.schema = schema
        self.store = store
        self.clock = clock
        self._id_format = id_format
        self._listeners: list[Listener] = []
        self._held_events: list[ChangeEvent] = []
        self._validation_rules: dict[str, list[ValidationRule]] = {}

    @property
    def kinds(self) -> dict[str, Kind]:
        return self.schema.kinds

    # -- reading ---------------------------------------------------------------------------------

    def kind(self, name: str) -> Kind:
        return self.schema.kind(name)

    def get(self, kind: str, record_id: str, include_deleted: bool = False) -> Record:
        record = self.store.get(self.kind(kind).name, record_id)
        if record is None or (record.get("is_deleted") and not include_deleted):
            raise NotFound(kind, record_id)
        return record

    def get_or_none(self, kind: str, record_id: str) -> Record | None:
        """The live record, or None when it does not exist or is deleted."""
        record = self.store.get(self.kind(kind).name, record_id)
        return None if record is None or record.get("is_deleted") else record

    def find(self, kind: str, field: str, value: Any) -> list[Record]:
        """Live records whose indexed `field` equals `value`."""
        return [r for r in self.store.find(kind, field, value) if not r.get("is_deleted")]

    def records_between(self, kind: str, field: str, low: str | None, high: str | None, include_low: bool = True,
                        include_high: bool = True) -> list[Record]:
        """Live records whose ordered `field` (created_at, modified_at: canonical ISO text) lies between `low`
        and `high` (None: unbounded), in field order; KeyError for other fields. Costs O(log n + k)."""
        records = self.store.between(self.kind(kind).name, field, low, high, include_low, include_high)
        return [r for r in records if not r.get("is_deleted")]

    def records(self, kind: str, include_deleted: bool = False) -> list[Record]:
        """Every live record of `kind` (and tombstones with `include_deleted`): a whole-table read."""
        return [r for r in self.store.all(self.kind(kind).name) if include_deleted or not r.get("is_deleted")]

    def count(self, kind: str) -> int:
        """How many live records of `kind` there are."""
        return self.store.count(self.kind(kind).name)

    def changes(self, since: int = 0, kinds: Collection[str] | None = None,
                limit: int = DEFAULT_CHANGE_PAGE) -> ChangePage:
        """Records written after cursor `since` (tombstones included), oldest change first.

        Each record appears once, with its latest values, at the position of its latest write; pass
        `next_since` back to read on. Cost follows the number of changes after `since`.
        """
        if limit < 1:
            raise DomainError("INVALID_VALUE", f"limit must be at least 1, not {limit}", ("limit",))
        wanted = list(self.kinds) if kinds is None else [self.kind(k).name for k in kinds]
        records, next_since, more = self.store.changes(since, wanted, limit)
        return ChangePage(records, next_since, more)

    # -- transactions ----------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A transaction block; nested blocks are savepoints. An exception leaving it rolls it back."""
        block = Transaction(self, self.store.savepoint(), len(self._held_events))
        try:
            yield block
        except BaseException:
            block.rollback()
            raise
        finally:
            self.store.release(block.mark)
        if not self.store.in_savepoint:
            self._publish_held()

    @property
    def in_transaction(self) -> bool:
        return self.store.in_savepoint

    @contextmanager
    def _writing(self, kind: str) -> Iterator[None]:
        """One write call: its own transaction block; refusals name the kind being written."""
        try:
            with self.transaction():
                yield
        except DomainError as error:
            error.kind = error.kind or kind
            raise

    # -- writing ---------------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """Call `listener` with every committed change event."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def create(self, kind: str, values: dict[str, Any]) -> Record:
        with self._writing(kind):
            schema = self.kind(kind)
            record = self._new_record(schema, values)
            self.store.put(kind, record)
            self._publish(kind, record, "created", record["created_at"], tuple(values))
            self._after_write(kind, record, None)
            return record

    def create_many(self, kind: str, rows: Iterable[dict[str, Any]]) -> list[Record]:
        """Bulk create (seeding): same validation, one transaction, events per record."""
        with self._writing(kind):
            schema = self.kind(kind)
            records: list[Record] = []
            seen: set[tuple[str, Any]] = set()
            for values in rows:
                record = self._new_record(schema, values)
                for name in schema.unique_fields:
                    if record.get(name) is not None:
                        if (name, record[name]) in seen:
                            raise DomainError("DUPLICATE_VALUE", f"{kind}.{name} {record[name]!r} appears twice",
                                              (name,))
                        seen.add((name, record[name]))
                records.append(record)
            self.store.put_many(kind, records)
            for record in records:
                self._publish(kind, record, "created", record["created_at"], tuple(record))
                self._after_write(kind, record, None)
            return records

    def update(self, kind: str, record_id: str, values: dict[str, Any]) -> Record:
        with self._writing(kind):
            schema = self.kind(kind)
            previous = self.get(kind, record_id)
            changes = self._validate(schema, values, record_id=record_id)
            record = {**previous, **changes}
            self._check_required(schema, record)
            self._check_validation_rules(kind, record)
            self._apply_rules(kind, record, previous)
            record["modified_at"] = self.clock.iso()
            self.store.put(kind, record)
            self._publish(kind, record, "updated", record["modified_at"], tuple(changes))
            self._after_write(kind, record, previous)
            return record

    def delete(self, kind: str, record_id: str) -> None:
        with self._writing(kind):
            previous = self.get(kind, record_id)
            self._before_delete(kind, previous)
            now = self.clock.iso()
            self.store.put(kind, {**previous, "is_deleted": True, "deleted_at": now, "modified_at": now})
            self._publish(kind, previous, "deleted", now)
            self._after_delete(kind, previous)

    def touch(self, kind: str, record_id: str, changes: dict[str, Any]) -> Record:
        """Apply computed changes (rule side effects) without input validation."""
        with self._writing(kind):
            record = {**self.get(kind, record_id), **changes, "modified_at": self.clock.iso()}
            self.store.put(kind, record)
            self._publish(kind, record, "updated", record["modified_at"], tuple(changes))
            return record

    def set_validation_rules(self, rules: list[ValidationRule]) -> None:
        """Validations checked on every create and update from now on (replacing the previous ones)."""
        self._validation_rules = {}
        for rule in rules:
            self._validation_rules.setdefault(rule.kind, []).append(rule)

    def _check_validation_rules(self, kind: str, record: Record) -> None:
        for rule in self._validation_rules.get(kind, ()):
            value = record.get(rule.field_name)
            if value is not None and (value == rule.value or str(value) == str(rule.value)):
                if rule.on_refused is not None:
                    rule.on_refused()
                raise DomainError("VALIDATION_RULE", rule.message, (rule.field_name,))

    def reset(self) -> None:
        """Remove every record (not inside a transaction)."""
        self.store.clear()
        self._held_events.clear()

    # -- hooks for business rules -----------------------------------------------------------------

    def _apply_rules(self, kind: str, record: Record, previous: Record | None) -> None:
        """Derive computed fields and enforce rules; raise DomainError to refuse the write."""

    def _after_write(self, kind: str, record: Record, previous: Record | None) -> None:
        """Side effects on other records after a write (same transaction)."""

    def _before_delete(self, kind: str, record: Record) -> None:
        """Raise DomainError to refuse a delete."""

    def _after_delete(self, kind: str, record: Record) -> None:
        """Side effects of a delete (cascades), in the same transaction."""

    # -- internals -------------------------------------------------------------------------------

    def _new_record(self, schema: Kind, values: dict[str, Any]) -> Record:
        record = {f.name: f.default for f in schema.fields if f.default is not None}
        record.update(self._validate(schema, values))
        self._check_required(schema, record)
        self._check_validation_rules(schema.name, record)
        now = self.clock.iso()
        record.update(id=self._id_format(schema.name, self.store.next_number(f"id:{schema.name}")),
                      created_at=now, modified_at=now, is_deleted=False)
        self._apply_rules(schema.name, record, None)
        return record

    def _publish(self, kind: str, record: Record, operation: str, at: str, changed: tuple[str, ...] = ()) -> None:
        """Hold an event (with the values of the fields it changed, as they are now) until the outermost
        transaction commits."""
        values = {name: record[name] for name in changed if name in record}
        self._held_events.append(ChangeEvent(self.system, kind, record["id"], operation, at,  # type: ignore[arg-type]
                                             changed, values))

    def _publish_held(self) -> None:
        events, self._held_events = self._held_events, []
        for event in events:
            for listener in self._listeners:
                listener(event)

    @staticmethod
    def _check_required(schema: Kind, record: Record) -> None:
        missing = tuple(f.name for f in schema.fields if f.required and record.get(f.name) in (None, "", []))
        if missing:
            raise DomainError("REQUIRED_FIELD_MISSING", f"Required fields are missing: {', '.join(missing)}",
                              missing)

    def _validate(self, schema: Kind, values: dict[str, Any], record_id: str | None = None) -> dict[str, Any]:
        clean: dict[str, Any] = {}
        for name, value in values.items():
            field = schema.by_name.get(name)
            if field is None or name in SYSTEM_FIELDS:
                raise DomainError("INVALID_FIELD", f"No such field {name!r} on {schema.name}", (name,))
            if field.read_only:
                raise DomainError("READ_ONLY_FIELD", f"Field {name!r} of {schema.name} is read-only", (name,))
            clean[name] = self._coerce(schema.name, field, value)
            if field.unique and clean[name] is not None:
                clash = [r for r in self.find(schema.name, name, clean[name]) if r["id"] != record_id]
                if clash:
                    raise DomainError("DUPLICATE_VALUE",
                                      f"{schema.name}.{name} {clean[name]!r} already used by {clash[0]['id']}",
                                      (name,))
        return clean

    def _coerce(self, kind: str, field: Field, value: Any) -> Any:
        if value is None:
            return None
        where = f"{kind}.{field.name}"
        match field.type:
            case "string" | "email" | "url" | "phone" | "text":
                if not isinstance(value, str):
                    raise _bad_value(where, value, "text")
                if field.length is not None and len(value) > field.length:
                    raise DomainError("STRING_TOO_LONG",
                                      f"{where}: {len(value)} characters, at most {field.length} allowed",
                                      (field.name,))
                if field.type == "email" and value and not _EMAIL.match(value):
                    raise DomainError("INVALID_EMAIL_ADDRESS", f"{where}: {value!r} is not an email address",
                                      (field.name,))
                return value
            case "decimal":
                return to_decimal(value, where, field.name)
            case "integer":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise _bad_value(where, value, "integer")
                _check_range(Decimal(value), where, field.name)
                return value
            case "boolean":
                if not isinstance(value, bool):
                    raise _bad_value(where, value, "boolean")
                return value
            case "date":
                try:
                    if not _DATE.match(value):
                        raise ValueError(value)
                    return date.fromisoformat(value).isoformat()
                except (TypeError, ValueError):
                    raise _bad_value(where, value, "date (YYYY-MM-DD)") from None
            case "datetime":
                try:
                    return parse_datetime(value).isoformat()
                except (TypeError, ValueError):
                    raise _bad_value(where, value, "datetime (ISO 8601)") from None
            case "reference":
                if not isinstance(value, str):
                    raise _bad_value(where, value, "record id")
                target = self.store.get(field.references or "", value)
                if target is None or target.get("is_deleted"):
                    raise DomainError("INVALID_REFERENCE",
                                      f"{where}: no {field.references} with id {value!r}", (field.name,))
                return value
            case "picklist":
                if value not in field.values:
                    raise DomainError("INVALID_PICKLIST_VALUE",
                                      f"{where}: {value!r} is not one of {', '.join(field.values)}",
                                      (field.name,))
                return value
            case "address":
                if not isinstance(value, dict) or not set(value) <= set(ADDRESS_PARTS) or not all(
                        isinstance(v, str | None) for v in value.values()):
                    raise _bad_value(where, value, f"address with parts {', '.join(ADDRESS_PARTS)}")
                return {k: v for k, v in value.items() if v is not None}
            case "lines":
                if not isinstance(value, list) or not all(isinstance(line, dict) for line in value):
                    raise _bad_value(where, value, "list of lines")
                line_kind = Kind(f"{kind}.{field.name}", field.line_fields)
                lines = []
                for line in value:
                    clean = self._validate(line_kind, line)
                    self._check_required(line_kind, clean)
                    lines.append(clean)
                return lines
        raise AssertionError(f"unhandled field type {field.type}")


def to_decimal(value: Any, where: str, field_name: str) -> Decimal:
    """Exact decimal from a JSON number or numeric text, within the canonical range.

    Refuses booleans, non-finite values, more than MAX_INTEGER_DIGITS digits before the point and
    more than MAX_DECIMAL_PLACES significant digits after it (1e999999 or 1e-400 would otherwise be
    stored and break every later answer that converts them).
    """
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise _bad_value(where, value, "number")
    try:
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise _bad_value(where, value, "number") from None
    if not number.is_finite():
        raise _bad_value(where, value, "finite number")
    _check_range(number, where, field_name)
    return number


def _check_range(number: Decimal, where: str, field_name: str) -> None:
    """Raise NUMBER_OUTSIDE_VALID_RANGE when `number` is beyond the canonical range."""
    _, digits, exponent = number.as_tuple()
    text = "".join(map(str, digits))
    if not text.strip("0"):
        return
    last_significant_place = int(exponent) + len(text) - len(text.rstrip("0"))
    if number.adjusted() >= MAX_INTEGER_DIGITS or last_significant_place < -MAX_DECIMAL_PLACES:
        raise DomainError("NUMBER_OUTSIDE_VALID_RANGE",
                          f"{where}: {str(number)[:40]} is outside the valid range (at most {MAX_INTEGER_DIGITS} "
                          f"digits before the decimal point and {MAX_DECIMAL_PLACES} after it)", (field_name,))


def _bad_value(where: str, value: Any, expected: str) -> DomainError:
    return DomainError("INVALID_VALUE", f"{where}: {short_repr(value)} is not a valid {expected}",
                       (where.split(".")[-1],))
