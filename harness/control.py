"""Arranging and reading the two simulators through their control plane (`/_sim/`), as scenarios do.

`SimulatorControl` holds what a scenario does as a user (seed, edit, edits in the middle of a cycle, a
stopped clock, limits, latency, expired sessions, faults) and what the checks read (canonical state, journal);
subclasses only say how a control-plane request is sent: over loopback to a `SimulatorHost`
(harness.runner.ScenarioRun) or into the in-process simulators (harness.inprocess.InProcessVendors).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

SIDES = ("crm", "erp")


class StateMirror:
    """A copy of one simulator's canonical state, brought up to date from pages of its change feed.

    It keeps the last HISTORY versions it saw of each record before the current one (what a stale
    target may still hold)."""

    HISTORY = 8

    def __init__(self) -> None:
        self.since = 0
        self.epoch: int | None = None
        self._records: dict[str, dict[str, dict[str, Any]]] = {}
        self.history: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.deleted: dict[str, dict[str, dict[str, Any]]] = {}  # kind -> id -> its last version
        self.last_changed: set[tuple[str, str]] = set()  # (kind, id) of what the last catch_up brought

    def cursor(self) -> dict[str, int]:
        """Query parameters for the next read (a reset since then answers 409 instead of missing it)."""
        return {"since": self.since} if self.epoch is None else {"since": self.since, "epoch": self.epoch}

    def apply(self, page: dict[str, Any]) -> None:
        for kind in page["kinds"]:
            self._records.setdefault(kind, {})
        for kind, records in page["records"].items():
            for record in records:
                self.last_changed.add((kind, record["id"]))
                previous = self._records[kind].get(record["id"])
                if previous is not None and previous != record:
                    versions = self.history.setdefault(kind, {}).setdefault(record["id"], [])
                    versions.insert(0, previous)
                    del versions[self.HISTORY:]
                self._records[kind][record["id"]] = record
        for kind, ids in page["deleted"].items():
            for record_id in ids:
                last = self._records[kind].pop(record_id, None)
                if last is not None:
                    self.deleted.setdefault(kind, {})[record_id] = last
        self.since, self.epoch = page["next"], page["epoch"]

    def catch_up(self, read_page: Callable[[dict[str, int]], dict[str, Any]]) -> int:
        """Apply pages from `read_page(query parameters)` until none is left; returns how many were read."""
        self.last_changed = set()
        pages = 0
        while True:
            page = read_page(self.cursor())
            self.apply(page)
            pages += 1
            if not page["more"]:
                return pages

    def get(self, kind: str, record_id: str) -> dict[str, Any] | None:
        return self._records.get(kind, {}).get(record_id)

    def records(self) -> dict[str, list[dict[str, Any]]]:
        return {kind: sorted(records.values(), key=lambda r: (r["created_at"], len(r["id"]), r["id"]))
                for kind, records in self._records.items()}


class SimulatorControl:
    """The control plane of a CRM and an ERP simulator, through `_send` (which subclasses implement)."""

    def __init__(self) -> None:
        self._mirrors = {side: StateMirror() for side in SIDES}
        # side -> kind -> id -> the record as the scenario's users last left it (what a connector must not change
        # in fields the side owns); records a trigger will edit mid-cycle are left out
        self.user_values: dict[str, dict[str, dict[str, dict[str, Any]]]] = {side: {} for side in SIDES}
        self._pending_user_edits: set[tuple[str, str, str]] = set()
        self.drifted: dict[str, tuple[str, ...]] = {}  # side -> every drift profile the scenario laid on it
        self.journal_dropped: dict[str, int] = {}  # side -> entries its journal let go (over its byte budget)

    def _send(self, side: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one control-plane request (with the admin token) to `side`; httpx keyword arguments."""
        raise NotImplementedError

    def _control(self, side: str, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(side, method, path, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"scenario setup failed: {method} {path} on the {side.upper()} answered "
                               f"{response.status_code}: {response.text[:300]}")
        return response.json()

    def seed(self, side: str, records: dict[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
        """Create canonical records (see the control plane's seed); returns the new ids by kind."""
        self._catch_up(side)
        ids = self._control(side, "POST", "/_sim/seed", json={"records": records})["ids"]
        self._remember_user_values(side)
        return ids

    def edit(self, side: str, kind: str, record_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change a record as a user would (its version before the edit is kept for `stale` verdicts)."""
        self._catch_up(side)
        edited = self._control(side, "PATCH", f"/_sim/records/{kind}/{record_id}", json=changes)
        self._remember_user_values(side)
        return edited

    def edit_when(self, side: str, kind: str, record_id: str, changes: dict[str, Any], *,
                  after_kind: str | None = None, after_operation: str | None = None, count: int = 1) -> None:
        """Change a record as a user would, in the middle of a cycle: once `side` has answered the connector's
        `count`-th successful API request of `after_kind` and `after_operation` (the journal's canonical names;
        None matches any). That request is tagged `triggered` in the journal; `triggers(side)` tells more."""
        self.state(side)
        self.user_values[side].get(kind, {}).pop(record_id, None)
        self._pending_user_edits.add((side, kind, record_id))
        self._control(side, "POST", "/_sim/triggers", json={
            "after": {"kind": after_kind, "operation": after_operation, "count": count},
            "edit": {"kind": kind, "id": record_id, "changes": changes}})

    def triggers(self, side: str) -> list[dict[str, Any]]:
        """The triggers `edit_when` and `drift_when` set up on `side`: matching requests seen, fired, error."""
        return self._control(side, "GET", "/_sim/triggers")["triggers"]

    def freeze_clock(self, side: str, frozen: bool = True) -> None:
        """Stop `side`'s clock (every record written meanwhile has the same modification stamp), or let it run."""
        self._control(side, "PUT", "/_sim/clock", json={"frozen": frozen})

    def move_clock(self, side: str, offset_s: float) -> None:
        """Set `side`'s clock `offset_s` seconds from wall time (records written from now on carry that time)."""
        self._control(side, "PUT", "/_sim/clock", json={"offset_s": offset_s})

    def set_limits(self, side: str, **limits: Any) -> None:
        self._control(side, "PUT", "/_sim/limits", json=limits)

    def set_latency(self, side: str, latency_ms: float) -> None:
        """Add `latency_ms` to every API request `side` answers."""
        self._control(side, "PUT", "/_sim/latency", json={"latency_ms": latency_ms})

    def inject(self, side: str, fault: str, *, kind: str | None = None, operation: str | None = None,
               access: str | None = None, body: str | None = None, answer: str | None = None, on_call: int = 1,
               calls: int | None = 1, probability: float = 1.0, window_s: tuple[float, float] | None = None,
               for_s: float | None = None, **parameters: Any) -> str:
        """Add a fault rule on `side` (see `simulators.faults.rules`): `fault` (a fault type) on the `on_call`-th
        API call matching `kind`, `operation` and `access` (canonical; None matches any) whose request holds
        the text `body` and whose answer would hold `answer`, for `calls` calls (None: every one), with
        `probability`; or in `window_s` seconds from now; or, with `for_s`, on every matching call for that
        long once it first fires. Only calls the simulator would answer with success count. Returns the
        rule's id."""
        rule: dict[str, Any] = {"match": {"kind": kind, "operation": operation, "access": access, "body": body,
                                          "answer": answer},
                                "on_call": on_call, "calls": calls, "probability": probability,
                                "fault": {"type": fault, **parameters}}
        if for_s is not None:
            rule["for_s"] = for_s
        if window_s is not None:
            origin = self._control(side, "GET", "/_sim/faults")["origin"]
            rule["window_s"] = [time.time() - origin + window_s[0], time.time() - origin + window_s[1]]
        return self._control(side, "POST", "/_sim/faults", json=rule)["rules"][-1]["id"]

    def fault_schedule(self, rules: dict[str, list[dict[str, Any]]], seed: int) -> None:
        """Replace both sides' fault schedules at once, with one seed and one origin for their time windows."""
        origin = time.time()
        for side in SIDES:
            self._control(side, "PUT", "/_sim/faults", json={"seed": seed, "origin": origin,
                                                               "rules": rules.get(side, [])})

    def faults(self, side: str) -> list[dict[str, Any]]:
        """`side`'s fault rules with their counters: seen (matching calls), fired, holding (connections held)."""
        return self._control(side, "GET", "/_sim/faults")["rules"]

    def fault(self, side: str, rule_id: str) -> dict[str, Any]:
        """One of `side`'s fault rules (see `faults`), by the id `inject` returned."""
        return next(rule for rule in self.faults(side) if rule["id"] == rule_id)

    def release_held(self, side: str) -> int:
        """Let every connection `side` holds go now; returns how many there were."""
        return self._control(side, "POST", "/_sim/faults/release")["released"]

    def drift(self, side: str, *profiles: str) -> list[str]:
        """Serve `side`'s API as drifted by these profiles (contracts/drift/ ids) from its next request on,
        replacing any drift in force (none: the API as it was). Returns the profiles in force."""
        answer = self._control(side, "PUT", "/_sim/drift", json={"profiles": list(profiles)})
        self._note_drift(side, profiles)
        return [profile["id"] for profile in answer["profiles"]]

    def _note_drift(self, side: str, profiles: tuple[str, ...]) -> None:
        self.drifted[side] = tuple(dict.fromkeys((*self.drifted.get(side, ()), *profiles)))

    def drift_when(self, side: str, *profiles: str, after_kind: str | None = None,
                   after_operation: str | None = None, count: int = 1) -> None:
        """Lay these drift profiles over `side`'s API (on top of any in force) in the middle of a cycle: once it
        has answered the connector's `count`-th successful API request of `after_kind` and `after_operation`
        (e.g. the first page of an export). `triggers(side)` tells whether it fired."""
        self._control(side, "POST", "/_sim/triggers", json={
            "after": {"kind": after_kind, "operation": after_operation, "count": count},
            "drift": list(profiles)})
        self._note_drift(side, profiles)

    def expire_sessions(self, side: str, after_requests: int = 0) -> None:
        """Expire every access token of `side` once it has answered `after_requests` more API requests."""
        self._control(side, "POST", "/_sim/sessions/expire", json={"after_requests": after_requests})

    def webhook_faults(self, side: str, rules: list[dict[str, Any]], seed: int = 0) -> dict[str, Any]:
        """Set the faults of `side`'s change-event deliveries, replacing any (counts start again): rules
        {"fault": "duplicate"|"reorder"|"drop"|"forge", "kind"?, "on_event"?, "events"?, "probability"?}
        (simulators/webhooks.py). Returns their status, as `webhook_fault_status` does."""
        return self._control(side, "PUT", "/_sim/webhooks/faults", json={"seed": seed, "rules": rules})

    def webhook_fault_status(self, side: str) -> dict[str, Any]:
        """`side`'s delivery fault rules with how many events each saw and acted on, and the events dropped."""
        return self._control(side, "GET", "/_sim/webhooks/faults")

    def webhook_deliveries(self, side: str) -> list[dict[str, Any]]:
        """Every delivery attempt of `side`'s change events, oldest first: event_id, kind, record_id, operation,
        fault, forged (with forged_values), attempt, status (the connector's answer) or error, outcome (ok,
        refused or failed, as the journal's tags), sent_at, answered_at."""
        return self._control(side, "GET", "/_sim/webhooks/deliveries")["deliveries"]

    def simulator_secrets(self) -> list[str]:
        """Every secret both simulators issued (credentials of every rotation, tokens, signatures)."""
        return [secret for side in SIDES for secret in self._control(side, "GET", "/_sim/secrets")["secrets"]]

    def users_acted(self, side: str) -> None:
        """Users changed `side` outside `seed` and `edit` (Locust's, in a surge): what its records hold now
        is theirs (what the connector wrote meanwhile too: scenarios that judge ownership act through
        `seed` and `edit`)."""
        self._remember_user_values(side)

    def _remember_user_values(self, side: str) -> None:
        """Keep, after a user's write, every record it changed (with what the simulator derived from it)."""
        mirrored = self._catch_up(side)
        for kind, record_id in mirrored.last_changed:
            record = mirrored.get(kind, record_id)
            if record is not None and (side, kind, record_id) not in self._pending_user_edits:
                self.user_values[side].setdefault(kind, {})[record_id] = record

    def state(self, side: str) -> dict[str, list[dict[str, Any]]]:
        """Canonical state of `side`: live records by kind, in creation order.

        A mirror of each side is kept: only what changed since the last read is read."""
        return self._catch_up(side).records()

    def _catch_up(self, side: str) -> StateMirror:
        mirror = self._mirrors[side]
        mirror.catch_up(lambda cursor: self._control(side, "GET", "/_sim/state", params=cursor))
        return mirror

    def journal(self, side: str) -> list[dict[str, Any]]:
        """Every journal entry of `side`, read page by page; each entry carries canonical `tags` (token,
        auth, throttled, read, write, ok, refused, failed), `kind` and `operation`."""
        entries: list[dict[str, Any]] = []
        since = 0
        while True:
            page = self._control(side, "GET", "/_sim/journal", params={"since": since})
            entries.extend(page["entries"])
            if not page["more"]:
                self.journal_dropped[side] = int(page.get("dropped") or 0)
                return entries
            since = page["next"]
