"""End-to-end scenarios over the core flows, one per certification level from 1 to 3."""

from __future__ import annotations

from decimal import Decimal

from syncert.harness.pytest_plugin import scenario
from syncert.harness.runner import ScenarioRun
from syncert.scenarios.setups import assert_converges, last_seq, writes_since

ITEMS = [{"sku": "W-100", "name": "Widget", "price": "25.00", "quantity_on_hand": "40"},
         {"sku": "G-200", "name": "Gadget", "price": "199.99", "quantity_on_hand": "3"},
         {"sku": "O-300", "name": "Old part", "price": "5.10", "quantity_on_hand": "0", "discontinued": True}]


def _by(records: list[dict], field: str) -> dict:
    return {r[field]: r for r in records if r.get(field)}


@scenario(id="E2E-ITEMS-01", category="end_to_end", flows=("items", "inventory"), level=1,
          intent="ERP items appear in the CRM as products with their SKU, name, list price, status and stock")
def test_items_become_products(sync: ScenarioRun) -> None:
    sync.seed("erp", {"item": ITEMS})
    assert_converges(sync, "items", "inventory")


@scenario(id="E2E-CREDIT-01", category="end_to_end", flows=("credit",), level=1,
          intent="A customer the ERP puts on credit hold shows On Hold, with its balance, on the CRM account "
                 "it is linked to")
def test_credit_hold_reaches_the_account(sync: ScenarioRun) -> None:
    # linked both ways through the protocol's linkage fields only: no external id convention is assumed
    customer = sync.seed("erp", {"customer": [{"name": "Hold Me Ltd", "credit_hold_override": "ON",
                                               "credit_limit": "1000"}]})["customer"][0]
    account = sync.seed("crm", {"account": [{"name": "Hold Me Ltd", "erp_customer_id": customer}]})["account"][0]
    sync.edit("erp", "customer", customer, {"crm_id": account})
    sync.run_until(lambda s: s.reconcile("credit").all_synced)
    customers = sync.state("erp")["customer"]
    assert len(customers) == 1, f"the linked customer was duplicated in the ERP: {len(customers)} customers"
    result = sync.reconcile("credit")
    assert result.all_synced, result.explain()


@scenario(id="E2E-ACC-01", category="end_to_end", flows=("accounts",), level=2,
          intent="New CRM accounts reach the ERP as customers exactly once, get their ERP id back, and a later "
                 "edit updates the same customer")
def test_accounts_become_customers(sync: ScenarioRun) -> None:
    accounts = [{"name": f"Customer {n}", "phone": f"+33 1 00 00 00 0{n}",
                 "billing_address": {"street": f"{n} rue de la Paix", "city": "Paris", "country": "FR"}}
                for n in range(5)]
    ids = sync.seed("crm", {"account": accounts})["account"]
    if sync.run_until(lambda s: all(a.get("erp_customer_id") for a in s.state("crm")["account"])):
        sync.edit("crm", "account", ids[0], {"phone": "+33 1 99 99 99 99"})
        sync.run_until(lambda s: any(c.get("crm_id") == ids[0] and c.get("phone") == "+33 1 99 99 99 99"
                                     for c in s.state("erp")["customer"]))
    result = sync.reconcile("accounts")
    assert result.all_synced, result.explain()


@scenario(id="E2E-Q2C-01", category="end_to_end", flows=("accounts", "items", "orders"), level=2,
          intent="A deal closed in the CRM becomes exactly one ERP sales order with its lines and total, "
                 "and the CRM learns the order is committed")
def test_closed_deal_becomes_one_sales_order(sync: ScenarioRun) -> None:
    sync.seed("erp", {"item": ITEMS[:2]})
    account = sync.seed("crm", {"account": [{"name": "Buyer Inc"}]})["account"][0]
    assert sync.run_until(lambda s: len(s.state("crm")["pricebook_entry"]) >= 2
                          and bool(s.state("crm")["account"][0].get("erp_customer_id"))), "setup did not converge"
    entries = {e["product_id"]: e for e in sync.state("crm")["pricebook_entry"]}
    products = _by(sync.state("crm")["product"], "sku")
    ids = sync.seed("crm", {
        "opportunity": [{"_ref": "deal", "account_id": account, "name": "Q4 deal", "stage": "Negotiation",
                         "close_date": "2026-12-15"}],
        "opportunity_line_item": [
            {"opportunity_id": {"$ref": "deal"}, "pricebook_entry_id": entries[products["W-100"]["id"]]["id"],
             "quantity": 4, "discount": 10},
            {"opportunity_id": {"$ref": "deal"}, "pricebook_entry_id": entries[products["G-200"]["id"]]["id"],
             "quantity": 1}]})
    deal = ids["opportunity"][0]
    sync.edit("crm", "opportunity", deal, {"stage": "Closed Won"})
    sync.run_until(lambda s: s.state("crm")["opportunity"][0].get("commitment_status") == "Committed")
    result = sync.reconcile("orders")
    assert result.all_synced, result.explain()
    orders = sync.state("erp")["sales_order"]
    assert Decimal(orders[0]["total"]) == Decimal("289.99"), f"order total {orders[0]['total']} != 289.99"


@scenario(id="E2E-ECHO-01", category="end_to_end", flows=("accounts",), level=3,
          intent="Once both systems agree, further cycles write nothing: no echo loop between CRM and ERP")
def test_no_echo_loop(sync: ScenarioRun) -> None:
    sync.seed("crm", {"account": [{"name": f"Quiet {n}", "phone": "+1 555 0100"} for n in range(3)]})
    converged = sync.run_until(lambda s: all(a.get("erp_customer_id") for a in s.state("crm")["account"]))
    assert converged, "accounts did not converge"
    sync.settle(cycles=1)  # a service may still be finishing the cycle in which the accounts got linked
    baseline = last_seq(sync)
    sync.settle(cycles=2)
    assert all(c.ok for c in sync.evidence.cycles), f"a quiet cycle failed: {sync.evidence.notes}"
    echoes = {side: [f"{e['method']} {e['path']}" for e in found]
              for side, found in writes_since(sync, baseline).items()}
    sync.record_check("writes after convergence", {side: len(found) for side, found in echoes.items()})
    assert not echoes["crm"] and not echoes["erp"], f"writes after convergence (echo loop): {echoes}"
