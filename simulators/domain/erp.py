"""The ERP engine: the system of record for customers and their contacts, stock, orders, invoices and payments.

Business rules: mandatory fields and lengths (from the schema), credit limit -> credit hold,
stock -> backorder, fulfilment -> billing, posted invoices immutable, payments reduce balances,
a customer's contacts deleted with it (a customer with transactions cannot be deleted).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from syncert.simulators.clock import Clock, add_days
from syncert.simulators.domain.engine import Engine, IdFormat
from syncert.simulators.domain.kinds import ERP_KINDS, DomainError
from syncert.simulators.domain.schema import Schema
from syncert.simulators.domain.store import Record, Store

CENT = Decimal("0.01")
ZERO = Decimal("0")
TERMS_DAYS = {"Net 15": 15, "Net 30": 30, "Net 60": 60, "Due on receipt": 0}
OPEN_ORDER_STATUSES = ("pending_fulfillment", "partially_fulfilled", "pending_billing")
INVOICE_EDITABLE_FIELDS = {"memo", "external_id"}


def erp_schema() -> Schema:
    """A fresh schema with the default ERP kinds (no dialect objects)."""
    return Schema(dict(ERP_KINDS))


def erp_store(path: Path | None, schema: Schema | None = None) -> Store:
    """A store indexing what the ERP kinds of `schema` (default: erp_schema()) look up."""
    return Store(path, (schema or erp_schema()).indexed_fields())


class ErpEngine(Engine):
    """ERP rules on top of validated CRUD. Rules look related records up by indexed reference fields."""

    system = "erp"

    def __init__(self, store: Store, clock: Clock, id_format: IdFormat, schema: Schema | None = None):
        super().__init__(schema or erp_schema(), store, clock, id_format)

    # -- rules before a write ----------------------------------------------------------------------

    def _apply_rules(self, kind: str, record: Record, previous: Record | None) -> None:
        rule = getattr(self, f"_rules_{kind}", None)
        if rule is not None:
            rule(record, previous)

    def _rules_customer(self, record: Record, previous: Record | None) -> None:
        if record.get("number") is None:
            record["number"] = f"CUST{self.store.next_number('number:customer')}"
        record["balance"] = record.get("balance") or ZERO
        record["unbilled_orders"] = record.get("unbilled_orders") or ZERO
        limit = record.get("credit_limit")
        if limit is not None and limit < 0:
            raise DomainError("INVALID_VALUE", "customer.credit_limit cannot be negative", ("credit_limit",))
        record["credit_hold"] = self._on_credit_hold(record, extra=ZERO)

    def _rules_item(self, record: Record, previous: Record | None) -> None:
        record.setdefault("quantity_committed", ZERO)
        record["quantity_on_hand"] = record.get("quantity_on_hand") or ZERO
        record["quantity_available"] = record["quantity_on_hand"] - record["quantity_committed"]

    def _rules_sales_order(self, record: Record, previous: Record | None) -> None:
        customer = self.get("customer", record["customer_id"])
        if customer.get("inactive"):
            raise DomainError("INVALID_REFERENCE", f"customer {customer['id']} is inactive", ("customer_id",))
        if previous is not None and record["lines"] is not previous["lines"] and any(
                line.get("quantity_fulfilled") or line.get("quantity_billed") for line in previous["lines"]):
            raise DomainError("INVALID_OPERATION", "lines of a fulfilled or billed order cannot change", ("lines",))
        if previous is None:
            record["number"] = f"SO{self.store.next_number('number:sales_order')}"
            record["order_date"] = record.get("order_date") or self.clock.today()
            record["currency"] = record.get("currency") or customer.get("currency")
        if previous is None or record["lines"] is not previous["lines"]:
            self._price_lines(record)
        if previous is None:
            held = self._on_credit_hold(customer, extra=record["total"])
            record["status"] = "pending_approval" if held else "pending_fulfillment"
            record["hold_reason"] = "credit_hold" if held else None
        elif previous["status"] == "pending_approval" and record["status"] == "pending_fulfillment":
            record["hold_reason"] = None

    def _rules_item_fulfillment(self, record: Record, previous: Record | None) -> None:
        if previous is not None:
            raise DomainError("INVALID_OPERATION", "an item fulfillment cannot be changed; delete it instead")
        order = self.get("sales_order", record["sales_order_id"])
        if order["status"] not in ("pending_fulfillment", "partially_fulfilled"):
            raise DomainError("INVALID_OPERATION",
                              f"sales order {order['number']} is {order['status']}, not ready to fulfill",
                              ("sales_order_id",))
        open_qty = {line["item_id"]: line["quantity_committed"] - line["quantity_fulfilled"]
                    for line in order["lines"]}
        if not record.get("lines"):
            record["lines"] = [{"item_id": item, "quantity": qty} for item, qty in open_qty.items() if qty > 0]
        if not record["lines"]:
            raise DomainError("INVALID_OPERATION", f"sales order {order['number']} has nothing committed to ship")
        for line in record["lines"]:
            if line["quantity"] <= 0 or line["quantity"] > open_qty.get(line["item_id"], ZERO):
                raise DomainError("INVALID_VALUE", f"cannot ship {line['quantity']} of item {line['item_id']}: "
                                  f"{open_qty.get(line['item_id'], ZERO)} committed and unshipped", ("lines",))
        record["ship_date"] = record.get("ship_date") or self.clock.today()

    def _rules_invoice(self, record: Record, previous: Record | None) -> None:
        if previous is not None:
            changed = {k for k in record if record[k] != previous.get(k)} - {"modified_at"}
            if changed - INVOICE_EDITABLE_FIELDS:
                raise DomainError("INVALID_OPERATION", f"invoice {previous['number']} is posted; "
                                  f"{', '.join(sorted(changed - INVOICE_EDITABLE_FIELDS))} cannot change",
                                  tuple(sorted(changed - INVOICE_EDITABLE_FIELDS)))
            return
        order = self.get("sales_order", record["sales_order_id"]) if record.get("sales_order_id") else None
        if order is not None:
            if record.get("customer_id") not in (None, order["customer_id"]):
                raise DomainError("INVALID_VALUE", "invoice customer differs from the sales order's", ("customer_id",))
            record["customer_id"] = order["customer_id"]
            if order["status"] == "pending_approval":
                raise DomainError("INVALID_OPERATION", f"sales order {order['number']} is pending approval",
                                  ("sales_order_id",))
            if not record.get("lines"):
                record["lines"] = [
                    {"item_id": line["item_id"], "quantity": line["quantity"] - line["quantity_billed"],
                     "rate": line["rate"]}
                    for line in order["lines"] if line["quantity"] > line["quantity_billed"]]
        if record.get("customer_id") is None:
            raise DomainError("REQUIRED_FIELD_MISSING", "an invoice needs customer_id or sales_order_id",
                              ("customer_id",))
        if not record.get("lines"):
            raise DomainError("INVALID_OPERATION", "nothing left to bill", ("lines",))
        customer = self.get("customer", record["customer_id"])
        self._price_lines(record)
        record["number"] = f"INV{self.store.next_number('number:invoice')}"
        record["invoice_date"] = record.get("invoice_date") or self.clock.today()
        record["due_date"] = add_days(record["invoice_date"], TERMS_DAYS[customer.get("payment_terms") or "Net 30"])
        record["amount"] = record.pop("total")
        record["amount_due"] = record["amount"]
        record["status"] = "open"
        record["posted"] = True

    def _rules_payment(self, record: Record, previous: Record | None) -> None:
        if previous is not None:
            raise DomainError("INVALID_OPERATION", "a customer payment cannot be changed; delete it instead")
        if record["amount"] <= 0:
            raise DomainError("INVALID_VALUE", "payment.amount must be positive", ("amount",))
        open_invoices = sorted((i for i in self.find("invoice", "customer_id", record["customer_id"])
                                if i["amount_due"] > 0),
                               key=lambda i: (i["due_date"], i["id"]))
        if not record.get("applications"):
            remaining, applications = record["amount"], []
            for invoice in open_invoices:
                share = min(remaining, invoice["amount_due"])
                if share > 0:
                    applications.append({"invoice_id": invoice["id"], "amount": share})
                    remaining -= share
            record["applications"] = applications
        due = {i["id"]: i["amount_due"] for i in open_invoices}
        for application in record["applications"]:
            if application["invoice_id"] not in due:
                raise DomainError("INVALID_VALUE", f"invoice {application['invoice_id']} is not an open invoice "
                                  "of this customer", ("applications",))
            if not ZERO < application["amount"] <= due[application["invoice_id"]]:
                raise DomainError("INVALID_VALUE", f"cannot apply {application['amount']} to invoice "
                                  f"{application['invoice_id']} (due {due[application['invoice_id']]})",
                                  ("applications",))
        if sum((a["amount"] for a in record["applications"]), ZERO) > record["amount"]:
            raise DomainError("INVALID_VALUE", "applications exceed the payment amount", ("applications",))
        record["payment_date"] = record.get("payment_date") or self.clock.today()

    # -- side effects after a write -------------------------------------------------------------

    def _after_write(self, kind: str, record: Record, previous: Record | None) -> None:
        if kind == "sales_order":
            if previous is not None and previous["status"] != "pending_approval":
                self._release_stock(previous)
            if record["status"] != "pending_approval":
                self._commit_stock(record)
            self._track_unbilled(previous, record)
            self._refresh_credit_hold(record["customer_id"])
            if previous is not None and previous["customer_id"] != record["customer_id"]:
                self._refresh_credit_hold(previous["customer_id"])
        elif kind == "item_fulfillment":
            self._ship(record)
        elif kind == "invoice" and previous is None:
            self._bill(record)
        elif kind == "payment":
            self._receive(record)

    def _after_delete(self, kind: str, record: Record) -> None:
        if kind == "customer":
            for contact in self.find("contact", "customer_id", record["id"]):
                self.delete("contact", contact["id"])
        elif kind == "sales_order":
            self._track_unbilled(record, None)
            self._refresh_credit_hold(record["customer_id"])

    def _before_delete(self, kind: str, record: Record) -> None:
        if kind == "invoice":
            raise DomainError("INVALID_OPERATION", f"invoice {record['number']} is posted and cannot be deleted")
        if kind == "sales_order" and any(line["quantity_fulfilled"] or line["quantity_billed"]
                                         for line in record["lines"]):
            raise DomainError("INVALID_OPERATION", f"sales order {record['number']} has fulfillments or invoices")
        if kind == "customer" and self.find("sales_order", "customer_id", record["id"]):
            raise DomainError("INVALID_OPERATION", f"customer {record['number']} has transactions")
        if kind == "sales_order" and record["status"] != "pending_approval":
            self._release_stock(record)

    def _price_lines(self, record: Record) -> None:
        total = ZERO
        for line in record["lines"]:
            item = self.get("item", line["item_id"])
            if item.get("discontinued"):
                raise DomainError("INVALID_REFERENCE", f"item {item['sku']} is discontinued", ("lines",))
            if line["quantity"] <= 0:
                raise DomainError("INVALID_VALUE", "line quantity must be positive", ("lines",))
            if line.get("rate") is None:
                line["rate"] = item.get("price") or ZERO
            line["amount"] = (line["quantity"] * line["rate"]).quantize(CENT)
            for counter in ("quantity_committed", "quantity_backordered", "quantity_fulfilled", "quantity_billed"):
                line.setdefault(counter, ZERO)
            total += line["amount"]
        record["total"] = total

    def _commit_stock(self, order: Record) -> None:
        lines = []
        for line in order["lines"]:
            item = self.get("item", line["item_id"])
            committed = max(ZERO, min(line["quantity"], item["quantity_available"]))
            lines.append({**line, "quantity_committed": committed,
                          "quantity_backordered": line["quantity"] - committed})
            self._move_stock(item["id"], committed=committed)
        self.store.put("sales_order", {**self.get("sales_order", order["id"]), "lines": lines})

    def _release_stock(self, order: Record) -> None:
        for line in order["lines"]:
            if line["quantity_committed"]:
                self._move_stock(line["item_id"], committed=-line["quantity_committed"])

    def _move_stock(self, item_id: str, committed: Decimal = ZERO, on_hand: Decimal = ZERO) -> None:
        item = self.get("item", item_id)
        new_committed = item["quantity_committed"] + committed
        new_on_hand = item["quantity_on_hand"] + on_hand
        self.touch("item", item_id, {"quantity_committed": new_committed, "quantity_on_hand": new_on_hand,
                                     "quantity_available": new_on_hand - new_committed})

    def _ship(self, fulfillment: Record) -> None:
        order = self.get("sales_order", fulfillment["sales_order_id"])
        shipped = {line["item_id"]: line["quantity"] for line in fulfillment["lines"]}
        lines = []
        for line in order["lines"]:
            quantity = min(shipped.pop(line["item_id"], ZERO), line["quantity_committed"] - line["quantity_fulfilled"])
            if quantity:
                self._move_stock(line["item_id"], committed=-quantity, on_hand=-quantity)
            lines.append({**line, "quantity_fulfilled": line["quantity_fulfilled"] + quantity})
        complete = all(line["quantity_fulfilled"] >= line["quantity"] for line in lines)
        shipped_order = self.touch("sales_order", order["id"],
                                   {"lines": lines, "status": "pending_billing" if complete else "partially_fulfilled"})
        self._track_unbilled(order, shipped_order)

    def _bill(self, invoice: Record) -> None:
        customer = self.get("customer", invoice["customer_id"])
        self._set_balance(customer, customer["balance"] + invoice["amount"])
        if invoice.get("sales_order_id"):
            order = self.get("sales_order", invoice["sales_order_id"])
            billed = {line["item_id"]: line["quantity"] for line in invoice["lines"]}
            lines = [{**line, "quantity_billed": line["quantity_billed"] + billed.pop(line["item_id"], ZERO)}
                     for line in order["lines"]]
            done = all(line["quantity_billed"] >= line["quantity"] for line in lines)
            billed_order = self.touch("sales_order", order["id"],
                                      {"lines": lines, "status": "billed" if done else order["status"]})
            self._track_unbilled(order, billed_order)

    def _receive(self, payment: Record) -> None:
        for application in payment["applications"]:
            invoice = self.get("invoice", application["invoice_id"])
            due = invoice["amount_due"] - application["amount"]
            self.touch("invoice", invoice["id"], {"amount_due": due, "status": "paid_in_full" if due == 0 else "open"})
        customer = self.get("customer", payment["customer_id"])
        self._set_balance(customer, customer["balance"] - payment["amount"])

    def _set_balance(self, customer: Record, balance: Decimal) -> None:
        updated = {**customer, "balance": balance}
        self.touch("customer", customer["id"], {"balance": balance,
                                                "credit_hold": self._on_credit_hold(updated, extra=ZERO)})

    def _refresh_credit_hold(self, customer_id: str) -> None:
        customer = self.get("customer", customer_id)
        held = self._on_credit_hold(customer, extra=ZERO)
        if held != customer["credit_hold"]:
            self.touch("customer", customer_id, {"credit_hold": held})

    def _track_unbilled(self, before: Record | None, after: Record | None) -> None:
        """Keep each customer's `unbilled_orders` (open orders not yet billed) in step with an order write.

        A derived figure, written without an event or a new modified_at, like committed stock on lines.
        """
        deltas: dict[str, Decimal] = {}
        for order, sign in ((before, -1), (after, 1)):
            if order is not None:
                deltas[order["customer_id"]] = deltas.get(order["customer_id"], ZERO) + sign * _unbilled(order)
        for customer_id, delta in deltas.items():
            if delta:
                customer = self.get("customer", customer_id)
                self.store.put("customer", {**customer, "unbilled_orders": customer["unbilled_orders"] + delta})

    @staticmethod
    def _exposure(customer: Record) -> Decimal:
        """Balance plus the unbilled value of the customer's open orders."""
        return (customer.get("balance") or ZERO) + (customer.get("unbilled_orders") or ZERO)

    def _on_credit_hold(self, customer: Record, extra: Decimal) -> bool:
        override = customer.get("credit_hold_override") or "AUTO"
        if override != "AUTO":
            return override == "ON"
        limit = customer.get("credit_limit")
        return limit is not None and self._exposure(customer) + extra > limit


def _unbilled(order: Record) -> Decimal:
    """The value of an open order's lines not billed yet, to the cent (zero for other statuses)."""
    if order["status"] not in OPEN_ORDER_STATUSES:
        return ZERO
    return sum(((line["amount"] * (line["quantity"] - line["quantity_billed"]) / line["quantity"]).quantize(CENT)
                for line in order["lines"]), ZERO)
