"""Connectors that attack the harness on purpose.

Command mode: `python hostile.py BEHAVIOUR`; python mode: entrypoint `hostile:BEHAVIOUR_FACTORY`.
What a behaviour observed is appended as JSON lines to $HOSTILE_OUT (an ordinary inherited variable).
"""

from __future__ import annotations

import base64
import contextlib
import gc
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _note(**facts: object) -> None:
    with open(os.environ["HOSTILE_OUT"], "a", encoding="utf-8") as handle:
        handle.write(json.dumps(facts) + "\n")


def _crm_login(client_id: str, client_secret: str) -> httpx.Response:
    return httpx.post(f"{os.environ['SYNCERT_CRM_URL']}/services/oauth2/token",
                      data={"grant_type": "client_credentials"}, auth=(client_id, client_secret), timeout=10)


class PatchesTheHarness:
    """python mode: tries to certify itself by patching syncert and to find the admin token; syncs nothing."""

    def __init__(self) -> None:
        from syncert.harness import reports

        reports.assess_levels = lambda *args, **kwargs: (4, {})
        reports.build_report = lambda **kwargs: {"verdict": "certified", "level_reached": 4}
        hosts = [o for o in gc.get_objects() if type(o).__name__ == "SimulatorHost"]
        _note(behaviour="patch-harness", admin_token_in_env="SYNCERT_ADMIN_TOKEN" in os.environ,
              simulator_hosts_found=len(hosts), pid=os.getpid())

    def sync(self) -> None:
        """Does no work at all."""


def patches_the_harness() -> PatchesTheHarness:
    return PatchesTheHarness()


class ExitsTheProcess:
    """python mode: sync() ends the whole process with exit status 0."""

    def sync(self) -> None:
        os._exit(0)


def exits_the_process() -> ExitsTheProcess:
    return ExitsTheProcess()


class RecordsWebhooks:
    """python mode (not hostile): creates one CRM account per cycle, records every change event handed to
    handle_webhook()."""

    def sync(self) -> None:
        token = _crm_login(os.environ["SYNCERT_CRM_CLIENT_ID"], os.environ["SYNCERT_CRM_CLIENT_SECRET"]).json()
        httpx.post(f"{os.environ['SYNCERT_CRM_URL']}/services/data/v59.0/sobjects/Account/", json={"Name": "Hook"},
                   headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=10)
        time.sleep(0.5)  # the delivery arrives while the cycle is still running: it waits for the cycle to end

    def handle_webhook(self, headers: dict[str, str], body: bytes) -> None:
        import hashlib
        import hmac

        expected = "sha256=" + hmac.new(os.environ["SYNCERT_WEBHOOK_SECRET"].encode(),
                                        headers["x-syncert-timestamp"].encode() + b"." + body,
                                        hashlib.sha256).hexdigest()
        _note(behaviour="webhook", signed=hmac.compare_digest(expected, headers["x-syncert-signature"]),
              event=json.loads(body))


def records_webhooks() -> RecordsWebhooks:
    return RecordsWebhooks()


class JamsItsPipes:
    """python mode: fills its own command pipe, forges the answer to its first command, then hangs."""

    def sync(self) -> None:
        jam = os.open("/proc/self/fd/0", os.O_WRONLY | os.O_NONBLOCK)
        with contextlib.suppress(BlockingIOError):
            while True:
                os.write(jam, b"x" * 4096)
        result_fd = int(sys.argv[sys.argv.index("--result-fd") + 1])
        os.write(result_fd, b'{"id": 1, "ok": true}\n')
        time.sleep(600)


def jams_its_pipes() -> JamsItsPipes:
    return JamsItsPipes()


class PrintsAFlood:
    """python mode: sync() prints 500 MiB, then fails."""

    def sync(self) -> None:
        block = b"flood " * (1 << 17)  # 768 KiB
        for _ in range(682):
            sys.stdout.buffer.write(block)
        sys.stdout.flush()
        raise RuntimeError("printed a flood")


def prints_a_flood() -> PrintsAFlood:
    return PrintsAFlood()


