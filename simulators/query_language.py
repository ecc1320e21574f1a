"""A small SQL-like query language shared by the SOQL and SuiteQL dialects.

Grammar (case-insensitive keywords and field names):
    SELECT field[, field...] | COUNT() | * FROM table
    [WHERE condition] [ORDER BY field [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]
    condition: term (AND|OR term)*; term: NOT term | (condition) | field op value
    | field [NOT] IN (values) | field [NOT] LIKE 'pattern' | field IS [NOT] NULL
Values: 'text', numbers, TRUE/FALSE/NULL, and per dialect: SOQL datetime and date literals
(2024-01-31T10:00:00Z, TODAY, LAST_N_DAYS:7...) or SuiteQL TO_DATE / TO_TIMESTAMP calls.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from syncert.simulators.clock import parse_datetime


class QueryError(ValueError):
    """A query the dialect cannot run; the message names the problem."""


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.|'')*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:[.:][A-Za-z0-9_]+)*)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),*])
""", re.VERBOSE)

_KEYWORDS = {"select", "from", "where", "and", "or", "not", "in", "like", "order", "by", "asc", "desc",
             "nulls", "first", "last", "limit", "offset", "is", "null", "true", "false", "count"}


@dataclass
class Token:
    kind: str
    text: str
    position: int

    @property
    def keyword(self) -> str | None:
        low = self.text.lower()
        return low if self.kind == "name" and low in _KEYWORDS else None


@dataclass
class Condition:
    """A predicate over one row (lower-cased keys)."""

    test: Callable[[dict[str, Any]], bool]
    fields: set[str] = field(default_factory=set)


@dataclass
class Query:
    fields: list[str]
    table: str
    count_only: bool = False
    select_all: bool = False
    where: Condition | None = None
    order_by: list[tuple[str, bool, bool]] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0

    def referenced_fields(self) -> set[str]:
        names = set(self.fields) | {name for name, _, _ in self.order_by}
        return names | (self.where.fields if self.where else set())


@dataclass(frozen=True)
class Dialect:
    """What differs between SOQL and SuiteQL."""

    name: str
    bare_datetime_literals: bool
    date_functions: bool
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


