"""A committed write survives kill -9 of the simulator process (SQLite WAL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx


def _start(data_dir: Path) -> tuple[subprocess.Popen, dict]:
    process = subprocess.Popen([sys.executable, "-m", "syncert", "sim", "--json", "--data-dir", str(data_dir)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()  # type: ignore[union-attr]
    assert line, process.stderr.read()  # type: ignore[union-attr]
    return process, json.loads(line)


def test_committed_write_survives_kill_9(tmp_path: Path) -> None:
    process, env = _start(tmp_path)
    try:
        token = httpx.post(f"{env['SYNCERT_CRM_URL']}/services/oauth2/token", data={"grant_type": "client_credentials"},
                           auth=(env["SYNCERT_CRM_CLIENT_ID"], env["SYNCERT_CRM_CLIENT_SECRET"])).json()["access_token"]
        created = httpx.post(f"{env['SYNCERT_CRM_URL']}/services/data/v59.0/sobjects/Account/",
                             json={"Name": "Survivor", "ERP_Customer_Id__c": "K9"},
                             headers={"Authorization": f"Bearer {token}"})
        assert created.status_code == 201
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    assert process.returncode == -signal.SIGKILL

    restarted, env = _start(tmp_path)
    try:
        state = httpx.get(f"{env['SYNCERT_CRM_URL']}/_sim/state",
                          headers={"Authorization": f"Bearer {env['SYNCERT_ADMIN_TOKEN']}"}).json()
        assert [(a["id"], a["name"]) for a in state["records"]["account"]] == [(created.json()["id"], "Survivor")]
    finally:
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(10) == 0
