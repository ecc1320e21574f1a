"""SOQL (Salesforce) front end: text -> syntax tree.

    SELECT field, ... | COUNT() FROM object [WHERE condition]
    [ORDER BY field [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]

Conditions: = != <> < <= > >=, [NOT] IN (...), [NOT] LIKE, IS [NOT] NULL, NOT, AND, OR, parentheses
(NOT binds tighter than AND, AND tighter than OR). Values: 'text' (backslash escapes), numbers,
TRUE/FALSE/NULL, datetimes (2024-01-31T10:00:00Z), dates (2024-01-31) and date literals (TODAY,
YESTERDAY, TOMORROW, LAST_N_DAYS:n, NEXT_N_DAYS:n), each a moment compared as such.
Text comparisons are case-insensitive; nulls sort first unless NULLS LAST.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from lark import Lark, Token

from syncert.simulators.clock import parse_datetime
from syncert.simulators.query.ast import (
    Column,
    Comparison,
    Condition,
    CountAll,
    InList,
    IsNull,
    Like,
    Literal,
    OrderItem,
    Select,
    SelectItem,
    TableRef,
)
from syncert.simulators.query.evaluate import Semantics
from syncert.simulators.query.parsing import Limits, LogicTree, QueryError, parse

SEMANTICS = Semantics(case_sensitive=False, null_is_value=True, nulls_first_ascending=True,
                      nulls_first_descending=True)
LIMITS = Limits(max_length=100_000)

_GRAMMAR = Lark(r"""
    start: "SELECT"i select_list "FROM"i NAME where? order? limit? offset?
    select_list: COUNT "(" ")"                        -> count_all
               | "*"                                  -> select_star
               | NAME ("," NAME)*                     -> select_fields
    where: "WHERE"i or_expr
    ?or_expr: and_expr ("OR"i and_expr)*
    ?and_expr: not_expr ("AND"i not_expr)*
    ?not_expr: NOT not_expr                           -> negation
             | "(" or_expr ")"                        -> paren
             | NAME OPERATOR value                    -> comparison
             | NAME NOT? "IN"i "(" value ("," value)* ")" -> in_list
             | NAME NOT? "LIKE"i STRING               -> like
             | NAME "IS"i NOT? "NULL"i                -> is_null
    value: STRING | NUMBER | DATETIME | DATE | WORD
    order: "ORDER"i "BY"i order_item ("," order_item)*
    order_item: NAME (ASC | DESC)? ("NULLS"i (FIRST | LAST))?
    limit: "LIMIT"i NUMBER
    offset: "OFFSET"i NUMBER
    COUNT: "COUNT"i
    NOT: "NOT"i
    ASC: "ASC"i
    DESC: "DESC"i
    FIRST: "FIRST"i
    LAST: "LAST"i
    OPERATOR: "=" | "!=" | "<>" | "<=" | ">=" | "<" | ">"
    STRING: /'(?:[^'\\]|\\.|'')*'/
    NUMBER: /-?\d+(\.\d+)?/
    DATETIME.3: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})/
    DATE.2: /\d{4}-\d{2}-\d{2}/
    WORD: /[a-z_][a-z0-9_]*(:\d+)?/i
    NAME: /[a-z_][a-z0-9_]*(\.[a-z0-9_]+)*/i
    %ignore /\s+/
