"""Run a connector the way its manifest says: command, service or python mode.

Every mode gets the same environment (PRODUCT.md, "Connector protocol"): the SYNCERT_* variables of
the simulators (never the admin token), a private state dir kept across the cycles of one scenario,
a dead-letter file, the scenario id, and for services a listen port and webhook secret. The harness
puts its own Python first on PATH, so `python` in a command means the Python syncert runs on.

Misbehaving connectors are contained: a cycle that outlives `timeout_s` is killed with its whole
process group, output is captured up to a bound, and a crash or garbage output becomes evidence for
the scenario's verdict, never an exception out of the harness.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from syncert.harness.manifest import Manifest, ManifestError

OUTPUT_LIMIT = 64 * 1024


@dataclass
class CycleResult:
    """What one sync cycle did, as evidence."""

    exit_code: int | None
    duration_s: float
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and self.error is None

    def summary(self) -> str:
        if self.timed_out:
            return f"killed after {self.duration_s:.1f}s (timeout)"
        if self.error:
            return f"failed: {self.error}"
        return f"exit {self.exit_code} in {self.duration_s:.2f}s"


@dataclass
class Workspace:
    """Per-scenario files given to the connector."""

    root: Path
    state_dir: Path = field(init=False)
    dead_letter: Path = field(init=False)

    def __post_init__(self) -> None:
        self.state_dir = self.root / "state"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.dead_letter = self.root / "dead-letter.jsonl"

    def dead_letters(self) -> list[dict[str, Any]]:
        """Dead-letter entries; unreadable lines are kept as {"invalid_line": ...} evidence."""
        if not self.dead_letter.exists():
            return []
        entries = []
        for line in self.dead_letter.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                entries.append(entry if isinstance(entry, dict) else {"invalid_line": line[:500]})
            except ValueError:
                entries.append({"invalid_line": line[:500]})
        return entries


def connector_environment(manifest: Manifest, simulators_env: dict[str, str], workspace: Workspace,
                          scenario_id: str) -> dict[str, str]:
    """The environment of PRODUCT.md's connector protocol (no admin token)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCERT_")}
    env.update({k: v for k, v in simulators_env.items() if k != "SYNCERT_ADMIN_TOKEN"})
    env.update(SYNCERT_STATE_DIR=str(workspace.state_dir), SYNCERT_DEAD_LETTER=str(workspace.dead_letter),
               SYNCERT_SCENARIO=scenario_id)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def check_launchable(manifest: Manifest) -> None:
    """Raise ManifestError when the manifest's command or entrypoint cannot be found."""
    run = manifest.run
    if run.mode in ("command", "service"):
        program = run.command[0]
        local = manifest.directory / program
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        if not (("/" in program and local.exists()) or shutil.which(program, path=path)):
            raise ManifestError(f"{manifest.path}: `[run].command` starts with {program!r}, which is neither on "
                                f"PATH nor a file beside the manifest.")
    elif run.mode == "container":
        raise ManifestError(f"{manifest.path}: `[run].mode` \"container\" is not supported by this version of "
                            "syncert yet; use command, service or python.")


def _read_bounded(handle: Any) -> str:
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(max(0, size - OUTPUT_LIMIT))
    text = handle.read().decode("utf-8", "replace")
    return (f"[{size - OUTPUT_LIMIT} earlier bytes dropped]\n" + text) if size > OUTPUT_LIMIT else text


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


