"""Unit scenarios over edge data (level 2): unicode, maximum lengths, blanks, dates, rounding, and
generated records. A value must arrive exactly or be dead-lettered; a changed value is a failure."""

from __future__ import annotations

import tempfile
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from syncert.harness.pytest_plugin import scenario
from syncert.harness.runner import ScenarioRun
from syncert.scenarios.setups import account_ready, assert_converges, by_id, close_deal, products_ready, require

UNICODE_NAMES = ["Société Générale — Ünïcödé", "株式会社テスト", "שלום ועולם בע\"מ", "Rocket 🚀 Ltd 👩‍💻",
                 "Cafe\u0301 decomposed", "Ελληνικά & Ρωσικий", "Zero\u200bwidth", "Tab\tand  double  space"]


@scenario(id="UNIT-EDGE-UNICODE-01", category="unit", flows=("accounts",), level=2,
          intent="Unicode in every text field (accents, CJK, right-to-left, emoji, combining marks, zero-width "
                 "spaces) arrives unchanged, in accounts and, when the connector syncs them, contacts")
def test_unicode_everywhere(sync: ScenarioRun) -> None:
    address = {"street": "Straße 7 · 門牌 ③", "city": "Zürich", "state": "ZH", "postal_code": "8001", "country": "CH"}
    accounts = sync.seed("crm", {"account": [{"name": name, "phone": "+41 44 555 00 0" + str(n),
                                              "billing_address": address, "shipping_address": address}
                                             for n, name in enumerate(UNICODE_NAMES)]})["account"]
    flows = ["accounts"]
    if "contacts" in sync.manifest.flows:
        flows.append("contacts")
        sync.seed("crm", {"contact": [
            {"account_id": accounts[0], "first_name": "Zoë", "last_name": "Ñúñez-Ørsted 🙂", "email": "zoe@example.com",
             "role": "Directrice générale"},
            {"account_id": accounts[1], "first_name": "太郎", "last_name": "山田", "email": "taro@example.jp",
             "role": "部長"}]})
    assert_converges(sync, *flows)


@scenario(id="UNIT-EDGE-LENGTH-01", category="unit", flows=("accounts",), level=2,
          intent="A name at the most both systems allow arrives whole; one character over is dead-lettered, "
                 "never stored truncated")
def test_maximum_lengths(sync: ScenarioRun) -> None:
    limit = sync.field_limit("crm", "account", "name")
    fits, too_long = "F" * (limit - 4) + "-fit", "L" * (limit - 5) + "-long" + "X"
    require(len(fits) == limit and len(too_long) == limit + 1, "names at and over the limit")
    ids = sync.seed("crm", {"account": [{"name": fits}, {"name": too_long}]})["account"]
    sync.run_until(lambda s: s.reconcile("accounts").verdicts.get(ids[0], None) is not None
                   and s.reconcile("accounts").verdicts[ids[0]].outcome == "synced")
    sync.settle(cycles=1)
    result = sync.reconcile("accounts")
    fit, over = result.verdicts[ids[0]], result.verdicts[ids[1]]
    assert fit.outcome == "synced", f"a name of {limit} characters (the limit): {result.explain()}"
    assert over.outcome == "missing", (f"a name of {limit + 1} characters must not be stored (truncated or "
                                       f"not): {result.explain()}")
    assert over.explained_by, f"the over-long account was dropped without a dead letter: {result.explain()}"


@scenario(id="UNIT-EDGE-BLANK-01", category="unit", flows=("accounts",), level=2,
          intent="Blank values stay blank (never 'None' or 'null'), and a value cleared in the CRM is cleared in "
                 "the ERP")
def test_blanks_and_clearing(sync: ScenarioRun) -> None:
    full = {"street": "1 Full Street", "city": "Lyon", "state": "ARA", "postal_code": "69001", "country": "FR"}
    ids = sync.seed("crm", {"account": [
        {"name": "No phone, no address"},
        {"name": "Empty strings", "phone": "", "billing_address": {"street": "", "city": "Lyon"}},
        {"name": "Will be cleared", "phone": "+33 4 00 00 00 00", "billing_address": full, "shipping_address": full},
    ]})["account"]
    assert sync.run_until(lambda s: s.reconcile("accounts").all_synced), sync.reconcile("accounts").explain()
    sync.edit("crm", "account", ids[2], {"phone": None, "shipping_address": None,
                                         "billing_address": {**full, "state": None}})
    assert_converges(sync, "accounts")


@scenario(id="UNIT-EDGE-DATE-01", category="unit", flows=("accounts", "items", "orders"), level=2,
          intent="Close dates become order dates unchanged across month, year and leap-day boundaries, whatever "
                 "the timezone")