""", parser="lalr")

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}


def parse_soql(text: str, now: Callable[[], datetime], limits: Limits = LIMITS) -> Select:
    """The syntax tree of a SOQL query; QueryError names what is wrong and where."""
    return parse(_GRAMMAR, text, _SoqlTree(now), limits)


def _unquote(token: str, keep_like_escapes: bool) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group() == "''":
            return "'"
        character = match.group(1)
        if keep_like_escapes and character in "%_\\":
            return "\\" + character
        return _ESCAPES.get(character, character)
    return re.sub(r"\\(.)|''", replace, token[1:-1], flags=re.DOTALL)


def _field(token: Token) -> str:
    if "." in token:
        raise QueryError(f"relationship fields are not supported: {str(token)!r} at position {token.start_pos}")
    return token.lower()


class _SoqlTree(LogicTree):
    def __init__(self, now: Callable[[], datetime]):
        super().__init__()
        self.now = now

    def start(self, children: list[Any]) -> Select:
        items, table = children[0], children[1]
        clauses: dict[str, Any] = {}
        for clause in children[2:]:
            clauses.update(clause)
        return Select(items=items, source=TableRef(table.lower()), **clauses)

    def count_all(self, children: list[Any]) -> tuple[SelectItem, ...]:
        return (SelectItem(CountAll()),)

    def select_star(self, children: list[Any]) -> tuple[SelectItem, ...]:
        raise QueryError("SOQL does not support SELECT *; name the fields")

    def select_fields(self, children: list[Token]) -> tuple[SelectItem, ...]:
        return tuple(SelectItem(Column(_field(token))) for token in children)

    def where(self, children: list[Condition]) -> dict[str, Any]:
        return {"where": children[0]}

    def comparison(self, children: list[Any]) -> Condition:
        name, operator, value = children
        return Comparison("!=" if operator == "<>" else str(operator), Column(_field(name)), Literal(value))

    def in_list(self, children: list[Any]) -> Condition:
        name, *rest = children
        negated = bool(rest) and isinstance(rest[0], Token) and rest[0].type == "NOT"
        values = rest[1:] if negated else rest
        return InList(Column(_field(name)), tuple(Literal(v) for v in values), negated)

    def like(self, children: list[Token]) -> Condition:
        name, pattern = children[0], children[-1]
        return Like(Column(_field(name)), _unquote(pattern, keep_like_escapes=True), len(children) == 3, "\\")

    def is_null(self, children: list[Token]) -> Condition:
        return IsNull(Column(_field(children[0])), len(children) == 2)

    def value(self, children: list[Token]) -> Any:
        token = children[0]
        if token.type == "STRING":
            return _unquote(token, keep_like_escapes=False)
        if token.type == "NUMBER":
            return Decimal(token)
        if token.type in ("DATETIME", "DATE"):
            try:
                return parse_datetime(token)
            except ValueError:
                raise QueryError(f"invalid date literal {str(token)!r} at position {token.start_pos}") from None
        word = token.lower()
        if word == "null":
            return None
        if word in ("true", "false"):
            return word == "true"
        moment = _relative_date(word, self.now())
        if moment is None:
            raise QueryError(f"expected a value, found {str(token)!r} at position {token.start_pos}")
        return moment

    def order(self, children: list[OrderItem]) -> dict[str, Any]:
        return {"order_by": tuple(children)}

    def order_item(self, children: list[Token]) -> OrderItem:
        descending = any(t.type == "DESC" for t in children)
        nulls = next((t.type == "FIRST" for t in children if t.type in ("FIRST", "LAST")), None)
        return OrderItem(Column(_field(children[0])), descending, nulls)

    def limit(self, children: list[Token]) -> dict[str, Any]:
        return {"limit": _count("LIMIT", children[0])}

    def offset(self, children: list[Token]) -> dict[str, Any]:
        return {"offset": _count("OFFSET", children[0])}


def _count(clause: str, token: Token) -> int:
    if not token.isdigit():
        raise QueryError(f"{clause} needs a non-negative integer, found {str(token)!r} at position {token.start_pos}")
    return int(token)


def _relative_date(word: str, now: datetime) -> datetime | None:
    today = datetime(now.year, now.month, now.day, tzinfo=UTC)
    fixed = {"today": today, "yesterday": today - timedelta(days=1), "tomorrow": today + timedelta(days=1)}
    if word in fixed:
        return fixed[word]
    match = re.fullmatch(r"(last|next)_n_days:(\d{1,9})", word)
    if match:
        days = timedelta(days=int(match.group(2)))
        try:
            return today - days if match.group(1) == "last" else today + days
        except OverflowError:
            raise QueryError(f"{word.upper()} reaches beyond the years 1-9999") from None
    if re.fullmatch(r"(last|next)_n_days:\d+", word):
        raise QueryError(f"{word.upper()}: the number of days is out of range")
    return None
