"""Surges: Locust acts out a profile on the simulators while the connector syncs; what it did, measured.

`locust_run` starts Locust in processes of its own (one, or a master and N workers on 127.0.0.1, with
Locust's own distributed mode) running `harness/locustfile.py` (the users acting out a profile of
`scenarios/volume/profiles.py`). Its settings, the admin token among them, reach each Locust process
over a Unix socket once that process has made itself non-dumpable and connected (its pid checked from
the socket's peer credentials, and refused when something traces it): never in its command line,
environment or a pipe that a connector of the same user could open through /proc before.

`LagMonitor` follows both simulators' change feeds while the surge runs and times each record's way
through its flow: from the source change (a deal closed, an invoice posted, a payment received, an
account created) to the target showing it (the sales order made, the deal's invoice or payment status
set, the customer made), on the simulators' own clocks. `SurgeMetrics` sums it up with the journal and
Locust's figures: lag percentiles, records synced per second, backlog over time, API calls per synced
record, throttling met and the ERP's interactive latency before and during the surge.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from syncert.harness.containment import harness_own, manage, release, spawning
from syncert.simulators.clock import parse_datetime

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
INTERACTIVE = ("ERP interactive: before", "ERP interactive: during")
POLL_S = 0.5  # how often the monitor reads the change feeds (the resolution of a measured lag)
STARTUP_S = 4.0  # Locust's processes start (and workers join their master) before the first phase
SETTINGS_WAIT_S = 30.0  # the longest a starting Locust process may take to ask for its settings


@dataclass(frozen=True)
class SurgeSettings:
    """How big a surge is and how Locust runs it."""

    scale: float = 0.0  # 0: the profile's own scale and pace for a CI run
    workers: int = 0  # 0: one Locust process; N: a master and N workers (Locust's distributed mode)
    pace: float = 1.0  # phases this many times as long as the profile says


class LocustError(RuntimeError):
    """Locust could not run the surge (named, with the end of its output)."""


@dataclass
class LocustRun:
    """Locust's processes for one surge, and the connection its lead process sends its figures on."""

    processes: list[subprocess.Popen]
    channels: list[socket.socket]
    log: Path
    t0: float
    run_s: float
    _figures: dict[str, dict[str, Any]] | None = None

    def running(self) -> bool:
        return self.processes[0].poll() is None

    def wait(self, timeout_s: float) -> int:
        """Wait for Locust to end (its run time is bounded); LocustError names a failure to run."""
        try:
            code = self.processes[0].wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise LocustError(f"Locust did not end within {timeout_s:.0f} s: {self.tail()}") from None
        if code not in (0, 1):  # 1: some requests failed (counted in the figures), not a failure to run
            raise LocustError(f"Locust exited with {code}: {self.tail()}")
        self.figures()
        return code

    def tail(self) -> str:
        with contextlib.suppress(OSError):
            return " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-5:])[-600:]
        return "(no output)"

    def interactive_latency(self) -> dict[str, dict[str, float | int]]:
        """The ERP's interactive latency by phase ("before", "during"): requests, failures, p50/p95/p99 in ms."""
        return {name.rsplit(": ", 1)[1]: figures for name, figures in self.figures().items() if name in INTERACTIVE}

    def business_requests(self) -> dict[str, dict[str, int]]:
        """What Locust's business users did: requests and failures by name."""
        return {name: {"requests": f["requests"], "failures": f["failures"]}
                for name, f in self.figures().items() if name not in INTERACTIVE}

    def figures(self) -> dict[str, dict[str, Any]]:
        """Locust's request figures by name, as its lead process sent them when it quit (over the socket it
        took its settings from); LocustError when it sent none."""
        if self._figures is None:
            received = b""
            self.channels[0].settimeout(10)
            with contextlib.suppress(OSError):
                while chunk := self.channels[0].recv(65536):
                    received += chunk
            try:
                self._figures = json.loads(received)
            except ValueError:
                raise LocustError(f"Locust sent no request figures when it quit: {self.tail()}") from None
        return self._figures


