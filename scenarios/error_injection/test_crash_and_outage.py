"""Level-4 scenarios: the connector killed in the middle of a cycle, the ERP down for a while, the ERP in a
maintenance window. Each time the work catches up: every effect exactly once, nothing lost, nothing given up."""

from __future__ import annotations

import time
from collections.abc import Callable

from syncert.harness.checks import retry_after_violations, retry_chains, retry_storms
from syncert.harness.pytest_plugin import scenario
from syncert.harness.runner import ScenarioRun, ServiceLauncher
from syncert.scenarios.setups import account_ready, assert_converges, close_deal, products_ready, require

ITEMS = [{"sku": "CR-10", "name": "Crash-proof widget", "price": "40.00", "quantity_on_hand": "500"},
         {"sku": "CR-20", "name": "Crash-proof gadget", "price": "12.50", "quantity_on_hand": "500"}]
OUTAGE_S = 24.0  # longer than a connector retries one request (the reference: at most ~16 s), so cycles fail;
# both windows open at the connector's first (third) ERP call after they are set, however slow it is to get there
MAINTENANCE_S = 5.0


def _new_accounts(sync: ScenarioRun, names: list[str]) -> list[str]:
    """Accounts created by users one at a time (each with a modification stamp of its own)."""
    return [sync.seed("crm", {"account": [{"name": name}]})["account"][0] for name in names]


def _deal(sync: ScenarioRun, account: str, entries: dict[str, str], quantity: int) -> str:
    return close_deal(sync, account, [{"pricebook_entry_id": entries["CR-10"], "quantity": quantity},
                                      {"pricebook_entry_id": entries["CR-20"], "quantity": 1}])


def _exactly_once(sync: ScenarioRun, stage: str, accounts: list[str], deals: list[str]) -> None:
    """Every account is one ERP customer and every deal one sales order: none missing, none made twice."""
    erp = sync.state("erp")
    erp_customers, erp_orders = erp.get("customer", []), erp.get("sales_order", [])
    customers = [c for c in erp_customers if c.get("crm_id") in accounts]
    orders = [o for o in erp_orders if o.get("crm_id") in deals]
    sync.record_check(f"exactly once {stage}", {"accounts": len(accounts), "customers": len(customers),
                                                "deals": len(deals), "sales_orders": len(orders)})
    assert len(customers) == len(accounts) == len(erp_customers), (
        f"{stage}: {len(accounts)} accounts became {len(customers)} linked customers "
        f"({len(erp_customers)} customers in the ERP)")
    assert len(orders) == len(deals) == len(erp_orders), (
        f"{stage}: {len(deals)} won deals became {len(orders)} linked sales orders "
        f"({len(erp_orders)} orders in the ERP)")


def _cycles_until_window_closes(sync: ScenarioRun, rule_id: str, between: Callable[[], None] | None = None,
                                deadline_s: float = 60.0) -> list[str]:
    """Run cycles through failures (recorded, never stopping the run) until the ERP fault window `rule_id` has
    opened (the connector got there) and closed again; a service gets a second between checks. `between()`
    runs once, after the first cycle. Returns the failures."""
    failures, ends = [], time.monotonic() + deadline_s
    while time.monotonic() < ends:
        result = sync.cycle()
        if not result.ok:
            failures.append(result.summary())
            sync.evidence.notes.append(f"cycle {len(sync.evidence.cycles)} {result.summary()}")
        if between is not None:
            between()
            between = None
        open_until = sync.fault("erp", rule_id)["open_until"]
        if open_until is not None and time.time() >= open_until:
            break
        if isinstance(sync.launcher, ServiceLauncher):
            time.sleep(1.0)
    return failures


@scenario(id="ERR-CRASH-01", category="error_injection", flows=("accounts", "items", "orders"), level=4,
          intent="Killed with SIGKILL at several points of a cycle (after an ERP create, among the order creates, "
                 "before the links are written back), the connector reruns to every effect exactly once")
