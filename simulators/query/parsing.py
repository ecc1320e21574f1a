"""What every front end shares: the query error, size and depth limits, and running a lark grammar.

Lark's LALR parser keeps its own stack, so nesting in the input never recurses in Python; the tree it
builds is measured without recursion and refused beyond `Limits.max_depth` before anything walks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lark import Lark, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError
from lark.visitors import Transformer_NonRecursive

from syncert.simulators.query.ast import Condition, Not, conjunction, disjunction


class QueryError(ValueError):
    """A query that cannot run; the message names the problem (and its position when it has one)."""


class UnknownTable(QueryError):
    def __init__(self, table: str, known: list[str]):
        super().__init__(f"unknown table '{table}'; tables are {', '.join(sorted(known))}")
        self.table = table


class UnknownColumn(QueryError):
    def __init__(self, column: str, table: str):
        super().__init__(f"field '{column}' for record '{table}' was not found")
        self.column, self.table = column, table


class QueryTooComplex(QueryError):
    """Over a size or nesting limit."""


@dataclass(frozen=True)
class Limits:
    max_length: int = 100_000  # Salesforce's cap on a SOQL statement
    max_depth: int = 100  # levels of the parse tree: each parenthesis, NOT, AND or OR adds one


def parse(grammar: Lark, text: str, transformer: Transformer_NonRecursive, limits: Limits) -> Any:
    """Parse `text`, check the limits, and build the syntax tree with `transformer`."""
    if not isinstance(text, str) or not text.strip():
        raise QueryError("the query is empty")
    if len(text) > limits.max_length:
        raise QueryTooComplex(f"the query is {len(text)} characters long; the limit is {limits.max_length}")
    try:
        tree = grammar.parse(text)
    except UnexpectedInput as error:
        raise QueryError(_describe(error, text)) from None
    depth = _depth(tree, limits.max_depth)
    if depth > limits.max_depth:
        raise QueryTooComplex(f"the query nests more than {limits.max_depth} levels deep")
    try:
        return transformer.transform(tree)
    except VisitError as error:
        if isinstance(error.orig_exc, QueryError):
            raise error.orig_exc from None
        raise


def _depth(tree: Tree, limit: int) -> int:
    """Depth of the tree, counting no further than just past `limit`."""
    deepest = 0
    pending: list[tuple[Tree, int]] = [(tree, 1)]
    while pending:
        node, depth = pending.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        pending.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))
    return deepest


def _describe(error: UnexpectedInput, text: str) -> str:
    if isinstance(error, UnexpectedEOF) or (isinstance(error, UnexpectedToken) and error.token.type == "$END"):
        return f"unexpected end of query at position {len(text)}"
    if isinstance(error, UnexpectedCharacters):
        return f"unexpected character {text[error.pos_in_stream]!r} at position {error.pos_in_stream}"
    if isinstance(error, UnexpectedToken):
        expected = sorted(_readable(name) for name in error.expected)
        hint = f"; expected {', '.join(expected[:8])}" if expected else ""
        return f"unexpected {str(error.token)!r} at position {error.token.start_pos}{hint}"
    return str(error)


_READABLE = {"LPAR": "'('", "RPAR": "')'", "COMMA": "','", "STAR": "'*'", "LSQB": "'['", "RSQB": "']'",
             "NAME": "a name", "FIELD": "a field name", "STRING": "a quoted string", "QUOTED": "a quoted value",
             "NUMBER": "a number", "INT": "a whole number", "WORD": "a value", "BARE": "a value",
             "OPERATOR": "an operator", "COMPARISON": "an operator", "DATETIME": "a datetime", "DATE": "a date"}


def _readable(terminal: str) -> str:
    return _READABLE.get(terminal, terminal)


class LogicTree(Transformer_NonRecursive):
    """What every front end's transformer shares: OR, AND, NOT and parentheses into the syntax tree."""

    def or_expr(self, children: list[Condition]) -> Condition:
        return disjunction(children)

    def and_expr(self, children: list[Condition]) -> Condition:
        return conjunction(children)

    def negation(self, children: list[Condition]) -> Condition:
        return Not(children[-1])

    def paren(self, children: list[Condition]) -> Condition:
        return children[0]