@contextlib.contextmanager
def locust_run(profile_id: str, profile_seconds: float, users: int, settings: SurgeSettings,
               urls: dict[str, str], admin_token: str, base: dict[str, Any], directory: Path) -> Iterator[LocustRun]:
    """Locust running the profile (its phases `profile_seconds` long in all, at `settings.pace`) against the
    simulators at `urls`; its processes end when this does."""
    directory.mkdir(parents=True, exist_ok=True)
    started = time.time()
    t0 = started + STARTUP_S + (1.0 * settings.workers)
    run_s = (t0 - started) + profile_seconds + 1.0
    environment = {"SYNCERT_SURGE_PROFILE": profile_id, "SYNCERT_SURGE_SCALE": str(settings.scale),
                   "SYNCERT_SURGE_PACE": str(settings.pace),
                   "SYNCERT_SURGE_T0": f"{t0:.3f}", "SYNCERT_SURGE_CRM_URL": urls["crm"],
                   "SYNCERT_SURGE_ERP_URL": urls["erp"], "SYNCERT_SURGE_ADMIN_TOKEN": admin_token,
                   "SYNCERT_SURGE_BASE_JSON": json.dumps(base)}
    log = directory / "locust.log"
    common = ["-f", str(LOCUSTFILE), "--loglevel", "WARNING", "--logfile", str(log), "--skip-log-setup"]
    lead = [*common, "--headless", "-u", str(users), "-r", str(max(users, 1)), "--run-time", f"{run_s:.0f}s",
            "--stop-timeout", "5", "--only-summary", "--exit-code-on-error", "1"]
    commands = [lead]
    if settings.workers:
        port = _free_port()
        commands = [[*lead, "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                     "--expect-workers", str(settings.workers), "--expect-workers-max-wait", "30"]]
        commands += [[*common, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
                     for _ in range(settings.workers)]
    processes: list[subprocess.Popen] = []
    channels: list[socket.socket] = []
    try:
        for arguments in commands:
            process, channel = _start_locust(arguments, environment, log)
            processes.append(process)
            channels.append(channel)
        yield LocustRun(processes, channels, log, t0, run_s)
    finally:
        for process in processes:
            _end(process)
        for channel in channels:
            channel.close()


def _start_locust(arguments: list[str], environment: dict[str, str],
                  log: Path) -> tuple[subprocess.Popen, socket.socket]:
    """A Locust process that has its settings, and the connection it took them on."""
    with tempfile.TemporaryDirectory(prefix="syncert-locust-") as private, \
            socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        address = str(Path(private) / "settings")
        listener.bind(address)
        listener.listen(4)
        listener.settimeout(1.0)
        with spawning(), log.open("ab") as output:
            process = subprocess.Popen([sys.executable, "-m", "syncert.harness.locust_process", address],
                                       stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                       start_new_session=True)
            manage(process.pid)
            harness_own(process.pid)
        try:
            channel = _send_settings(listener, process, json.dumps({"arguments": arguments,
                                                                    "environment": environment}) + "\n")
        except LocustError:
            _end(process)
            raise
    return process, channel


def _send_settings(listener: socket.socket, process: subprocess.Popen, settings: str) -> socket.socket:
    """Hand Locust its settings once its own process (peer credentials) connects, non-dumpable by then, and
    only if nothing traces it (a tracer attached before it became non-dumpable could read them); returns the
    connection, kept open for the figures Locust sends when it quits."""
    deadline = time.monotonic() + SETTINGS_WAIT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocustError(f"Locust ended before it took its settings (exit {process.returncode})")
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            continue
        pid = struct.unpack("3i", connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                        struct.calcsize("3i")))[0]
        if pid != process.pid:
            connection.close()
            continue  # not Locust: another process found the socket
        if _traced(pid):
            connection.close()
            raise LocustError("Locust's process is traced by another process: its settings (the simulators' "
                              "admin token) were not sent")
        connection.sendall(settings.encode())
        return connection
    raise LocustError(f"Locust did not ask for its settings within {SETTINGS_WAIT_S:.0f} s")


def _traced(pid: int) -> bool:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("TracerPid:"):
                return int(line.split()[1]) != 0
    return False


def _end(process: subprocess.Popen) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    release(process.pid)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def session_timeouts(url: str, admin_token: str, every_s: float | None) -> Iterator[None]:
    """While this lasts, the simulator at `url` times every access token out each `every_s` seconds, as an
    org's session timeout does over a long stretch (None: never)."""
    if every_s is None:
        yield
        return
    stop = threading.Event()

    def expire() -> None:
        with httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {admin_token}"}) as client:
            while not stop.wait(every_s):
                with contextlib.suppress(httpx.HTTPError):  # a timeout missed is a session that lasts longer
                    client.post("/_sim/sessions/expire", json={"after_requests": 0})

    ticker = threading.Thread(target=expire, name="syncert-session-timeouts", daemon=True)
    ticker.start()
    try:
        yield
    finally:
        stop.set()
        ticker.join(timeout=30)


# -- lag: each record's way through its flow ------------------------------------------------------------

@dataclass
class RecordSync:
    """One source change and when its target showed it (None: not yet)."""

    flow: str
    key: str
    changed_at: float
    visible_at: float | None = None
    opportunity: str | None = None  # the deal whose status shows an invoice or a payment

    @property
    def lag_s(self) -> float | None:
        """Seconds from the change to the target showing it (never clamped: below 0 would be the clocks' skew)."""
        return None if self.visible_at is None else self.visible_at - self.changed_at


FEED_KINDS = {"crm": ("account", "opportunity"), "erp": ("customer", "sales_order", "invoice", "payment")}
# what a sales order or a customer must hold to show its source: the lag runs until these last changed
SETTLED_FIELDS = {"sales_order": ("customer_id", "currency", "crm_id", "lines"),
                  "customer": ("name", "phone", "email", "billing_address", "shipping_address", "crm_id")}
# records only the business makes: a connector that creates them pads the surge's changes with its own
BUSINESS_KINDS = {"crm": ("account", "opportunity"), "erp": ("invoice", "payment")}


class LagMonitor:
    """Follows both change feeds from a starting point and times every record's sync, flow by flow."""

    def __init__(self, urls: dict[str, str], admin_token: str, flows: tuple[str, ...],
                 on_poll: Callable[[LagMonitor], None] | None = None):
        self.flows = flows
        self.on_poll = on_poll  # called from the monitor's thread after each read (progress lines)
        self._clients = {side: httpx.Client(base_url=url, timeout=30,
                                            headers={"Authorization": f"Bearer {admin_token}"})
                         for side, url in urls.items()}
        self._since = {side: 0 for side in urls}
        self._epoch: dict[str, int | None] = {side: None for side in urls}
        self.records: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kinds in FEED_KINDS.values()
                                                               for kind in kinds}
        self._base: set[tuple[str, str]] = set()
        self._orders_by_deal: dict[str, dict[str, Any]] = {}
        self._customers_by_account: dict[str, dict[str, Any]] = {}
        self._settled: dict[str, tuple[str, float]] = {}  # target id -> (its synced fields, since when)
        self.syncs: dict[tuple[str, str], RecordSync] = {}
        self.samples: list[tuple[float, dict[str, int]]] = []  # (wall time, backlog by flow)
        self.polls = 0
        self.t0: float | None = None  # when the surge's first phase starts (progress lines count from it)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    def mark_base(self) -> None:
        """Read what exists now: these records are the surge's starting point, not changes it made."""
        self.poll()
        self._base = {(kind, record_id) for kind, records in self.records.items() for record_id in records}
        self.syncs.clear()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="syncert-lag-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for client in self._clients.values():
            client.close()

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                self.poll()
            except (httpx.HTTPError, ValueError, KeyError) as error:
                self.error = f"the change feed could not be read: {error}"[:300]
                return

    def poll(self) -> None:
        """Read both feeds on from where the last read ended, then time what became visible."""
        changed: list[tuple[str, dict[str, Any]]] = []
        for side, kinds in FEED_KINDS.items():
            while True:
                params: dict[str, Any] = {"since": self._since[side], "kinds": ",".join(kinds)}
                if self._epoch[side] is not None:
                    params["epoch"] = self._epoch[side]
                response = self._clients[side].get("/_sim/state", params=params)
                response.raise_for_status()
                page = response.json()
                for kind, records in page["records"].items():
                    for record in records:
                        self.records[kind][record["id"]] = record
                        changed.append((kind, record))
                self._since[side], self._epoch[side] = page["next"], page["epoch"]
                if not page["more"]:
                    break
        self.polls += 1
        self._note(changed)
        self.samples.append((time.time(), self.backlog_now()))
        if self.on_poll is not None:
            self.on_poll(self)

    def _note(self, changed: list[tuple[str, dict[str, Any]]]) -> None:
        for kind, record in changed:
            if (kind, record["id"]) in self._base:
                continue
            if kind in SETTLED_FIELDS:
                self._settle(kind, record)
            if kind == "sales_order" and record.get("crm_id"):
                self._orders_by_deal.setdefault(record["crm_id"], record)
            elif kind == "customer" and record.get("crm_id"):
                self._customers_by_account.setdefault(record["crm_id"], record)
            elif kind == "opportunity" and record.get("stage") == "Closed Won" and "orders" in self.flows:
                self._source("orders", record["id"], record["created_at"])  # the closers make deals closed
            elif kind == "account" and "accounts" in self.flows:
                self._source("accounts", record["id"], record["created_at"])
            elif kind == "invoice" and "invoices" in self.flows:
                self._source("invoices", record["id"], record["created_at"])
            elif kind == "payment" and "payments" in self.flows:
                self._source("payments", record["id"], record["created_at"])
        for sync in self.syncs.values():
            if sync.visible_at is None or sync.flow in ("orders", "accounts"):  # a target made early, right later
                sync.visible_at = self._visible_at(sync)

    def _settle(self, kind: str, record: dict[str, Any]) -> None:
        """Note when the target's synced fields took the values they have now (a write that changes them
        again, a placeholder put right, moves the moment; the business's own changes to other fields do not)."""
        values = {name: record.get(name) for name in SETTLED_FIELDS[kind]}
        if "lines" in values:  # what the connector wrote of each line, not what fulfilment and billing did to it
            values["lines"] = [[line.get(name) for name in ("item_id", "quantity", "rate")]
                               for line in values["lines"] or []]
        fields = json.dumps(values, sort_keys=True, default=str)
        if self._settled.get(record["id"], ("",))[0] != fields:
            self._settled[record["id"]] = (fields, _epoch_s(record["modified_at"]))

    def _source(self, flow: str, key: str, stamp: str) -> None:
        if (flow, key) not in self.syncs:
            self.syncs[(flow, key)] = RecordSync(flow, key, _epoch_s(stamp))

    def _visible_at(self, sync: RecordSync) -> float | None:
        if sync.flow in ("orders", "accounts"):
            target = (self._orders_by_deal if sync.flow == "orders" else self._customers_by_account).get(sync.key)
            return None if target is None else self._settled[target["id"]][1]
        deal = self.records["opportunity"].get(sync.opportunity or self._deal_of(sync) or "")
        if deal is None:
            return None
        status = deal.get("invoice_status") if sync.flow == "invoices" else deal.get("payment_status")
        shown = status not in (None, "None", "Unpaid") if sync.flow == "invoices" else status in ("Partially Paid",
                                                                                                    "Paid")
        at = _epoch_s(deal["modified_at"])
        return at if shown and at >= sync.changed_at else None

    def _deal_of(self, sync: RecordSync) -> str | None:
        invoice_id = sync.key
        if sync.flow == "payments":
            payment = self.records["payment"].get(sync.key) or {}
            applications = payment.get("applications") or [{}]
            invoice_id = applications[0].get("invoice_id")
        invoice = self.records["invoice"].get(invoice_id or "") or {}
        order = self.records["sales_order"].get(invoice.get("sales_order_id") or "") or {}
        sync.opportunity = order.get("crm_id")
        return sync.opportunity

    def backlog_now(self) -> dict[str, int]:
        """Source changes seen whose target does not show them yet, by flow."""
        backlog = {flow: 0 for flow in self.flows}
        for sync in self.syncs.values():
            if sync.visible_at is None:
                backlog[sync.flow] += 1
        return backlog

    def converged(self) -> bool:
        return self.polls > 0 and not any(self.backlog_now().values())


def _epoch_s(stamp: str) -> float:
    return parse_datetime(stamp).timestamp()


# -- the figures ---------------------------------------------------------------------------------------------

@dataclass
class SurgeMetrics:
    """What a surge measured (JSON-ready), and the series its charts draw."""

    summary: dict[str, Any]
    lag_points: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # flow -> (t, lag)
    backlog: list[tuple[float, dict[str, int]]] = field(default_factory=list)  # (t, backlog by flow)
    phases: list[tuple[str, float, float]] = field(default_factory=list)  # (name, start t, end t)
    interactive: dict[str, dict[str, float | int]] = field(default_factory=dict)


def percentile(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of `values` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def measure(monitor: LagMonitor, journal: dict[str, list[dict[str, Any]]], locust: LocustRun,
            phases: list[tuple[str, float]]) -> SurgeMetrics:
    """The surge's figures, times relative to the first phase's start (`locust.t0`)."""
    t0 = locust.t0
    syncs = list(monitor.syncs.values())
    synced = [s for s in syncs if s.visible_at is not None]
    lags = {flow: [s.lag_s for s in synced if s.flow == flow] for flow in monitor.flows}
    per_flow = {flow: {"changes": sum(1 for s in syncs if s.flow == flow), "synced": len(lags[flow]),
                       **{f"lag_p{p}_s": _round(percentile(lags[flow], p / 100)) for p in (50, 95, 99)},
                       "lag_max_s": _round(max(lags[flow], default=None))} for flow in monitor.flows}
    all_lags = [lag for values in lags.values() for lag in values if lag is not None]
    calls = {side: len(entries) for side, entries in journal.items()}
    by_call = Counter(f"{side.upper()} {e.get('kind') or 'other'} {e.get('operation') or e['method']}"
                      for side, entries in journal.items() for e in entries)
    throttled = {side: sum(1 for e in entries if "throttled" in e["tags"]) for side, entries in journal.items()}
    made = Counter(made_kind for side, entries in journal.items() for e in entries
                   for made_kind in _business_records_made(side, e))
    span = (max(s.visible_at for s in synced) - min(s.changed_at for s in synced)) if synced else 0.0
    starts, at = [], 0.0
    for name, seconds in phases:
        starts.append((name, at, at + seconds))
        at += seconds
    summary = {
        "changes": len(syncs), "synced": len(synced), "not_synced": len(syncs) - len(synced),
        **{f"lag_p{p}_s": _round(percentile(all_lags, p / 100)) for p in (50, 95, 99)},
        "lag_max_s": _round(max(all_lags, default=None)),
        "records_per_s": _round(len(synced) / span if span > 0 else None),
        "api_calls": calls, "api_calls_per_record": _round(sum(calls.values()) / len(synced) if synced else None),
        "api_calls_most": dict(by_call.most_common(8)),
        "throttled": throttled, "sources_made_by_connector": dict(made),
        "backlog_max": max((sum(b.values()) for _, b in monitor.samples), default=0),
        "flows": per_flow, "interactive_ms": locust.interactive_latency(),
        "business_activity": locust.business_requests(),
    }
    return SurgeMetrics(
        summary=summary,
        lag_points={flow: sorted((s.visible_at - t0, s.lag_s) for s in synced if s.flow == flow)
                    for flow in monitor.flows},
        backlog=[(at_s - t0, backlog) for at_s, backlog in monitor.samples],
        phases=starts, interactive=summary["interactive_ms"])


def _business_records_made(side: str, entry: dict[str, Any]) -> list[str]:
    """"SIDE kind" for each record of BUSINESS_KINDS that a successful create, upsert or transform in the journal
    made (a Salesforce collection names its records' types in their attributes)."""
    if entry.get("operation") not in ("create", "upsert", "transform") or entry["status"] >= 300:
        return []
    if side == "crm" and entry["operation"] == "upsert" and entry["status"] != 201:
        return []  # an upsert that updated a record the business made (a write-back by external id)
    kinds = [entry.get("kind")]
    if entry["operation"] == "transform":  # an order turned into an invoice (or a fulfilment)
        kinds = [entry["path"].rstrip("/").rsplit("/", 1)[-1].lower()]
    if entry.get("kind") is None and "/composite/sobjects" in entry["path"]:
        with contextlib.suppress(ValueError, AttributeError, TypeError, KeyError):
            kinds = [str(record["attributes"]["type"]).lower()
                     for record in json.loads(entry["request_body"])["records"]]
    return [f"{side.upper()} {kind}" for kind in kinds if kind in BUSINESS_KINDS.get(side, ())]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def surge_lines(result: dict[str, Any]) -> list[str]:
    """A surge scenario's figures for the terminal (from its report entry)."""
    check = (result.get("evidence") or {}).get("checks", {}).get("surge")
    if check is None:
        return [f"{result['id']} {result['status']}: {result.get('message') or ''}"[:300]]
    lines = surge_figures(check["summary"])
    if result["status"] != "passed":
        lines.append(f"{result['status']}: {result.get('message') or ''}"[:400])
    return lines


def surge_figures(s: dict[str, Any]) -> list[str]:
    """A surge's figures (its `surge` check's summary), a line per subject."""
    lines = [f"{s['profile']} x{s['scale']:g}: {s['changes']} business changes, {s['synced']} synced, "
             f"{s['not_synced']} not; {s['records_per_s']} records/s; backlog at most {s['backlog_max']}",
             f"sync lag p50 {s['lag_p50_s']} s, p95 {s['lag_p95_s']} s, p99 {s['lag_p99_s']} s, max {s['lag_max_s']} s",
             f"API calls {s['api_calls']}, {s['api_calls_per_record']} per synced record; throttled {s['throttled']}"]
    interactive = s.get("interactive_ms") or {}
    if interactive:
        lines.append("ERP interactive latency p50/p95/p99 (ms): " + "; ".join(
            f"{period} {f['p50_ms']:g}/{f['p95_ms']:g}/{f['p99_ms']:g} ({f['requests']} requests)"
            for period, f in interactive.items()))
    if s.get("sources_made_by_connector"):
        lines.append(f"records only the business makes, made by the connector: {s['sources_made_by_connector']}")
    return lines
