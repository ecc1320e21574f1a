"""The CRM engine: accounts, contacts, products, price books and opportunities with line items."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from syncert.simulators.clock import Clock
from syncert.simulators.domain.engine import Engine, IdFormat
from syncert.simulators.domain.kinds import CRM_KINDS, DomainError
from syncert.simulators.domain.schema import Schema
from syncert.simulators.domain.store import Record, Store

CENT = Decimal("0.01")


def crm_schema() -> Schema:
    """A fresh schema with the default CRM kinds (no dialect objects)."""
    return Schema(dict(CRM_KINDS))


def crm_store(path: Path | None, schema: Schema | None = None) -> Store:
    """A store indexing what the CRM kinds of `schema` (default: crm_schema()) look up."""
    return Store(path, (schema or crm_schema()).indexed_fields())


class CrmEngine(Engine):
    """CRM rules: line totals and opportunity amounts are computed; deleting an account cascades.

    Like every Salesforce org, the CRM always has one standard price book. Rules look related
    records up by indexed reference fields.
    """

    system = "crm"

    def __init__(self, store: Store, clock: Clock, id_format: IdFormat, schema: Schema | None = None):
        super().__init__(schema or crm_schema(), store, clock, id_format)
        self._ensure_standard_pricebook()

    def reset(self) -> None:
        super().reset()
        self._ensure_standard_pricebook()

    def _ensure_standard_pricebook(self) -> None:
        if not self.find("pricebook", "is_standard", True):
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

    def _after_delete(self, kind: str, record: Record) -> None:
        if kind == "account":
            for child_kind in ("contact", "opportunity"):
                for child in self.find(child_kind, "account_id", record["id"]):
                    self.delete(child_kind, child["id"])
        elif kind == "opportunity":
            for line in self.find("opportunity_line_item", "opportunity_id", record["id"]):
                self.delete("opportunity_line_item", line["id"])
        elif kind == "opportunity_line_item":
            self._recompute_amount(record["opportunity_id"])

    def _recompute_amount(self, opportunity_id: str) -> None:
        opportunity = self.get_or_none("opportunity", opportunity_id)
        if opportunity is None:
            return
        lines = self.find("opportunity_line_item", "opportunity_id", opportunity_id)
        changes: dict = {"amount": sum((line["total_price"] for line in lines), Decimal("0.00"))}
        if lines and opportunity.get("pricebook_id") is None:
            changes["pricebook_id"] = self.get("pricebook_entry", lines[0]["pricebook_entry_id"])["pricebook_id"]
        self.touch("opportunity", opportunity_id, changes)