def leave_a_daemon() -> int:
    """command mode: double-forks a setsid daemon (environment cleared) that keeps writing CRM accounts."""
    token = _crm_login(os.environ["SYNCERT_CRM_CLIENT_ID"], os.environ["SYNCERT_CRM_CLIENT_SECRET"]).json()
    previous = Path(os.environ["HOSTILE_OUT"]).with_suffix(".credentials")
    old = json.loads(previous.read_text()) if previous.exists() else None
    if old is not None and old["scenario"] != os.environ["SYNCERT_SCENARIO"]:  # an earlier scenario's: revoked
        _note(behaviour="reuse-old-credentials", scenario=os.environ["SYNCERT_SCENARIO"],
              login_status=_crm_login(old["id"], old["secret"]).status_code,
              old_token_status=httpx.get(f"{os.environ['SYNCERT_CRM_URL']}/services/data/v59.0/sobjects/Account/"
                                         "001000000000000AAA",
                                         headers={"Authorization": f"Bearer {old['token']}"}, timeout=10).status_code)
    previous.write_text(json.dumps({"scenario": os.environ["SYNCERT_SCENARIO"],
                                    "id": os.environ["SYNCERT_CRM_CLIENT_ID"],
                                    "secret": os.environ["SYNCERT_CRM_CLIENT_SECRET"],
                                    "token": token["access_token"]}))
    daemon = ("import httpx, sys, time\n"
              "url, token = sys.argv[1], sys.argv[2]\n"
              "for n in range(3000):\n"
              "    try:\n"
              "        httpx.post(url + '/services/data/v59.0/sobjects/Account/', json={'Name': f'Ghost {n}'},\n"
              "                   headers={'Authorization': 'Bearer ' + token}, timeout=5)\n"
              "    except Exception:\n"
              "        pass\n"
              "    time.sleep(0.1)\n")
    tag = os.environ["HOSTILE_TAG"]
    subprocess.Popen(["setsid", "env", "-i", f"PATH={os.environ['PATH']}", sys.executable, "-c", daemon,
                      os.environ["SYNCERT_CRM_URL"], token["access_token"], tag],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)
    time.sleep(0.5)
    return 0


def read_the_harness() -> int:
    """command mode: tries to read the harness's memory (where the admin token lives) and environment."""
    parent = os.getppid()
    outcomes = {}
    try:
        with open(f"/proc/{parent}/mem", "rb") as handle:
            outcomes["mem"] = f"read {len(handle.read(4096))} bytes"
    except OSError as error:
        outcomes["mem"] = f"refused: {error.strerror}"
    try:
        environ = Path(f"/proc/{parent}/environ").read_bytes()
        outcomes["environ holds an admin token"] = b"ADMIN_TOKEN" in environ
    except OSError as error:
        outcomes["environ holds an admin token"] = f"refused: {error.strerror}"
    _note(behaviour="read-the-harness", harness=parent, outcomes=outcomes)
    return 0


