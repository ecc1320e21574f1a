"""The canonical domain: record kinds, their fields and the errors an engine raises.

Engines validate and store canonical records; dialects translate vendor shapes to and from them.
Field names here are the canonical names used by scenarios, checks and the field maps in contracts/.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

FieldType = Literal[
    "string", "email", "url", "phone", "text", "decimal", "integer", "boolean", "date", "datetime",
    "reference", "picklist", "address", "lines",
]


@dataclass(frozen=True)
class Field:
    """One canonical field: its type and the rules the engine enforces on writes."""

    name: str
    type: FieldType
    length: int | None = None
    required: bool = False
    unique: bool = False
    indexed: bool = False  # looked up by value (external ids); implied by unique and by references
    read_only: bool = False
    values: tuple[str, ...] = ()
    references: str | None = None
    default: Any = None
    line_fields: tuple[Field, ...] = ()


@dataclass(frozen=True)
class Kind:
    """A record kind (account, sales_order, ...) and its fields."""

    name: str
    fields: tuple[Field, ...]
    by_name: dict[str, Field] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {f.name: f for f in self.fields})

    @property
    def unique_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.unique)

    @property
    def indexed_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.unique or f.indexed or f.type == "reference")


SYSTEM_FIELDS = ("id", "created_at", "modified_at", "is_deleted", "deleted_at")

ADDRESS_PARTS = ("street", "city", "state", "postal_code", "country")


@dataclass(frozen=True)
class ValidationRule:
    """A validation the system's administrators added: a write of `kind` whose `field_name` equals `value` is
    refused with `message` (VALIDATION_RULE); `on_refused` is told of each refusal."""

    kind: str
    field_name: str
    value: Any
    message: str
    on_refused: Callable[[], None] | None = None


class DomainError(Exception):
    """A write the engine refuses. `code` is canonical; dialects map it to vendor error codes.

    `fields` are canonical field names of `kind` (set by the engine to the kind being written).
    """

    def __init__(self, code: str, message: str, fields: tuple[str, ...] = (), kind: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = fields
        self.kind = kind


def short_repr(value: Any, limit: int = 60) -> str:
    """repr() cut to `limit` characters, for error messages that quote what the client sent."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class NotFound(DomainError):
    def __init__(self, kind: str, record_id: str):
        super().__init__("NOT_FOUND", f"{kind} {record_id!r} does not exist")


@dataclass(frozen=True)
class ChangeEvent:
    """A state change, published to webhook subscribers and change feeds."""

    system: str
    kind: str
    record_id: str
    operation: Literal["created", "updated", "deleted"]
    at: str
    changed_fields: tuple[str, ...] = ()
    values: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)  # of the changed fields, after


def _f(name: str, type_: FieldType, **kw: Any) -> Field:
    return Field(name, type_, **kw)


# Generic canonical limits. A vendor's own, shorter limits live in its field map (contracts/<dialect>/).
NAME_LENGTH = 255
PHONE_LENGTH = 40
EMAIL_LENGTH = 254  # RFC 5321
ID_LENGTH = 255
NUMBER_LENGTH = 40
TEXT_LENGTH = 4000

CURRENCIES = ("USD", "EUR", "GBP", "CAD", "AUD", "JPY")
OPPORTUNITY_STAGES = ("Prospecting", "Qualification", "Needs Analysis", "Proposal", "Negotiation",
                      "Closed Won", "Closed Lost")
COMMITMENT_STATUSES = ("Proposed", "Submitted", "Committed", "Rejected")
INVOICE_STATUSES = ("None", "Invoiced", "Partially Paid", "Paid")

