"""Volume scenarios (level 4): a surge of business activity, acted out by Locust, while the connector syncs.

Each runs one profile (profiles.py) at its CI scale and pace in the catalogue; `syncert surge --profile P
--scale N` runs one at any scale. The ERP answers as a busy NetSuite account does during the surge (its
latency and concurrency limit, the profile's `erp`).

Before the surge the connector links the accounts and items the business will use; then Locust's users
close deals, post the invoice run and payments (or import accounts), and interactive ERP users work, while
the connector runs (a service keeps running; a command is run once a second, as a scheduler would). When
the surge is over the connector has a while to catch up. The verdict:
every change reached its target (reconciled per business key: nothing lost or duplicated), the sync lag
and the API calls per synced record within the profile's thresholds, and the ERP's interactive users not
slowed beyond the threshold. The figures and charts are in the report either way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from syncert.harness.charts import surge_charts
from syncert.harness.pytest_plugin import scenario
from syncert.harness.runner import ScenarioRun
from syncert.harness.surge import LagMonitor, SurgeSettings, locust_run, measure, session_timeouts
from syncert.scenarios.setups import journal_mark, products_ready, require, seed_in_batches
from syncert.scenarios.volume.profiles import PROFILES, SurgeProfile

CATCH_UP_S = 120.0  # after the surge, the connector's time to sync what is left (at a scale asked for)
PLANNED_SHARE = 0.75  # of the changes the profile plans, those the users must have made for a verdict
CI_CATCH_UP_S = 45.0  # the same at a profile's CI scale (a correct connector needs a few seconds)
PROGRESS_EVERY_S = 10.0
CYCLE_EVERY_S = 1.0  # a command-mode connector is run this often during a surge (a scheduler's period)


def run_surge(sync: ScenarioRun, profile: SurgeProfile, settings: SurgeSettings, scratch: Path,
              say: Callable[..., None]) -> None:
    """Prepare, surge, catch up, measure and judge: at `settings.scale`, or the profile's CI scale and pace;
    a progress line through `say` every PROGRESS_EVERY_S."""
    scale, pace = (settings.scale, 1.0) if settings.scale else (profile.ci_scale, profile.ci_pace)
    catch_up_s = CATCH_UP_S if settings.scale else CI_CATCH_UP_S
    profile = profile.paced(pace)
    say(f"\n    {profile.id} x{scale:g}: the connector links the accounts and items the surge will use")
    try:
        base = _prepare(sync, profile, scale)
        if profile.erp.concurrency is not None:
            sync.set_limits("erp", concurrency=profile.erp.concurrency)
        if profile.erp.latency_ms:
            sync.set_latency("erp", profile.erp.latency_ms)
        urls = {side: sync.host.sides[side].listener.url for side in ("crm", "erp")}
        monitor = LagMonitor(urls, sync.host.admin_token, profile.flows, on_poll=_progress_lines(profile, say))
        monitor.mark_base()
        marks = {side: journal_mark(sync, side) for side in ("crm", "erp")}
        users = sum(profile.user_counts(scale).values())
        with locust_run(profile.id, profile.seconds, users, SurgeSettings(scale, settings.workers, pace), urls,
                        sync.host.admin_token, base, scratch) as locust, \
                session_timeouts(urls["crm"], sync.host.admin_token, profile.crm_session_s):
            monitor.t0 = locust.t0
            monitor.start()
            try:
                sync.run_until(lambda _: not locust.running(), deadline_s=locust.run_s + 30, max_cycles=10_000,
                               through_failures=True, every_s=CYCLE_EVERY_S)
                locust.wait(timeout_s=60)
                require(time.time() >= locust.t0 + profile.seconds, "Locust stopped before the surge was over: "
                        "something ended it (the surge's figures would not be the profile's)")
                for side in ("crm", "erp"):
                    sync.users_acted(side)  # the stock their shipments took, the balances their payments changed
                sync.run_until(lambda _: monitor.converged(), deadline_s=catch_up_s, max_cycles=10_000,
                               through_failures=True, every_s=CYCLE_EVERY_S)
            finally:
                monitor.stop()
    finally:
        say(f"  {sync.info.id:<21} ", end="")  # the verdict ends this line, as it ends every scenario's
    require(monitor.error is None, monitor.error or "")
    journal = {side: [e for e in sync.journal(side) if e["seq"] > marks[side]] for side in ("crm", "erp")}
    metrics = measure(monitor, journal, locust, [(phase.name, phase.seconds) for phase in profile.phases])
    sync.evidence.attachments.update(surge_charts(metrics, f"{profile.id} x{scale:g}"))
    summary = {"profile": profile.id, "scale": scale, "pace": pace, "locust_workers": settings.workers,
               **metrics.summary}
    sync.record_check("surge", summary)
    _require_the_planned_surge(profile, scale, summary)
    _judge(sync, profile, summary)


def _require_the_planned_surge(profile: SurgeProfile, scale: float, summary: dict[str, Any]) -> None:
    """The surge happened as the profile plans it (a Locust that was stopped or starved makes a thinner one,
    which proves nothing), and the interactive users were timed before and during it."""
    made = {flow: summary["flows"][flow]["changes"] for flow in summary["flows"]}
    short = {flow: f"{made[flow]} of {planned:.0f} planned" for flow, planned in profile.planned_changes(scale).items()
             if flow in made and made[flow] < PLANNED_SHARE * planned}
    require(not short, f"the surge did not happen as planned ({short}): Locust's users were stopped or starved (on a "
                       "busy machine, give Locust more processes: --workers N)")
    interactive = summary["interactive_ms"]
    require("before" in interactive and "during" in interactive,
            f"the ERP's interactive users were not timed both before and during the surge ({sorted(interactive)})")


def _progress_lines(profile: SurgeProfile, say: Callable[..., None]) -> Callable[[LagMonitor], None]:
    last = [0.0]

    def tell(monitor: LagMonitor) -> None:
        now = time.time()
        if now - last[0] < PROGRESS_EVERY_S or monitor.t0 is None:
            return
        last[0] = now
        phase = profile.phase_at(now - monitor.t0)
        synced = sum(1 for s in monitor.syncs.values() if s.visible_at is not None)
        stage = phase.name if phase else ("starting" if now < monitor.t0 else "catching up")
        say(f"    {now - monitor.t0:>5.0f} s  {stage:<14} {len(monitor.syncs):>6} changes {synced:>6} synced  "
            f"backlog {sum(monitor.backlog_now().values())}")
    return tell


def _prepare(sync: ScenarioRun, profile: SurgeProfile, scale: float) -> dict[str, Any]:
    """What exists before the surge, synced by the connector: linked accounts and items with a CRM price."""
    entries: dict[str, str] = {}
    if profile.items:
        entries = products_ready(sync, [{"sku": f"SURGE-{n:03d}", "name": f"Surge item {n}", "price": f"{10 + n}.50",
                                         "quantity_on_hand": "100000"} for n in range(profile.items)])
    accounts = round(profile.accounts * scale)
    if accounts:
        seed_in_batches(sync, "crm", "account", [{"name": f"Surge Buyer {n:05d}"} for n in range(accounts)])
        linked = sync.run_until(lambda run: all(a.get("erp_customer_id") for a in run.state("crm")["account"]),
                                deadline_s=300, max_cycles=10)
        require(linked, f"the {accounts} accounts of the surge were not linked to ERP customers before it began")
    if not profile.items:  # records for the interactive ERP users to open
        sync.seed("erp", {"item": [{"sku": f"DESK-{n}", "name": f"Desk item {n}", "price": "1.00"} for n in range(5)]})
    crm, erp = sync.state("crm"), sync.state("erp")
    return {"accounts": [a["id"] for a in crm["account"]], "customers": [c["id"] for c in erp["customer"]],
            "entries": [{"id": entry} for entry in entries.values()], "items": [i["id"] for i in erp["item"]]}


def _judge(sync: ScenarioRun, profile: SurgeProfile, summary: dict[str, Any]) -> None:
    require(summary["changes"] > 0, "the surge made no business change (Locust's users did nothing)")
    assert not summary["sources_made_by_connector"], (
        f"the connector made records only the business makes ({summary['sources_made_by_connector']}): no "
        "flow creates them, and they are not the surge's changes")
    refused = {name: f["failures"] for name, f in summary["business_activity"].items() if f["failures"]}
    require(not refused, f"Locust's business users were refused: {refused} (the surge did not happen as planned)")
    limits = profile.thresholds
    for side, throttled in summary["throttled"].items():  # side by side: cheap calls elsewhere dilute nothing
        calls = summary["api_calls"][side]
        assert throttled <= limits.throttled_share * calls, (
            f"{throttled} of the connector's {calls} {side.upper()} requests were refused for going over a limit: "
            f"over the profile's {limits.throttled_share:.0%} (it hammers a throttled system instead of easing off)")
    for flow in profile.flows:
        result = sync.reconcile(flow)
        assert result.all_synced, f"after the surge, {flow}: {result.explain()}"
    assert not summary["not_synced"], (f"{summary['not_synced']} of {summary['changes']} changes made in the "
                                       f"surge never reached their target")
    assert summary["lag_p95_s"] <= limits.lag_p95_s, (f"sync lag p95 {summary['lag_p95_s']} s is over the "
                                                      f"profile's {limits.lag_p95_s} s")
    assert summary["api_calls_per_record"] <= limits.calls_per_record, (
        f"{summary['api_calls_per_record']} API calls per synced record, over the profile's "
        f"{limits.calls_per_record}")
    interactive = summary["interactive_ms"]
    before, during = interactive["before"]["p95_ms"], interactive["during"]["p95_ms"]
    assert during <= limits.interactive_slowdown * before + 50, (
        f"the ERP's interactive users waited {during:.0f} ms (p95) during the surge, {before:.0f} ms before "
        f"it: over {limits.interactive_slowdown:g} times")


def _surge_scenario(profile: SurgeProfile) -> Any:
    @scenario(id=profile.scenario_id, category="volume", flows=profile.flows, level=4, intent=profile.title,
              expected_s=profile.seconds * profile.ci_pace + 15)
    def test(sync: ScenarioRun, surge_settings: SurgeSettings, tmp_path: Path,
             syncert_progress: Callable[..., None]) -> None:
        run_surge(sync, profile, surge_settings, tmp_path, syncert_progress)
    return test


test_month_end = _surge_scenario(PROFILES["month-end"])
test_black_friday = _surge_scenario(PROFILES["black-friday"])
test_nightly_backfill = _surge_scenario(PROFILES["nightly-backfill"])
test_soak = _surge_scenario(PROFILES["soak"])
