"""NetSuite record collection `q=` front end: text -> condition.

    lastModifiedDate ON_OR_AFTER "1/15/2024 10:00 am" AND (companyName START_WITH "Acme" OR id ANY_OF [1, 2])

A condition is `field OPERATOR [value]`; conditions combine with AND, OR (AND binds tighter) and
parentheses. Values: "quoted" or 'quoted' text, bare words and numbers, or [a, b] lists. Which operators
a field accepts depends on its type (as NetSuite documents them); text operators are case-insensitive.
Dates are M/D/YYYY with an optional time ("h:mm am"), or ISO 8601.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from lark import Lark, Token

from syncert.simulators.clock import parse_datetime
from syncert.simulators.query.ast import (
    Between,
    Column,
    Comparison,
    Condition,
    InList,
    IsNull,
    Like,
    Literal,
    Not,
    Or,
    conjunction,
)
from syncert.simulators.query.evaluate import Semantics
from syncert.simulators.query.like import literal_pattern
from syncert.simulators.query.parsing import Limits, LogicTree, QueryError, parse

SEMANTICS = Semantics(case_sensitive=False, null_is_value=True, nulls_first_ascending=True,
                      nulls_first_descending=False)
LIMITS = Limits(max_length=100_000)

_TEXT = {"IS": "is", "IS_NOT": "is_not", "CONTAIN": "contain", "CONTAIN_NOT": "contain_not",
         "DOES_NOT_CONTAIN": "contain_not", "START_WITH": "start_with", "START_WITH_NOT": "start_with_not",
         "DOES_NOT_START_WITH": "start_with_not", "END_WITH": "end_with", "ENDWITH": "end_with",
         "END_WITH_NOT": "end_with_not", "DOES_NOT_END_WITH": "end_with_not"}
_NUMBER = {"EQUAL": "=", "EQUAL_NOT": "!=", "NOT_EQUAL": "!=", "GREATER": ">", "GREATER_NOT": "<=",
           "GREATER_OR_EQUAL": ">=", "GREATER_OR_EQUAL_NOT": "<", "LESS": "<", "LESS_NOT": ">=",
           "LESS_OR_EQUAL": "<=", "LESS_OR_EQUAL_NOT": ">"}
_DATE = {"AFTER": ">", "AFTER_NOT": "<=", "BEFORE": "<", "BEFORE_NOT": ">=", "ON_OR_AFTER": ">=",
         "ON_OR_AFTER_NOT": "<", "ON_OR_BEFORE": "<=", "ON_OR_BEFORE_NOT": ">"}
_DAY = {"ON", "ON_NOT"}
_RANGE = {"BETWEEN", "BETWEEN_NOT", "WITHIN", "WITHIN_NOT"}
_ANY = {"ANY_OF", "ANY_OF_NOT"}
_EMPTY = {"EMPTY", "EMPTY_NOT"}
OPERATORS = frozenset(_TEXT) | frozenset(_NUMBER) | frozenset(_DATE) | _DAY | _RANGE | _ANY | _EMPTY
_TYPES_BY_FAMILY = {"text": {"string", "id", "ref", "enum", "boolean"}, "number": {"number", "id"},
                    "date": {"date", "datetime"}}

_GRAMMAR = Lark(r"""
    start: or_expr
    ?or_expr: and_expr ("OR"i and_expr)*
    ?and_expr: atom ("AND"i atom)*
    ?atom: "(" or_expr ")"                 -> paren
         | FIELD OPERATOR operand?         -> condition
    ?operand: value
            | "[" (value ("," value)*)? "]" -> list
    value: QUOTED | BARE
    FIELD: /[a-z_][a-z0-9_]*/i
    OPERATOR: /[a-z_]+/i
    QUOTED: /"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/
    BARE: /[^\s"'()\[\],]+/i
    %ignore /\s+/
""", parser="lalr")


def parse_filter(text: str, field_type: Callable[[str], str | None], limits: Limits = LIMITS) -> Condition:
    """The condition of a `q=` expression; `field_type` gives a field's type (field map types) or None."""
    return parse(_GRAMMAR, text, _FilterTree(field_type), limits)


def parse_filter_date(text: str) -> datetime:
    """A NetSuite filter date: M/D/YYYY [h:mm[:ss] [am|pm]] or ISO 8601, in UTC."""
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
            raise QueryError(f"invalid date {text!r}: {error}") from None
    try:
        return parse_datetime(text)
    except ValueError:
        raise QueryError(f"invalid date {text!r}; use M/D/YYYY [h:mm am] or ISO 8601") from None


class _FilterTree(LogicTree):
    def __init__(self, field_type: Callable[[str], str | None]):
        super().__init__()
        self.field_type = field_type

    def start(self, children: list[Condition]) -> Condition:
        return children[0]

    def value(self, children: list[Token]) -> str:
        token = children[0]
        if token.type == "QUOTED":
            return re.sub(r"\\(.)", r"\1", token[1:-1], flags=re.DOTALL)
        return str(token)

    def list(self, children: list[str]) -> list[str]:
        return list(children)

    def condition(self, children: list[Any]) -> Condition:
        field, operator_token = children[0], children[1]
        operand = children[2] if len(children) > 2 else None
        field_type = self.field_type(field)
        if field_type is None:
            raise QueryError(f"unknown field {str(field)!r} in q at position {field.start_pos}")
        operator = operator_token.upper()
        if operator not in OPERATORS:
            raise QueryError(f"unknown operator {str(operator_token)!r} at position {operator_token.start_pos}; "
                             f"use one of {', '.join(sorted(OPERATORS))}")
        column = Column(str(field))
        if operator in _EMPTY:
            if operand is not None:
                raise QueryError(f"{operator} takes no value")
            empty = Or((IsNull(column), Comparison("=", column, Literal(""))))
            return empty if operator == "EMPTY" else Not(empty)
        if operand is None:
            raise QueryError(f"missing value after {field} {operator}")
        values = operand if isinstance(operand, list) else [operand]
        if operator in _ANY:
            condition: Condition = InList(column, tuple(Literal(v) for v in values))
            return Or((IsNull(column), Not(condition))) if operator == "ANY_OF_NOT" else condition
        family = "text" if operator in _TEXT else "number" if operator in _NUMBER else "date" if (
            operator in _DATE or operator in _DAY) else "range"
        if family == "range":
            family = "date" if field_type in _TYPES_BY_FAMILY["date"] else "number"
            if operator.startswith("WITHIN") and family == "date" and len(values) == 1:
                return self.day(column, values[0], operator.endswith("_NOT"))
        if field_type not in _TYPES_BY_FAMILY[family]:
            raise QueryError(f"operator {operator} does not apply to {field}, a {field_type} field")
        if family == "text":
            return _text_condition(column, _TEXT[operator], _single(operator, values))
        if operator in _DAY:
            return self.day(column, _single(operator, values), operator == "ON_NOT")
        convert = parse_filter_date if family == "date" else _number
        if operator in _RANGE:
            if len(values) != 2:
                raise QueryError(f"{operator} needs two values: [low, high]")
            between = Between(column, Literal(convert(values[0])), Literal(convert(values[1])))
            return Or((IsNull(column), Not(between))) if operator.endswith("_NOT") else between
        comparison = Comparison((_NUMBER if family == "number" else _DATE)[operator], column,
                                Literal(convert(_single(operator, values))))
        return Or((IsNull(column), comparison)) if operator.endswith("_NOT") or operator == "NOT_EQUAL" else comparison

    @staticmethod
    def day(column: Column, text: str, negated: bool) -> Condition:
        start = parse_filter_date(text)
        start = datetime(start.year, start.month, start.day, tzinfo=UTC)
        within = conjunction([Comparison(">=", column, Literal(start)),
                              Comparison("<", column, Literal(start + timedelta(days=1)))])
        return Or((IsNull(column), Not(within))) if negated else within


def _single(operator: str, values: list[str]) -> str:
    if len(values) != 1:
        raise QueryError(f"{operator} takes one value, not a list")
    return values[0]


def _number(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise QueryError(f"expected a number, found {text!r}") from None


def _text_condition(column: Column, operation: str, needle: str) -> Condition:
    negated = operation.endswith("_not")
    base = operation.removesuffix("_not")
    if base == "is":
        condition: Condition = Comparison("=", column, Literal(needle))
    else:
        escaped = literal_pattern(needle)
        pattern = {"contain": f"%{escaped}%", "start_with": f"{escaped}%", "end_with": f"%{escaped}"}[base]
        condition = Like(column, pattern, escape="\\")
    return Or((IsNull(column), Not(condition))) if negated else condition