CRM_KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("account", (
        _f("name", "string", length=NAME_LENGTH, required=True),
        _f("phone", "phone", length=PHONE_LENGTH),
        _f("website", "url", length=NAME_LENGTH),
        _f("industry", "picklist", values=("Agriculture", "Banking", "Construction", "Education",
                                           "Manufacturing", "Retail", "Technology", "Other")),
        _f("billing_address", "address"),
        _f("shipping_address", "address"),
        _f("erp_customer_id", "string", length=ID_LENGTH, unique=True),
        _f("credit_status", "picklist", values=("OK", "On Hold", "Unknown")),
        _f("outstanding_balance", "decimal"),
    )),
    Kind("contact", (
        _f("account_id", "reference", references="account"),
        _f("first_name", "string", length=NAME_LENGTH),
        _f("last_name", "string", length=NAME_LENGTH, required=True),
        _f("email", "email", length=EMAIL_LENGTH),
        _f("phone", "phone", length=PHONE_LENGTH),
        _f("role", "string", length=NAME_LENGTH),
        _f("primary", "boolean", default=False),
        _f("erp_contact_id", "string", length=ID_LENGTH, unique=True),
    )),
    Kind("product", (
        _f("sku", "string", length=NAME_LENGTH, indexed=True),  # Salesforce's ProductCode is not unique
        _f("name", "string", length=NAME_LENGTH, required=True),
        _f("list_price", "decimal"),
        _f("currency", "picklist", values=CURRENCIES, default="USD"),
        _f("active", "boolean", default=True),
        _f("quantity_available", "decimal"),
        _f("erp_item_id", "string", length=ID_LENGTH, unique=True),
    )),
    Kind("pricebook", (
        _f("name", "string", length=NAME_LENGTH, required=True),
        _f("is_standard", "boolean", default=False, indexed=True),
        _f("active", "boolean", default=True),
    )),
    Kind("pricebook_entry", (
        _f("pricebook_id", "reference", references="pricebook", required=True),
        _f("product_id", "reference", references="product", required=True),
        _f("unit_price", "decimal", required=True),
        _f("currency", "picklist", values=CURRENCIES, default="USD"),
        _f("active", "boolean", default=True),
    )),
    Kind("opportunity", (
        _f("account_id", "reference", references="account"),
        _f("name", "string", length=NAME_LENGTH, required=True),
        _f("stage", "picklist", values=OPPORTUNITY_STAGES, required=True),
        _f("close_date", "date", required=True),
        _f("currency", "picklist", values=CURRENCIES, default="USD"),
        _f("amount", "decimal"),
        _f("pricebook_id", "reference", references="pricebook"),
        _f("erp_order_id", "string", length=ID_LENGTH, unique=True),
        _f("commitment_status", "picklist", values=COMMITMENT_STATUSES, default="Proposed"),
        _f("invoice_status", "picklist", values=INVOICE_STATUSES, default="None"),
        _f("payment_status", "picklist", values=("Unpaid", "Partially Paid", "Paid")),
        _f("external_id", "string", length=ID_LENGTH, unique=True),
    )),
    Kind("opportunity_line_item", (
        _f("opportunity_id", "reference", references="opportunity", required=True),
        _f("pricebook_entry_id", "reference", references="pricebook_entry", required=True),
        _f("product_id", "reference", references="product", read_only=True),
        _f("quantity", "decimal", required=True),
        _f("unit_price", "decimal"),
        _f("discount", "decimal"),
        _f("total_price", "decimal", read_only=True),
    )),
)}

ORDER_LINE_FIELDS = (
    _f("item_id", "reference", references="item", required=True),
    _f("quantity", "decimal", required=True),
    _f("rate", "decimal"),
    _f("amount", "decimal", read_only=True),
    _f("quantity_committed", "decimal", read_only=True),
    _f("quantity_backordered", "decimal", read_only=True),
    _f("quantity_fulfilled", "decimal", read_only=True),
    _f("quantity_billed", "decimal", read_only=True),
)