def tokenize(text: str) -> list[Token]:
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            raise QueryError(f"unexpected character {text[position]!r} at position {position}")
        if match.lastgroup != "ws":
            tokens.append(Token(match.lastgroup or "", match.group(), position))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str, dialect: Dialect):
        self.tokens = tokenize(text)
        self.index = 0
        self.dialect = dialect

    def peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise QueryError("unexpected end of query")
        self.index += 1
        return token

    def at_keyword(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token.keyword in words

    def expect_keyword(self, word: str) -> None:
        token = self.peek()
        if token is None or token.keyword != word:
            found = f"{token.text!r} at position {token.position}" if token else "end of query"
            raise QueryError(f"expected {word.upper()}, found {found}")
        self.index += 1

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text != text:
            raise QueryError(f"expected {text!r}, found {token.text!r} at position {token.position}")

    def field_name(self) -> str:
        token = self.take()
        if token.kind != "name" or (token.keyword and token.keyword not in ("first", "last", "count")):
            raise QueryError(f"expected a field name, found {token.text!r} at position {token.position}")
        if "." in token.text:
            raise QueryError(f"relationship fields are not supported: {token.text!r}")
        return token.text.lower()

    def parse(self) -> Query:
        self.expect_keyword("select")
        fields: list[str] = []
        count_only = select_all = False
        if self.at_keyword("count"):
            self.take()
            self.expect("(")
            self.expect(")")
            count_only = True
        elif self.peek() is not None and self.peek().text == "*":  # type: ignore[union-attr]
            self.take()
            select_all = True
        else:
            fields.append(self.field_name())
            while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                self.take()
                fields.append(self.field_name())
        self.expect_keyword("from")
        table_token = self.take()
        if table_token.kind != "name" or table_token.keyword:
            raise QueryError(f"expected an object name after FROM, found {table_token.text!r}")
        query = Query(fields, table_token.text, count_only=count_only, select_all=select_all)
        if self.at_keyword("where"):
            self.take()
            query.where = self.condition()
        if self.at_keyword("order"):
            self.take()
            self.expect_keyword("by")
            query.order_by.append(self.order_item())
            while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                self.take()
                query.order_by.append(self.order_item())
        if self.at_keyword("limit"):
            self.take()
            query.limit = self.integer("LIMIT")
        if self.at_keyword("offset"):
            self.take()
            query.offset = self.integer("OFFSET")
        if self.peek() is not None:
            token = self.peek()
            raise QueryError(f"unexpected {token.text!r} at position {token.position}")  # type: ignore[union-attr]
        return query

    def integer(self, clause: str) -> int:
        token = self.take()
        if token.kind != "number" or not token.text.isdigit():
            raise QueryError(f"{clause} needs a non-negative integer, found {token.text!r}")
        return int(token.text)

    def order_item(self) -> tuple[str, bool, bool]:
        name = self.field_name()
        descending = False
        if self.at_keyword("asc", "desc"):
            descending = self.take().keyword == "desc"
        nulls_last = descending
        if self.at_keyword("nulls"):
            self.take()
            if not self.at_keyword("first", "last"):
                raise QueryError("NULLS must be followed by FIRST or LAST")
            nulls_last = self.take().keyword == "last"
        return name, descending, nulls_last

    def condition(self) -> Condition:
        left = self.term()
        while self.at_keyword("and", "or"):
            operator = self.take().keyword
            right = self.term()
            a, b = left.test, right.test
            test = (lambda row, a=a, b=b: a(row) and b(row)) if operator == "and" else (
                lambda row, a=a, b=b: a(row) or b(row))
            left = Condition(test, left.fields | right.fields)
        return left

    def term(self) -> Condition:
        if self.at_keyword("not"):
            self.take()
            inner = self.term()
            return Condition(lambda row, t=inner.test: not t(row), inner.fields)
        token = self.peek()
        if token is not None and token.text == "(":
            self.take()
            inner = self.condition()
            self.expect(")")
            return inner
        name = self.field_name()
        negate = False
        if self.at_keyword("not"):
            self.take()
            negate = True
            if not self.at_keyword("in", "like"):
                raise QueryError(f"expected IN or LIKE after NOT following {name!r}")
        if self.at_keyword("in"):
            self.take()
            values = self.value_list()
            return Condition(lambda row: negate != any(_equal(row.get(name), v) for v in values), {name})
        if self.at_keyword("like"):
            self.take()
            pattern = self.value()
            if not isinstance(pattern, str):
                raise QueryError(f"LIKE needs a quoted pattern for {name!r}")
            regex = re.compile("^" + re.escape(pattern).replace("%", ".*").replace("_", ".") + "$",
                               re.IGNORECASE | re.DOTALL)
            return Condition(lambda row: negate != (row.get(name) is not None
                                                    and bool(regex.match(str(row.get(name))))), {name})
        if self.at_keyword("is"):
            self.take()
            wants_null = True
            if self.at_keyword("not"):
                self.take()
                wants_null = False
            self.expect_keyword("null")
            return Condition(lambda row: (row.get(name) is None) == wants_null, {name})
        operator_token = self.take()
        if operator_token.kind != "op":
            raise QueryError(f"expected an operator after {name!r}, found {operator_token.text!r}")
        value = self.value()
        compare = _OPERATORS[operator_token.text]
        return Condition(lambda row: compare(row.get(name), value), {name})

    def value_list(self) -> list[Any]:
        self.expect("(")
        values = [self.value()]
        while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
            self.take()
            values.append(self.value())
        self.expect(")")
        return values

    def value(self) -> Any:
        token = self.take()
        if token.kind == "string":
            return _unquote(token.text)
        if token.kind == "number":
            return Decimal(token.text)
        if token.kind in ("datetime", "date"):
            if not self.dialect.bare_datetime_literals:
                raise QueryError(f"{self.dialect.name}: write dates as TO_DATE('{token.text}', 'YYYY-MM-DD')")
            try:
                return parse_datetime(token.text)
            except ValueError:
                raise QueryError(f"invalid date literal {token.text!r}") from None
        if token.kind == "name":
            word = token.text.lower()
            if word == "null":
                return None
            if word in ("true", "false"):
                return word == "true"
            if self.dialect.date_functions and word in ("to_date", "to_timestamp"):
                return self.date_function(word)
            if self.dialect.bare_datetime_literals:
                moment = _relative_date(word, self.dialect.clock())
                if moment is not None:
                    return moment
        raise QueryError(f"expected a value, found {token.text!r} at position {token.position}")

    def date_function(self, function: str) -> datetime:
        self.expect("(")
        text_token = self.take()
        if text_token.kind != "string":
            raise QueryError(f"{function.upper()} needs a quoted date")
        fmt = None
        if self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
            self.take()
            fmt_token = self.take()
            if fmt_token.kind != "string":
                raise QueryError(f"{function.upper()} format must be quoted")
            fmt = _unquote(fmt_token.text)
        self.expect(")")
        return _parse_with_format(_unquote(text_token.text), fmt)


_ORACLE_FORMATS = {"YYYY": "%Y", "MM": "%m", "DD": "%d", "HH24": "%H", "MI": "%M", "SS": "%S"}


def _parse_with_format(text: str, fmt: str | None) -> datetime:
    try:
        if fmt is None:
            return parse_datetime(text)
        python_format = re.sub("|".join(_ORACLE_FORMATS), lambda m: _ORACLE_FORMATS[m.group()], fmt.upper())
        return datetime.strptime(text, python_format).replace(tzinfo=UTC)
    except ValueError:
        raise QueryError(f"date {text!r} does not match format {fmt or 'ISO 8601'!r}") from None


def _relative_date(word: str, now: datetime) -> datetime | None:
    today = datetime(now.year, now.month, now.day, tzinfo=UTC)
    if word == "today":
        return today
    if word == "yesterday":
        return today - timedelta(days=1)
    if word == "tomorrow":
        return today + timedelta(days=1)
    match = re.fullmatch(r"last_n_days:(\d+)", word)
    if match:
        return today - timedelta(days=int(match.group(1)))
    return None


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)|''", lambda m: m.group(1) if m.group(1) is not None else "'", body)


