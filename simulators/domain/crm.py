"""The CRM engine: accounts, contacts, products, price books and opportunities with line items."""

from __future__ import annotations

from decimal import Decimal

from syncert.simulators.clock import Clock
from syncert.simulators.domain.engine import Engine, IdFormat
from syncert.simulators.domain.kinds import CRM_KINDS, DomainError
from syncert.simulators.domain.store import Record, Store

CENT = Decimal("0.01")


def crm_store(path) -> Store:
    return Store(path, {k.name: k.indexed_fields for k in CRM_KINDS.values()})


class CrmEngine(Engine):
    """CRM rules: line totals and opportunity amounts are computed; deleting an account cascades.

    Like every Salesforce org, the CRM always has one standard price book.
    """

    system = "crm"

    def __init__(self, store: Store, clock: Clock, id_format: IdFormat):
        super().__init__(CRM_KINDS, store, clock, id_format)
        self._ensure_standard_pricebook()

    def reset(self) -> None:
        super().reset()
        self._ensure_standard_pricebook()

    def _ensure_standard_pricebook(self) -> None:
        if not any(p.get("is_standard") for p in self.records("pricebook")):
            self.create("pricebook", {"name": "Standard Price Book", "is_standard": True})

    def _apply_rules(self, kind: str, record: Record, previous: Record | None) -> None:
        if kind == "opportunity_line_item":
            entry = self.get("pricebook_entry", record["pricebook_entry_id"])
            record["product_id"] = entry["product_id"]
            if record.get("unit_price") is None:
                record["unit_price"] = entry["unit_price"]
            if record["quantity"] <= 0:
                raise DomainError("INVALID_VALUE", "opportunity_line_item.quantity must be positive", ("quantity",))
            discount = record.get("discount") or Decimal(0)
            if not Decimal(0) <= discount <= Decimal(100):
                raise DomainError("INVALID_VALUE", "opportunity_line_item.discount must be 0-100 (percent)",
                                  ("discount",))
            total = record["quantity"] * record["unit_price"] * (1 - discount / 100)
            record["total_price"] = total.quantize(CENT)
            opportunity = self.get("opportunity", record["opportunity_id"])
            pricebook = opportunity.get("pricebook_id")
            if pricebook is not None and pricebook != entry["pricebook_id"]:
                raise DomainError("FIELD_INTEGRITY_EXCEPTION",
                                  "price book entry is in a different price book than the opportunity",
                                  ("pricebook_entry_id",))

    def _after_write(self, kind: str, record: Record, previous: Record | None) -> None:
        if kind == "opportunity_line_item":
            self._recompute_amount(record["opportunity_id"])

    def delete(self, kind: str, record_id: str) -> None:
        record = self.get(kind, record_id)
        super().delete(kind, record_id)
        if kind == "account":
            for child_kind in ("contact", "opportunity"):
                for child in self.records(child_kind):
                    if child.get("account_id") == record_id:
                        self.delete(child_kind, child["id"])
        elif kind == "opportunity":
            for line in self.records("opportunity_line_item"):
                if line["opportunity_id"] == record_id:
                    super().delete("opportunity_line_item", line["id"])
        elif kind == "opportunity_line_item":
            self._recompute_amount(record["opportunity_id"])

    def _recompute_amount(self, opportunity_id: str) -> None:
        opportunity = self.store.get("opportunity", opportunity_id)
        if opportunity is None or opportunity.get("is_deleted"):
            return
        lines = [r for r in self.records("opportunity_line_item") if r["opportunity_id"] == opportunity_id]
        changes: dict = {"amount": sum((line["total_price"] for line in lines), Decimal("0.00"))}
        if lines and opportunity.get("pricebook_id") is None:
            changes["pricebook_id"] = self.get("pricebook_entry", lines[0]["pricebook_entry_id"])["pricebook_id"]
        self.touch("opportunity", opportunity_id, changes)