def test_killed_mid_cycle_then_rerun(sync: ScenarioRun) -> None:
    entries = products_ready(sync, ITEMS)

    # 1. killed once the ERP has applied the first customer create (its answer never arrives)
    point = sync.arm_kill("erp", kind="customer", access="write", on_call=1)
    accounts = _new_accounts(sync, [f"Crash Customer {n}" for n in range(3)])
    sync.cycle_killed_at(point)
    assert_converges(sync, "accounts", stage=f"rerun after the kill at {point.description}")
    _exactly_once(sync, "after the first kill", accounts, [])

    # 2. killed in the middle of the order creates, the second one not applied yet: nothing in the ERP (no
    # order, no change an ERP-to-CRM flow would copy back) brings its deal to the connector's attention again
    point = sync.arm_kill("erp", kind="sales_order", access="write", on_call=2, applied=False)
    deals = [_deal(sync, account, entries, quantity) for quantity, account in enumerate(accounts, 2)]
    sync.cycle_killed_at(point)
    assert_converges(sync, "accounts", "orders", stage=f"rerun after the kill at {point.description}")
    _exactly_once(sync, "after the second kill", accounts, deals)

    # 3. killed just before the links are written back to the CRM (the customers exist in the ERP): with
    # everything else in agreement, the first CRM write is that write-back, one record or a batch of them
    point = sync.arm_kill("crm", access="write", on_call=1, applied=False)
    accounts += _new_accounts(sync, [f"Late Crash Customer {n}" for n in range(3)])
    sync.cycle_killed_at(point)
    assert_converges(sync, "accounts", "orders", stage=f"rerun after the kill at {point.description}")
    _exactly_once(sync, "after the third kill", accounts, deals)


@scenario(id="ERR-OUTAGE-01", category="error_injection", flows=("accounts", "items", "orders"), level=4, expected_s=27,
          intent="While the ERP is down CRM users keep creating and editing accounts and closing deals; once it is "
                 "back everything catches up exactly once, with nothing given up")
def test_erp_outage_then_catch_up(sync: ScenarioRun) -> None:
    entries = products_ready(sync, ITEMS)
    regular = account_ready(sync, "Regular Buyer Ltd")

    outage = sync.inject("erp", "unavailable", for_s=OUTAGE_S)  # from its next call on, the ERP is down a while
    accounts = [regular, *_new_accounts(sync, ["Outage Buyer 1", "Outage Buyer 2"])]
    sync.edit("crm", "account", regular, {"phone": "+1 555 0100"})
    deals = [_deal(sync, regular, entries, 3)]

    def users_keep_working() -> None:
        accounts.extend(_new_accounts(sync, ["Outage Buyer 3"]))
        sync.edit("crm", "account", accounts[1], {"phone": "+1 555 0101"})
        deals.append(_deal(sync, accounts[2], entries, 2))

    failures = _cycles_until_window_closes(sync, outage, users_keep_working)
    refused = [e for e in sync.journal("erp") if (e.get("fault") or "").endswith(":unavailable")]
    sync.record_check("cycles during the outage", {"outage_s": OUTAGE_S, "failed_cycles": len(failures),
                                                   "refused_erp_calls": len(refused)})
    require(bool(refused), "the ERP outage refused no call of the connector")

    assert_converges(sync, "accounts", "orders", stage="after the ERP outage")
    _exactly_once(sync, "after the ERP outage", accounts, deals)
    given_up = sync.workspace.dead_letters()
    assert not given_up, f"records given up for an outage that passed (a transient error): {given_up[:3]}"


@scenario(id="ERR-MAINT-01", category="error_injection", flows=("accounts",), level=4, expected_s=12,
          intent="A maintenance window on the ERP in the middle of a sync is ridden out or failed loudly, never "
                 "stormed with immediate retries, and the accounts catch up exactly once")
def test_erp_maintenance_window(sync: ScenarioRun) -> None:
    sync.settle(cycles=1)  # the connector is up (a service has started) before the window opens
    # from the third ERP call on (a cycle under way), every call meets the maintenance page until it ends
    window = sync.inject("erp", "maintenance", on_call=3, for_s=MAINTENANCE_S)
    accounts = _new_accounts(sync, [f"Maintenance Buyer {n}" for n in range(6)])
    failures = _cycles_until_window_closes(sync, window)
    journal = sync.journal("erp")
    refused = [e for e in journal if (e.get("fault") or "").endswith(":maintenance")]
    require(bool(refused), "the maintenance window refused no call of the connector")

    assert_converges(sync, "accounts", stage="after the maintenance window")
    journal = sync.journal("erp")
    chains = retry_chains(journal)
    storms, early = retry_storms(journal), retry_after_violations(journal)
    sync.record_check("retries through the maintenance window", {
        "refused_erp_calls": len(refused), "failed_cycles": len(failures), "retry_chains": len(chains),
        "longest_chain": max((len(chain.attempts) for chain in chains), default=0),
        "storms": len(storms), "early_retries": len(early)})
    assert not storms, f"{len(storms)} requests retried at once, again and again: " + "; ".join(storms[:3])
    assert not early, f"{len(early)} retries came before their Retry-After: " + "; ".join(early[:3])
    _exactly_once(sync, "after the maintenance window", accounts, [])
    given_up = sync.workspace.dead_letters()
    assert not given_up, f"records given up for a maintenance window that ended: {given_up[:3]}"
