"""SuiteQL's tables in the simulated NetSuite.

Columns are fixed per table, whatever the data: the field map's fields (lower case) of the record types
that share a table (each record type names its table, `suiteql_table`), plus the tables defined here
(transactionline, and the reference tables employee, subsidiary and currency, whose few rows are static).
Values in rows keep their type (ids and numbers as numbers, booleans as 'T'/'F') so comparisons and
sorting behave; the dialect renders them as text.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from syncert.simulators.dialects.field_map import FieldMapping, ObjectMap, load_object_maps
from syncert.simulators.query.evaluate import Row
from syncert.simulators.query.records import Between, Record, RecordSource, RecordTable

OBJECTS = load_object_maps("netsuite")
TYPE_LABELS = {"SalesOrd": "Sales Order", "ItemShip": "Item Fulfillment", "CustInvc": "Invoice",
               "CustPymt": "Payment"}
LINE_SOURCES = ("salesOrder", "invoice")
LINE_COLUMNS = ("uniquekey", "id", "transaction", "linesequencenumber", "mainline", "entity", "item", "quantity",
                "rate", "netamount", "foreignamount", "quantitycommitted", "quantitybackordered", "quantityshiprecv",
                "quantitybilled")
_LINE_FIELDS = {"item": "item_id", "quantity": "quantity", "rate": "rate", "netamount": "amount",
                "foreignamount": "amount", "quantitycommitted": "quantity_committed",
                "quantitybackordered": "quantity_backordered", "quantityshiprecv": "quantity_fulfilled",
                "quantitybilled": "quantity_billed"}
_NUMERIC_LINE_COLUMNS = set(_LINE_FIELDS) - {"item"}
_CURRENCY_NAMES = {"USD": "US Dollar", "GBP": "British Pound", "CAD": "Canadian Dollar", "EUR": "Euro",
                   "AUD": "Australian Dollar", "JPY": "Japanese Yen"}
CURRENCIES = tuple(
    {"id": int(code), "name": _CURRENCY_NAMES.get(symbol, symbol), "symbol": symbol, "displaysymbol": symbol,
     "isbasecurrency": "T" if symbol == "USD" else "F", "isinactive": "F",
     "currencyprecision": 0 if symbol == "JPY" else 2}
    for code, symbol in (OBJECTS["customer"].fields["currency"].values or {}).items())
SUBSIDIARIES = ({"id": 1, "name": "Parent Company", "fullname": "Parent Company", "parent": None, "country": "US",
                 "currency": 1, "iselimination": "F", "isinactive": "F"},)
EMPLOYEES = ({"id": 3, "entityid": "Sync Integration", "firstname": "Sync", "lastname": "Integration",
              "email": "integration@syncert.example", "subsidiary": 1, "isinactive": "F"},)
RECORD_TABLES = tuple(dict.fromkeys(m.options["suiteql_table"] for m in OBJECTS.values()))
_EXTRA_COLUMNS = {"transaction": ("type", "entity"), "item": ("itemtype",)}
_REFERENCE_TABLES = {**{name: m.options["suiteql_table"] for name, m in OBJECTS.items()}, "subsidiary": "subsidiary"}
_DISPLAY_COLUMNS = {"customer": "companyname", "item": "itemid", "subsidiary": "name", "currency": "name",
                    "employee": "entityid"}

Flatten = Callable[[ObjectMap, Record], dict[str, Any]]


def _maps_of(table: str) -> list[ObjectMap]:
    return [m for m in OBJECTS.values() if m.options.get("suiteql_table") == table]


def _record_columns(table: str) -> tuple[str, ...]:
    names: dict[str, None] = {}
    for object_map in _maps_of(table):
        names.update((name.lower(), None) for name, mapping in object_map.fields.items()
                     if mapping.type not in ("sublist", "address_book"))
    names.update((n, None) for n in _EXTRA_COLUMNS.get(table, ()))
    return tuple(names)


SCHEMA: dict[str, tuple[str, ...]] = {
    **{table: _record_columns(table) for table in RECORD_TABLES},
    "transactionline": LINE_COLUMNS,
    "employee": tuple(EMPLOYEES[0]),
    "subsidiary": tuple(SUBSIDIARIES[0]),
    "currency": tuple(CURRENCIES[0]),
}


def _column_mappings(table: str) -> dict[str, FieldMapping]:
    mappings: dict[str, FieldMapping] = {}
    for object_map in _maps_of(table):
        for name, mapping in object_map.fields.items():
            mappings.setdefault(name.lower(), mapping)
    return mappings


_MAPPINGS = {table: _column_mappings(table) for table in RECORD_TABLES}


def _native(type_name: str, value: Any) -> Any:
    if value is None:
        return None
    if type_name in ("id", "ref") and isinstance(value, str) and value.isdigit():
        return int(value)
    if type_name == "boolean":
        return "T" if value else "F"
    if type_name == "number" and not isinstance(value, bool):
        return Decimal(str(value))
    return value


def _number(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def source(records: Callable[[str], list[Record]], find: Callable[[str, str, Any], list[Record]],
           flatten: Flatten, between: Between | None = None) -> RecordSource:
    """A row source for one SuiteQL query over the ERP's records."""

    def record_rows(object_map: ObjectMap) -> Callable[[str, Record], list[Row]]:
        def to_rows(kind: str, record: Record) -> list[Row]:
            flat = flatten(object_map, record)
            row = {name.lower(): _native(object_map.fields[name].type, value) for name, value in flat.items()}
            if "suiteql_type" in object_map.options:
                row["type"] = object_map.options["suiteql_type"]
                row["entity"] = row.get("entity") or row.get("customer")
            if object_map.kind == "item":
                row["itemtype"] = "InvtPart"
            return [row]
        return to_rows

    tables: dict[str, RecordTable] = {}
    for table in RECORD_TABLES:
        maps = _maps_of(table)
        by_kind = {m.kind: record_rows(m) for m in maps}
        indexed = {name.lower(): m.canonical for object_map in maps for name, m in object_map.fields.items()
                   if m.type == "string" and m.part is None}
        ordered = {name.lower(): m.canonical for object_map in maps for name, m in object_map.fields.items()
                   if m.type == "datetime"}
        tables[table] = RecordTable(tuple(by_kind), lambda kind, record, by_kind=by_kind: by_kind[kind](kind, record),
                                    indexed, ordered)
    tables["transactionline"] = RecordTable(tuple(OBJECTS[name].kind for name in LINE_SOURCES), _line_rows)
    tables["employee"] = RecordTable((), _no_rows, fixed_rows=EMPLOYEES)
    tables["subsidiary"] = RecordTable((), _no_rows, fixed_rows=SUBSIDIARIES)
    tables["currency"] = RecordTable((), _no_rows, fixed_rows=CURRENCIES)
    return RecordSource(tables, records, find, display, between)


