"""Surge profiles: the business activity of a busy period, in phases, with its scale and its thresholds.

A profile is data: the records the systems hold before the surge (linked accounts, synced items), then
phases of a fixed length in which CRM users close deals, the ERP posts its invoice run and payments
come in, while a few interactive ERP users open records and have their latency measured. The scale
multiplies the users that make business records (and the accounts they buy from); interactive users
and phase lengths stay as they are, so a higher scale is a denser surge, not a longer one.

The Locust users (harness/locustfile.py) act out a profile; the volume scenarios (test_surges.py) run it at
the scale of a CI run and judge the thresholds; `syncert surge --profile ID --scale N` runs one at any scale.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

# What the Locust users do in a phase; each is a count of users per unit of scale
CLOSERS, INVOICERS, PAYERS, IMPORTERS = "closers", "invoicers", "payers", "importers"
INTERACTIVE = "interactive"  # ERP users at work, whose latency is measured (not a business activity)
ACTIVITIES = (CLOSERS, INVOICERS, PAYERS, IMPORTERS)


@dataclass(frozen=True)
class Phase:
    """A stretch of the surge: which users act in it, per unit of scale, for how long."""

    name: str
    seconds: float
    users: dict[str, int]  # activity -> users acting in this phase, per unit of scale


@dataclass(frozen=True)
class Thresholds:
    """What a connector must achieve at the scale of a CI run: set between the reference connector's figures
    (with room for these noisy machines) and those of the flawed connector the profile is aimed at."""

    lag_p95_s: float  # source change to target visible, 95th percentile
    calls_per_record: float  # API calls the connector made per record it synced
    throttled_share: float = 0.2  # of the connector's requests, those the simulators refused for a limit
    interactive_slowdown: float = 20.0  # ERP interactive p95 during the surge, as a multiple of before (plus 50 ms)


@dataclass(frozen=True)
class ErpLoad:
    """How the ERP answers during the surge: a NetSuite account at its busiest, not an idle simulator."""

    latency_ms: float = 0.0  # added to every API request
    concurrency: int | None = None  # requests in flight the account allows (the rest refused, Retry-After)


@dataclass(frozen=True)
class SurgeProfile:
    """One busy period: what exists before it, its phases, the flows it exercises, its thresholds."""

    id: str
    scenario_id: str
    title: str
    accounts: int  # accounts already linked to ERP customers, per unit of scale
    items: int  # items synced to CRM products before the surge
    deal_every_s: float  # a closer closes one deal this often (an importer creates one account this often)
    lines_per_deal: int
    interactive_users: int
    phases: tuple[Phase, ...]
    flows: tuple[str, ...]
    thresholds: Thresholds
    erp: ErpLoad = ErpLoad()
    crm_session_s: float | None = None  # the CRM times every session out this often during the surge (None: never)
    ci_scale: float = 0.5  # the volume scenario in the catalogue runs at this scale,
    ci_pace: float = 0.4  # with its phases this much as long: a shorter, thinner surge for a CI gate

    def paced(self, factor: float) -> SurgeProfile:
        """This profile with every phase `factor` times as long."""
        return replace(self, phases=tuple(replace(phase, seconds=phase.seconds * factor) for phase in self.phases))

    @property
    def seconds(self) -> float:
        return sum(phase.seconds for phase in self.phases)

    def users(self, activity: str, scale: float) -> int:
        """How many Locust users do `activity` at `scale` (the most any phase needs; idle outside them)."""
        return max((scaled(phase.users.get(activity, 0), scale) for phase in self.phases), default=0)

    def user_counts(self, scale: float) -> dict[str, int]:
        """Locust users per activity at `scale`: the invoice run and the payments are one clerk each (they
        work in batches), interactive users are not scaled."""
        counts = {activity: self.users(activity, scale) for activity in ACTIVITIES}
        counts[INVOICERS], counts[PAYERS] = min(counts[INVOICERS], 1), min(counts[PAYERS], 1)
        return {**counts, INTERACTIVE: self.interactive_users}

    def planned_changes(self, scale: float) -> dict[str, float]:
        """The source changes the users are to make at `scale`, by flow: deals closed (orders) and accounts
        imported (each phase's users at the profile's rate)."""
        planned = {"orders": 0.0, "accounts": 0.0}
        for phase in self.phases:
            planned["orders"] += scaled(phase.users.get(CLOSERS, 0), scale) * phase.seconds / self.deal_every_s
            planned["accounts"] += scaled(phase.users.get(IMPORTERS, 0), scale) * phase.seconds / self.deal_every_s
        return {flow: count for flow, count in planned.items() if count}

    def phase_at(self, elapsed_s: float) -> Phase | None:
        """The phase running `elapsed_s` after the surge started (None: before it, or over)."""
        if elapsed_s < 0:
            return None
        for phase in self.phases:
            if elapsed_s < phase.seconds:
                return phase
            elapsed_s -= phase.seconds
        return None


def scaled(per_scale: int, scale: float) -> int:
    """Users at `scale` for `per_scale` users per unit of scale (at least one when any)."""
    return 0 if per_scale == 0 else max(1, round(per_scale * scale))


BEFORE = "before"  # the phase in which only interactive users work: their latency before the surge

PROFILES = {profile.id: profile for profile in (
    SurgeProfile(
        id="month-end", scenario_id="VOL-MONTHEND-01",
        title="Month-end: deal closings ramp up to a peak, the invoice run posts a large batch at period close, "
              "payments follow",
        accounts=20, items=8, deal_every_s=1.0, lines_per_deal=2, interactive_users=2,
        phases=(Phase(BEFORE, 8, {}),
                Phase("closings ramp", 12, {CLOSERS: 2}),
                Phase("closings peak", 15, {CLOSERS: 5}),
                Phase("period close", 10, {INVOICERS: 1}),
                Phase("payments", 10, {PAYERS: 1})),
        flows=("accounts", "items", "orders", "invoices", "payments"),
        thresholds=Thresholds(lag_p95_s=15.0, calls_per_record=60.0), erp=ErpLoad(latency_ms=100, concurrency=5)),
    SurgeProfile(
        id="black-friday", scenario_id="VOL-ORDERS-01",
        title="Black Friday: a burst of orders, many small deals closed at once",
        accounts=30, items=12, deal_every_s=0.5, lines_per_deal=1, interactive_users=2,
        phases=(Phase(BEFORE, 8, {}),
                Phase("doors open", 20, {CLOSERS: 8}),
                Phase("afternoon", 10, {CLOSERS: 2})),
        flows=("accounts", "items", "orders"),
        thresholds=Thresholds(lag_p95_s=20.0, calls_per_record=60.0), erp=ErpLoad(latency_ms=150, concurrency=5)),
    SurgeProfile(
        id="nightly-backfill", scenario_id="VOL-BACKFILL-02",
        title="Nightly backfill: a CRM import creates accounts in bulk while the ERP is quiet",
        accounts=0, items=0, deal_every_s=0.05, lines_per_deal=0, interactive_users=2,
        phases=(Phase(BEFORE, 8, {}),
                Phase("import", 20, {IMPORTERS: 2})),
        flows=("accounts",),
        thresholds=Thresholds(lag_p95_s=6.0, calls_per_record=20.0)),
    SurgeProfile(
        id="soak", scenario_id="VOL-SOAK-01",
        title="Soak: a steady trickle of deals, invoices and payments for a long stretch, across the CRM's session "
              "timeouts",
        accounts=10, items=6, deal_every_s=2.0, lines_per_deal=2, interactive_users=1,
        phases=(Phase(BEFORE, 8, {}),
                Phase("trickle", 60, {CLOSERS: 1, INVOICERS: 1, PAYERS: 1})),
        flows=("accounts", "items", "orders", "invoices", "payments"),
        thresholds=Thresholds(lag_p95_s=15.0, calls_per_record=100.0), crm_session_s=5.0, ci_pace=0.3),
)}