def test_dates_keep_their_day(sync: ScenarioRun) -> None:
    entries = products_ready(sync, [{"sku": "D-1", "name": "Dated", "price": "10.00", "quantity_on_hand": "50"}])
    account = account_ready(sync)
    for day in ("2026-12-31", "2027-01-01", "2028-02-29", "2026-03-29"):
        close_deal(sync, account, [{"pricebook_entry_id": entries["D-1"], "quantity": 1}], close_date=day,
                   name=f"Closes {day}")
    assert_converges(sync, "orders")


@scenario(id="UNIT-EDGE-ROUND-01", category="unit", flows=("accounts", "items", "orders"), level=2,
          intent="Discounted lines that land on fractions of a cent give ERP line amounts and an order total equal "
                 "to the CRM's, to the cent")
def test_rounding_to_the_cent(sync: ScenarioRun) -> None:
    entries = products_ready(sync, [
        {"sku": "R-1999", "name": "Rounding A", "price": "19.99", "quantity_on_hand": "100"},
        {"sku": "R-510", "name": "Rounding B", "price": "5.10", "quantity_on_hand": "100"},
        {"sku": "R-099", "name": "Rounding C", "price": "0.99", "quantity_on_hand": "100"}])
    account = account_ready(sync)
    lines = [("R-1999", 7, "15"), ("R-510", 3, "12.5"), ("R-099", 5, "10")]
    deal = close_deal(sync, account, [{"pricebook_entry_id": entries[sku], "quantity": quantity, "discount": discount}
                                      for sku, quantity, discount in lines])
    amount = Decimal(by_id(sync.state("crm")["opportunity"], deal)["amount"])
    require(amount == Decimal("136.79"), f"the CRM computes 118.94 + 13.39 + 4.46 = 136.79, not {amount}")
    assert_converges(sync, "orders")


def _text(max_size: int) -> st.SearchStrategy[str]:
    """Any printable text: every script, emoji and other characters beyond the basic plane."""
    return st.text(st.characters(blacklist_categories=("Cc", "Cs", "Co", "Cn", "Zl", "Zp")), max_size=max_size)


def _astral(max_size: int) -> st.SearchStrategy[str]:
    """Text with at least one character beyond the basic multilingual plane (what 3-byte UTF-8 stores lose)."""
    beyond = st.characters(min_codepoint=0x10000, blacklist_categories=("Cs", "Co", "Cn"))
    return st.tuples(_text(max_size // 2 - 1), beyond, _text(max_size // 2 - 1)).map("".join)


def generated_accounts(seed: int, count: int, name_limit: int, phone_limit: int) -> list[dict[str, Any]]:
    """`count` accounts drawn by hypothesis from `seed` (the same seed gives the same accounts)."""
    name = st.one_of(_text(name_limit), _astral(name_limit)).filter(lambda text: text.strip() != "")
    account = st.fixed_dictionaries({"name": name}, optional={
        "phone": st.from_regex(r"\+?[0-9][0-9 ()-]{3,20}", fullmatch=True).map(lambda p: p[:phone_limit]),
        "billing_address": st.fixed_dictionaries({}, optional={"street": _text(60), "city": _text(40),
                                                               "postal_code": _text(10)})})
    drawn: list[dict[str, Any]] = []

    @hypothesis_seed(seed)
    @settings(max_examples=count, phases=[Phase.generate], database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(account)
    def draw(record: dict[str, Any]) -> None:
        if len(drawn) < count:
            drawn.append(record)

    with tempfile.TemporaryDirectory(prefix="syncert-hypothesis-") as home:
        set_hypothesis_home_dir(home)  # hypothesis keeps caches there: not in the user's working directory
        try:
            draw()
        finally:
            set_hypothesis_home_dir(None)
    return drawn


@scenario(id="UNIT-GEN-01", category="unit", flows=("accounts",), level=2,
          intent="Accounts generated by hypothesis (any script, emoji, odd spacing, optional fields) all arrive "
                 "exactly; the seed is in the report")
def test_generated_accounts(sync: ScenarioRun) -> None:
    accounts = generated_accounts(sync.random_seed, 30, sync.field_limit("crm", "account", "name"),
                                  sync.field_limit("crm", "account", "phone"))
    beyond = sum(any(ord(c) > 0xFFFF for c in a["name"]) for a in accounts)
    sync.record_check("generated data", {"seed": sync.random_seed, "accounts": len(accounts),
                                         "names beyond the basic plane": beyond})
    require(len(accounts) >= 20 and beyond > 0, f"seed {sync.random_seed} drew {len(accounts)} accounts, "
                                                f"{beyond} with characters beyond the basic plane")
    sync.seed("crm", {"account": accounts})
    assert_converges(sync, "accounts", stage=f"seed {sync.random_seed}")
