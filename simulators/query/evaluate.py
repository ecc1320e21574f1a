"""The one evaluator: joins, filter, sort, offset and limit, COUNT(*), projection, over any row source.

Rows are dicts keyed by column name. A row source may answer equality lookups from an index: when the
WHERE clause pins an indexed column of the queried table (`x = 'v'`, `x IN (...)`, an OR of those, or an
AND with one of those), only the rows it returns are examined. Likewise a range of datetimes on an ordered
column (`x > t`, `x <= t`, `x BETWEEN t1 AND t2`; the ranges of an AND on one column are intersected)
asks the row source for the rows in that interval. Everything else is a scan. Conditions
use three-valued logic; `Semantics.null_is_value` makes comparisons with null plain true/false (SOQL).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from syncert.simulators.clock import parse_datetime
from syncert.simulators.query.ast import (
    And,
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
    Not,
    Or,
    OrderItem,
    Select,
    TableRef,
)
from syncert.simulators.query.like import LikePattern
from syncert.simulators.query.parsing import QueryError, QueryTooComplex, UnknownColumn, UnknownTable

Row = dict[str, Any]
Combined = tuple[Row | None, ...]  # one row per table of the query (None: no match in a LEFT OUTER JOIN)
Truth = bool | None


@dataclass(frozen=True)
class Semantics:
    """How a language compares and sorts."""

    case_sensitive: bool
    null_is_value: bool  # `= null` matches nulls, `!= 'x'` keeps them (SOQL, OData); otherwise SQL's unknown
    nulls_first_ascending: bool
    nulls_first_descending: bool


class RowSource(Protocol):
    """Where rows come from. `lookup` returns None when it has no index for the column; the rows it
    returns must be the same objects `rows` gives for those records."""

    def rows(self, table: str) -> Iterable[Row]: ...

    def lookup(self, table: str, column: str, value: Any) -> Iterable[Row] | None: ...

    def range_lookup(self, table: str, column: str, low: datetime | None, high: datetime | None,
                     include_low: bool, include_high: bool) -> Iterable[Row] | None:
        """Rows whose column may lie between aware datetimes `low` and `high` (None: unbounded), a superset
        of those that do; None when the column has no ordered index."""
        ...

    def display(self, table: str, column: str, value: Any) -> Any: ...


class InMemoryRows:
    """A row source over lists of rows: scans only, values displayed as they are."""

    def __init__(self, tables: Mapping[str, list[Row]]):
        self.tables = tables

    def rows(self, table: str) -> Iterable[Row]:
        return self.tables.get(table, [])

    def lookup(self, table: str, column: str, value: Any) -> Iterable[Row] | None:
        return None

    def range_lookup(self, table: str, column: str, low: datetime | None, high: datetime | None,
                     include_low: bool, include_high: bool) -> Iterable[Row] | None:
        return None

    def display(self, table: str, column: str, value: Any) -> Any:
        return value


@dataclass(frozen=True)
class Interval:
    """The datetimes a column must lie in (None: unbounded on that side)."""

    low: datetime | None = None
    high: datetime | None = None
    include_low: bool = True
    include_high: bool = True

    def meet(self, other: Interval) -> Interval:
        """Both intervals at once."""
        low, include_low = _tighter(self.low, self.include_low, other.low, other.include_low, max)
        high, include_high = _tighter(self.high, self.include_high, other.high, other.include_high, min)
        return Interval(low, high, include_low, include_high)


def _tighter(a: datetime | None, include_a: bool, b: datetime | None, include_b: bool,
             pick: Callable[[datetime, datetime], datetime]) -> tuple[datetime | None, bool]:
    if a is None or b is None:
        return (b, include_b) if a is None else (a, include_a)
    if a == b:
        return a, include_a and include_b
    return (a, include_a) if pick(a, b) == a else (b, include_b)


@dataclass
class Result:
    rows: list[dict[str, Any]]  # projected: output column -> value
    matches: list[Combined]  # the source rows behind each result row (empty for COUNT)


Schema = Mapping[str, Sequence[str]]


def evaluate(select: Select, source: RowSource, schema: Schema, semantics: Semantics) -> Result:
    """Run `select` over `source`; tables and columns are checked against `schema`, never against rows."""
    return _Evaluation(select, source, schema, semantics).run()


JOIN_WORK_LIMIT = 1_000_000  # row combinations one query's joins may examine (a cross join of two 1,000-row tables)


class _Evaluation:
    def __init__(self, select: Select, source: RowSource, schema: Schema, semantics: Semantics):
        self.select, self.source, self.semantics = select, source, semantics
        self.tables: list[TableRef] = [select.source, *(join.table for join in select.joins)]
        for table in self.tables:
            if table.name not in schema:
                raise UnknownTable(table.name, list(schema))
        self.columns = [set(schema[t.name]) for t in self.tables]
        self.schema = schema
        self.join_work = 0  # row combinations the joins have examined so far

    # -- the pipeline -------------------------------------------------------------------------------

    def run(self) -> Result:
        select = self.select
        where = self.condition(select.where) if select.where is not None else None
        joins = [(join, self.condition(join.condition, visible=index + 2))
                 for index, join in enumerate(select.joins)]
        order = [self.order_key(item) for item in select.order_by]
        projection = self.projection()
        combined: list[Combined] = [(row,) for row in self.base_rows()]
        for position, (join, on) in enumerate(joins, start=1):
            combined = self.join(combined, join, on, position)
        if where is not None:
            combined = [row for row in combined if where(row) is True]
        if select.counts:
            (name, _), = projection
            return Result([{name: len(combined)}], [])
        for key, descending, nulls_first in reversed(order):
            present = [row for row in combined if key(row) is not None]
            missing = [row for row in combined if key(row) is None]
            present.sort(key=lambda row, k=key: _sort_key(k(row), self.semantics.case_sensitive),
                         reverse=descending)
            combined = missing + present if nulls_first else present + missing
        end = None if select.limit is None else select.offset + select.limit
        combined = combined[select.offset:end]
        return Result([{name: value(row) for name, value in projection} for row in combined], combined)

    def base_rows(self) -> list[Row]:
        table = self.tables[0].name
        if self.select.where is not None:
            candidates = self.candidates(self.select.where)
            if candidates is not None:
                return candidates
        return list(self.source.rows(table))

    def candidates(self, condition: Condition) -> list[Row] | None:
        """Rows an index says can match `condition` (a superset of the matches), or None to scan."""
        ranged = _range_of(condition)
        if ranged is not None:
            return self.range_lookup(*ranged)
        if isinstance(condition, Comparison) and condition.operator == "=":
            column, literal = _column_and_literal(condition.left, condition.right)
            return self.lookup(column, [literal]) if column else None
        if isinstance(condition, InList) and not condition.negated and isinstance(condition.operand, Column):
            if all(isinstance(v, Literal) for v in condition.values):
                return self.lookup(condition.operand, [v for v in condition.values if isinstance(v, Literal)])
            return None
        if isinstance(condition, And):
            intervals: dict[tuple[int, str], tuple[Column, Interval]] = {}
            found = []
            for term in condition.terms:
                ranged = _range_of(term)
                if ranged is None:
                    rows = self.candidates(term)
                    if rows is not None:
                        found.append(rows)
                    continue
                key = self.resolve(ranged[0])
                intervals[key] = (ranged[0], intervals[key][1].meet(ranged[1]) if key in intervals else ranged[1])
            found.extend(rows for column, interval in intervals.values()
                         if (rows := self.range_lookup(column, interval)) is not None)
            return min(found, key=len) if found else None
        if isinstance(condition, Or):
            parts = []
            for term in condition.terms:
                rows = self.candidates(term)
                if rows is None:
                    return None
                parts.append(rows)
            return _distinct(row for rows in parts for row in rows)
        return None

    def lookup(self, column: Column, literals: list[Literal]) -> list[Row] | None:
        position, name = self.resolve(column)
        if position != 0:
            return None
        found: list[Row] = []
        for literal in literals:
            value = literal.value
            if value is None or isinstance(value, bool):
                return None
            if isinstance(value, str) and not self.semantics.case_sensitive and not _case_free(value):
                return None
            rows = self.source.lookup(self.tables[0].name, name, value)
            if rows is None:
                return None
            found.extend(rows)
        return _distinct(found)

    def range_lookup(self, column: Column, interval: Interval) -> list[Row] | None:
        position, name = self.resolve(column)
        if position != 0:
            return None
        rows = self.source.range_lookup(self.tables[0].name, name, interval.low, interval.high,
                                        interval.include_low, interval.include_high)
        return None if rows is None else _distinct(rows)

    def join(self, left: list[Combined], join: Join, on: Callable[[Combined], Truth],
             position: int) -> list[Combined]:
        right = list(self.source.rows(join.table.name))
        probe = self.hash_probe(join.condition, position)
        buckets: dict[Any, list[Row]] | None = None
        if probe is not None:
            buckets = {}
            for row in right:
                keys = _join_keys(row.get(probe[1]), self.semantics.case_sensitive)
                if keys is None:
                    buckets = None
                    break
                for key in keys:
                    buckets.setdefault(key, []).append(row)
        joined: list[Combined] = []
        for combined in left:
            if buckets is not None and probe is not None:
                keys = _join_keys(probe[0](combined), self.semantics.case_sensitive) or []
                candidates = _distinct(row for key in keys for row in buckets.get(key, ()))
            else:
                candidates = right
            self.join_work += len(candidates)
            if self.join_work > JOIN_WORK_LIMIT:
                raise QueryTooComplex(f"the joins would examine more than {JOIN_WORK_LIMIT:,} row combinations; "
                                      "join on matching ids (ON a.id = b.column) or filter the tables first")
            matched = [(*combined, row) for row in candidates if on((*combined, row)) is True]
            joined.extend(matched or ([(*combined, None)] if join.left_outer else []))
        return joined

    def hash_probe(self, condition: Condition, position: int) -> tuple[Callable[[Combined], Any], str] | None:
        """For ON a = b with one side on the joined table: (value of the other side, joined column)."""
        if not (isinstance(condition, Comparison) and condition.operator == "="):
            return None
        sides = [condition.left, condition.right]
        if not all(isinstance(side, Column) for side in sides):
            return None
        resolved = [self.resolve(side, position + 1) for side in sides if isinstance(side, Column)]
        for mine, other in ((0, 1), (1, 0)):
            if resolved[mine][0] == position and resolved[other][0] < position:
                index, name = resolved[other]
                return (lambda combined, i=index, n=name: _get(combined, i, n)), resolved[mine][1]
        return None

    # -- names ---------------------------------------------------------------------------------------

    def resolve(self, column: Column, visible: int | None = None) -> tuple[int, str]:
        """(table position, column name) of a column reference."""
        count = len(self.tables) if visible is None else visible
        if column.qualifier is not None:
            positions = [i for i in range(count) if column.qualifier in (self.tables[i].alias, self.tables[i].name)]
            if not positions:
                raise QueryError(f"unknown table or alias '{column.qualifier}' in '{column.qualifier}.{column.name}'")
            position = positions[0]
            if column.name not in self.columns[position]:
                raise UnknownColumn(column.name, self.tables[position].name)
            return position, column.name
        positions = [i for i in range(count) if column.name in self.columns[i]]
        if not positions:
            raise UnknownColumn(column.name, self.tables[0].name)
        if len(positions) > 1:
            names = " and ".join(self.tables[i].reference for i in positions)
            raise QueryError(f"column '{column.name}' is ambiguous: it is in {names}; qualify it")
        return positions[0], column.name

    # -- compiling -----------------------------------------------------------------------------------

    def expression(self, node: Expression, visible: int | None = None) -> Callable[[Combined], Any]:
        if isinstance(node, Literal):
            value = node.value
            return lambda combined: value
        if isinstance(node, Column):
            index, name = self.resolve(node, visible)
            return lambda combined: _get(combined, index, name)
        if isinstance(node, Call):
            return self.call(node, visible)
        raise QueryError(f"unsupported expression {node!r}")

    def call(self, node: Call, visible: int | None) -> Callable[[Combined], Any]:
        if node.function == "builtin.df":
            if len(node.arguments) != 1 or not isinstance(node.arguments[0], Column):
                raise QueryError("BUILTIN.DF takes one column")
            index, name = self.resolve(node.arguments[0], visible)
            table, display = self.tables[index].name, self.source.display

            def display_value(combined: Combined) -> Any:
                value = _get(combined, index, name)
                return None if value is None else display(table, name, value)
            return display_value
        function = _FUNCTIONS.get(node.function)
        if function is None:
            raise QueryError(f"unknown function {node.function.upper()}")
        if len(node.arguments) != 1:
            raise QueryError(f"{node.function.upper()} takes one argument")
        argument = self.expression(node.arguments[0], visible)
        return lambda combined: function(argument(combined))

    def condition(self, node: Condition, visible: int | None = None) -> Callable[[Combined], Truth]:
        semantics = self.semantics
        if isinstance(node, Or):
            node = _equalities_as_lists(node)
        if isinstance(node, And | Or):
            terms = [self.condition(term, visible) for term in node.terms]
            return _conjunction(terms) if isinstance(node, And) else _disjunction(terms)
        if isinstance(node, Not):
            term = self.condition(node.term, visible)
            return lambda combined: _negate(term(combined))
        if isinstance(node, Comparison):
            left, right = self.expression(node.left, visible), self.expression(node.right, visible)
            compare = _comparison(node.operator, semantics)
            return lambda combined: compare(left(combined), right(combined))
        if isinstance(node, InList):
            operand = self.expression(node.operand, visible)
            literals = [v.value for v in node.values if isinstance(v, Literal)]
            if len(literals) == len(node.values):
                contains = _membership(literals, semantics)
                return lambda combined: (_negate if node.negated else _same)(contains(operand(combined)))
            values = [self.expression(v, visible) for v in node.values]
            equal = _comparison("=", semantics)

            def member(combined: Combined) -> Truth:
                value = operand(combined)
                return _disjunction_of(equal(value, candidate(combined)) for candidate in values)
            return member if not node.negated else lambda combined: _negate(member(combined))
        if isinstance(node, Like):
            operand = self.expression(node.operand, visible)
            try:
                pattern = LikePattern(node.pattern, node.escape, semantics.case_sensitive)
            except ValueError as error:
                raise QueryError(str(error)) from None

            def like(combined: Combined) -> Truth:
                value = operand(combined)
                if value is None:
                    return False if semantics.null_is_value else None
                return pattern.matches(value if isinstance(value, str) else _text(value))
            return like if not node.negated else lambda combined: _negate(like(combined))
        if isinstance(node, IsNull):
            operand = self.expression(node.operand, visible)
            return lambda combined: (operand(combined) is None) != node.negated
        if isinstance(node, Between):
            operand = self.expression(node.operand, visible)
            low, high = self.expression(node.low, visible), self.expression(node.high, visible)
            at_least, at_most = _comparison(">=", semantics), _comparison("<=", semantics)

            def between(combined: Combined) -> Truth:
                value = operand(combined)
                return _conjunction_of((at_least(value, low(combined)), at_most(value, high(combined))))
            return between if not node.negated else lambda combined: _negate(between(combined))
        raise QueryError(f"unsupported condition {node!r}")

    def order_key(self, item: OrderItem) -> tuple[Callable[[Combined], Any], bool, bool]:
        expression = item.expression
        if isinstance(expression, Column) and expression.qualifier is None:
            aliased = next((s.expression for s in self.select.items if s.alias == expression.name), None)
            if isinstance(aliased, Column | Call | Literal):
                expression = aliased
        nulls_first = item.nulls_first
        if nulls_first is None:
            semantics = self.semantics
            nulls_first = semantics.nulls_first_descending if item.descending else semantics.nulls_first_ascending
        return self.expression(expression), item.descending, nulls_first

    def projection(self) -> list[tuple[str, Callable[[Combined], Any]]]:
        items = self.select.items
        if not items:
            seen: dict[str, Callable[[Combined], Any]] = {}
            for index, table in enumerate(self.tables):
                for name in self.schema[table.name]:
                    seen.setdefault(name, lambda combined, i=index, n=name: _get(combined, i, n))
            return list(seen.items())
        if self.select.counts and len(items) > 1:
            raise QueryError("COUNT(*) cannot be selected together with columns (GROUP BY is not supported)")
        projection, unnamed = [], 0
        for item in items:
            if isinstance(item.expression, Column) and item.alias is None:
                name = item.expression.name
            elif item.alias is not None:
                name = item.alias
            else:
                unnamed += 1
                name = f"expr{unnamed}"
            value = (lambda combined: None) if isinstance(item.expression, CountAll) else self.expression(
                item.expression)
            projection.append((name, value))
        return projection


# -- values -------------------------------------------------------------------------------------------

def _get(combined: Combined, index: int, name: str) -> Any:
    row = combined[index]
    return None if row is None else row.get(name)


def _column_and_literal(left: Expression, right: Expression) -> tuple[Column | None, Literal]:
    if isinstance(left, Column) and isinstance(right, Literal):
        return left, right
    if isinstance(right, Column) and isinstance(left, Literal):
        return right, left
    return None, Literal(None)


_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}


def _range_of(condition: Condition) -> tuple[Column, Interval] | None:
    """(column, interval) when `condition` bounds a column by datetime or date literals."""
    if isinstance(condition, Comparison) and condition.operator in _FLIPPED:
        column, literal = _column_and_literal(condition.left, condition.right)
        moment = _bound(literal.value)
        if column is None or moment is None:
            return None
        operator_ = condition.operator if condition.left is column else _FLIPPED[condition.operator]
        if operator_[0] == ">":
            return column, Interval(low=moment, include_low=operator_ == ">=")
        return column, Interval(high=moment, include_high=operator_ == "<=")
    if isinstance(condition, Between) and not condition.negated and isinstance(condition.operand, Column):
        low = _bound(condition.low.value) if isinstance(condition.low, Literal) else None
        high = _bound(condition.high.value) if isinstance(condition.high, Literal) else None
        if low is not None and high is not None:
            return condition.operand, Interval(low, high)
    return None


def _bound(value: Any) -> datetime | None:
    """A literal as the aware datetime comparisons convert it to; None unless it is a date or datetime."""
    return _as_datetime(value) if isinstance(value, date) else None


def _distinct(rows: Iterable[Row]) -> list[Row]:
    seen: set[int] = set()
    unique = []
    for row in rows:
        if id(row) not in seen:
            seen.add(id(row))
            unique.append(row)
    return unique


def _case_free(text: str) -> bool:
    """True when no character of `text` has case, so case-insensitive equality is plain equality."""
    return text.lower() == text == text.upper()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            return parse_datetime(value)
        except ValueError:
            return None
    return None


def _as_decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None


_NUMBER_TYPES = (int, float, Decimal)


def _coerce(left: Any, right: Any, case_sensitive: bool) -> tuple[Any, Any]:
    """Bring two non-null values to comparable types, the way the query languages convert implicitly."""
    left_type, right_type = type(left), type(right)
    if left_type is right_type is str:
        return (left, right) if case_sensitive else (left.lower(), right.lower())
    if left_type in _NUMBER_TYPES and right_type in _NUMBER_TYPES:
        return left, right  # Python compares int, float and Decimal exactly
    if isinstance(left, bool) or isinstance(right, bool):
        if isinstance(left, bool) and isinstance(right, bool):
            return left, right
        return _text(left).lower(), _text(right).lower()
    if isinstance(left, date) or isinstance(right, date):
        a, b = _as_datetime(left), _as_datetime(right)
        if a is not None and b is not None:
            return a, b
        return _text(left), _text(right)
    if _is_number(left) or _is_number(right):
        a, b = _as_decimal(left), _as_decimal(right)
        if a is not None and b is not None:
            return a, b
        return _text(left), _text(right)
    if isinstance(left, str) and isinstance(right, str) and not case_sensitive:
        return left.lower(), right.lower()
    return left, right


_ORDERING = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _comparison(name: str, semantics: Semantics) -> Callable[[Any, Any], Truth]:
    case_sensitive, null_is_value = semantics.case_sensitive, semantics.null_is_value

    def equal(left: Any, right: Any) -> Truth:
        if left is None or right is None:
            return (left is None and right is None) if null_is_value else None
        a, b = _coerce(left, right, case_sensitive)
        return a == b

    if name == "=":
        return equal
    if name in ("!=", "<>"):
        return lambda left, right: _negate(equal(left, right))
    check = _ORDERING.get(name)
    if check is None:
        raise QueryError(f"unknown operator {name!r}")

    def ordered(left: Any, right: Any) -> Truth:
        if left is None or right is None:
            return False if null_is_value else None
        a, b = _coerce(left, right, case_sensitive)
        try:
            return bool(check(a, b))
        except (TypeError, ArithmeticError):
            return False
    return ordered


def _equalities_as_lists(node: Or) -> Condition:
    """OR of `x = literal` terms on the same operand as one IN list, so it is tested by hashing."""
    groups: dict[Expression, list[Literal]] = {}
    others: list[Condition] = []
    for term in node.terms:
        if isinstance(term, Comparison) and term.operator == "=" and isinstance(term.right, Literal) and isinstance(
                term.left, Column | Call):
            groups.setdefault(term.left, []).append(term.right)
        else:
            others.append(term)
    terms = [InList(operand, tuple(values)) if len(values) > 1 else Comparison("=", operand, values[0])
             for operand, values in groups.items()]
    return Or((*terms, *others)) if len(terms) + len(others) > 1 else (terms + others)[0]


def _membership(values: list[Any], semantics: Semantics) -> Callable[[Any], Truth]:
    """`value IN (values)` for literal values: hashed when every value has join keys, else one by one."""
    equal = _comparison("=", semantics)
    has_null = any(v is None for v in values)
    keyed: dict[Any, list[Any]] = {}
    for candidate in values:
        keys = None if isinstance(candidate, bool) else _join_keys(candidate, semantics.case_sensitive)
        if keys is None:
            return lambda value: _disjunction_of(equal(value, candidate) for candidate in values)
        for key in keys:
            keyed.setdefault(key, []).append(candidate)

    def contains(value: Any) -> Truth:
        if value is None:
            return has_null if semantics.null_is_value else None
        keys = None if isinstance(value, bool) else _join_keys(value, semantics.case_sensitive)
        if keys is None:
            return _disjunction_of(equal(value, candidate) for candidate in values)
        if any(equal(value, candidate) for key in keys for candidate in keyed.get(key, ())):
            return True
        return None if has_null and not semantics.null_is_value else False
    return contains


def _same(value: Truth) -> Truth:
    return value


def _negate(value: Truth) -> Truth:
    return None if value is None else not value


def _conjunction_of(values: Iterable[Truth]) -> Truth:
    unknown = False
    for value in values:
        if value is False:
            return False
        unknown = unknown or value is None
    return None if unknown else True


def _disjunction_of(values: Iterable[Truth]) -> Truth:
    unknown = False
    for value in values:
        if value is True:
            return True
        unknown = unknown or value is None
    return None if unknown else False


def _conjunction(terms: list[Callable[[Combined], Truth]]) -> Callable[[Combined], Truth]:
    return lambda combined: _conjunction_of(term(combined) for term in terms)


def _disjunction(terms: list[Callable[[Combined], Truth]]) -> Callable[[Combined], Truth]:
    return lambda combined: _disjunction_of(term(combined) for term in terms)


def _join_keys(value: Any, case_sensitive: bool) -> list[Any] | None:
    """Hash keys under which a join value can equal another (a superset; the ON condition decides)."""
    if value is None:
        return []
    if isinstance(value, bool):
        return [("text", _text(value))]
    if _is_number(value):
        return [("number", Decimal(str(value)))]
    if isinstance(value, str):
        keys: list[Any] = [("text", value if case_sensitive else value.lower())]
        number = _as_decimal(value)
        if number is not None and number.is_finite():
            keys.append(("number", number))
        return keys
    return None


def _sort_key(value: Any, case_sensitive: bool) -> tuple[int, Any]:
    if isinstance(value, bool):
        return 1, Decimal(int(value))
    if _is_number(value):
        return 1, Decimal(str(value))
    if isinstance(value, date):
        return 2, _as_datetime(value).isoformat()  # type: ignore[union-attr]
    text = str(value)
    return 2, text if case_sensitive else text.lower()


_FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "upper": lambda value: None if value is None else _text(value).upper(),
    "lower": lambda value: None if value is None else _text(value).lower(),
}
