"""The query core: front ends (SOQL, SuiteQL, NetSuite q=, OData), the evaluator, LIKE, limits, and the
dialects answering through it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from syncert.simulators.query import netsuite_filter, odata, soql, suiteql
from syncert.simulators.query.ast import Condition, Select, TableRef
from syncert.simulators.query.evaluate import InMemoryRows, Row, Semantics, evaluate
from syncert.simulators.query.like import like, literal_pattern
from syncert.simulators.query.parsing import QueryError, QueryTooComplex, UnknownColumn, UnknownTable
from tests.conftest import Sims

NOW = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)
ACCOUNTS: list[Row] = [
    {"id": "1", "name": "Acme", "industry": "Tech", "revenue": Decimal(500), "createddate": "2024-03-14T09:00:00Z"},
    {"id": "2", "name": "Globex", "industry": None, "revenue": Decimal(1500), "createddate": "2024-01-02T09:00:00Z"},
    {"id": "3", "name": "acme labs", "industry": "Bio", "revenue": None, "createddate": "2023-12-31T09:00:00Z"},
]
ACCOUNT_SCHEMA = {"account": ["id", "name", "industry", "revenue", "createddate"]}


def _soql(text: str, rows: list[Row] = ACCOUNTS) -> list[str]:
    result = evaluate(soql.parse_soql(text, lambda: NOW), InMemoryRows({"account": rows}), ACCOUNT_SCHEMA,
                      soql.SEMANTICS)
    return [match[0]["id"] for match in result.matches]  # type: ignore[index]


CUSTOMERS: list[Row] = [
    {"id": 101, "companyname": "Acme", "email": "a@x.example", "isinactive": "F", "creditlimit": Decimal(100)},
    {"id": 102, "companyname": "ACME", "email": None, "isinactive": "T", "creditlimit": Decimal(20)},
    {"id": 103, "companyname": "Initech", "email": "i@x.example", "isinactive": "F", "creditlimit": None},
]
TRANSACTIONS: list[Row] = [
    {"id": 201, "tranid": "SO1", "type": "SalesOrd", "entity": 101},
    {"id": 202, "tranid": "INV1", "type": "CustInvc", "entity": 101},
    {"id": 203, "tranid": "SO2", "type": "SalesOrd", "entity": 103},
]
LINES: list[Row] = [
    {"transaction": 201, "linesequencenumber": 1, "item": 7, "quantity": Decimal(2)},
    {"transaction": 201, "linesequencenumber": 2, "item": 8, "quantity": Decimal(1)},
    {"transaction": 202, "linesequencenumber": 1, "item": 7, "quantity": Decimal(2)},
]
ERP_SCHEMA = {"customer": ["id", "companyname", "email", "isinactive", "creditlimit"],
              "transaction": ["id", "tranid", "type", "entity"],
              "transactionline": ["transaction", "linesequencenumber", "item", "quantity"]}


class DisplayRows(InMemoryRows):
    def display(self, table: str, column: str, value: Any) -> Any:
        if (table, column) == ("transaction", "entity"):
            return next(c["companyname"] for c in CUSTOMERS if c["id"] == value)
        return value


def _suiteql(text: str, tables: dict[str, list[Row]] | None = None) -> list[dict[str, Any]]:
    source = DisplayRows(tables if tables is not None else
                         {"customer": CUSTOMERS, "transaction": TRANSACTIONS, "transactionline": LINES})
    return evaluate(suiteql.parse_suiteql(text), source, ERP_SCHEMA, suiteql.SEMANTICS).rows


def _ids(rows: list[dict[str, Any]]) -> list[Any]:
    return [row["id"] for row in rows]


FIELD_TYPES = {"id": "id", "companyName": "string", "email": "string", "creditLimit": "number",
               "lastModifiedDate": "datetime", "isInactive": "boolean", "terms": "enum"}
RECORDS: list[Row] = [
    {"id": "1", "companyName": "Acme Corp", "email": "ops@acme.example", "creditLimit": 100,
     "lastModifiedDate": "2024-01-15T10:30:00Z", "isInactive": False, "terms": "2"},
    {"id": "2", "companyName": "Globex", "email": None, "creditLimit": None,
     "lastModifiedDate": "2024-01-16T08:00:00Z", "isInactive": True, "terms": None},
    {"id": "3", "companyName": "100% Pure_Juice", "email": "", "creditLimit": 2500,
     "lastModifiedDate": "2023-12-31T23:00:00Z", "isInactive": False, "terms": "1"},
]


def _run_condition(condition: Condition, rows: list[Row], semantics: Semantics, columns: Iterable[str]) -> list[str]:
    select = Select(items=(), source=TableRef("records"), where=condition)
    result = evaluate(select, InMemoryRows({"records": rows}), {"records": list(columns)}, semantics)
    return [match[0]["id"] for match in result.matches]  # type: ignore[index]


def _q(text: str) -> list[str]:
    return _run_condition(netsuite_filter.parse_filter(text, FIELD_TYPES.get), RECORDS, netsuite_filter.SEMANTICS,
                          FIELD_TYPES)


def _odata(text: str) -> list[str]:
    return _run_condition(odata.parse_filter(text), RECORDS, odata.SEMANTICS, FIELD_TYPES)


# -- precedence ----------------------------------------------------------------------------------

def test_and_binds_tighter_than_or_in_suiteql() -> None:
    # A OR (B AND C): Acme (101) matches A alone; left to right would drop it because C fails for it.
    rows = _suiteql("SELECT id FROM customer WHERE companyname = 'Acme' OR isinactive = 'F' AND creditlimit IS NULL")
    assert _ids(rows) == [101, 103]


def test_and_binds_tighter_than_or_and_not_tighter_than_and_in_soql() -> None:
    assert _soql("SELECT Id FROM Account WHERE Name = 'Globex' OR Industry = 'Tech' AND Revenue > 1000") == ["2"]
    assert _soql("SELECT Id FROM Account WHERE NOT Industry = 'Tech' AND Revenue > 100") == ["2"]
    assert _soql("SELECT Id FROM Account WHERE (Name = 'Globex' OR Industry = 'Tech') AND Revenue > 1000") == ["2"]


def test_and_binds_tighter_than_or_in_netsuite_filters_and_odata() -> None:
    assert _q('companyName IS "Globex" OR creditLimit GREATER 50 AND isInactive IS true') == ["2"]
    assert _odata("companyName eq 'Globex' or creditLimit gt 50 and isInactive eq true") == ["2"]


# -- case semantics per language -----------------------------------------------------------------

def test_soql_text_comparisons_ignore_case() -> None:
    assert _soql("SELECT Id FROM Account WHERE Name = 'ACME'") == ["1"]
    assert _soql("SELECT Id FROM Account WHERE Name LIKE 'ACME%'") == ["1", "3"]
    assert _soql("SELECT Id FROM Account WHERE Name IN ('GLOBEX', 'nobody')") == ["2"]
    assert _soql("SELECT Id FROM Account WHERE Name != 'acme'") == ["2", "3"]


def test_suiteql_equality_and_like_are_case_sensitive_and_upper_lower_fold() -> None:
    assert _ids(_suiteql("SELECT id FROM customer WHERE companyname = 'ACME'")) == [102]
    assert _ids(_suiteql("SELECT id FROM customer WHERE companyname LIKE 'Ac%'")) == [101]
    assert _ids(_suiteql("SELECT id FROM customer WHERE UPPER(companyname) = 'ACME'")) == [101, 102]
    assert _ids(_suiteql("SELECT id FROM customer WHERE LOWER(companyname) LIKE 'ac%'")) == [101, 102]
    assert _suiteql("SELECT UPPER(companyname) AS shout FROM customer WHERE id = 103") == [{"shout": "INITECH"}]


def test_netsuite_filter_text_operators_ignore_case() -> None:
    assert _q('companyName IS "acme corp"') == ["1"]
    assert _q('companyName CONTAIN "CORP"') == ["1"]
    assert _q('companyName START_WITH "glo"') == ["2"]
    assert _q('companyName END_WITH "JUICE"') == ["3"]


# -- operators of each language ------------------------------------------------------------------

def test_soql_operators_and_literals() -> None:
    assert _soql("SELECT Id FROM Account WHERE Revenue >= 500 AND Revenue < 1500") == ["1"]
    assert _soql("SELECT Id FROM Account WHERE Revenue <> 500") == ["2", "3"]
    assert _soql("SELECT Id FROM Account WHERE Industry = null") == ["2"]
    assert _soql("SELECT Id FROM Account WHERE Industry != null") == ["1", "3"]
    assert _soql("SELECT Id FROM Account WHERE Industry IS NOT NULL AND Industry NOT IN ('Bio')") == ["1"]
    assert _soql("SELECT Id FROM Account WHERE Name NOT LIKE '%acme%'") == ["2"]
    assert _soql("SELECT Id FROM Account WHERE CreatedDate > 2024-01-01T00:00:00Z") == ["1", "2"]
    assert _soql("SELECT Id FROM Account WHERE CreatedDate >= 2024-01-02") == ["1", "2"]
    assert _soql("SELECT Id FROM Account WHERE CreatedDate > LAST_N_DAYS:7") == ["1"]
    assert _soql("SELECT Id FROM Account WHERE CreatedDate > YESTERDAY") == ["1"]
    assert _soql("SELECT Id FROM Account WHERE CreatedDate < TODAY AND CreatedDate > 2023-12-31T10:00:00Z") == ["1",
                                                                                                              "2"]


def test_soql_order_limit_offset_and_nulls_first_by_default() -> None:
    assert _soql("SELECT Id FROM Account ORDER BY Industry") == ["2", "3", "1"]
    assert _soql("SELECT Id FROM Account ORDER BY Industry DESC") == ["2", "1", "3"]
    assert _soql("SELECT Id FROM Account ORDER BY Industry DESC NULLS LAST") == ["1", "3", "2"]
    assert _soql("SELECT Id FROM Account ORDER BY Name LIMIT 2 OFFSET 1") == ["3", "2"]


def test_soql_count_and_like_escapes() -> None:
    count = evaluate(soql.parse_soql("SELECT COUNT() FROM Account WHERE Name LIKE 'acme%'", lambda: NOW),
                     InMemoryRows({"account": ACCOUNTS}), ACCOUNT_SCHEMA, soql.SEMANTICS)
    assert list(count.rows[0].values()) == [2]
    rows = [{"id": "1", "name": "50% off"}, {"id": "2", "name": "50 off"}, {"id": "3", "name": "a_b"},
            {"id": "4", "name": "axb"}]
    assert _soql(r"SELECT Id FROM Account WHERE Name LIKE '50\% %'", rows) == ["1"]
    assert _soql(r"SELECT Id FROM Account WHERE Name LIKE 'a\_b'", rows) == ["3"]
    assert _soql("SELECT Id FROM Account WHERE Name LIKE 'a_b'", rows) == ["3", "4"]


def test_suiteql_operators() -> None:
    assert _ids(_suiteql("SELECT id FROM customer WHERE creditlimit BETWEEN 20 AND 99")) == [102]
    assert _ids(_suiteql("SELECT id FROM customer WHERE creditlimit NOT BETWEEN 20 AND 99")) == [101]
    assert _ids(_suiteql("SELECT id FROM customer WHERE id IN (101, 103) AND email IS NOT NULL")) == [101, 103]
    assert _ids(_suiteql("SELECT id FROM customer WHERE id NOT IN (101) AND companyname <> 'ACME'")) == [103]
    assert _ids(_suiteql("SELECT id FROM customer WHERE companyname LIKE 'In_t%'")) == [103]
    assert _ids(_suiteql("SELECT id FROM customer WHERE email LIKE '%!_%' ESCAPE '!'")) == []
    # Oracle: a comparison with NULL is unknown, so != keeps no row whose email is null.
    assert _ids(_suiteql("SELECT id FROM customer WHERE email != 'a@x.example'")) == [103]
    assert _ids(_suiteql("SELECT id FROM customer WHERE NOT (email = 'a@x.example')")) == [103]
    assert _ids(_suiteql("SELECT id FROM customer WHERE id NOT IN (101, NULL)")) == []
    assert _ids(_suiteql("SELECT id FROM customer WHERE id IN ('101', 102.0)")) == [101, 102]
    assert _ids(_suiteql("SELECT id FROM customer WHERE id = 101 OR id = '103' OR companyname = 'ACME'")) == [101, 102,
                                                                                                             103]


def test_suiteql_top_fetch_first_offset_and_order() -> None:
    assert _ids(_suiteql("SELECT TOP 2 id FROM customer ORDER BY id DESC")) == [103, 102]
    assert _ids(_suiteql("SELECT id FROM customer ORDER BY id FETCH FIRST 1 ROWS ONLY")) == [101]
    assert _ids(_suiteql("SELECT id FROM customer ORDER BY id OFFSET 1 ROWS FETCH NEXT 1 ROWS ONLY")) == [102]
    assert _ids(_suiteql("SELECT id FROM customer ORDER BY creditlimit")) == [102, 101, 103]  # nulls last
    assert _ids(_suiteql("SELECT id FROM customer ORDER BY creditlimit DESC")) == [103, 101, 102]


def test_suiteql_count_star() -> None:
    assert _suiteql("SELECT COUNT(*) FROM customer WHERE isinactive = 'F'") == [{"expr1": 2}]
    assert _suiteql("SELECT COUNT(*) AS total FROM customer") == [{"total": 3}]
    with pytest.raises(QueryError, match="GROUP BY"):
        _suiteql("SELECT id, COUNT(*) FROM customer")


def test_suiteql_joins_aliases_and_qualified_columns() -> None:
    rows = _suiteql("SELECT t.tranid, tl.item, tl.quantity FROM transaction t "
                    "JOIN transactionline tl ON tl.transaction = t.id WHERE t.type = 'SalesOrd' "
                    "ORDER BY tl.linesequencenumber DESC")
    assert rows == [{"tranid": "SO1", "item": 8, "quantity": 1}, {"tranid": "SO1", "item": 7, "quantity": 2}]
    outer = _suiteql("SELECT t.tranid, tl.item FROM transaction t LEFT OUTER JOIN transactionline tl "
                     "ON tl.transaction = t.id AND tl.linesequencenumber = 1 ORDER BY t.id")
    assert outer == [{"tranid": "SO1", "item": 7}, {"tranid": "INV1", "item": 7}, {"tranid": "SO2", "item": None}]
    three = _suiteql("SELECT c.companyname, tl.item FROM customer c JOIN transaction t ON t.entity = c.id "
                     "INNER JOIN transactionline tl ON tl.transaction = t.id WHERE tl.item = 8")
    assert three == [{"companyname": "Acme", "item": 8}]
    with pytest.raises(QueryError, match="ambiguous"):
        _suiteql("SELECT id FROM transaction t JOIN customer c ON c.id = t.entity")


def test_builtin_df_asks_the_row_source_for_display_values() -> None:
    rows = _suiteql("SELECT tranid, BUILTIN.DF(entity) AS customer FROM transaction WHERE type = 'CustInvc'")
    assert rows == [{"tranid": "INV1", "customer": "Acme"}]


def test_columns_come_from_the_schema_never_from_rows() -> None:
    assert _suiteql("SELECT id, email FROM customer WHERE companyname = 'x'", {"customer": []}) == []
    assert _suiteql("SELECT * FROM customer WHERE id = 103")[0]["creditlimit"] is None
    with pytest.raises(UnknownColumn, match="nope"):
        _suiteql("SELECT id FROM customer WHERE nope = 1", {"customer": []})
    with pytest.raises(UnknownTable, match="planets"):
        _suiteql("SELECT id FROM planets")


def test_netsuite_filter_operators() -> None:
    assert _q('creditLimit EQUAL 100') == ["1"]
    assert _q('creditLimit NOT_EQUAL 100') == ["2", "3"]
    assert _q('creditLimit GREATER_OR_EQUAL 100 AND creditLimit LESS 2500') == ["1"]
    assert _q('creditLimit BETWEEN [50, 3000]') == ["1", "3"]
    assert _q('id ANY_OF [1, 3]') == ["1", "3"]
    assert _q('terms ANY_OF_NOT ["2"]') == ["2", "3"]
    assert _q('email EMPTY') == ["2", "3"]
    assert _q('email EMPTY_NOT') == ["1"]
    assert _q('companyName DOES_NOT_CONTAIN "acme"') == ["2", "3"]
    assert _q('companyName CONTAIN "100%"') == ["3"]
    assert _q('companyName CONTAIN "e_J"') == ["3"]
    assert _q('lastModifiedDate ON_OR_AFTER "1/15/2024 10:30 am"') == ["1", "2"]
    assert _q('lastModifiedDate AFTER "1/15/2024 10:30 am"') == ["2"]
    assert _q('lastModifiedDate BEFORE "2024-01-01T00:00:00Z"') == ["3"]
    assert _q('lastModifiedDate ON "1/16/2024"') == ["2"]
    assert _q('isInactive IS true') == ["2"]
    assert _q('(companyName START_WITH "a" OR companyName START_WITH "g") AND isInactive IS false') == ["1"]


def test_netsuite_filter_refuses_operators_the_field_type_does_not_take() -> None:
    with pytest.raises(QueryError, match="AFTER does not apply to companyName"):
        netsuite_filter.parse_filter('companyName AFTER "1/1/2024"', FIELD_TYPES.get)
    with pytest.raises(QueryError, match="GREATER does not apply"):
        netsuite_filter.parse_filter('lastModifiedDate GREATER 5', FIELD_TYPES.get)
    with pytest.raises(QueryError, match="unknown field 'colour'"):
        netsuite_filter.parse_filter('colour IS "red"', FIELD_TYPES.get)


def test_odata_operators() -> None:
    assert _odata("creditLimit ge 100 and creditLimit le 2500") == ["1", "3"]
    assert _odata("creditLimit lt 200 or creditLimit gt 2000") == ["1", "3"]
    assert _odata("creditLimit ne 100") == ["2", "3"]
    assert _odata("email eq null") == ["2"]
    assert _odata("not (isInactive eq false)") == ["2"]
    assert _odata("contains(companyName, 'CORP')") == ["1"]
    assert _odata("startswith(companyName, 'glo') or endswith(companyName, '_juice')") == ["2", "3"]
    assert _odata("lastModifiedDate gt 2024-01-15T12:00:00Z") == ["2"]
    assert _odata("companyName eq 'it''s'") == []
    with pytest.raises(QueryError, match="position"):
        odata.parse_filter("creditLimit gt")


# -- LIKE ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "pattern", "expected"), [
    ("abc", "abc", True), ("abc", "ab", False), ("abc", "a%", True), ("abc", "%c", True), ("abc", "%b%", True),
    ("abc", "a_c", True), ("abc", "a_", False), ("", "%", True), ("", "_", False), ("abc", "%%%", True),
    ("abcabc", "%bc%bc", True), ("abcab", "%bc%bc", False), ("aXbXc", "a%b%c", True), ("ab", "a%b%c", False),
    ("a%b", r"a\%b", True), ("axb", r"a\%b", False), ("a_b", r"a\_b", True), ("a\\b", r"a\\b", True),
    ("banana", "%an_n%", True), ("banana", "b%n_", True), ("banana", "%nn%", False),
])
def test_like_matches_like_sql(text: str, pattern: str, expected: bool) -> None:
    assert like(text, pattern, escape="\\") is expected


def test_like_with_many_wildcards_on_a_long_value_is_not_exponential() -> None:
    name = "a" * 255
    pattern = "%a" * 60 + "%b"
    assert like(name, pattern) is False
    assert like(name[:-1] + "b", pattern) is True
    assert like(name, "%a_a_a_a_a_a_a_a_a_a%a%a%a%a%_%_b") is False
    assert like("x" * 100_000 + "yz", "%x%x%x%" + "_" * 50 + "%yz") is True


def test_literal_pattern_escapes_wildcards() -> None:
    assert literal_pattern("50%_off\\") == "50\\%\\_off\\\\"
    assert like("50%_off\\", literal_pattern("50%_off\\"), escape="\\")


# -- limits ---------------------------------------------------------------------------------------

def test_two_thousand_or_terms_run() -> None:
    terms = " OR ".join(f"id = {n}" for n in range(1000, 3000))
    assert _ids(_suiteql(f"SELECT id FROM customer WHERE {terms} OR id = 102")) == [102]
    soql_terms = " OR ".join(f"Name = 'n{n}'" for n in range(2000))
    assert _soql(f"SELECT Id FROM Account WHERE {soql_terms} OR Name = 'globex'") == ["2"]
    assert _q(" OR ".join(f'companyName IS "n{n}"' for n in range(2000)) + ' OR companyName IS "globex"') == ["2"]


@pytest.mark.parametrize("nesting", [200, 5000])
def test_deep_nesting_is_refused_not_recursed(nesting: int) -> None:
    soql_text = "SELECT Id FROM Account WHERE " + "(" * nesting + "Name = 'x'" + ")" * nesting
    with pytest.raises(QueryTooComplex, match="levels deep"):
        soql.parse_soql(soql_text, lambda: NOW)
    with pytest.raises(QueryTooComplex):
        suiteql.parse_suiteql("SELECT id FROM customer WHERE " + "NOT " * nesting + "id = 1")
    with pytest.raises(QueryTooComplex):
        netsuite_filter.parse_filter("(" * nesting + 'companyName IS "x"' + ")" * nesting, FIELD_TYPES.get)
    with pytest.raises(QueryTooComplex):
        odata.parse_filter("not " * nesting + "id eq 1")


def test_moderate_nesting_is_fine() -> None:
    text = "SELECT Id FROM Account WHERE " + "(" * 30 + "Name = 'globex'" + ")" * 30
    assert _soql(text) == ["2"]


def test_overlong_queries_are_refused() -> None:
    long_text = "SELECT Id FROM Account WHERE Name = '" + "x" * 100_000 + "'"
    with pytest.raises(QueryTooComplex, match="100000"):
        soql.parse_soql(long_text, lambda: NOW)


def test_parse_errors_name_problem_and_position() -> None:
    with pytest.raises(QueryError, match=r"unexpected 'Name' at position 34.*operator"):
        soql.parse_soql("SELECT Id FROM Account WHERE Name Name", lambda: NOW)
    with pytest.raises(QueryError, match="end of query"):
        suiteql.parse_suiteql("SELECT id FROM customer WHERE")
    with pytest.raises(QueryError, match="unknown function 'SOUNDEX'"):
        suiteql.parse_suiteql("SELECT SOUNDEX(companyname) FROM customer")


# -- index use ------------------------------------------------------------------------------------

class IndexedOnly:
    """A row source whose scan fails: only index lookups on externalid may be used."""

    def __init__(self) -> None:
        self.rows_by_key = {"E1": {"id": 1, "externalid": "E1"}, "E2": {"id": 2, "externalid": "E2"}}
        self.lookups: list[Any] = []

    def rows(self, table: str) -> list[Row]:
        raise AssertionError("scanned")

    def lookup(self, table: str, column: str, value: Any) -> list[Row] | None:
        if column != "externalid":
            return None
        self.lookups.append(value)
        row = self.rows_by_key.get(value)
        return [row] if row else []

    def display(self, table: str, column: str, value: Any) -> Any:
        return value


def test_equality_on_an_indexed_column_never_scans() -> None:
    source = IndexedOnly()
    schema = {"customer": ["id", "externalid"]}

    def run(text: str) -> list[Any]:
        return _ids(evaluate(suiteql.parse_suiteql(text), source, schema, suiteql.SEMANTICS).rows)

    assert run("SELECT id FROM customer WHERE externalid = 'E2'") == [2]
    assert run("SELECT id FROM customer WHERE externalid IN ('E1', 'E2', 'E9') ORDER BY id") == [1, 2]
    assert run("SELECT id FROM customer WHERE externalid = 'E1' OR externalid = 'E2' ORDER BY id DESC") == [2, 1]
    assert run("SELECT id FROM customer WHERE externalid = 'E1' AND id > 5") == []
    assert source.lookups == ["E2", "E1", "E2", "E9", "E1", "E2", "E1"]
    with pytest.raises(AssertionError, match="scanned"):
        run("SELECT id FROM customer WHERE id = 1")


def test_case_insensitive_languages_use_the_index_only_for_caseless_values() -> None:
    source = IndexedOnly()
    schema = {"account": ["id", "externalid"]}
    select = soql.parse_soql("SELECT Id FROM Account WHERE ExternalId = '42'", lambda: NOW)
    assert evaluate(select, source, schema, soql.SEMANTICS).rows == []
    with pytest.raises(AssertionError, match="scanned"):
        evaluate(soql.parse_soql("SELECT Id FROM Account WHERE ExternalId = 'E1'", lambda: NOW), source, schema,
                 soql.SEMANTICS)


# -- through the dialects -------------------------------------------------------------------------

def _netsuite_error(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    return response.json()["o:errorDetails"][0]


def _suiteql_items(erp: Any, text: str) -> list[dict[str, Any]]:
    response = erp.post("/query/v1/suiteql", json={"q": text}, headers={"Prefer": "transient"})
    assert response.status_code == 200, response.text
    return [{k: v for k, v in item.items() if k != "links"} for item in response.json()["items"]]


def test_suiteql_columns_do_not_depend_on_the_data(sims: Sims) -> None:
    query = "SELECT id, amountremaining FROM transaction WHERE type = 'CustInvc'"
    with sims.erp() as erp:
        assert _suiteql_items(erp, query) == []
        sims.seed("erp", {"customer": [{"_ref": "c", "name": "Acme"}],
                          "item": [{"_ref": "i", "sku": "W-1", "name": "Widget", "price": "10",
                                    "quantity_on_hand": "5"}],
                          "sales_order": [{"customer_id": {"$ref": "c"},
                                           "lines": [{"item_id": {"$ref": "i"}, "quantity": 2}]}]})
        assert _suiteql_items(erp, query) == []
        lines = _suiteql_items(erp, "SELECT BUILTIN.DF(t.entity) AS customer, BUILTIN.DF(tl.item) AS item, "
                                    "tl.quantity, BUILTIN.DF(t.type) AS kind FROM transaction t JOIN transactionline "
                                    "tl ON tl.transaction = t.id WHERE tl.mainline = 'F'")
        assert lines == [{"customer": "Acme", "item": "W-1", "quantity": "2", "kind": "Sales Order"}]
        assert _suiteql_items(erp, "SELECT COUNT(*) AS n FROM transactionline") == [{"n": "2"}]
        currencies = _suiteql_items(erp, "SELECT symbol FROM currency WHERE isbasecurrency = 'T'")
        assert currencies == [{"symbol": "USD"}]
        assert _suiteql_items(erp, "SELECT name FROM subsidiary WHERE id = 1") == [{"name": "Parent Company"}]
        error = _netsuite_error(erp.post("/query/v1/suiteql", json={"q": "SELECT nope FROM employee"},
                                         headers={"Prefer": "transient"}))
        assert error["o:errorCode"] == "INVALID_PARAMETER" and "nope" in error["detail"]


def test_netsuite_filter_errors_answer_400_in_vendor_shape(sims: Sims) -> None:
    with sims.erp() as erp:
        error = _netsuite_error(erp.get("/record/v1/customer", params={"q": 'companyName AFTER "1/1/2024"'}))
        assert error["o:errorCode"] == "INVALID_PARAMETER" and "AFTER" in error["detail"]
        deep = "(" * 3000 + 'companyName IS "x"' + ")" * 3000
        assert "levels deep" in _netsuite_error(erp.get("/record/v1/customer", params={"q": deep}))["detail"]
        many = " OR ".join(f"id = {n}" for n in range(2000))
        assert _suiteql_items(erp, f"SELECT id FROM customer WHERE {many}") == []


def test_soql_limits_and_long_like_through_salesforce(sims: Sims) -> None:
    sims.seed("crm", {"account": [{"name": "a" * 255}, {"name": "Umbrella"}]})
    with sims.crm() as crm:
        response = crm.get("/query", params={"q": "SELECT Id FROM Account WHERE Name LIKE '%a%a%a%a%a%a%a%b'"})
        assert response.status_code == 200 and response.json()["totalSize"] == 0
        response = crm.get("/query", params={"q": "SELECT Name FROM Account WHERE Name LIKE 'UMB%' OR Name = 'x' "
                                                  "AND Name = 'y'"})
        assert [r["Name"] for r in response.json()["records"]] == ["Umbrella"]
        deep = "SELECT Id FROM Account WHERE " + "(" * 3000 + "Name = 'x'" + ")" * 3000
        error = crm.get("/query", params={"q": deep})
        assert error.status_code == 400 and error.json()[0]["errorCode"] == "MALFORMED_QUERY"
