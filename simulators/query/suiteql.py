"""SuiteQL (NetSuite, Oracle SQL dialect) front end: text -> syntax tree.

    SELECT [TOP n] * | item [[AS] alias], ... | COUNT(*) [[AS] alias]
    FROM table [alias] [[INNER | LEFT [OUTER]] JOIN table [alias] ON condition]...
    [WHERE condition] [ORDER BY expression [ASC|DESC] [NULLS FIRST|LAST], ...]
    [OFFSET n ROWS] [FETCH FIRST|NEXT n ROWS ONLY] [LIMIT n]

Items and operands are columns (`id`, `t.id`), 'text' (a quote doubled inside), numbers, NULL and the
functions UPPER, LOWER, BUILTIN.DF, TO_DATE(text[, format]) and TO_TIMESTAMP(text[, format]).
Conditions: = != <> < <= > >=, [NOT] IN, [NOT] LIKE [ESCAPE 'c'], IS [NOT] NULL, [NOT] BETWEEN, NOT,
AND, OR, parentheses. Oracle semantics: text comparison and LIKE are case-sensitive, comparisons with
NULL are unknown, nulls sort last ascending and first descending.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from lark import Lark, Token

from syncert.simulators.clock import parse_datetime
from syncert.simulators.query.ast import (
    Between,
    Call,
    Column,
    Comparison,
    Condition,
    CountAll,
    Expression,
    InList,
    IsNull,
    Join,
    Like,
    Literal,
    OrderItem,
    Select,
    SelectItem,
    TableRef,
)
from syncert.simulators.query.evaluate import Semantics
from syncert.simulators.query.parsing import Limits, LogicTree, QueryError, parse

SEMANTICS = Semantics(case_sensitive=True, null_is_value=False, nulls_first_ascending=False,
                      nulls_first_descending=True)
LIMITS = Limits(max_length=100_000)
FUNCTIONS = ("upper", "lower", "builtin.df", "to_date", "to_timestamp")

_GRAMMAR = Lark(r"""
    start: "SELECT"i top? select_list "FROM"i table join* where? order? paging*
    top: "TOP"i NUMBER
    select_list: "*"                                    -> select_star
               | select_item ("," select_item)*         -> select_items
    select_item: expr alias?
               | COUNT "(" "*" ")" alias?               -> count_item
    alias: "AS"i? NAME
    table: NAME alias?
    join: join_kind? "JOIN"i table "ON"i or_expr
    join_kind: INNER | LEFT OUTER?
    where: "WHERE"i or_expr
    ?or_expr: and_expr ("OR"i and_expr)*
    ?and_expr: not_expr ("AND"i not_expr)*
    ?not_expr: NOT not_expr                             -> negation
             | "(" or_expr ")"                          -> paren
             | expr OPERATOR expr                       -> comparison
             | expr NOT? "IN"i "(" expr ("," expr)* ")" -> in_list
             | expr NOT? "LIKE"i expr ("ESCAPE"i STRING)? -> like
             | expr "IS"i NOT? "NULL"i                  -> is_null
             | expr NOT? "BETWEEN"i expr "AND"i expr    -> between
    ?expr: NAME                                         -> column
         | NAME "(" (expr ("," expr)*)? ")"             -> call
         | STRING                                       -> string
         | NUMBER                                       -> number
         | "NULL"i                                      -> null
    order: "ORDER"i "BY"i order_item ("," order_item)*
    order_item: expr (ASC | DESC)? ("NULLS"i (FIRST | LAST))?
    ?paging: "OFFSET"i NUMBER ("ROW"i | "ROWS"i)?       -> offset
           | "FETCH"i (FIRST | "NEXT"i) NUMBER ("ROW"i | "ROWS"i) "ONLY"i -> fetch
           | "LIMIT"i NUMBER                            -> limit
    COUNT: "COUNT"i
    NOT: "NOT"i
    INNER: "INNER"i
    LEFT: "LEFT"i
    OUTER: "OUTER"i
    ASC: "ASC"i
    DESC: "DESC"i
    FIRST: "FIRST"i
    LAST: "LAST"i
    OPERATOR: "=" | "!=" | "<>" | "<=" | ">=" | "<" | ">"
    STRING: /'(?:[^']|'')*'/
    NUMBER: /-?\d+(\.\d+)?/
    NAME: /[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*/i
    %ignore /\s+/
""", parser="lalr")

_ORACLE_FORMATS = {"YYYY": "%Y", "MM": "%m", "DD": "%d", "HH24": "%H", "MI": "%M", "SS": "%S"}


def parse_suiteql(text: str, limits: Limits = LIMITS) -> Select:
    """The syntax tree of a SuiteQL query; QueryError names what is wrong and where."""
    return parse(_GRAMMAR, text, _SuiteqlTree(), limits)


def _count(clause: str, token: Token) -> int:
    if not token.isdigit():
        raise QueryError(f"{clause} needs a non-negative integer, found {str(token)!r} at position {token.start_pos}")
    return int(token)


class _SuiteqlTree(LogicTree):
    def start(self, children: list[Any]) -> Select:
        limit: int | None = None
        offset = 0
        parts: dict[str, Any] = {"joins": []}
        for child in children:
            if isinstance(child, tuple) and child and child[0] in ("top", "fetch", "limit", "offset"):
                clause, value = child
                if clause == "offset":
                    offset = value
                else:
                    limit = value if limit is None else min(limit, value)
            elif isinstance(child, TableRef):
                parts["source"] = child
            elif isinstance(child, Join):
                parts["joins"].append(child)
            elif isinstance(child, dict):
                parts.update(child)
            else:
                parts["items"] = child
        return Select(items=parts["items"], source=parts["source"], joins=tuple(parts["joins"]),
                      where=parts.get("where"), order_by=parts.get("order_by", ()), limit=limit, offset=offset)

    def top(self, children: list[Token]) -> tuple[str, int]:
        return "top", _count("TOP", children[0])

    def offset(self, children: list[Token]) -> tuple[str, int]:
        return "offset", _count("OFFSET", children[0])

    def fetch(self, children: list[Token]) -> tuple[str, int]:
        return "fetch", _count("FETCH FIRST", children[-1])

    def limit(self, children: list[Token]) -> tuple[str, int]:
        return "limit", _count("LIMIT", children[0])

    def select_star(self, children: list[Any]) -> tuple[SelectItem, ...]:
        return ()

    def select_items(self, children: list[SelectItem]) -> tuple[SelectItem, ...]:
        return tuple(children)

    def select_item(self, children: list[Any]) -> SelectItem:
        return SelectItem(children[0], children[1] if len(children) > 1 else None)

    def count_item(self, children: list[Any]) -> SelectItem:
        return SelectItem(CountAll(), children[1] if len(children) > 1 else None)

    def alias(self, children: list[Token]) -> str:
        return children[-1].lower()

    def table(self, children: list[Any]) -> TableRef:
        return TableRef(children[0].lower(), children[1] if len(children) > 1 else None)

    def join(self, children: list[Any]) -> Join:
        kind, table, condition = (children if len(children) == 3 else ("inner", *children))
        return Join(table, condition, left_outer=kind == "left")

    def join_kind(self, children: list[Token]) -> str:
        return children[0].lower()

    def where(self, children: list[Condition]) -> dict[str, Any]:
        return {"where": children[0]}

    def comparison(self, children: list[Any]) -> Condition:
        left, operator, right = children
        return Comparison("!=" if operator == "<>" else str(operator), left, right)

    def in_list(self, children: list[Any]) -> Condition:
        operand, *rest = children
        negated = bool(rest) and isinstance(rest[0], Token) and rest[0].type == "NOT"
        return InList(operand, tuple(rest[1:] if negated else rest), negated)

    def like(self, children: list[Any]) -> Condition:
        operand, *rest = children
        negated = bool(rest) and isinstance(rest[0], Token) and rest[0].type == "NOT"
        if negated:
            rest = rest[1:]
        pattern = rest[0]
        if not (isinstance(pattern, Literal) and isinstance(pattern.value, str)):
            raise QueryError("LIKE needs a quoted pattern")
        escape = None
        if len(rest) > 1:
            escape = _unquote(rest[1])
            if len(escape) != 1:
                raise QueryError(f"ESCAPE needs one character, found {escape!r} at position {rest[1].start_pos}")
        return Like(operand, pattern.value, negated, escape)

    def is_null(self, children: list[Any]) -> Condition:
        return IsNull(children[0], len(children) == 2)

    def between(self, children: list[Any]) -> Condition:
        negated = len(children) == 4
        operand, low, high = children[0], children[-2], children[-1]
        return Between(operand, low, high, negated)

    def column(self, children: list[Token]) -> Column:
        token = children[0]
        parts = token.lower().split(".")
        if len(parts) > 2:
            raise QueryError(f"expected a column or alias.column, found {str(token)!r} at position {token.start_pos}")
        return Column(parts[-1], parts[0] if len(parts) == 2 else None)

    def call(self, children: list[Any]) -> Expression:
        token, *arguments = children
        function = token.lower()
        if function not in FUNCTIONS:
            raise QueryError(f"unknown function {str(token)!r} at position {token.start_pos}; "
                             f"supported: {', '.join(f.upper() for f in FUNCTIONS)}")
        if function in ("to_date", "to_timestamp"):
            return Literal(_date_function(function, arguments))
        return Call(function, tuple(arguments))

    def string(self, children: list[Token]) -> Literal:
        return Literal(_unquote(children[0]))

    def number(self, children: list[Token]) -> Literal:
        return Literal(Decimal(children[0]))

    def null(self, children: list[Any]) -> Literal:
        return Literal(None)

    def order(self, children: list[OrderItem]) -> dict[str, Any]:
        return {"order_by": tuple(children)}

    def order_item(self, children: list[Any]) -> OrderItem:
        tokens = [c for c in children[1:] if isinstance(c, Token)]
        descending = any(t.type == "DESC" for t in tokens)
        nulls = next((t.type == "FIRST" for t in tokens if t.type in ("FIRST", "LAST")), None)
        return OrderItem(children[0], descending, nulls)


def _unquote(token: str) -> str:
    return token[1:-1].replace("''", "'")


def _date_function(function: str, arguments: list[Any]) -> datetime:
    texts = [a.value for a in arguments if isinstance(a, Literal) and isinstance(a.value, str)]
    if len(texts) != len(arguments) or not 1 <= len(texts) <= 2:
        raise QueryError(f"{function.upper()} takes a quoted date and optionally a quoted format")
    text, fmt = texts[0], texts[1] if len(texts) == 2 else None
    try:
        if fmt is None:
            return parse_datetime(text)
        python_format = re.sub("|".join(_ORACLE_FORMATS), lambda m: _ORACLE_FORMATS[m.group()], fmt.upper())
        return datetime.strptime(text, python_format).replace(tzinfo=UTC)
    except ValueError:
        raise QueryError(f"date {text!r} does not match format {fmt or 'ISO 8601'!r}") from None