ERP_KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("customer", (
        _f("number", "string", length=NUMBER_LENGTH, unique=True),
        _f("name", "string", length=NAME_LENGTH, required=True),
        _f("email", "email", length=EMAIL_LENGTH),
        _f("phone", "phone", length=PHONE_LENGTH),
        _f("subsidiary", "string", length=ID_LENGTH, default="1"),
        _f("billing_address", "address"),
        _f("shipping_address", "address"),
        _f("payment_terms", "picklist", values=("Net 15", "Net 30", "Net 60", "Due on receipt"),
           default="Net 30"),
        _f("credit_limit", "decimal"),
        _f("credit_hold_override", "picklist", values=("AUTO", "ON", "OFF"), default="AUTO"),
        _f("credit_hold", "boolean", read_only=True, default=False),
        _f("currency", "picklist", values=CURRENCIES, default="USD"),
        _f("crm_id", "string", length=ID_LENGTH),
        _f("balance", "decimal", read_only=True),
        _f("unbilled_orders", "decimal", read_only=True),  # open orders not yet billed (derived)
        _f("inactive", "boolean", default=False),
        _f("external_id", "string", length=ID_LENGTH, unique=True),
    )),
    Kind("contact", (  # a person at a customer; deleted with its customer
        _f("customer_id", "reference", references="customer", required=True),
        _f("first_name", "string", length=NAME_LENGTH),
        _f("last_name", "string", length=NAME_LENGTH, required=True),
        _f("email", "email", length=EMAIL_LENGTH),
        _f("phone", "phone", length=PHONE_LENGTH),
        _f("role", "string", length=NAME_LENGTH),  # job title; the CRM contact's `role`
        _f("crm_id", "string", length=ID_LENGTH, indexed=True),
        _f("inactive", "boolean", default=False),
        _f("external_id", "string", length=ID_LENGTH, unique=True),
    )),
    Kind("item", (
        _f("sku", "string", length=NAME_LENGTH, required=True, unique=True),
        _f("name", "string", length=NAME_LENGTH),
        _f("price", "decimal"),
        _f("quantity_on_hand", "decimal", default=0),
        _f("quantity_committed", "decimal", read_only=True),
        _f("quantity_available", "decimal", read_only=True),
        _f("discontinued", "boolean", default=False),
        _f("external_id", "string", length=ID_LENGTH, unique=True),
    )),
    Kind("sales_order", (
        _f("number", "string", length=NUMBER_LENGTH, read_only=True, unique=True),
        _f("customer_id", "reference", references="customer", required=True),
        _f("order_date", "date"),
        _f("currency", "picklist", values=CURRENCIES),
        _f("status", "picklist", values=("pending_approval", "pending_fulfillment", "partially_fulfilled",
                                         "pending_billing", "billed", "closed")),
        _f("hold_reason", "string", read_only=True),
        _f("lines", "lines", required=True, line_fields=ORDER_LINE_FIELDS),
        _f("total", "decimal", read_only=True),
        _f("memo", "string", length=TEXT_LENGTH),
        _f("crm_id", "string", length=ID_LENGTH),
        _f("external_id", "string", length=ID_LENGTH, unique=True),
    )),
    Kind("item_fulfillment", (
        _f("sales_order_id", "reference", references="sales_order", required=True),
        _f("lines", "lines", line_fields=(
            _f("item_id", "reference", references="item", required=True),
            _f("quantity", "decimal", required=True),
        )),
        _f("ship_date", "date"),
        _f("external_id", "string", length=ID_LENGTH, unique=True),
    )),
    Kind("invoice", (
        _f("number", "string", length=NUMBER_LENGTH, read_only=True, unique=True),
        _f("sales_order_id", "reference", references="sales_order"),
        _f("customer_id", "reference", references="customer"),
        _f("invoice_date", "date"),
        _f("due_date", "date", read_only=True),
        _f("lines", "lines", line_fields=ORDER_LINE_FIELDS[:4]),  # item, quantity, rate, amount
        _f("amount", "decimal", read_only=True),
        _f("amount_due", "decimal", read_only=True),
        _f("status", "picklist", values=("open", "paid_in_full"), read_only=True),
        _f("posted", "boolean", read_only=True),
        _f("memo", "string", length=TEXT_LENGTH),
        _f("external_id", "string", length=ID_LENGTH, unique=True),
    )),
    Kind("payment", (
        _f("customer_id", "reference", references="customer", required=True),
        _f("amount", "decimal", required=True),
        _f("payment_date", "date"),
        _f("applications", "lines", line_fields=(
            _f("invoice_id", "reference", references="invoice", required=True),
            _f("amount", "decimal", required=True),
        )),
        _f("memo", "string", length=TEXT_LENGTH),
        _f("external_id", "string", length=ID_LENGTH, unique=True),
    )),
)}
