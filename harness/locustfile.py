"""Locust users that act out a surge profile on the simulators, as the business would.

CRM users close deals, an ERP clerk posts the invoice run, another posts the payments that come in,
an import creates accounts in bulk, and interactive ERP users open records while all this happens:
their latency, named by phase ("ERP interactive: before" / "ERP interactive: during"), is what the
surge did to the ERP's users. Business records are made through the simulators' control plane (as the
systems' own users make them, not through the API the connector uses), so the journal the connector is
judged on holds the connector's requests only.

Run by `syncert surge` and the volume scenarios (harness/surge.py starts Locust with this file); settings
come from the environment (SYNCERT_SURGE_*: the simulators' URLs, their admin token, the profile, its
scale and pace, the start time and the file of records that exist before the surge). Locust's own flags spread
it: `--master` here and `--worker --master-host HOST` on other machines, each with the same settings.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from locust import HttpUser, task

from syncert.scenarios.volume.profiles import BEFORE, CLOSERS, IMPORTERS, INVOICERS, PAYERS, PROFILES, scaled

PROFILE = PROFILES[os.environ.get("SYNCERT_SURGE_PROFILE", "month-end")].paced(
    float(os.environ.get("SYNCERT_SURGE_PACE", "1")))
SCALE = float(os.environ.get("SYNCERT_SURGE_SCALE", "1"))
T0 = float(os.environ.get("SYNCERT_SURGE_T0", "0") or 0)  # wall-clock start of the first phase
URLS = {"crm": os.environ.get("SYNCERT_SURGE_CRM_URL", ""), "erp": os.environ.get("SYNCERT_SURGE_ERP_URL", "")}
HEADERS = {"Authorization": f"Bearer {os.environ.get('SYNCERT_SURGE_ADMIN_TOKEN', '')}"}
FEED_PAGE = 500
SEED_BATCH = 50  # records a clerk posts in one request


def batches(rows: list[Any]) -> Iterator[list[Any]]:
    """`rows` in slices of SEED_BATCH."""
    for start in range(0, len(rows), SEED_BATCH):
        yield rows[start:start + SEED_BATCH]


def _base() -> dict[str, Any]:
    """The records the users act on: SYNCERT_SURGE_BASE_JSON (from the harness), or the JSON file
    SYNCERT_SURGE_BASE names (Locust run by hand)."""
    if os.environ.get("SYNCERT_SURGE_BASE_JSON"):
        return json.loads(os.environ["SYNCERT_SURGE_BASE_JSON"])
    path = os.environ.get("SYNCERT_SURGE_BASE")
    if not path:
        return {"accounts": [], "customers": [], "entries": [], "items": []}
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


BASE = _base()


def elapsed() -> float:
    return time.time() - T0


class _SurgeUser(HttpUser):
    """Common ground: the control plane of both simulators, and the phase clock."""

    abstract = True
    host = URLS["crm"] or "http://127.0.0.1"
    activity = ""
    wait_s = 0.2

    def control(self, side: str, method: str, route: str, name: str, **kwargs: Any) -> Any:
        with self.client.request(method, f"{URLS[side]}/_sim/{route}", headers=HEADERS, name=name,
                                 catch_response=True, **kwargs) as response:
            if response.status_code >= 400:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return None
            return response.json()

    def pace(self, every_s: float) -> None:
        """Wait for this user's next turn: `every_s` from its last, or until its activity's next phase."""
        users_now = self._users_now()
        if users_now == 0:
            self._wait_for_phase()
            return
        # fewer users act in a phase than the most any phase has: each of them acts less often, the
        # whole rate being what the phase asks (no user needs to know its number among the workers)
        most = PROFILE.users(self.activity, SCALE)
        self.wait_s = every_s * most / users_now

    def _users_now(self) -> int:
        phase = PROFILE.phase_at(elapsed())
        return 0 if phase is None else scaled(phase.users.get(self.activity, 0), SCALE)

    def _wait_for_phase(self) -> None:
        self.wait_s = 1.0 if elapsed() >= PROFILE.seconds else 0.2  # over: idle until Locust stops

    def wait_time(self) -> float:
        """Locust's pause between two tasks of this user: what the last task asked for."""
        return self.wait_s

    def feed(self, side: str, kind: str, name: str) -> Iterator[dict[str, Any]]:
        """Records of `kind` changed since this user last looked (the simulator's change feed)."""
        while True:
            page = self.control(side, "GET", "state", name,
                                params={"kinds": kind, "since": getattr(self, f"_since_{kind}", 0),
                                        "limit": FEED_PAGE})
            if page is None:
                return
            setattr(self, f"_since_{kind}", page["next"])
            yield from page["records"].get(kind, [])
            if not page["more"]:
                return