def _coerce_pair(left: Any, right: Any) -> tuple[Any, Any]:
    if isinstance(right, datetime) and isinstance(left, str):
        try:
            return parse_datetime(left), right
        except ValueError:
            return left, right.isoformat()
    if isinstance(right, datetime) and isinstance(left, date) and not isinstance(left, datetime):
        return datetime(left.year, left.month, left.day, tzinfo=UTC), right
    if isinstance(right, Decimal) and isinstance(left, int | float) and not isinstance(left, bool):
        return Decimal(str(left)), right
    if isinstance(right, Decimal) and isinstance(left, str):
        try:
            return Decimal(left), right
        except ArithmeticError:
            return left, str(right)
    if isinstance(left, str) and isinstance(right, str):
        return left.lower(), right.lower()
    return left, right


def _equal(left: Any, right: Any) -> bool:
    if left is None or right is None:
        return left is None and right is None
    a, b = _coerce_pair(left, right)
    return a == b


def _ordered(check: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(left: Any, right: Any) -> bool:
        if left is None or right is None:
            return False
        a, b = _coerce_pair(left, right)
        try:
            return check(a, b)
        except TypeError:
            return False
    return compare


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": _equal,
    "!=": lambda a, b: not _equal(a, b),
    "<>": lambda a, b: not _equal(a, b),
    "<": _ordered(lambda a, b: a < b),
    "<=": _ordered(lambda a, b: a <= b),
    ">": _ordered(lambda a, b: a > b),
    ">=": _ordered(lambda a, b: a >= b),
}


def parse(text: str, dialect: Dialect) -> Query:
    """Parse a query; raises QueryError naming the problem."""
    if not isinstance(text, str) or not text.strip():
        raise QueryError("the query is empty")
    return _Parser(text, dialect).parse()


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return 1, int(value)
    if isinstance(value, int | float | Decimal):
        return 1, Decimal(str(value))
    return 2, str(value).lower()


def run(query: Query, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Filter, sort and slice rows whose keys are lower-cased field names."""
    selected = [row for row in rows if query.where is None or query.where.test(row)]
    for name, descending, nulls_last in reversed(query.order_by):
        present = [row for row in selected if row.get(name) is not None]
        missing = [row for row in selected if row.get(name) is None]
        present.sort(key=lambda row, n=name: _sort_key(row[n]), reverse=descending)
        selected = present + missing if nulls_last else missing + present
    end = None if query.limit is None else query.offset + query.limit
    return selected[query.offset:end]
