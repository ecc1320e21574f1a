"""Reconciliation through the mapping: one verdict per business key, field differences in canonical and
vendor terms, and mappings that cannot be used refused with a message naming the key at fault."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from syncert.harness.manifest import ManifestError, load_manifest
from syncert.harness.mapping import STANDARD, MappingError, load_mapping
from syncert.harness.reconciliation import ReconciliationError, VendorNames, reconcile

MAPPING = load_mapping()
VENDOR = VendorNames({"crm": "salesforce", "erp": "netsuite"})
ADDRESS = {"street": "1 Quai", "city": "Lyon", "state": None, "postal_code": "69001", "country": "FR"}


def _account(n: int, **fields: Any) -> dict[str, Any]:
    return {"id": f"A{n}", "name": f"Account {n}", "phone": None, "billing_address": ADDRESS,
            "shipping_address": None, "erp_customer_id": f"C{n}", **fields}


def _customer(n: int, **fields: Any) -> dict[str, Any]:
    return {"id": f"C{n}", "name": f"Account {n}", "phone": "", "billing_address": ADDRESS, "shipping_address": {},
            "crm_id": f"A{n}", **fields}


def _accounts(accounts: list[dict], customers: list[dict], **kwargs: Any):
    return reconcile(MAPPING.flow("accounts"), {"crm": {"account": accounts}, "erp": {"customer": customers}},
                     VENDOR, **kwargs)


def test_every_outcome_by_business_key() -> None:
    accounts = [_account(n) for n in range(5)]
    customers = [_customer(0), _customer(1, name="Account 1 (typo)"), _customer(2), _customer(2, id="C2b"),
                 _customer(9)]
    result = _accounts(accounts, customers, dead_letters=[{"source_system": "crm", "source_id": "A3",
                                                           "reason": "refused"}])
    assert {key: v.outcome for key, v in result.verdicts.items()} == {
        "A0": "synced", "A1": "corrupted", "A2": "duplicated", "A3": "missing", "A4": "missing", "A9": "orphan"}
    assert result.verdicts["A3"].explained_by == "refused" and result.silent_losses == ["A4"]
    [difference] = result.verdicts["A1"].differences
    assert difference.field == "customer.name" and difference.vendor_field == "NetSuite customer.companyName"
    assert (difference.expected, difference.actual) == ("Account 1", "Account 1 (typo)")
    assert "Salesforce Account.Name" in difference.came_from and "A1" in difference.came_from
    assert "A1: corrupted" in result.explain() and result.failures()["A1"]["fields"][0]["expected"] == "Account 1"


def test_blank_and_null_are_the_same_but_a_truncated_value_is_not() -> None:
    result = _accounts([_account(0, phone=""), _account(1, name="N" * 84)], [_customer(0), _customer(1, name="N" * 83)])
    assert result.verdicts["A0"].outcome == "synced"
    assert result.verdicts["A1"].outcome == "corrupted"


def test_address_parts_are_diffed_one_by_one() -> None:
    result = _accounts([_account(0)], [_customer(0, billing_address={**ADDRESS, "city": "Paris"})])
    [difference] = result.verdicts["A0"].differences
    assert difference.field == "customer.billing_address.city"
    assert (difference.expected, difference.actual) == ("Lyon", "Paris")
    assert "Account.BillingCity" in difference.came_from


def test_stale_means_the_target_holds_an_earlier_value_of_the_source() -> None:
    now = _account(0, phone="+33 2")
    earlier = _account(0, phone="+33 1")
    stale = _accounts([now], [_customer(0, phone="+33 1")], history={"A0": [earlier]})
    wrong = _accounts([now], [_customer(0, phone="+33 9")], history={"A0": [earlier]})
    assert stale.verdicts["A0"].outcome == "stale" and wrong.verdicts["A0"].outcome == "corrupted"


def test_the_written_back_id_is_judged_too() -> None:
    result = _accounts([_account(0, erp_customer_id=None)], [_customer(0)])
    [difference] = result.verdicts["A0"].differences
    assert difference.field == "account.erp_customer_id" and difference.expected == "C0"


def test_two_sources_with_one_key_are_an_error_of_the_scenario_or_a_duplicate_of_the_connector() -> None:
    credit = MAPPING.flow("credit")
    customers = [{"id": "C1", "crm_id": "A1", "credit_hold": True, "balance": "0"},
                 {"id": "C2", "crm_id": "A1", "credit_hold": False, "balance": "0"}]
    sides = {"erp": {"customer": customers}, "crm": {"account": [{"id": "A1"}]}}
    with pytest.raises(ReconciliationError, match="C1, C2 share the business key crm_id = 'A1'"):
        reconcile(credit, sides, VENDOR, user_values={"C1": customers[0], "C2": customers[1]})
    made_by_the_connector = reconcile(credit, sides, VENDOR, user_values={"C1": customers[0]})
    assert made_by_the_connector.verdicts["A1"].outcome == "duplicated"


def test_a_target_made_without_its_link_is_an_orphan() -> None:
    result = _accounts([_account(0)], [_customer(0), _customer(1, crm_id=None), _customer(2, crm_id=None)],
                       user_targets={"C2"})
    assert result.verdicts["(unlinked customer C1)"].outcome == "orphan"
    assert "(unlinked customer C2)" not in result.verdicts, "the users' own customers are not the connector's"


def test_a_dead_letter_of_another_flow_explains_nothing() -> None:
    letters = [{"flow": "contacts", "source_system": "crm", "source_id": "A0", "reason": "refused"}]
    assert _accounts([_account(0)], [], dead_letters=letters).silent_losses == ["A0"]


def _orders(lines: list[dict], order_lines: list[dict], total: str = "136.79") -> Any:
    crm = {"opportunity": [{"id": "O1", "stage": "Closed Won", "account_id": "A1", "currency": "EUR",
                            "close_date": "2026-12-31", "amount": total, "erp_order_id": "SO1",
                            "commitment_status": "Committed"},
                           {"id": "O2", "stage": "Closed Lost", "account_id": "A1", "close_date": "2026-12-31"}],
           "opportunity_line_item": lines, "account": [{"id": "A1", "erp_customer_id": "C1"}],
           "product": [{"id": "P1", "erp_item_id": "I1"}, {"id": "P2", "erp_item_id": "I2"}]}
    erp = {"sales_order": [{"id": "S1", "number": "SO1", "crm_id": "O1", "customer_id": "C1", "currency": "EUR",
                            "order_date": "2026-12-31", "total": "136.790", "status": "pending_fulfillment",
                            "lines": order_lines}]}
    return reconcile(MAPPING.flow("orders"), {"crm": crm, "erp": erp}, VENDOR)


LINES = [{"id": "L1", "opportunity_id": "O1", "product_id": "P1", "quantity": "7", "unit_price": "19.99",
          "discount": "15", "total_price": "118.94"},
         {"id": "L2", "opportunity_id": "O1", "product_id": "P2", "quantity": "3", "unit_price": "5.10",
          "discount": None, "total_price": "15.30"}]
ORDER_LINES = [{"item_id": "I1", "quantity": "7.0", "rate": "16.9915", "amount": "118.94"},
               {"item_id": "I2", "quantity": "3", "rate": "5.1", "amount": "15.30"}]


def test_order_lines_are_paired_by_item_and_money_is_exact() -> None:
    assert _orders(LINES, ORDER_LINES).verdicts["O1"].outcome == "synced"
    floated = [{**ORDER_LINES[0], "rate": "16.991499999999998"}, ORDER_LINES[1]]
    [difference] = _orders(LINES, floated).verdicts["O1"].differences
    assert difference.field == "sales_order.lines[item_id=I1].rate"
    assert difference.vendor_field == "NetSuite salesOrder.item[].rate"
    assert (str(difference.expected), str(difference.actual)) == ("16.9915", floated[0]["rate"])
    missing_line = _orders(LINES, ORDER_LINES[:1]).verdicts["O1"].differences
    assert [d.field for d in missing_line] == ["sales_order.lines[item_id=I2]"]


def test_an_order_made_from_a_lost_deal_is_an_orphan() -> None:
    crm = {"opportunity": [{"id": "O2", "stage": "Closed Lost"}]}
    erp = {"sales_order": [{"id": "S9", "crm_id": "O2", "lines": []}]}
    result = reconcile(MAPPING.flow("orders"), {"crm": crm, "erp": erp}, VENDOR)
    assert result.verdicts["O2"].outcome == "orphan"
    assert "does not take part" in result.verdicts["O2"].differences[0].came_from


def test_dates_are_calendar_days() -> None:
    shifted = _orders(LINES, ORDER_LINES)
    assert shifted.verdicts["O1"].outcome == "synced"
    crm = {"opportunity": [{"id": "O1", "stage": "Closed Won", "close_date": "2026-12-31"}]}
    for stored in ("2026-12-30", "2026-12-31T00:00:00Z"):
        erp = {"sales_order": [{"id": "S1", "crm_id": "O1", "order_date": stored}]}
        result = reconcile(MAPPING.flow("orders"), {"crm": crm, "erp": erp}, VENDOR)
        assert "sales_order.order_date" in [d.field for d in result.verdicts["O1"].differences]


def test_settlement_labels_follow_amount_due() -> None:
    invoices = MAPPING.flow("invoices")
    for due, label in (("70.17", "Invoiced"), ("50.00", "Partially Paid"), ("0", "Paid")):
        erp = {"invoice": [{"id": "V1", "sales_order_id": "S1", "amount": "70.17", "amount_due": due}],
               "sales_order": [{"id": "S1", "crm_id": "O1"}]}
        result = reconcile(invoices, {"erp": erp, "crm": {"opportunity": [{"id": "O1", "invoice_status": label}]}},
                           VENDOR)
        assert result.all_synced, result.explain()


def _broken(tmp_path: Path, change) -> Path:
    data = yaml.safe_load(STANDARD.read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["flows"]["accounts"]["fields"].update(nmae={"from": "name"}), "flows.accounts.fields.nmae names"),
    (lambda d: d["flows"]["accounts"]["fields"]["name"].update(transform="upper"), "'upper' is not one of"),
    (lambda d: d["flows"]["accounts"]["source"].update(kind="company"), "'company' is not a canonical CRM kind"),
    (lambda d: d["flows"]["prices"]["key"].update(target="product_id.sku.x"), "product.sku is not a reference"),
    (lambda d: d["flows"]["credit"]["fields"]["credit_status"].pop("values"), "transform enum needs `values`"),
    (lambda d: d.update(version=2), "version must be 1"),
    (lambda d: d["flows"]["credit"]["fields"]["credit_status"].update(values=["OK"]), "values must map each value"),
    (lambda d: d["flows"]["accounts"]["fields"]["name"].pop("from"), "name.from is missing"),
    (lambda d: d["flows"]["accounts"]["key"].pop("target"), "key.target is missing"),
])
def test_a_broken_mapping_is_refused_naming_the_key(tmp_path: Path, change, message: str) -> None:
    with pytest.raises(MappingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_mapping(_broken(tmp_path, change))


def test_a_manifest_with_a_broken_mapping_is_refused(tmp_path: Path) -> None:
    mapping = _broken(tmp_path, lambda d: d["flows"]["accounts"]["fields"].update(nmae={"from": "name"}))
    manifest = tmp_path / "connector.toml"
    manifest.write_text(f'name = "x"\nversion = "1"\ncrm = "salesforce"\nerp = "netsuite"\nflows = ["accounts"]\n'
                        f'mapping = "{mapping.name}"\n[run]\nmode = "command"\ncommand = ["true"]\n')
    with pytest.raises(ManifestError, match=r"`mapping` names a mapping that cannot be used: .*nmae"):
        load_manifest(manifest)


def test_the_protocol_shows_the_mapping_as_it_is() -> None:
    from syncert.harness.mapping_doc import render

    protocol = (Path(__file__).resolve().parent.parent / "docs" / "protocol.md").read_text(encoding="utf-8")
    begin, end = "<!-- generated by `syncert mapping`: begin -->\n", "<!-- generated by `syncert mapping`: end -->"
    shown = protocol[protocol.index(begin) + len(begin):protocol.index(end)]
    assert shown == render(MAPPING, VENDOR), "docs/protocol.md is out of date: paste `syncert mapping` there"


def test_a_connector_that_rewrites_the_source_to_match_is_caught() -> None:
    # the connector truncated the name in the ERP, then wrote the truncated name back over the CRM's
    as_left = _account(0, name="N" * 84)
    rewritten = _account(0, name="N" * 83)
    result = _accounts([rewritten], [_customer(0, name="N" * 83)], user_values={"A0": as_left})
    verdict = result.verdicts["A0"]
    assert verdict.outcome == "corrupted"
    assert [d.field for d in verdict.differences] == ["account.name"]
    assert "must not change it there" in verdict.differences[0].came_from
    derived = _accounts([_account(0, phone="+1")], [_customer(0, phone="+1")], user_values={"A0": _account(0)})
    assert derived.verdicts["A0"].outcome == "corrupted", "a CRM-owned field changed by someone else than the users"


def test_a_source_record_deleted_during_the_scenario_is_missing() -> None:
    result = _accounts([_account(0)], [_customer(0)], user_values={"A0": _account(0), "A1": _account(1)},
                       deleted={"A1": _account(1)})
    assert result.verdicts["A1"].outcome == "missing" and not result.verdicts["A1"].explained_by
    assert "deleted during the scenario" in result.verdicts["A1"].differences[0].came_from
    assert result.silent_losses == ["A1"]


def test_a_weaker_own_mapping_is_disclosed(tmp_path: Path) -> None:
    from syncert.harness.mapping import describe

    weaker = _broken(tmp_path, lambda d: d["flows"]["accounts"]["fields"].pop("phone"))
    described = describe(weaker)
    assert not described["standard"]
    assert described["standard_checks_not_made"] == ["accounts: customer.phone <- phone (text; owner crm)"]
    changed = _broken(tmp_path, lambda d: d["flows"]["items"]["fields"]["name"].update({"from": "sku"}))
    assert [c.split(" <- ")[0] for c in describe(changed)["standard_checks_not_made"]] == ["items: product.name"]
    stricter = _broken(tmp_path, lambda d: d["flows"]["accounts"]["fields"].update(email={"from": "name"}))
    assert describe(stricter)["standard_checks_not_made"] == []
    assert describe(None)["standard"] and len(describe(None)["sha256"]) == 64