class DealCloser(_SurgeUser):
    """A CRM user who closes a deal won with a few products (in one transaction: the deal is closed when it is
    made, so its creation time is when the change happened)."""

    activity = CLOSERS
    fixed_count = PROFILE.user_counts(SCALE)[CLOSERS]

    @task
    def close_a_deal(self) -> None:
        if self._users_now() == 0 or not BASE["accounts"] or not BASE["entries"]:
            self.pace(PROFILE.deal_every_s)
            return
        entries = random.sample(BASE["entries"], min(PROFILE.lines_per_deal, len(BASE["entries"])))
        self.control("crm", "POST", "seed", "CRM: close a deal won", json={"records": {
            "opportunity": [{"_ref": "deal", "account_id": random.choice(BASE["accounts"]), "name": "Surge deal",
                             "stage": "Closed Won", "close_date": "2026-11-30"}],
            "opportunity_line_item": [{"opportunity_id": {"$ref": "deal"}, "pricebook_entry_id": entry["id"],
                                       "quantity": str(random.randint(1, 5))} for entry in entries]}})
        self.pace(PROFILE.deal_every_s)


class AccountImport(_SurgeUser):
    """A CRM data import: accounts created in bulk."""

    activity = IMPORTERS
    fixed_count = PROFILE.user_counts(SCALE)[IMPORTERS]
    numbers = itertools.count(1)

    @task
    def import_accounts(self) -> None:
        if self._users_now() == 0:
            self.pace(PROFILE.deal_every_s)
            return
        batch = 10
        self.control("crm", "POST", "seed", "CRM: import accounts", json={"records": {"account": [
            {"name": f"Imported {os.getpid()}-{next(self.numbers):06d}", "phone": "+1 555 0100"}
            for _ in range(batch)]}})
        self.pace(PROFILE.deal_every_s * batch)


class InvoiceRun(_SurgeUser):
    """The ERP's invoice run: every sales order it finds is shipped and billed, in batches."""

    activity = INVOICERS
    fixed_count = PROFILE.user_counts(SCALE)[INVOICERS]

    @task
    def post_invoices(self) -> None:
        if self._users_now() == 0:
            self.pace(1.0)
            return
        orders = [order["id"] for order in self.feed("erp", "sales_order", "ERP: find orders to bill")
                  if order["id"] not in self.billed]
        for batch in batches(orders):
            if self.control("erp", "POST", "seed", "ERP: ship orders", json={"records": {
                    "item_fulfillment": [{"sales_order_id": order} for order in batch]}}) is None:
                continue
            if self.control("erp", "POST", "seed", "ERP: post invoices", json={"records": {
                    "invoice": [{"sales_order_id": order} for order in batch]}}) is not None:
                self.billed.update(batch)
        self.wait_s = 1.0

    def on_start(self) -> None:
        self.billed: set[str] = set()


class PaymentClerk(_SurgeUser):
    """An ERP clerk posting the payments that come in: two invoices in three paid in full, one in part."""

    activity = PAYERS
    fixed_count = PROFILE.user_counts(SCALE)[PAYERS]

    @task
    def post_payments(self) -> None:
        if self._users_now() == 0:
            self.pace(1.0)
            return
        payments = []
        for invoice in self.feed("erp", "invoice", "ERP: find invoices to pay"):
            if invoice["id"] in self.paid or Decimal(invoice["amount_due"] or "0") <= 0:
                continue
            self.paid.add(invoice["id"])
            due = Decimal(invoice["amount_due"])
            amount = due if len(self.paid) % 3 else (due / 2).quantize(Decimal("0.01"))
            payments.append({"customer_id": invoice["customer_id"], "amount": str(amount),
                             "applications": [{"invoice_id": invoice["id"], "amount": str(amount)}]})
        for batch in batches(payments):
            self.control("erp", "POST", "seed", "ERP: post payments", json={"records": {"payment": batch}})
        self.wait_s = 1.0

    def on_start(self) -> None:
        self.paid: set[str] = set()


class ErpInteractiveUser(_SurgeUser):
    """An ERP user at work: opens a customer or an item every half second; the latency is measured."""

    fixed_count = PROFILE.interactive_users

    @task
    def open_a_record(self) -> None:
        now = elapsed()
        if now < 0 or now >= PROFILE.seconds:
            self.wait_s = 0.2
            return
        during = "before" if PROFILE.phase_at(now).name == BEFORE else "during"
        choices = [("customer", c) for c in BASE["customers"]] + [("item", i) for i in BASE["items"]]
        if choices:
            kind, record_id = random.choice(choices)
            self.control("erp", "GET", f"records/{kind}/{record_id}", f"ERP interactive: {during}")
        self.wait_s = 0.5


# Locust weighs in a user class of no fixed count: those this profile does not need stay out
for _user_class in (DealCloser, AccountImport, InvoiceRun, PaymentClerk, ErpInteractiveUser):
    _user_class.abstract = _user_class.fixed_count == 0
del _user_class  # Locust takes every User class the module names