def leave_a_headless_daemon() -> int:
    """command mode: a setsid daemon whose main thread exits while another thread runs on, so its
    process looks like a zombie in /proc/PID/stat."""
    daemon = ("import ctypes, os, sys, threading, time\n"
              "open(sys.argv[1], 'a').write('{\"behaviour\": \"headless-daemon\", \"pid\": %d}\\n' % os.getpid())\n"
              "threading.Thread(target=time.sleep, args=(600,)).start()\n"
              "ctypes.CDLL(None).pthread_exit(None)\n")
    subprocess.Popen(["setsid", sys.executable, "-c", daemon, os.environ["HOSTILE_OUT"]], stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(0.5)
    return 0


def fork_a_chain() -> int:
    """command mode: a chain of processes, each forking its successor and exiting at once (5,000 hops)."""
    for hop in range(5000):
        if os.fork() != 0:
            os._exit(0)
        if hop % 100 == 0:
            time.sleep(0.01)
    os._exit(0)


def print_backslashes() -> int:
    """command mode: prints 200,000 backslashes on one line (a worst case for careless scrubbing), then fails."""
    print("\\" * 200_000)
    return 1


def print_secrets() -> int:
    """command mode: does its work badly and prints every credential it was given, in many encodings."""
    secrets = {k: v for k, v in os.environ.items() if k.startswith("SYNCERT_") and any(
        word in k for word in ("SECRET", "TOKEN", "PASSWORD", "CLIENT_ID", "CONSUMER_KEY"))}
    token = _crm_login(os.environ["SYNCERT_CRM_CLIENT_ID"], os.environ["SYNCERT_CRM_CLIENT_SECRET"]).json()
    secrets["ACCESS_TOKEN"] = token["access_token"]
    secrets["SIGNATURE"] = token["signature"]
    _note(behaviour="print-secrets", secrets=secrets)
    basic = base64.b64encode(f"{os.environ['SYNCERT_CRM_CLIENT_ID']}:{os.environ['SYNCERT_CRM_CLIENT_SECRET']}"
                             .encode()).decode()
    print(f"Authorization: Basic {basic}")
    for name, value in secrets.items():
        print(f"{name} raw={value} b64={base64.b64encode(value.encode()).decode()} hex={value.encode().hex()}")
        print(f"{name} url={''.join(f'%{b:02X}' for b in value.encode())} json={json.dumps(value)}")
        print(f"{name} unicode-escaped=" + "".join(f"\\u{ord(c):04x}" for c in value))
        print(f"{name} split:", *(value[i:i + 6] for i in range(0, len(value), 6)), sep="\n", file=sys.stderr)
    with open(os.environ["SYNCERT_DEAD_LETTER"], "a") as handle:
        handle.write(json.dumps({"flow": "accounts", "source_system": "crm", "source_id": "x",
                                 "reason": f"login failed with {secrets['SYNCERT_CRM_CLIENT_SECRET']}"}) + "\n")
    return 1


def bad_dead_letters(kind: str) -> int:
    """command mode: leaves a dead-letter file that breaks the protocol, then exits 0."""
    path = Path(os.environ["SYNCERT_DEAD_LETTER"])
    if kind == "nested":
        path.write_text(json.dumps({"flow": "accounts", "source_system": "crm", "source_id": "1", "reason": "ok"})
                        + "\n" + "[" * 10_000 + "]" * 10_000 + "\n")
    elif kind == "huge":
        with open(path, "wb") as handle:
            for _ in range(100):
                handle.write(b'{"flow": "accounts", "source_system": "crm", "source_id": "1", "reason": "'
                             + b"x" * (1 << 20) + b'"}\n')
    elif kind == "directory":
        path.mkdir()
    big = Path(os.environ["SYNCERT_STATE_DIR"]) / "ballast.bin"
    with open(big, "wb") as handle:
        handle.truncate(2 << 30)  # a 2 GiB (sparse) file the harness must remove with the workspace
    _note(behaviour="bad-dead-letters", state_dir=os.environ["SYNCERT_STATE_DIR"])
    return 0


def serve_and_leak() -> int:
    """service mode: answers /health and prints the webhook secret it was given."""
    from http.server import BaseHTTPRequestHandler, HTTPServer

    print(f"webhook secret: {os.environ['SYNCERT_WEBHOOK_SECRET']}", flush=True)

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            """Quiet."""

    HTTPServer(("127.0.0.1", int(os.environ["SYNCERT_LISTEN_PORT"])), Health).serve_forever()
    return 0


def terminate_the_harness() -> int:
    """command mode: sends SIGTERM to its parent, the harness, then waits to be killed."""
    _note(behaviour="sigterm-parent", parent=os.getppid())
    os.kill(os.getppid(), signal.SIGTERM)
    time.sleep(30)
    return 0


def kill_the_harness() -> int:
    """command mode: SIGKILLs its parent (a worker of `certify --jobs`), then lingers as an orphan."""
    _note(behaviour="sigkill-parent", parent=os.getppid(), pid=os.getpid())
    os.kill(os.getppid(), signal.SIGKILL)
    time.sleep(120)
    return 0


if __name__ == "__main__":
    behaviours = {"leave-a-daemon": leave_a_daemon, "print-secrets": print_secrets,
                  "read-the-harness": read_the_harness, "leave-a-headless-daemon": leave_a_headless_daemon,
                  "print-backslashes": print_backslashes, "fork-a-chain": fork_a_chain,
                  "service-printing-its-webhook-secret": serve_and_leak,
                  "sigterm-parent": terminate_the_harness, "sigkill-parent": kill_the_harness,
                  "nested-dead-letter": lambda: bad_dead_letters("nested"),
                  "huge-dead-letter": lambda: bad_dead_letters("huge"),
                  "directory-dead-letter": lambda: bad_dead_letters("directory")}
    sys.exit(behaviours[sys.argv[1]]())
