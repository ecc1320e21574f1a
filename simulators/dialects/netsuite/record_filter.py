"""The `q=` filter of NetSuite record collection lists, e.g.
`lastModifiedDate ON_OR_AFTER "1/15/2024 10:00 am" AND companyName START_WITH "Acme"`.

Conditions are `field OPERATOR value` joined by AND / OR (AND binds tighter); values are quoted
text, numbers, true/false, or a bracketed list for ANY_OF. Dates are M/D/YYYY with an optional
time ("h:mm am"), or ISO 8601.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from syncert.simulators.clock import parse_datetime

Row = dict[str, Any]
Predicate = Callable[[Row], bool]

_DATE_OPERATORS = {"AFTER", "BEFORE", "ON", "ON_OR_AFTER", "ON_OR_BEFORE", "WITHIN"}
_TEXT_OPERATORS = {"IS", "IS_NOT", "CONTAIN", "DOES_NOT_CONTAIN", "START_WITH", "DOES_NOT_START_WITH",
                   "END_WITH", "DOES_NOT_END_WITH"}
_NUMBER_OPERATORS = {"EQUAL", "NOT_EQUAL", "GREATER", "GREATER_OR_EQUAL", "LESS", "LESS_OR_EQUAL"}
_UNARY = {"EMPTY", "EMPTY_NOT"}
OPERATORS = _DATE_OPERATORS | _TEXT_OPERATORS | _NUMBER_OPERATORS | _UNARY | {"ANY_OF", "ANY_OF_NOT"}


class FilterError(ValueError):
    """A q= expression that cannot be applied; the message names the problem."""


def parse_filter_date(text: str) -> datetime:
    text = text.strip()
    match = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([aApP][mM])?)?", text)
    if match:
        month, day, year, hour, minute, second, half = match.groups()
        hour_value = int(hour or 0)
        if half:
            hour_value = hour_value % 12 + (12 if half.lower() == "pm" else 0)
        try:
            return datetime(int(year), int(month), int(day), hour_value, int(minute or 0), int(second or 0),
                            tzinfo=UTC)
        except ValueError as error:
            raise FilterError(f"invalid date {text!r}: {error}") from None
    try:
        return parse_datetime(text)
    except ValueError:
        raise FilterError(f"invalid date {text!r}; use M/D/YYYY [h:mm am] or ISO 8601") from None


def compile_filter(expression: str, fields: Callable[[str], str | None]) -> Predicate:
    """Predicate over rows keyed by vendor field names; `fields` maps a field to its type or None."""
    try:
        words = shlex.split(expression, posix=True)
    except ValueError as error:
        raise FilterError(f"cannot read q: {error}") from None
    if not words:
        raise FilterError("q is empty")
    alternatives: list[list[Predicate]] = [[]]
    index = 0
    while index < len(words):
        field_name = words[index]
        field_type = fields(field_name)
        if field_type is None:
            raise FilterError(f"unknown field {field_name!r} in q")
        if index + 1 >= len(words):
            raise FilterError(f"missing operator after {field_name!r}")
        operator = words[index + 1].upper()
        if operator not in OPERATORS:
            raise FilterError(f"unknown operator {words[index + 1]!r}; use one of {', '.join(sorted(OPERATORS))}")
        if operator in _UNARY:
            predicate = _unary(field_name, operator)
            index += 2
        else:
            if index + 2 >= len(words):
                raise FilterError(f"missing value after {field_name} {operator}")
            predicate = _binary(field_name, field_type, operator, words[index + 2])
            index += 3
        alternatives[-1].append(predicate)
        if index < len(words):
            joiner = words[index].upper()
            if joiner not in ("AND", "OR"):
                raise FilterError(f"expected AND or OR, found {words[index]!r}")
            if joiner == "OR":
                alternatives.append([])
            index += 1
            if index >= len(words):
                raise FilterError(f"q ends with {joiner}")
    return lambda row: any(all(p(row) for p in group) for group in alternatives)


def _unary(name: str, operator: str) -> Predicate:
    empty = operator == "EMPTY"
    return lambda row: (row.get(name) in (None, "", [])) == empty


def _binary(name: str, field_type: str, operator: str, raw: str) -> Predicate:
    if operator in _DATE_OPERATORS:
        moment = parse_filter_date(raw)
        day = moment.date()

        def date_test(row: Row) -> bool:
            value = row.get(name)
            if value is None:
                return False
            other = parse_datetime(str(value))
            return {"AFTER": other > moment, "BEFORE": other < moment, "ON": other.date() == day,
                    "ON_OR_AFTER": other >= moment, "ON_OR_BEFORE": other <= moment,
                    "WITHIN": other.date() == day}[operator]
        return date_test
    if operator in _NUMBER_OPERATORS:
        try:
            number = Decimal(raw)
        except InvalidOperation:
            raise FilterError(f"{name} {operator} needs a number, not {raw!r}") from None

        def number_test(row: Row) -> bool:
            value = row.get(name)
            if value is None:
                return operator == "NOT_EQUAL"
            value = Decimal(str(value))
            return {"EQUAL": value == number, "NOT_EQUAL": value != number, "GREATER": value > number,
                    "GREATER_OR_EQUAL": value >= number, "LESS": value < number,
                    "LESS_OR_EQUAL": value <= number}[operator]
        return number_test
    if operator in ("ANY_OF", "ANY_OF_NOT"):
        choices = {c.strip().lower() for c in raw.strip("[]").split(",")}
        negate = operator == "ANY_OF_NOT"
        return lambda row: negate != (_text(row.get(name)) in choices)
    needle = raw.lower()
    tests = {"IS": lambda v: v == needle, "IS_NOT": lambda v: v != needle, "CONTAIN": lambda v: needle in v,
             "DOES_NOT_CONTAIN": lambda v: needle not in v, "START_WITH": lambda v: v.startswith(needle),
             "DOES_NOT_START_WITH": lambda v: not v.startswith(needle), "END_WITH": lambda v: v.endswith(needle),
             "DOES_NOT_END_WITH": lambda v: not v.endswith(needle)}
    test = tests[operator]
    return lambda row: test(_text(row.get(name)))


def _text(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value).lower()