class CommandLauncher:
    """command mode: one sync cycle per invocation of `command`."""

    def __init__(self, manifest: Manifest, env: dict[str, str]):
        self.manifest, self.env = manifest, env

    def start(self) -> None:
        """Nothing to start: each cycle is its own process."""

    def stop(self) -> None:
        """Nothing to stop."""

    def run_cycle(self) -> CycleResult:
        started = time.monotonic()
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                process = subprocess.Popen(list(self.manifest.run.command), cwd=self.manifest.directory, env=self.env,
                                           stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
            except OSError as error:
                return CycleResult(None, time.monotonic() - started, error=f"cannot start the command: {error}")
            timed_out = False
            try:
                process.wait(self.manifest.run.timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            # the cycle is over: nothing it started may outlive it
            _kill_group(process)
            return CycleResult(None if timed_out else process.returncode, time.monotonic() - started,
                               _read_bounded(out), _read_bounded(err), timed_out)


class ServiceLauncher:
    """service mode: one long-running process per scenario; it syncs on its own (polling or webhooks)."""

    def __init__(self, manifest: Manifest, env: dict[str, str]):
        self.manifest = manifest
        self.port = _free_port()
        self.env = {**env, "SYNCERT_LISTEN_PORT": str(self.port),
                    "SYNCERT_WEBHOOK_SECRET": env.get("SYNCERT_WEBHOOK_SECRET") or os.urandom(16).hex()}
        self._process: subprocess.Popen | None = None
        # kept open for the service's lifetime, closed in stop()
        self._out = tempfile.TemporaryFile()  # noqa: SIM115
        self._err = tempfile.TemporaryFile()  # noqa: SIM115

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        run = self.manifest.run
        self._process = subprocess.Popen(list(run.command), cwd=self.manifest.directory, env=self.env,
                                         stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err,
                                         start_new_session=True)
        deadline = time.monotonic() + run.startup_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ServiceFailed(f"the service exited with {self._process.returncode} before answering "
                                    f"GET {run.health_path}", self.output())
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + run.health_path, timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise ServiceFailed(f"the service did not answer GET {run.health_path} with 200 within "
                            f"{run.startup_timeout_s:.0f}s", self.output())

    def run_cycle(self) -> CycleResult:
        """A service syncs by itself; a 'cycle' is a check that it is still alive."""
        alive = self._process is not None and self._process.poll() is None
        return CycleResult(0 if alive else (self._process.returncode if self._process else None), 0.0,
                           error=None if alive else "the service process is no longer running")

    def output(self) -> tuple[str, str]:
        return _read_bounded(self._out), _read_bounded(self._err)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                _kill_group(self._process)
        if self._process is not None:
            _kill_group(self._process)

    def close(self) -> None:
        """Release the captured output (call after the evidence has been read)."""
        self._out.close()
        self._err.close()


class ServiceFailed(RuntimeError):
    def __init__(self, message: str, output: tuple[str, str]):
        super().__init__(message)
        self.output = output


class PythonLauncher:
    """python mode: `entrypoint` names a factory returning an object with sync()."""

    _lock = threading.Lock()

    def __init__(self, manifest: Manifest, env: dict[str, str]):
        self.manifest, self.env = manifest, env
        self._connector: Any = None

    def start(self) -> None:
        module_name, _, factory_name = (self.manifest.run.entrypoint or "").partition(":")
        directory = str(self.manifest.directory)
        if directory not in sys.path:
            sys.path.insert(0, directory)
        with self._environment():
            try:
                factory = getattr(importlib.import_module(module_name), factory_name)
            except (ImportError, AttributeError) as error:
                raise ManifestError(f"{self.manifest.path}: `[run].entrypoint` {self.manifest.run.entrypoint!r} "
                                    f"cannot be loaded: {error}.") from None
            self._connector = factory()
        if not callable(getattr(self._connector, "sync", None)):
            raise ManifestError(f"{self.manifest.path}: `[run].entrypoint` returned {type(self._connector).__name__}, "
                                "which has no sync() method.")

    def stop(self) -> None:
        close = getattr(self._connector, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):
                close()

    @contextlib.contextmanager
    def _environment(self) -> Iterator[None]:
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(self.env)
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def run_cycle(self) -> CycleResult:
        started = time.monotonic()
        result: dict[str, Any] = {}
        out, err = io.StringIO(), io.StringIO()

        def call() -> None:
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    self._connector.sync()
                result["exit_code"] = 0
            except Exception as error:  # a connector bug is evidence, not a harness crash
                result["error"] = f"{type(error).__name__}: {error}"
                err.write(traceback.format_exc())

        with self._lock, self._environment():
            worker = threading.Thread(target=call, name="connector-sync", daemon=True)
            worker.start()
            worker.join(self.manifest.run.timeout_s)
        timed_out = worker.is_alive()
        return CycleResult(result.get("exit_code", None if timed_out else 1), time.monotonic() - started,
                           out.getvalue()[-OUTPUT_LIMIT:], err.getvalue()[-OUTPUT_LIMIT:], timed_out,
                           result.get("error"))


def make_launcher(manifest: Manifest, env: dict[str, str]) -> CommandLauncher | ServiceLauncher | PythonLauncher:
    launchers = {"command": CommandLauncher, "service": ServiceLauncher, "python": PythonLauncher}
    return launchers[manifest.run.mode](manifest, env)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
