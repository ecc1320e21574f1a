"""Unit tests of the reference connector's flows in syncert's in-process mode (syncert.harness.inprocess).

Each test runs real sync cycles (`SyncCycle.run`, exactly as `python -m syncert_reference sync` does)
against the simulated Salesforce org and NetSuite account behind their real hostnames: no socket, no
subprocess. Records are arranged and read in canonical terms through the simulators' control plane.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal

import pytest
from syncert_reference.flows import ALL_FLOWS, Settings, SyncCycle

from syncert.harness.inprocess import InProcessVendors, simulated_vendors
from syncert.harness.runner import writes

ITEMS = [{"sku": "W-100", "name": "Widget", "price": "25.00", "quantity_on_hand": "40"},
         {"sku": "G-200", "name": "Gadget", "price": "199.99", "quantity_on_hand": "3"},
         {"sku": "O-300", "name": "Old part", "price": "5.10", "quantity_on_hand": "0", "discontinued": True}]


@pytest.fixture
def vendors() -> Iterator[InProcessVendors]:
    with simulated_vendors(org="acme", account="1234567_SB1") as simulated:
        yield simulated


def sync(vendors: InProcessVendors, *flows: str) -> SyncCycle:
    """One sync cycle of `flows` (default: all), as the command line runs it."""
    cycle = SyncCycle(Settings.from_environment(flows or ALL_FLOWS, env=vendors.environment))
    asyncio.run(cycle.run())
    return cycle


def last_seq(vendors: InProcessVendors, side: str) -> int:
    return max((entry["seq"] for entry in vendors.journal(side)), default=0)


def test_an_account_becomes_one_customer_with_its_id_written_back(vendors: InProcessVendors) -> None:
    account_id = vendors.seed("crm", {"account": [{
        "name": "Acme Corp", "phone": "+33 1 00 00 00 01",
        "billing_address": {"street": "1 rue de la Paix", "city": "Paris", "country": "FR"}}]})["account"][0]

    sync(vendors, "accounts")

    [customer] = vendors.state("erp")["customer"]
    assert (customer["name"], customer["phone"], customer["crm_id"]) == ("Acme Corp", "+33 1 00 00 00 01", account_id)
    assert customer["billing_address"]["city"] == "Paris"
    assert vendors.state("crm")["account"][0]["erp_customer_id"] == customer["id"]
    assert [e["operation"] for e in writes(vendors.journal("erp"))] == ["upsert"]  # PUT eid:SF-<id>: idempotent

    baseline = {side: last_seq(vendors, side) for side in ("crm", "erp")}
    sync(vendors, "accounts")
    echoes = [e for side in ("crm", "erp") for e in writes(vendors.journal(side)) if e["seq"] > baseline[side]]
    assert not echoes, f"a converged account was written again (echo): {echoes}"
    assert len(vendors.state("erp")["customer"]) == 1


def test_an_account_edit_updates_the_linked_customer(vendors: InProcessVendors) -> None:
    account_id = vendors.seed("crm", {"account": [{"name": "Globex", "phone": "+1 555 0100"}]})["account"][0]
    sync(vendors, "accounts")
    vendors.edit("crm", "account", account_id, {"phone": "+1 555 0199"})

    sync(vendors, "accounts")

    [customer] = vendors.state("erp")["customer"]
    assert customer["phone"] == "+1 555 0199"
    assert [e["operation"] for e in writes(vendors.journal("erp"))] == ["upsert", "update"]


def test_items_become_products_with_price_and_availability(vendors: InProcessVendors) -> None:
    item_ids = vendors.seed("erp", {"item": ITEMS})["item"]

    sync(vendors, "items", "inventory")

    products = {p["erp_item_id"]: p for p in vendors.state("crm")["product"]}
    prices = {e["product_id"]: Decimal(e["unit_price"]) for e in vendors.state("crm")["pricebook_entry"]}
    for item_id, item in zip(item_ids, ITEMS, strict=True):
        product = products[item_id]
        assert (product["sku"], product["name"]) == (item["sku"], item["name"])
        assert Decimal(product["list_price"]) == prices[product["id"]] == Decimal(item["price"])
        assert Decimal(product["quantity_available"]) == Decimal(item["quantity_on_hand"])
        assert product["active"] is not item.get("discontinued", False)


def test_a_closed_won_opportunity_becomes_one_sales_order(vendors: InProcessVendors) -> None:
    vendors.seed("erp", {"item": ITEMS[:2]})
    account_id = vendors.seed("crm", {"account": [{"name": "Buyer Inc"}]})["account"][0]
    sync(vendors, "accounts", "items", "orders")
    crm = vendors.state("crm")
    entry_by_sku = {p["sku"]: e["id"] for p in crm["product"] for e in crm["pricebook_entry"]
                    if e["product_id"] == p["id"]}
    deal = vendors.seed("crm", {
        "opportunity": [{"_ref": "deal", "account_id": account_id, "name": "Q4 deal", "stage": "Negotiation",
                         "close_date": "2026-12-15"}],
        "opportunity_line_item": [
            {"opportunity_id": {"$ref": "deal"}, "pricebook_entry_id": entry_by_sku["W-100"], "quantity": 4,
             "discount": 10},
            {"opportunity_id": {"$ref": "deal"}, "pricebook_entry_id": entry_by_sku["G-200"], "quantity": 1}]},
    )["opportunity"][0]
    vendors.edit("crm", "opportunity", deal, {"stage": "Closed Won"})

    sync(vendors, "accounts", "items", "orders")
    sync(vendors, "accounts", "items", "orders")

    [order] = vendors.state("erp")["sales_order"]
    customer = vendors.state("erp")["customer"][0]
    assert (order["crm_id"], order["customer_id"]) == (deal, customer["id"])
    assert Decimal(order["total"]) == Decimal("289.99")  # 4 x 25.00 at 10 % off + 1 x 199.99
    opportunity = vendors.state("crm")["opportunity"][0]
    assert (opportunity["erp_order_id"], opportunity["commitment_status"]) == (order["number"], "Committed")


def test_an_account_the_erp_refuses_is_dead_lettered_and_the_others_sync(vendors: InProcessVendors) -> None:
    fine, refused = vendors.seed("crm", {"account": [{"name": "Fine Co"},
                                                     {"name": "L" + "o" * 110 + "ng Name Corp"}]})["account"]

    cycle = sync(vendors, "accounts")

    assert cycle.dead_letters == 1
    [letter] = vendors.dead_letters()
    assert (letter["flow"], letter["source_system"], letter["source_id"]) == ("accounts", "crm", refused)
    assert [c["crm_id"] for c in vendors.state("erp")["customer"]] == [fine]


def test_a_session_expiring_mid_cycle_is_renewed(vendors: InProcessVendors) -> None:
    vendors.expire_sessions("crm", after_requests=1)
    vendors.seed("crm", {"account": [{"name": f"Session {n}"} for n in range(3)]})

    sync(vendors, "accounts")

    assert all(account["erp_customer_id"] for account in vendors.state("crm")["account"])
    journal = vendors.journal("crm")
    assert any("auth" in entry["tags"] for entry in journal), "the session never expired"
    assert sum("token" in entry["tags"] and "ok" in entry["tags"] for entry in journal) >= 2
