"""OData v4 `$filter` front end (for Dataverse and Business Central dialects): text -> condition.

    name eq 'Contoso' and (revenue gt 1000 or not contains(name, 'test')) and modifiedon ge 2024-01-01T00:00:00Z

Operators eq ne gt ge lt le, and, or, not, parentheses, contains/startswith/endswith(field, 'text');
literals 'text' (a quote doubled inside), numbers, true, false, null and datetimes. Property paths
keep their case (`_parentcustomerid_value`, `address/city`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from lark import Lark, Token

from syncert.simulators.clock import parse_datetime
from syncert.simulators.query.ast import (
    Column,
    Comparison,
    Condition,
    Like,
    Literal,
)
from syncert.simulators.query.evaluate import Semantics
from syncert.simulators.query.like import literal_pattern
from syncert.simulators.query.parsing import Limits, LogicTree, QueryError, parse

# Dataverse and Business Central store text with case-insensitive collations; `eq null` matches nulls.
SEMANTICS = Semantics(case_sensitive=False, null_is_value=True, nulls_first_ascending=True,
                      nulls_first_descending=False)
LIMITS = Limits(max_length=32_768)
_OPERATORS = {"eq": "=", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_FUNCTIONS = {"contains": "%{}%", "startswith": "{}%", "endswith": "%{}"}

_GRAMMAR = Lark(r"""
    start: or_expr
    ?or_expr: and_expr ("or"i and_expr)*
    ?and_expr: not_expr ("and"i not_expr)*
    ?not_expr: "not"i not_expr                                -> negation
             | "(" or_expr ")"                                -> paren
             | operand COMPARISON operand                     -> comparison
             | TEXT_FUNCTION "(" operand "," operand ")"      -> text_function
    ?operand: PATH                                            -> column
            | STRING                                          -> string
            | NUMBER                                          -> number
            | DATETIME                                        -> datetime
            | TRUE                                            -> true
            | FALSE                                           -> false
            | NULL                                            -> null
    COMPARISON: "eq"i | "ne"i | "gt"i | "ge"i | "lt"i | "le"i
    TEXT_FUNCTION: "contains"i | "startswith"i | "endswith"i
    TRUE: "true"i
    FALSE: "false"i
    NULL: "null"i
    STRING: /'(?:[^']|'')*'/
    DATETIME.3: /\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?/
    NUMBER: /-?\d+(\.\d+)?([eE][+-]?\d+)?/
    PATH.-1: /[a-z_][a-z0-9_]*(\/[a-z_][a-z0-9_]*)*/i
    %ignore /\s+/
""", parser="lalr")


def parse_filter(text: str, limits: Limits = LIMITS) -> Condition:
    """The condition of a `$filter` expression; QueryError names what is wrong and where."""
    return parse(_GRAMMAR, text, _ODataTree(), limits)


class _ODataTree(LogicTree):
    def start(self, children: list[Condition]) -> Condition:
        return children[0]

    def comparison(self, children: list[Any]) -> Condition:
        left, operator, right = children
        return Comparison(_OPERATORS[operator.lower()], left, right)

    def text_function(self, children: list[Any]) -> Condition:
        function, subject, needle = children
        if not isinstance(subject, Column) or not (isinstance(needle, Literal) and isinstance(needle.value, str)):
            raise QueryError(f"{function.lower()} takes a property and a quoted text, at position {function.start_pos}")
        pattern = _FUNCTIONS[function.lower()].format(literal_pattern(needle.value))
        return Like(subject, pattern, escape="\\")

    def column(self, children: list[Token]) -> Column:
        return Column(str(children[0]))

    def string(self, children: list[Token]) -> Literal:
        return Literal(children[0][1:-1].replace("''", "'"))

    def number(self, children: list[Token]) -> Literal:
        return Literal(Decimal(children[0]))

    def datetime(self, children: list[Token]) -> Literal:
        token = children[0]
        try:
            return Literal(parse_datetime(token))
        except ValueError:
            raise QueryError(f"invalid datetime {str(token)!r} at position {token.start_pos}") from None

    def true(self, children: list[Token]) -> Literal:
        return Literal(True)

    def false(self, children: list[Token]) -> Literal:
        return Literal(False)

    def null(self, children: list[Token]) -> Literal:
        return Literal(None)
