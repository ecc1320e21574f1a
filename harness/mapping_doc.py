"""The mapping in words, for connector authors: per flow, what is paired with what and which fields a
connector reads and writes, in canonical terms and in each vendor's (`syncert mapping`, and the generated
part of docs/protocol.md)."""

from __future__ import annotations

from syncert.harness.mapping import FieldRule, FlowMap, Side, SyncMapping
from syncert.harness.reconciliation import VendorNames

TRANSFORM_WORDS = {"text": "as is", "money": "exact decimal", "quantity": "exact decimal", "date": "calendar date",
                   "boolean": "flag", "not": "negated", "address": "address parts", "lookup": "linked record's",
                   "discounted_price": "unit price * (100 - discount) / 100, exact", "enum": "",
                   "settlement": ""}


def render(mapping: SyncMapping, vendor: VendorNames) -> str:
    """The whole mapping as Markdown."""
    parts = [f"Conflict policy of this mapping: `{mapping.conflict_policy}`."]
    for flow in mapping.flows.values():
        parts.append(_flow(flow, vendor))
    return "\n\n".join(parts) + "\n"


def _name(vendor: VendorNames, side: Side, path: str, kind: str | None = None) -> str:
    """`path` of a kind with its vendor name: "name (Salesforce Account.Name)"."""
    vendor_name = vendor.name(side.system, kind or side.kind, path)
    return f"`{path}` ({vendor_name})"


def _flow(flow: FlowMap, vendor: VendorNames) -> str:
    source, target = flow.source, flow.target
    intent = flow.intent[:1].upper() + flow.intent[1:]
    lines = [f"#### {flow.name}: {source.system.upper()} {source.kind} -> {target.system.upper()} {target.kind}"
             + ("" if flow.flow == flow.name else f" (part of flow `{flow.flow}`)"), "", intent + ".", "",
             f"- Pairs {_name(vendor, source, flow.source_key)} of the {source.kind} with "
             f"{_name(vendor, target, flow.target_key)} of the {target.kind}."]
    for side, word in ((source, "source"), (target, "target")):
        if side.where:
            condition = ", ".join(f"`{path}` = {value!r}" if value != "present" else f"`{path}` set"
                                  for path, value in side.where.items())
            lines.append(f"- Only {word} records with {condition}.")
    lines += ["", f"| {target.system.upper()} {target.kind} field | from {source.system.upper()} {source.kind} "
                  "| how | owner |", "|---|---|---|---|"]
    lines += [_row(rule, target, source, vendor) for rule in flow.fields]
    if flow.lines is not None:
        rules = flow.lines
        child = Side(source.system, rules.child_kind)
        lines += ["", f"Lines: `{target.kind}.{rules.target}` from the {rules.child_kind} records whose "
                      f"`{rules.parent_field}` is the {source.kind}, paired by `{rules.key}`:", "",
                  f"| line field | from {rules.child_kind} | how |", "|---|---|---|"]
        lines += [f"| {_name(vendor, target, f'{rules.target}.{rule.name}')} | "
                  f"{', '.join(_name(vendor, child, s) for s in rule.sources)} | {_how(rule)} |"
                  for rule in rules.fields]
    if flow.returns:
        lines += ["", f"Written back to the {source.kind}:", "",
                  f"| {source.system.upper()} {source.kind} field | from {target.kind} | how | owner |",
                  "|---|---|---|---|"]
        lines += [_row(rule, source, target, vendor) for rule in flow.returns]
    return "\n".join(lines)


def _row(rule: FieldRule, written: Side, read: Side, vendor: VendorNames) -> str:
    return (f"| {_name(vendor, written, rule.name)} | {', '.join(_name(vendor, read, s) for s in rule.sources)} | "
            f"{_how(rule)} | {rule.owner or ''} |")


def _how(rule: FieldRule) -> str:
    how = TRANSFORM_WORDS[rule.transform]
    if rule.transform == "enum":
        how = "; ".join(f"{key} -> {value}" for key, value in rule.options["values"].items())
    elif rule.transform == "lookup":
        how = f"the {rule.options['kind']}'s `{rule.options['field']}`"
    elif rule.transform == "settlement":
        labels = rule.options["labels"]
        how = f"nothing paid -> {labels['unpaid']}; partly -> {labels['partly_paid']}; all -> {labels['paid']}"
    if "fallback" in rule.options:
        how += f"; `{rule.options['fallback']}` when blank"
    return how
