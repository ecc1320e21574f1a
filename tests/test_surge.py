"""Surges: `syncert surge` runs a profile with Locust (one process or a master and workers) while the connector
syncs, measures it and charts it; the lag monitor times records; Locust never shows the admin token."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from syncert.harness.surge import LagMonitor, LocustError, SurgeSettings, locust_run, percentile
from syncert.scenarios.volume.profiles import PROFILES
from syncert.simulators.host import run_in_background

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium")
ORDERS_BLUE, DURING_RED = (0x1F, 0x77, 0xB4), (0xD6, 0x27, 0x28)  # harness/charts.py's colours


def syncert(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "syncert", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_a_month_end_surge_with_two_locust_workers_is_measured_charted_and_rendered(tmp_path: Path) -> None:
    finished = syncert("surge", "--profile", "month-end", "--scale", "0.4", "--workers", "2", "--report-dir",
                       str(tmp_path / "reports"), cwd=tmp_path)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    assert "Traceback" not in finished.stderr
    report_dir = (tmp_path / "reports" / "latest").resolve()
    report = json.loads((report_dir / "report.json").read_text())
    [surge] = [s for s in report["scenarios"] if s["id"] == "VOL-MONTHEND-01"]
    figures = surge["evidence"]["checks"]["surge"]["summary"]
    assert figures["scale"] == 0.4 and figures["locust_workers"] == 2
    # every business change of the surge reached its target, each flow had changes to sync
    assert figures["changes"] == figures["synced"] > 0 and figures["not_synced"] == 0
    assert all(figures["flows"][flow]["synced"] > 0 for flow in ("orders", "invoices", "payments"))
    assert 0 <= figures["lag_p50_s"] <= figures["lag_p95_s"] <= figures["lag_p99_s"] <= figures["lag_max_s"]
    assert figures["api_calls_per_record"] > 0 and figures["records_per_s"] > 0 and figures["backlog_max"] > 0
    assert {"before", "during"} <= set(figures["interactive_ms"])
    assert figures["interactive_ms"]["during"]["requests"] > figures["interactive_ms"]["before"]["requests"] > 0
    assert not any(f["failures"] for f in figures["interactive_ms"].values())  # the records they open exist
    assert not any(f["failures"] for f in figures["business_activity"].values())
    deals = figures["business_activity"]["CRM: close a deal won"]["requests"]
    assert deals == figures["flows"]["orders"]["changes"]  # what Locust did is what the monitor saw
    assert f"{figures['changes']} business changes, {figures['synced']} synced" in finished.stdout
    assert "before" in finished.stdout and " synced  backlog " in finished.stdout  # progress every 10 s
    charts = sorted(p.name for p in (report_dir / "VOL-MONTHEND-01").glob("*.svg"))
    assert charts == ["surge-backlog.svg", "surge-erp-latency.svg", "surge-lag.svg"]

    screenshot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,4000",
                    f"--screenshot={screenshot}", (report_dir / "report.html").as_uri()],
                   capture_output=True, timeout=120)
    colours = set(Image.open(screenshot).convert("RGB").get_flattened_data())
    assert ORDERS_BLUE in colours, "the backlog and lag charts are not rendered in report.html"
    assert DURING_RED in colours, "the ERP latency chart is not rendered in report.html"


@pytest.mark.parametrize(("arguments", "message"), [
    (["--scale", "0"], "--scale must be more than 0"),
    (["--scale", "0.01"], "--scale 0.01 is too small for the month-end surge"),
    (["--workers", "99"], "--workers must be 0 to 16"),
    (["--connector", "connectors/examples/accounts-only/connector.toml"], "needs flow(s) invoices, items, orders"),
    (["--connector", "no/such/connector.toml"], "no/such/connector.toml"),
    (["--report-dir", "/proc/forbidden"], "--report-dir /proc/forbidden cannot be created"),
])
def test_surge_usage_errors_are_named(arguments: list[str], message: str) -> None:
    finished = syncert("surge", *arguments, cwd=ROOT)
    assert finished.returncode == 2 and message in finished.stderr, finished.stderr
    assert "Traceback" not in finished.stderr


def test_the_lag_monitor_times_a_deal_from_its_close_to_its_sales_order(tmp_path: Path) -> None:
    with run_in_background(memory=True) as host:
        urls = {side: host.sides[side].listener.url for side in ("crm", "erp")}
        admin = {"Authorization": f"Bearer {host.admin_token}"}
        account = httpx.post(f"{urls['crm']}/_sim/seed", headers=admin, json={"records": {
            "account": [{"name": "Monitor Buyer"}]}}).json()["ids"]["account"][0]
        monitor = LagMonitor(urls, host.admin_token, ("orders",))
        monitor.mark_base()
        deal = httpx.post(f"{urls['crm']}/_sim/seed", headers=admin, json={"records": {"opportunity": [
            {"account_id": account, "name": "Won", "stage": "Closed Won", "close_date": "2026-11-30"}]}}
                          ).json()["ids"]["opportunity"][0]
        monitor.poll()
        assert monitor.backlog_now() == {"orders": 1} and not monitor.converged()
        time.sleep(0.3)
        erp = httpx.post(f"{urls['erp']}/_sim/seed", headers=admin, json={"records": {
            "customer": [{"name": "Monitor Buyer", "crm_id": account}],
            "item": [{"sku": "MON-1", "name": "Monitor item", "price": "5.00", "quantity_on_hand": "10"}]}}).json()
        httpx.post(f"{urls['erp']}/_sim/seed", headers=admin, json={"records": {"sales_order": [
            {"customer_id": erp["ids"]["customer"][0], "crm_id": deal,
             "lines": [{"item_id": erp["ids"]["item"][0], "quantity": "1", "rate": "5.00"}]}]}}).raise_for_status()
        monitor.poll()
        monitor.stop()
    [timed] = monitor.syncs.values()
    assert monitor.converged() and timed.key == deal and 0.3 <= timed.lag_s < 5


def test_percentiles_are_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.95), percentile(values, 0.99)) == (50.0, 95.0, 99.0)
    assert percentile([], 0.5) is None and percentile([7.0], 0.99) == 7.0


def test_locust_gets_its_settings_without_showing_the_admin_token(tmp_path: Path) -> None:
    token = "surge-admin-token-sentinel-" + os.urandom(8).hex()
    with run_in_background(memory=True) as host, locust_run(
            "month-end", 5, 2, SurgeSettings(0.1, 1, 0.1), {"crm": host.url("crm"), "erp": host.url("erp")},
            token, {"accounts": [], "customers": [], "entries": [], "items": []}, tmp_path) as run:
        time.sleep(2)
        assert run.running(), run.tail()
        for process in run.processes:
            for name in ("cmdline", "environ"):
                assert token.encode() not in Path(f"/proc/{process.pid}/{name}").read_bytes(), name
        pids = [process.pid for process in run.processes]
    assert not any(Path(f"/proc/{pid}").exists() and b"locust" in Path(f"/proc/{pid}/cmdline").read_bytes()
                   for pid in pids), "a Locust process outlived its surge"


def test_a_profile_scales_its_users_and_paces_its_phases() -> None:
    month_end = PROFILES["month-end"]
    assert month_end.user_counts(1) == {"closers": 5, "invoicers": 1, "payers": 1, "importers": 0, "interactive": 2}
    assert month_end.user_counts(10)["closers"] == 50 and month_end.user_counts(10)["invoicers"] == 1
    assert month_end.user_counts(0.1)["closers"] == 1  # an activity of the profile keeps one user at least
    paced = month_end.paced(0.5)
    assert paced.seconds == month_end.seconds / 2 and paced.phases[0].name == "before"
    assert month_end.phase_at(-1) is None and month_end.phase_at(month_end.seconds) is None
    assert month_end.phase_at(9).name == "closings ramp"


def test_locust_settings_go_only_to_the_locust_process_itself(tmp_path: Path) -> None:
    import socket
    import threading
    from types import SimpleNamespace

    from syncert.harness.surge import _send_settings

    def exchange(process_pid: int) -> bytes:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(str(tmp_path / f"s{process_pid}"))
            listener.listen(1)
            listener.settimeout(1.0)
            received: list[bytes] = []

            def client() -> None:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as peer:
                    peer.connect(str(tmp_path / f"s{process_pid}"))
                    received.append(peer.recv(1000))
            thread = threading.Thread(target=client)
            thread.start()
            fake = SimpleNamespace(pid=process_pid, poll=lambda: None, returncode=None)
            with contextlib.suppress(LocustError):
                _send_settings(listener, fake, "settings-with-the-token").close()
            thread.join(10)
            return received[0] if received else b""

    # this test process connects: it gets the settings only when it is the process they are for
    assert exchange(os.getpid()) == b"settings-with-the-token"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("syncert.harness.surge.SETTINGS_WAIT_S", 2.0)
        assert exchange(os.getpid() + 1) == b""


def test_records_only_the_business_makes_count_when_the_connector_makes_them() -> None:
    from syncert.harness.surge import _business_records_made

    def entry(kind: str | None, operation: str, status: int = 201, path: str = "/x", body: str = "") -> dict:
        return {"kind": kind, "operation": operation, "status": status, "path": path, "request_body": body}

    collection = json.dumps({"records": [{"attributes": {"type": "Opportunity"}, "Name": "padding"},
                                         {"attributes": {"type": "Product2"}, "Name": "an item"}]})
    assert _business_records_made("erp", entry("invoice", "create")) == ["ERP invoice"]
    assert _business_records_made("crm", entry("account", "upsert", 201)) == ["CRM account"]  # created
    assert _business_records_made("crm", entry("opportunity", "upsert", 200)) == []  # a write-back by external id
    assert _business_records_made("erp", entry("sales_order", "transform", 204,
                                               "/services/rest/record/v1/salesOrder/7/!transform/invoice")) == [
        "ERP invoice"]
    assert _business_records_made("crm", entry(None, "create", 200, "/services/data/v59.0/composite/sobjects",
                                               collection)) == ["CRM opportunity"]
    assert _business_records_made("erp", entry("customer", "upsert", 204)) == []  # the accounts flow's own
    assert _business_records_made("crm", entry("account", "update", 204)) == []  # a write-back
    assert _business_records_made("erp", entry("payment", "create", 400)) == []  # refused: nothing made
