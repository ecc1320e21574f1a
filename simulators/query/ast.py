"""The one syntax tree every query language compiles to (SOQL, SuiteQL, NetSuite `q`, OData `$filter`).

Nodes are frozen dataclasses; AND and OR are n-ary. Column and table names are stored as the front end
normalises them (lower case for the SQL-like languages).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Column:
    name: str
    qualifier: str | None = None  # a table name or alias: `t.id`


@dataclass(frozen=True)
class Call:
    function: str  # lower case, e.g. "upper", "builtin.df"
    arguments: tuple[Expression, ...]


Expression = Literal | Column | Call


@dataclass(frozen=True)
class Comparison:
    operator: str  # one of = != < <= > >=
    left: Expression
    right: Expression


@dataclass(frozen=True)
class InList:
    operand: Expression
    values: tuple[Expression, ...]
    negated: bool = False


@dataclass(frozen=True)
class Like:
    operand: Expression
    pattern: str  # `%` any run, `_` any one character
    negated: bool = False
    escape: str | None = None


@dataclass(frozen=True)
class IsNull:
    operand: Expression
    negated: bool = False


@dataclass(frozen=True)
class Between:
    operand: Expression
    low: Expression
    high: Expression
    negated: bool = False


@dataclass(frozen=True)
class And:
    terms: tuple[Condition, ...]


@dataclass(frozen=True)
class Or:
    terms: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    term: Condition


Condition = Comparison | InList | Like | IsNull | Between | And | Or | Not


@dataclass(frozen=True)
class CountAll:
    """COUNT(*) or SOQL's COUNT()."""


@dataclass(frozen=True)
class SelectItem:
    expression: Expression | CountAll
    alias: str | None = None


@dataclass(frozen=True)
class TableRef:
    name: str
    alias: str | None = None

    @property
    def reference(self) -> str:
        """The name columns qualify it with."""
        return self.alias or self.name


@dataclass(frozen=True)
class Join:
    table: TableRef
    condition: Condition
    left_outer: bool = False


@dataclass(frozen=True)
class OrderItem:
    expression: Expression
    descending: bool = False
    nulls_first: bool | None = None  # None: the language's default


@dataclass(frozen=True)
class Select:
    items: tuple[SelectItem, ...]  # empty: SELECT *
    source: TableRef
    joins: tuple[Join, ...] = ()
    where: Condition | None = None
    order_by: tuple[OrderItem, ...] = ()
    limit: int | None = None
    offset: int = 0

    @property
    def counts(self) -> bool:
        return any(isinstance(item.expression, CountAll) for item in self.items)


def conjunction(terms: list[Condition]) -> Condition:
    """AND of terms, flattening nested ANDs."""
    flat = [part for term in terms for part in (term.terms if isinstance(term, And) else (term,))]
    return flat[0] if len(flat) == 1 else And(tuple(flat))


def disjunction(terms: list[Condition]) -> Condition:
    """OR of terms, flattening nested ORs."""
    flat = [part for term in terms for part in (term.terms if isinstance(term, Or) else (term,))]
    return flat[0] if len(flat) == 1 else Or(tuple(flat))


def walk(node: object) -> Iterator[object]:
    """Every node under `node` (itself included), without recursion."""
    pending = [node]
    while pending:
        current = pending.pop()
        yield current
        if isinstance(current, tuple):
            pending.extend(current)
        elif hasattr(current, "__dataclass_fields__"):
            pending.extend(getattr(current, f.name) for f in fields(current))  # type: ignore[arg-type]


def columns(node: object) -> list[Column]:
    """The column references under `node`."""
    return [n for n in walk(node) if isinstance(n, Column)]
