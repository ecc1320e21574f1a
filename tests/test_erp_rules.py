"""The ERP engine's business rules, exercised on the canonical domain (no dialect involved)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from syncert.simulators.clock import Clock
from syncert.simulators.domain.erp import ErpEngine, erp_store
from syncert.simulators.domain.kinds import DomainError


@pytest.fixture
def erp() -> ErpEngine:
    return ErpEngine(erp_store(None), Clock(), lambda kind, n: str(n))


def _order(erp: ErpEngine, customer: dict, item: dict, quantity: int = 1) -> dict:
    return erp.create("sales_order", {"customer_id": customer["id"],
                                      "lines": [{"item_id": item["id"], "quantity": quantity}]})


def _customer(erp: ErpEngine, **values) -> dict:
    return erp.create("customer", {"name": "Acme", **values})


def _item(erp: ErpEngine, sku: str = "W-1", on_hand: str = "10", price: str = "19.99") -> dict:
    return erp.create("item", {"sku": sku, "price": price, "quantity_on_hand": on_hand})


def test_mandatory_fields_and_lengths(erp: ErpEngine) -> None:
    with pytest.raises(DomainError) as missing:
        erp.create("customer", {"email": "a@b.example"})
    assert missing.value.code == "REQUIRED_FIELD_MISSING" and missing.value.fields == ("name",)
    with pytest.raises(DomainError) as too_long:
        _customer(erp, name="x" * 256)  # the canonical limit; NetSuite's 83 is the dialect's
    assert too_long.value.code == "STRING_TOO_LONG"


def test_money_is_exact(erp: ErpEngine) -> None:
    customer = _customer(erp)
    item = _item(erp, price="0.10")
    order = _order(erp, customer, item, quantity=3)
    assert order["total"] == Decimal("0.30")


def test_stock_shortfall_is_backordered(erp: ErpEngine) -> None:
    customer, item = _customer(erp), _item(erp, on_hand="4")
    order = _order(erp, customer, item, quantity=7)
    line = erp.get("sales_order", order["id"])["lines"][0]
    assert (line["quantity_committed"], line["quantity_backordered"]) == (4, 3)
    assert erp.get("item", item["id"])["quantity_available"] == 0


def test_order_over_credit_limit_goes_on_credit_hold(erp: ErpEngine) -> None:
    customer, item = _customer(erp, credit_limit="100"), _item(erp, price="60")
    first = _order(erp, customer, item)
    assert first["status"] == "pending_fulfillment"
    second = _order(erp, customer, item)
    assert (second["status"], second["hold_reason"]) == ("pending_approval", "credit_hold")
    assert erp.get("item", item["id"])["quantity_committed"] == 1


def test_fulfil_bill_and_pay_moves_balance_and_status(erp: ErpEngine) -> None:
    customer, item = _customer(erp, payment_terms="Net 15"), _item(erp, price="25.50")
    order = _order(erp, customer, item, quantity=2)
    erp.create("item_fulfillment", {"sales_order_id": order["id"]})
    assert erp.get("sales_order", order["id"])["status"] == "pending_billing"
    assert erp.get("item", item["id"])["quantity_on_hand"] == 8
    invoice = erp.create("invoice", {"sales_order_id": order["id"]})
    assert (invoice["amount"], invoice["amount_due"]) == (Decimal("51.00"), Decimal("51.00"))
    assert invoice["status"] == "open"
    assert invoice["due_date"] > invoice["invoice_date"]
    assert erp.get("customer", customer["id"])["balance"] == Decimal("51.00")
    assert erp.get("sales_order", order["id"])["status"] == "billed"
    erp.create("payment", {"customer_id": customer["id"], "amount": "51.00"})
    assert erp.get("invoice", invoice["id"])["status"] == "paid_in_full"
    assert erp.get("customer", customer["id"])["balance"] == 0


def test_posted_invoices_are_immutable(erp: ErpEngine) -> None:
    customer, item = _customer(erp), _item(erp)
    invoice = erp.create("invoice", {"customer_id": customer["id"], "lines": [{"item_id": item["id"], "quantity": 1}]})
    erp.update("invoice", invoice["id"], {"memo": "thanks"})
    with pytest.raises(DomainError) as refused:
        erp.update("invoice", invoice["id"], {"lines": [{"item_id": item["id"], "quantity": 5}]})
    assert refused.value.code == "INVALID_OPERATION" and "posted" in refused.value.message
    with pytest.raises(DomainError):
        erp.delete("invoice", invoice["id"])


def test_unique_external_ids(erp: ErpEngine) -> None:
    _customer(erp, external_id="X-1")
    with pytest.raises(DomainError) as duplicate:
        _customer(erp, external_id="X-1")
    assert duplicate.value.code == "DUPLICATE_VALUE"


def test_a_contact_needs_a_live_customer_and_is_deleted_with_it(erp: ErpEngine) -> None:
    acme, other = _customer(erp), _customer(erp, name="Other")
    for values, code in (({"last_name": "Lee"}, "REQUIRED_FIELD_MISSING"),
                         ({"last_name": "Lee", "customer_id": "404"}, "INVALID_REFERENCE"),
                         ({"customer_id": acme["id"]}, "REQUIRED_FIELD_MISSING")):
        with pytest.raises(DomainError) as refused:
            erp.create("contact", values)
        assert refused.value.code == code and refused.value.kind == "contact"
    ann = erp.create("contact", {"customer_id": acme["id"], "last_name": "Lee", "crm_id": "003-1"})
    erp.create("contact", {"customer_id": acme["id"], "last_name": "Ray", "crm_id": "003-1"})  # crm_id: not unique
    kept = erp.create("contact", {"customer_id": other["id"], "last_name": "Kim"})
    assert [c["last_name"] for c in erp.find("contact", "crm_id", "003-1")] == ["Lee", "Ray"]

    erp.delete("customer", acme["id"])
    assert erp.find("contact", "customer_id", acme["id"]) == [] and erp.get_or_none("contact", ann["id"]) is None
    assert [c["id"] for c in erp.records("contact")] == [kept["id"]]
    with pytest.raises(DomainError) as orphan:
        erp.update("contact", kept["id"], {"customer_id": acme["id"]})
    assert orphan.value.code == "INVALID_REFERENCE"


def test_a_customer_with_transactions_keeps_its_contacts(erp: ErpEngine) -> None:
    customer = _customer(erp)
    contact = erp.create("contact", {"customer_id": customer["id"], "last_name": "Lee"})
    _order(erp, customer, _item(erp))
    with pytest.raises(DomainError) as refused:
        erp.delete("customer", customer["id"])
    assert refused.value.code == "INVALID_OPERATION" and "transactions" in refused.value.message
    assert erp.get("contact", contact["id"])["customer_id"] == customer["id"]


def test_overpaying_an_invoice_is_refused(erp: ErpEngine) -> None:
    customer, item = _customer(erp), _item(erp, price="10")
    invoice = erp.create("invoice", {"customer_id": customer["id"], "lines": [{"item_id": item["id"], "quantity": 1}]})
    with pytest.raises(DomainError):
        erp.create("payment", {"customer_id": customer["id"], "amount": "50",
                               "applications": [{"invoice_id": invoice["id"], "amount": "50"}]})


@pytest.mark.parametrize("number", ["1e999999", "-1E+18", "1e-19", float("inf")])
def test_numbers_beyond_the_canonical_range_are_refused(erp: ErpEngine, number) -> None:
    with pytest.raises(DomainError) as refused:
        _customer(erp, credit_limit=number)
    assert refused.value.code in ("NUMBER_OUTSIDE_VALID_RANGE", "INVALID_VALUE")
    assert refused.value.fields == ("credit_limit",) and refused.value.kind == "customer"
    assert _customer(erp, credit_limit="999999999999999999.25")["credit_limit"] == Decimal("999999999999999999.25")


def test_order_rules_look_customers_orders_up_instead_of_scanning(erp: ErpEngine, monkeypatch) -> None:
    customer = _customer(erp, credit_limit="1000000")
    item = _item(erp, on_hand="1000")
    for _ in range(3):
        _order(erp, customer, item)
    scan = erp.store.all

    def no_scan(kind: str):
        if kind in ("sales_order", "customer", "item", "invoice"):
            raise AssertionError(f"whole-table scan of {kind} in a rule")
        return scan(kind)

    monkeypatch.setattr(erp.store, "all", no_scan)
    order = _order(erp, customer, item, quantity=2)
    assert order["status"] == "pending_fulfillment"
    assert erp.get("customer", customer["id"])["unbilled_orders"] == Decimal("19.99") * 5
    fulfillment = erp.create("item_fulfillment", {"sales_order_id": order["id"]})
    erp.create("invoice", {"sales_order_id": order["id"]})
    assert erp.get("customer", customer["id"])["unbilled_orders"] == Decimal("19.99") * 3
    erp.create("payment", {"customer_id": customer["id"], "amount": "10"})
    assert fulfillment["lines"][0]["quantity"] == 2
