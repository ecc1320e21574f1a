"""Schema-drift scenarios on fields: a vendor renames, shortens, removes, requires or retypes a field, pages
differently or retires API versions under the connector.

Each applies one drift profile (contracts/drift/) before the connector runs, and grades it: tolerated (the
data still correct) or failed loudly passes where the profile allows it; silent corruption always fails.
"""

from __future__ import annotations

from syncert.harness.pytest_plugin import scenario
from syncert.harness.runner import ScenarioRun
from syncert.scenarios.drift import assert_graded, run_under_drift
from syncert.scenarios.setups import assert_converges, by_id, invoice_order, linked_order, pay, require


@scenario(id="DRIFT-RENAME-01", category="schema_drift", flows=("accounts",), level=4,
          intent="Salesforce serves Account.Phone under a new name: the connector fails loudly (or adapts), and "
                 "never writes a customer with its phone emptied")
def test_renamed_account_phone(sync: ScenarioRun) -> None:
    require(sync.drift("crm", "sf-account-phone-renamed") == ["sf-account-phone-renamed"], "the drift is in force")
    sync.seed("crm", {"account": [{"name": f"Renamed Field {n}", "phone": f"+1 555 010 {n:04d}"} for n in range(4)]})
    run_under_drift(sync, "accounts")
    emptied = [c["id"] for c in sync.state("erp")["customer"] if not c.get("phone")]
    assert not emptied, f"customers written without their phone after the rename: {emptied[:3]}"
    assert_graded(sync, "accounts", "fail_loudly")


@scenario(id="DRIFT-LENGTH-01", category="schema_drift", flows=("accounts",), level=4,
          intent="NetSuite shortens customer names to 40 characters: a longer account is dead-lettered with "
                 "the reason (never cut short), and the others sync")
def test_shortened_customer_name(sync: ScenarioRun) -> None:
    sync.drift("erp", "ns-company-name-shortened")
    long_name = "Consolidated Intercontinental Holdings and Subsidiaries"
    ids = sync.seed("crm", {"account": [{"name": long_name}, {"name": "Short Name Ltd"},
                                         {"name": "Brief Co"}]})["account"]
    run_under_drift(sync, "accounts")
    cut = [c["name"] for c in sync.state("erp")["customer"] if c.get("name") and long_name.startswith(c["name"])
           and c["name"] != long_name]
    assert not cut, f"a name the ERP refused as too long was cut short: {cut}"
    result = sync.reconcile("accounts")
    assert set(result.keys("synced")) >= set(ids[1:]), f"the other accounts did not sync: {result.explain()}"
    assert_graded(sync, "accounts", "fail_loudly")


@scenario(id="DRIFT-PAGE-01", category="schema_drift", flows=("items",), level=4,
          intent="NetSuite answers lists in pages of at most 50: every one of 120 items still reaches the CRM "
                 "(the connector follows the pages, whatever size it asked for)")
def test_smaller_pages(sync: ScenarioRun) -> None:
    sync.drift("erp", "ns-page-size-shrunk")
    sync.seed("erp", {"item": [{"sku": f"PG-{n:03d}", "name": f"Paged item {n}", "price": "10.00"}
                               for n in range(120)]})
    run_under_drift(sync, "items", "tolerate")
    assert_graded(sync, "items", "tolerate")


@scenario(id="DRIFT-VERSION-01", category="schema_drift", flows=("accounts",), level=4,
          intent="Salesforce retires API versions before v55.0: a connector on a supported version carries on "
                 "(one pinned to a retired version fails, as it would after the vendor's year of notice)")
def test_retired_api_versions(sync: ScenarioRun) -> None:
    sync.drift("crm", "sf-versions-before-55-retired")
    sync.seed("crm", {"account": [{"name": f"Versioned {n}"} for n in range(3)]})
    run_under_drift(sync, "accounts", "tolerate")
    assert_graded(sync, "accounts", "tolerate")


@scenario(id="DRIFT-REMOVED-01", category="schema_drift", flows=("accounts",), level=4,
          intent="NetSuite removes the phone field from customers: accounts whose phone cannot be written fail "
                 "loudly, and are never synced without it")
def test_removed_customer_phone(sync: ScenarioRun) -> None:
    sync.drift("erp", "ns-customer-phone-removed")
    sync.seed("crm", {"account": [{"name": f"Removed Field {n}", "phone": f"+1 555 020 {n:04d}"} for n in range(3)]})
    run_under_drift(sync, "accounts")
    assert_graded(sync, "accounts", "fail_loudly")


@scenario(id="DRIFT-REQUIRED-01", category="schema_drift", flows=("accounts",), level=4,
          intent="NetSuite newly requires an email on customers, which accounts do not carry: the connector fails "
                 "loudly, and never invents an address to get past the check")
def test_newly_required_customer_email(sync: ScenarioRun) -> None:
    sync.drift("erp", "ns-customer-email-required")
    sync.seed("crm", {"account": [{"name": f"Required Field {n}"} for n in range(3)]})
    run_under_drift(sync, "accounts")
    invented = [f"{c['name']}: {c['email']}" for c in sync.state("erp")["customer"] if c.get("email")]
    assert not invented, f"customers were given an email address no one entered: {invented[:3]}"
    assert_graded(sync, "accounts", "fail_loudly")


@scenario(id="DRIFT-TYPE-01", category="schema_drift", flows=("credit",), level=4,
          intent="Salesforce turns the account's outstanding balance from a number into text: the connector sends "
                 "the new balance as text or fails loudly, and never empties the balance the account showed")
def test_balance_turned_text(sync: ScenarioRun) -> None:
    _, order, customer = linked_order(sync, [("TYPE-1", 3, "19.99")], name="Retyped Balance Ltd")
    invoice = invoice_order(sync, order)
    assert_converges(sync, "credit", stage="before the drift")
    sync.drift("crm", "sf-balance-becomes-text")
    pay(sync, customer, invoice, "20.00")
    run_under_drift(sync, "credit")
    [account] = [a for a in sync.state("crm")["account"] if a["id"] == by_id(sync.state("erp")["customer"],
                                                                                customer)["crm_id"]]
    assert account.get("outstanding_balance") not in (None, ""), (
        "the account's balance was emptied: a value the CRM refused for its new type was written as nothing")
    assert_graded(sync, "credit", "either")