def _no_rows(kind: str, record: Record) -> list[Row]:
    return []


def _line_rows(kind: str, record: Record) -> list[Row]:
    """A main line, then one row per item line (NetSuite numbers lines from 0, the main line)."""
    transaction = int(record["id"]) if str(record["id"]).isdigit() else record["id"]
    customer = record.get("customer_id")
    entity = int(customer) if isinstance(customer, str) and customer.isdigit() else customer
    rows: list[Row] = [{**dict.fromkeys(LINE_COLUMNS), "uniquekey": f"{transaction}-0", "id": 0,
                        "transaction": transaction, "linesequencenumber": 0, "mainline": "T", "entity": entity}]
    for number, line in enumerate(record.get("lines") or [], start=1):
        row: Row = {"uniquekey": f"{transaction}-{number}", "id": number, "transaction": transaction,
                    "linesequencenumber": number, "mainline": "F", "entity": entity}
        for column, canonical in _LINE_FIELDS.items():
            value = line.get(canonical)
            row[column] = _number(value) if column in _NUMERIC_LINE_COLUMNS else _native("ref", value)
        rows.append(row)
    return rows


def display(rows: RecordSource, table: str, column: str, value: Any) -> Any:
    """BUILTIN.DF: a reference's record name, a list value's label, a transaction type's name."""
    if table == "transaction" and column == "type":
        return TYPE_LABELS.get(value, value)
    target = _reference_target(table, column)
    if target is not None:
        names = rows.memo.get(target)
        if names is None:
            names = rows.memo[target] = {row["id"]: _display_name(target, row) for row in rows.rows(target)}
        return names.get(value, value)
    mapping = _MAPPINGS.get(table, {}).get(column)
    if mapping is not None and mapping.type == "enum":
        label = (mapping.values or {}).get(str(value), str(value))
        return label.replace("_", " ").title() if label.islower() else label
    return value


def _reference_target(table: str, column: str) -> str | None:
    if column == "currency":
        return "currency"
    if table == "transactionline" and column in ("item", "transaction", "entity"):
        return {"item": "item", "transaction": "transaction", "entity": "customer"}[column]
    if column == "subsidiary":
        return "subsidiary"
    if table == "transaction" and column == "entity":
        return "customer"
    mapping = _MAPPINGS.get(table, {}).get(column)
    if mapping is not None and mapping.type == "ref":
        return _REFERENCE_TABLES.get(mapping.reference_to or "")
    return None


def _display_name(table: str, row: Row) -> Any:
    if table == "transaction":
        return f"{TYPE_LABELS.get(row.get('type'), 'Transaction')} #{row.get('tranid') or row['id']}"
    return row.get(_DISPLAY_COLUMNS[table])
