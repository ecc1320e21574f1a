"""Hostile connectors (tests/connectors/hostile.py) against `syncert certify`, run as users run it.

Each test starts `syncert certify` in a process of its own with a private TMPDIR, so it can also check
that nothing the run created is left behind.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest

CONNECTORS = Path(__file__).resolve().parent / "connectors"
HOSTILE = CONNECTORS / "hostile.py"


def _manifest(directory: Path, name: str, flows: str = '"accounts"', **run: object) -> Path:
    lines = [f'name = "hostile-{name}"', 'version = "0.0.1"', 'crm = "salesforce"', 'erp = "netsuite"',
             f"flows = [{flows}]", "", "[run]"] + [f"{key} = {json.dumps(value)}" for key, value in run.items()]
    path = directory / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _command(directory: Path, behaviour: str, timeout_s: int = 20) -> Path:
    return _manifest(directory, behaviour, mode="command", command=["python", str(HOSTILE), behaviour],
                     timeout_s=timeout_s)


def _python(directory: Path, factory: str, timeout_s: int = 20, **run: object) -> Path:
    (directory / "hostile.py").write_text(HOSTILE.read_text())
    return _manifest(directory, factory, mode="python", entrypoint=f"hostile:{factory}", timeout_s=timeout_s, **run)


class Run:
    """One `syncert certify` process with a private TMPDIR and a file for what the connector observed."""

    def __init__(self, tmp_path: Path, manifest: Path, *options: str):
        self.tmp, self.reports, self.observed = tmp_path / "tmp", tmp_path / "reports", tmp_path / "observed.jsonl"
        self.tmp.mkdir()
        self.tag = f"hostile-tag-{os.getpid()}-{time.monotonic_ns()}"
        env = {**os.environ, "TMPDIR": str(self.tmp), "HOSTILE_OUT": str(self.observed), "HOSTILE_TAG": self.tag}
        self.process = subprocess.Popen([sys.executable, "-m", "syncert", "certify", str(manifest), "--report-dir",
                                         str(self.reports), *options], env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, cwd=tmp_path)

    def finish(self, timeout_s: float = 300) -> tuple[int, str, str]:
        stdout, stderr = self.process.communicate(timeout=timeout_s)
        assert "Traceback" not in stderr, stderr
        return self.process.returncode, stdout, stderr

    def report(self) -> dict:
        return json.loads((self.reports / "latest" / "report.json").read_text())

    def observations(self) -> list[dict]:
        return [json.loads(line) for line in self.observed.read_text().splitlines()] if self.observed.exists() else []

    def leftovers_in_tmp(self) -> list[str]:
        return sorted(str(p.relative_to(self.tmp)) for p in self.tmp.rglob("*"))


def _scenario(report: dict, scenario_id: str) -> dict:
    return next(s for s in report["scenarios"] if s["id"] == scenario_id)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2] in "ZX"


def _tagged_processes(tag: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if tag in command:
                found.append(f"{entry.name}: {command}")
    return found


def test_a_python_connector_that_patches_the_harness_is_not_certified(tmp_path: Path) -> None:
    run = Run(tmp_path, _python(tmp_path, "patches_the_harness"), "--only", "E2E-ACC-01")
    code, stdout, _ = run.finish()
    report = run.report()
    assert code == 1 and report["verdict"] == "failed", stdout
    assert _scenario(report, "E2E-ACC-01")["status"] == "failed"
    [seen] = run.observations()
    assert seen == {**seen, "admin_token_in_env": False, "simulator_hosts_found": 0}
    assert seen["pid"] != run.process.pid


def test_python_mode_hands_signed_change_events_to_handle_webhook(tmp_path: Path) -> None:
    run = Run(tmp_path, _python(tmp_path, "records_webhooks", webhook_path="/hooks"), "--only", "E2E-ACC-01")
    run.finish()
    events = [o for o in run.observations() if o["behaviour"] == "webhook"]
    assert events and all(event["signed"] for event in events), events
    assert {"account"} <= {event["event"]["kind"] for event in events}


def test_a_connector_jamming_its_command_pipe_cannot_hang_the_harness(tmp_path: Path) -> None:
    run = Run(tmp_path, _python(tmp_path, "jams_its_pipes", timeout_s=5), "--only", "E2E-ACC-01")
    code, _, _ = run.finish(timeout_s=120)
    cycles = _scenario(run.report(), "E2E-ACC-01")["evidence"]["cycles"]
    assert code == 1 and any(cycle["timed_out"] for cycle in cycles), cycles
    assert run.leftovers_in_tmp() == []


def test_os_exit_in_sync_is_a_failed_cycle_and_the_report_is_written(tmp_path: Path) -> None:
    run = Run(tmp_path, _python(tmp_path, "exits_the_process"), "--only", "E2E-ACC-01")
    code, _, _ = run.finish()
    scenario = _scenario(run.report(), "E2E-ACC-01")
    assert code == 1 and scenario["status"] == "failed"
    assert "ended (exit 0) without finishing the cycle" in scenario["evidence"]["cycles"][0]["summary"]
    assert run.leftovers_in_tmp() == []


def test_a_setsid_daemon_fails_its_scenario_is_killed_and_its_credentials_are_revoked(tmp_path: Path) -> None:
    run = Run(tmp_path, _command(tmp_path, "leave-a-daemon"), "--only", "ERR-*")
    code, _, _ = run.finish()
    report = run.report()
    assert code == 1
    for scenario_id in ("ERR-RATE-01", "ERR-LOUD-01", "ERR-TOKEN-01", "ERR-CONC-01"):
        scenario = _scenario(report, scenario_id)
        assert scenario["status"] == "failed", scenario
        assert "left processes running" in json.dumps(scenario["evidence"]["cycles"]), scenario["evidence"]
    assert _tagged_processes(run.tag) == [], "a daemon outlived its scenario"
    reuses = [o for o in run.observations() if o["behaviour"] == "reuse-old-credentials"]
    assert len(reuses) >= 3, run.observations()
    assert all(o["login_status"] in (400, 401) and o["old_token_status"] == 401 for o in reuses), reuses
    assert run.leftovers_in_tmp() == []


def _encoded_forms(secret: str) -> set[str]:
    """Encodings of a secret, and pieces of it (not its start: a Salesforce token starts with the public org id)."""
    raw, middle = secret.encode(), len(secret) // 2
    return {secret, base64.b64encode(raw).decode().rstrip("="), base64.urlsafe_b64encode(raw).decode().rstrip("="),
            raw.hex(), raw.hex().upper(), "".join(f"%{b:02X}" for b in raw), quote(secret, safe=""),
            "".join(f"\\u{ord(c):04x}" for c in secret), secret[middle - 6:middle + 6], secret[-12:]}


def test_a_connector_printing_its_credentials_fails_the_security_check_and_no_form_reaches_a_report(
        tmp_path: Path) -> None:
    run = Run(tmp_path, _command(tmp_path, "print-secrets"), "--only", "E2E-ACC-01")
    code, stdout, _ = run.finish()
    report = run.report()
    security = _scenario(report, "SEC-LEAK-01")
    assert code == 1 and security["status"] == "failed", stdout
    places = {finding["where"] for finding in security["evidence"]["security_findings"]}
    assert {"cycle 1 stdout", "cycle 1 stderr", "dead-letter file"} <= places, places
    [seen] = run.observations()
    assert len(seen["secrets"]) >= 7
    files = list((run.reports / "latest").iterdir())
    assert {f.name for f in files} == {"report.json", "report.html", "summary.md", "junit.xml"}
    for report_file in files:
        text = report_file.read_text()
        flat = "".join(text.split()).replace("\\n", "")
        for name, secret in seen["secrets"].items():
            leaked = [form for form in _encoded_forms(secret) if form in text or form in flat]
            assert not leaked, f"{name} reached {report_file.name} as {leaked}"


@pytest.mark.parametrize(("behaviour", "names"), [
    ("nested-dead-letter", "line 2: JSON nested too deeply"),
    ("huge-dead-letter", "over the 8,388,608-byte cap"),
    ("directory-dead-letter", "is not a regular file"),
])
def test_a_broken_dead_letter_file_is_a_scenario_error_naming_it(tmp_path: Path, behaviour: str, names: str) -> None:
    run = Run(tmp_path, _command(tmp_path, behaviour), "--only", "E2E-ACC-01")
    code, _, _ = run.finish()
    report = run.report()
    scenario = _scenario(report, "E2E-ACC-01")
    assert code == 1 and scenario["status"] == "error", scenario
    assert "dead-letter file" in scenario["message"] and names in scenario["message"], scenario["message"]
    assert report["counts"]["error"] == 1
    assert "errors=\"1\"" in (run.reports / "latest" / "junit.xml").read_text()
    assert run.leftovers_in_tmp() == [], "the workspace (with its 2 GiB file) was not removed"


def test_sigterm_to_the_harness_writes_an_interrupted_report_and_cleans_up(tmp_path: Path) -> None:
    run = Run(tmp_path, _command(tmp_path, "sigterm-parent"), "--only", "ERR-*")
    code, stdout, _ = run.finish()
    report = run.report()
    assert code == 128 + signal.SIGTERM, stdout
    assert report["verdict"] == "interrupted" and report["interrupted_by"] == "SIGTERM"
    assert run.leftovers_in_tmp() == []


def test_a_connector_that_kills_its_worker_fails_and_does_not_outlive_the_run(tmp_path: Path) -> None:
    run = Run(tmp_path, _command(tmp_path, "sigkill-parent"), "--only", "ERR-T*", "--jobs", "2")
    code, stdout, _ = run.finish()
    report = run.report()
    assert code == 1 and report["verdict"] == "failed", stdout
    ran = [s for s in report["scenarios"] if s["id"] != "SEC-LEAK-01"]
    assert len(ran) == 4 and all(s["status"] == "error" for s in ran), [(s["id"], s["status"]) for s in ran]
    assert all("did not run, or not to its end" in s["message"] for s in ran), [s["message"] for s in ran]
    assert all(not s["evidence"] or set(s["evidence"]) == {"withheld"} for s in report["scenarios"]), \
        "a dead worker's secrets are unknown: nothing the connector wrote may reach the report"
    assert not (run.reports / "latest" / "junit.xml").exists()
    assert run.leftovers_in_tmp() == []
    lingering = [o["pid"] for o in run.observations() if Path(f"/proc/{o['pid']}").exists()
                 and not _is_zombie(o["pid"])]
    assert lingering == [], "connectors that killed their worker outlived the run"


def test_a_connector_cannot_read_the_harness_memory_or_environment(tmp_path: Path) -> None:
    run = Run(tmp_path, _command(tmp_path, "read-the-harness"), "--only", "E2E-ACC-01")
    run.finish()
    seen = run.observations()
    assert seen and all(cycle["harness"] == run.process.pid for cycle in seen)
    assert all(cycle["outcomes"]["mem"].startswith("refused") for cycle in seen), seen
    assert all(cycle["outcomes"]["environ holds an admin token"] is not True for cycle in seen), seen


def test_a_daemon_whose_main_thread_exited_is_still_found_and_killed(tmp_path: Path) -> None:
    run = Run(tmp_path, _command(tmp_path, "leave-a-headless-daemon"), "--only", "E2E-ACC-01")
    code, _, _ = run.finish()
    scenario = _scenario(run.report(), "E2E-ACC-01")
    assert code == 1 and "left processes running" in json.dumps(scenario["evidence"]["cycles"]), scenario
    [daemon] = [o for o in run.observations() if o["behaviour"] == "headless-daemon"]
    task = Path(f"/proc/{daemon['pid']}/task")
    assert not task.exists() or len(list(task.iterdir())) <= 1, "the daemon's threads outlived the run"


def test_a_fork_chain_fails_its_cycle_and_is_ended(tmp_path: Path) -> None:
    run = Run(tmp_path, _command(tmp_path, "fork-a-chain"), "--only", "E2E-ACC-01")
    code, _, _ = run.finish()
    cycles = _scenario(run.report(), "E2E-ACC-01")["evidence"]["cycles"]
    assert code == 1 and "left processes running" in cycles[0]["summary"], cycles
    assert _tagged_processes("fork-a-chain") == []


def test_a_line_of_backslashes_does_not_stall_the_scrubber(tmp_path: Path) -> None:
    run = Run(tmp_path, _command(tmp_path, "print-backslashes"), "--only", "E2E-ACC-01")
    code, _, _ = run.finish(timeout_s=120)
    assert code == 1 and _scenario(run.report(), "E2E-ACC-01")["duration_s"] < 60


def test_a_service_printing_its_webhook_secret_fails_the_security_check(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, "webhook", mode="service", webhook_path="/hooks", timeout_s=20,
                         command=["python", str(HOSTILE), "service-printing-its-webhook-secret"])
    run = Run(tmp_path, manifest, "--only", "E2E-ACC-01")
    code, _, _ = run.finish()
    report = run.report()
    assert code == 1 and _scenario(report, "SEC-LEAK-01")["status"] == "failed"
    text = (run.reports / "latest" / "report.json").read_text()
    assert "webhook secret: [REDACTED]" in text


def test_a_directory_planted_as_reports_latest_is_left_alone_and_the_report_still_written(tmp_path: Path) -> None:
    planted = tmp_path / "reports" / "latest"
    planted.mkdir(parents=True)
    (planted / "report.json").write_text('{"verdict": "certified"}')
    run = Run(tmp_path, _command(tmp_path, "print-backslashes"), "--only", "E2E-ACC-01", "--keep-state")
    code, _, stderr = run.finish()
    assert code == 1 and "is not a link syncert made" in stderr
    [written] = [d for d in run.reports.iterdir() if d.name != "latest"]
    assert json.loads((written / "report.json").read_text())["verdict"] == "failed"
    assert json.loads((planted / "report.json").read_text()) == {"verdict": "certified"}


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_harness_memory_stays_bounded_while_a_connector_prints_500_mib(tmp_path: Path) -> None:
    run = Run(tmp_path, _python(tmp_path, "prints_a_flood", timeout_s=120), "--only", "E2E-ACC-01")
    peak = 0.0
    while run.process.poll() is None:
        try:
            peak = max(peak, _rss_mb(run.process.pid))
        except OSError:
            break
        time.sleep(0.05)
    code, _, _ = run.finish()
    scenario = _scenario(run.report(), "E2E-ACC-01")
    cycle = scenario["evidence"]["cycles"][0]
    assert code == 1 and "printed a flood" in cycle["summary"]
    assert "earlier characters dropped" in cycle["stdout"] or "bytes of output dropped" in cycle["stdout"]
    assert peak < 300, f"harness RSS peaked at {peak:.0f} MB"
