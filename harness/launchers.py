"""Run a connector the way its manifest says: command, service or python mode, always in processes
of its own.

Every mode gets the same environment (docs/protocol.md): the harness's own environment without any
SYNCERT_* variable, then the credentials issued for the scenario (never the admin token), a private
state dir, a dead-letter file, the scenario id and the containment marker SYNCERT_RUN_ID; services
also get a listen port and a webhook secret. The harness puts its own Python first on PATH, so
`python` in a command means the Python syncert runs on.

Misbehaving connectors are contained: output is drained through pipes and kept bounded
(harness.capture); a cycle that outlives `timeout_s` is killed; every process a connector started is
found and ended (harness.containment), and one that outlives its cycle or service is a leftover that
fails the scenario. A python-mode connector runs in a child process (harness.python_shim): it can
never reach harness objects, and a child that dies without answering is a failed cycle.

A scenario may also crash the connector on purpose: `kill()` sends SIGKILL to the connector's process
group in the middle of a cycle (harness.runner's cycle_killed_at). The next cycle starts it afresh:
a new process in command mode as always, a new python-mode child, a service started again by resume().
"""

from __future__ import annotations

import base64
import contextlib
import importlib.machinery
import itertools
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from syncert.harness.capture import OutputCapture
from syncert.harness.containment import Containment, Leftover, manage, release, spawning
from syncert.harness.manifest import Manifest, ManifestError
from syncert.harness.workspace import Workspace

HEALTH_CHECK_TIMEOUT_S = 5.0


@dataclass
class CycleResult:
    """What one sync cycle did, as evidence."""

    exit_code: int | None
    duration_s: float
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    error: str | None = None
    killed_at: str | None = None  # where a scenario killed the connector with SIGKILL (a crash it caused)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and self.error is None and self.killed_at is None

    def summary(self) -> str:
        """One line: how the cycle ended, and for a failed one the last line it wrote to stderr."""
        told = ([line.strip() for line in self.stderr.splitlines() if line.strip()][-1:]
                if not self.ok and not self.killed_at else [])
        return self._ending() + (f" (stderr: {told[0][:160]})" if told else "")

    def _ending(self) -> str:
        if self.killed_at:
            return f"killed with SIGKILL after {self.duration_s:.1f}s, at {self.killed_at}"
        if self.timed_out:
            return f"killed after {self.duration_s:.1f}s (timeout)"
        if self.error:
            return f"failed: {self.error}"
        return f"exit {self.exit_code} in {self.duration_s:.2f}s"


def connector_environment(simulators_env: dict[str, str], workspace: Workspace, scenario_label: str,
                          containment: Containment) -> dict[str, str]:
    """The environment of the connector protocol (no admin token, nothing else of the harness's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCERT_")}
    env.update({k: v for k, v in simulators_env.items() if k.startswith("SYNCERT_") and k != "SYNCERT_ADMIN_TOKEN"})
    env.update(SYNCERT_STATE_DIR=str(workspace.state_dir), SYNCERT_DEAD_LETTER=str(workspace.dead_letter),
               SYNCERT_SCENARIO=scenario_label, **containment.environment())
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    return env


def check_launchable(manifest: Manifest) -> None:
    """Raise ManifestError when the manifest's command or entrypoint cannot be found."""
    run = manifest.run
    if run.mode in ("command", "service"):
        program = run.command[0]
        local = manifest.directory / program
        path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
        if not (("/" in program and local.exists()) or shutil.which(program, path=path)):
            raise ManifestError(f"{manifest.path}: `[run].command` starts with {program!r}, which is neither on "
                                f"PATH nor a file beside the manifest.")
    elif run.mode == "python":
        _check_entrypoint(manifest)
    elif run.mode == "container":
        raise ManifestError(f"{manifest.path}: `[run].mode` \"container\" is not supported by this version of "
                            "syncert yet; use command, service or python.")


def _check_entrypoint(manifest: Manifest) -> None:
    """Check that the entrypoint's top-level module can be found, without running any of its code (that
    happens only in a scenario, in the child, with the connector's environment)."""
    top_level = str(manifest.run.entrypoint).partition(":")[0].split(".")[0]
    search = [str(manifest.directory), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep)),
              *sys.path[1:]]
    if importlib.machinery.PathFinder.find_spec(top_level, search) is None:
        raise ManifestError(f"{manifest.path}: `[run].entrypoint` {manifest.run.entrypoint!r} names the module "
                            f"{top_level!r}, which is neither beside the manifest nor importable by syncert's Python.")


def _shim_command(manifest: Manifest, result_fd: int) -> list[str]:
    return [sys.executable, "-I", "-m", "syncert.harness.python_shim", "--directory", str(manifest.directory),
            "--result-fd", str(result_fd), str(manifest.run.entrypoint)]


class _Answers:
    """The python-mode child's answers: JSON lines on a pipe, each carrying the id of its command."""

    def __init__(self, fd: int):
        self.fd = fd
        self._buffer = b""

    def next(self, deadline: float) -> dict[str, Any] | None:
        """The next JSON object line before `deadline` (monotonic); None on timeout, end of file or garbage."""
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or len(self._buffer) > 1 << 20:
                return None
            readable, _, _ = select.select([self.fd], [], [], remaining)
            chunk = os.read(self.fd, 65536) if readable else b""
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            answer = json.loads(line)
        except ValueError:
            return None
        return answer if isinstance(answer, dict) else None

    def to(self, command_id: int, timeout_s: float) -> dict[str, Any] | None:
        """The answer to command `command_id`; answers to other commands (late or forged) are skipped."""
        deadline = time.monotonic() + timeout_s
        while (answer := self.next(deadline)) is not None:
            if answer.get("id") == command_id:
                return answer
        return None

    def close(self) -> None:
        os.close(self.fd)


class _Launcher:
    """What every mode shares: the manifest, the environment, containment and captured output."""

    def __init__(self, manifest: Manifest, env: dict[str, str], containment: Containment):
        self.manifest, self.env, self.containment = manifest, env, containment
        self.leftovers: list[Leftover] = []

    def _spawn(self, command: list[str], stdout: OutputCapture, stderr: OutputCapture,
               **options: Any) -> subprocess.Popen:
        try:
            with spawning():
                process = subprocess.Popen(command, cwd=self.manifest.directory, env=self.env,
                                           stdout=stdout.write_fd, stderr=stderr.write_fd, start_new_session=True,
                                           preexec_fn=self.containment.enlist_self, **options)
                manage(process.pid)
        finally:
            stdout.writer_handed_over()
            stderr.writer_handed_over()
        return process

    def _end_processes(self, process: subprocess.Popen | None, report: bool) -> None:
        """Kill `process` and everything else the connector started. With `report`, whatever was still
        running besides `process` (which was told to end, or has ended) counts as a leftover."""
        if report:
            main_pid = process.pid if process is not None else None
            self.leftovers += [p for p in self.containment.end_all() if p.pid != main_pid]
        if process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            release(process.pid)
        self.containment.end_all()

    def close(self) -> list[Leftover]:
        """Stop the connector and end everything it still runs; returns every leftover found."""
        self.stop()
        self.leftovers += self.containment.close()
        return self.leftovers

    def stop(self) -> None:
        """Stop the connector's own processes (modes override)."""

    def suspend(self) -> None:
        """Between two cycles, stop the long-running process of the connector (if its mode has one) so that it
        starts again with the environment as it is then: `resume` starts it. Its state dir is untouched."""

    def resume(self) -> None:
        """Start again what `suspend` stopped (modes that start it lazily do so at the next cycle)."""


class CommandLauncher(_Launcher):
    """command mode: one sync cycle per invocation of `command`; nothing may outlive the cycle."""

    _running: subprocess.Popen | None = None
    _killed = False
    webhook_url = None

    def __init__(self, manifest: Manifest, env: dict[str, str], containment: Containment):
        super().__init__(manifest, env, containment)
        self._lock = threading.Lock()  # between a cycle and a kill() sent from another thread

    def start(self) -> None:
        """Nothing to start: each cycle is its own process."""

    def kill(self) -> bool:
        """SIGKILL the running cycle's process group (from another thread); False when no cycle runs.
        run_cycle() then returns a result that is neither ok nor a failure of its own."""
        with self._lock:
            process = self._running
            if process is None or process.poll() is not None:
                return False
            self._killed = True
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            return True

    def stop(self) -> None:
        """End a cycle that was cut short (the run was interrupted while it ran)."""
        if self._running is not None:
            self._end_processes(self._running, report=False)
            self._running = None

    def run_cycle(self) -> CycleResult:
        started = time.monotonic()
        stdout, stderr = OutputCapture(), OutputCapture()
        try:
            process = self._spawn(list(self.manifest.run.command), stdout, stderr, stdin=subprocess.DEVNULL)
        except OSError as error:
            return CycleResult(None, time.monotonic() - started, stdout.finish(0), stderr.finish(0),
                               error=f"cannot start the command: {error}")
        self._running = process
        timed_out = False
        try:
            process.wait(self.manifest.run.timeout_s)  # orphans it leaves are reaped by the harness's reaper
        except subprocess.TimeoutExpired:
            timed_out = True
        with self._lock:
            self._running = None
            killed, self._killed = self._killed, False
        duration = time.monotonic() - started
        before = len(self.leftovers)
        self._end_processes(process, report=not (timed_out or killed))
        leftovers = self.leftovers[before:]
        result = CycleResult(None if timed_out or killed else process.returncode, duration, stdout.finish(),
                             stderr.finish(), timed_out)
        if leftovers:
            result.error = ("the cycle left processes running after it exited: "
                            + "; ".join(str(p) for p in leftovers[:5]))
        return result


class ServiceLauncher(_Launcher):
    """service mode: one long-running process per scenario; it syncs on its own (polling or webhooks)."""

    def __init__(self, manifest: Manifest, env: dict[str, str], containment: Containment):
        self.port = _free_port()
        super().__init__(manifest, {**env, "SYNCERT_LISTEN_PORT": str(self.port),
                                    "SYNCERT_WEBHOOK_SECRET": os.urandom(16).hex()}, containment)
        self._process: subprocess.Popen | None = None
        self._stdout, self._stderr = OutputCapture(), OutputCapture()
        self._earlier_output = ("", "")  # what processes that were stopped and started again wrote

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def webhook_url(self) -> str | None:
        return self.url + self.manifest.run.webhook_path if self.manifest.run.webhook_path else None

    def start(self) -> None:
        """Start the service (again, after suspend() or kill()) and wait until it answers its health check."""
        if self._stdout.write_fd < 0:  # a process ran and was stopped (suspend, start_over): keep what it wrote
            self._earlier_output = (self._earlier_output[0] + self._stdout.finish(0.5),
                                    self._earlier_output[1] + self._stderr.finish(0.5))
            self._stdout, self._stderr = OutputCapture(), OutputCapture()
        run = self.manifest.run
        self._process = self._spawn(list(run.command), self._stdout, self._stderr, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + run.startup_timeout_s
        last_answer = ""
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ServiceFailed(f"the service exited with {self._process.returncode} before answering "
                                    f"GET {run.health_path}", self.output())
            with contextlib.suppress(httpx.HTTPError):
                response = httpx.get(self.url + run.health_path, timeout=1)
                if response.status_code == 200 or _says_failing(response):
                    return  # up; one that says it cannot sync fails its first cycle with its reason
                last_answer = f" (its last answer: {response.status_code} {response.text[:300]})"
            time.sleep(0.1)
        self.stop()
        raise ServiceFailed(f"the service did not answer GET {run.health_path} with 200 within "
                            f"{run.startup_timeout_s:.0f}s{last_answer}", self.output())

    def run_cycle(self) -> CycleResult:
        """A service syncs by itself; a 'cycle' is a check that it is still alive and does not say it cannot
        sync (its health path answering anything but 2xx). A health check that gets no answer in time proves
        nothing either way: a busy service is not a failed one."""
        alive = self._process is not None and self._process.poll() is None
        if not alive:
            return CycleResult(self._process.returncode if self._process else None, 0.0,
                               error="the service process is no longer running")
        started = time.monotonic()
        failure = self._reported_failure()
        return CycleResult(0, time.monotonic() - started, error=failure)

    def _reported_failure(self) -> str | None:
        """What the service says when its health path answers that it cannot sync; None otherwise."""
        path = self.manifest.run.health_path
        try:
            response = httpx.get(self.url + path, timeout=HEALTH_CHECK_TIMEOUT_S)
        except httpx.HTTPError:
            return None
        if response.is_success:
            return None
        return f"the service says it cannot sync: GET {path} answered {response.status_code}: {response.text[:300]}"

    def output(self) -> tuple[str, str]:
        """Everything kept of the service's output so far (bounded), including that of earlier processes (the
        service is started again after `suspend` or a
        kill)."""
        self._stdout.settle()
        self._stderr.settle()
        (out, err), self._earlier_output = self._earlier_output, ("", "")
        return out + self._stdout.take(), err + self._stderr.take()

    def suspend(self) -> None:
        self.stop()

    def resume(self) -> None:
        self.start()

    def kill(self) -> bool:
        """SIGKILL the service's process group, as a crash would (what it started outside the group is ended
        quietly: a crash leaves no leftover to blame); False when it was not running. resume() starts it again,
        keeping what it wrote."""
        process = self._process
        if process is None or process.poll() is not None:
            return False
        self._end_processes(process, report=False)
        self._process = None
        return True

    def stop(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)
        if process is not None:
            self._end_processes(process, report=True)
            self._process = None


class ServiceFailed(RuntimeError):
    def __init__(self, message: str, output: tuple[str, str]):
        super().__init__(message)
        self.output = output


class PythonLauncher(_Launcher):
    """python mode: the shim imports `entrypoint` in a child process and calls sync() once per cycle.

    With `webhook_path`, the harness receives the simulators' change events on a port of its own and
    hands each to the connector's handle_webhook(headers, body), one command at a time with the cycles.
    Every command is written without blocking and answered within `timeout_s`, or the child is ended:
    whatever the connector does to its pipes, the harness never waits longer than that."""

    def __init__(self, manifest: Manifest, env: dict[str, str], containment: Containment):
        webhooks = manifest.run.webhook_path is not None
        super().__init__(manifest, {**env, "SYNCERT_WEBHOOK_SECRET": os.urandom(16).hex()} if webhooks else env,
                         containment)
        self._process: subprocess.Popen | None = None
        self._answers: _Answers | None = None
        self._command_ids = itertools.count(1)
        self._stdout, self._stderr = OutputCapture(), OutputCapture()
        self._carried = ("", "")  # output of a child that was ended between cycles, for the next cycle
        self._webhook_failure: str | None = None
        self._commands = threading.Lock()
        self._receiver = _WebhookReceiver(self) if webhooks else None

    @property
    def webhook_url(self) -> str | None:
        return self._receiver.url + str(self.manifest.run.webhook_path) if self._receiver else None

    def start(self) -> None:
        """The child starts with the first cycle (and again after one that died or was killed)."""
        if self._receiver is not None:
            self._receiver.start()

    def kill(self) -> bool:
        """SIGKILL the child's process group (from another thread, while run_cycle() waits for its answer,
        which then reports the child gone); False when no child runs."""
        process = self._process
        if process is None or process.poll() is not None:
            return False
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        return True

    def deliver(self, headers: dict[str, str], body: bytes) -> int:
        """Hand one change event to handle_webhook(); the HTTP status to answer the simulator with."""
        if not self._commands.acquire(timeout=10):
            return 503  # a cycle is running: the simulator retries the delivery
        try:
            if self._process is None or self._process.poll() is not None:
                return 503
            answer = self._command({"op": "webhook", "headers": headers, "body": base64.b64encode(body).decode()},
                                   self.manifest.run.timeout_s)
            if answer is None:
                self._webhook_failure = (f"handle_webhook() did not answer within {self.manifest.run.timeout_s:.0f}s; "
                                         "the connector's process was ended")
                self._end(report=True)
            if answer is not None and answer.get("refused") is True:
                return 401  # the connector refused the event (a signature that does not verify): not retried
            return 200 if answer is not None and answer.get("ok") is True else 500
        finally:
            self._commands.release()

    def _launch(self) -> str | None:
        """Start the child and wait for its factory; an error message when it could not."""
        read_fd, write_fd = os.pipe()
        self._stdout, self._stderr = OutputCapture(), OutputCapture()
        try:
            self._process = self._spawn(_shim_command(self.manifest, write_fd), self._stdout, self._stderr,
                                        stdin=subprocess.PIPE, pass_fds=(write_fd,))
        except OSError as error:
            os.close(read_fd)
            return f"cannot start the python-mode child: {error}"
        finally:
            os.close(write_fd)
        assert self._process.stdin is not None
        os.set_blocking(self._process.stdin.fileno(), False)
        self._answers = _Answers(read_fd)
        answer = self._answers.next(time.monotonic() + self.manifest.run.startup_timeout_s)
        if answer is None or not answer.get("ready"):
            reason = (answer or {}).get("error") or "it exited or hung before its factory returned"
            self._end()
            return f"the connector could not be loaded: {reason}"
        return None

    def run_cycle(self) -> CycleResult:
        started = time.monotonic()
        if not self._commands.acquire(timeout=self.manifest.run.timeout_s + 15):
            return self._result(started, error="a change event held the connector past the cycle's timeout")
        try:
            if self._webhook_failure:
                failure, self._webhook_failure = self._webhook_failure, None
                return self._result(started, code=1, error=failure)
            return self._cycle(started)
        finally:
            self._commands.release()

    def _cycle(self, started: float) -> CycleResult:
        if self._process is None or self._process.poll() is not None:
            self._end()
            problem = self._launch()
            if problem:
                return self._result(started, error=problem)
        answer = self._command({"op": "sync"}, self.manifest.run.timeout_s)
        if answer is None:
            code = None
            if self._process is not None and time.monotonic() - started < self.manifest.run.timeout_s:
                with contextlib.suppress(subprocess.TimeoutExpired):  # no answer before the deadline: it ended
                    code = self._process.wait(2)
            if code is None:
                self._end()
                return self._result(started, timed_out=True)
            self._end()
            return self._result(started, code=code, error=f"the connector process ended (exit {code}) without "
                                                           "finishing the cycle")
        if answer.get("ok") is True:
            return self._result(started, code=0)
        return self._result(started, code=1, error=str(answer.get("error") or "sync() failed")[:2000])

    def _command(self, command: dict[str, Any], timeout_s: float) -> dict[str, Any] | None:
        """Send one command and wait for its answer; None when the child did not take it or answer in time."""
        assert self._process is not None and self._process.stdin is not None and self._answers is not None
        deadline = time.monotonic() + timeout_s
        command_id = next(self._command_ids)
        data = json.dumps({**command, "id": command_id}).encode() + b"\n"
        fd = self._process.stdin.fileno()
        while data:
            remaining = deadline - time.monotonic()
            _, writable, _ = select.select([], [fd], [], max(0.0, remaining))
            if not writable:
                return None  # the child stopped reading its commands
            try:
                data = data[os.write(fd, data):]
            except BlockingIOError:
                continue
            except OSError:
                return None  # the child is gone
        return self._answers.to(command_id, max(0.0, deadline - time.monotonic()))

    def _result(self, started: float, code: int | None = None, timed_out: bool = False,
                error: str | None = None) -> CycleResult:
        self._stdout.settle()
        self._stderr.settle()
        (out, err), self._carried = self._carried, ("", "")
        return CycleResult(code, time.monotonic() - started, out + self._stdout.take(), err + self._stderr.take(),
                           timed_out, error)

    def _end(self, report: bool = False) -> None:
        if self._process is not None:
            self._end_processes(self._process, report)
            self._process = None
            self._carried = (self._carried[0] + self._stdout.finish(0.5), self._carried[1] + self._stderr.finish(0.5))
        if self._answers is not None:
            self._answers.close()
            self._answers = None

    def stop(self) -> None:
        if self._receiver is not None:
            self._receiver.stop()
        self.suspend()

    def suspend(self) -> None:
        """End the child as at the end of a scenario (close() is called); the next cycle starts a new one."""
        locked = self._commands.acquire(timeout=self.manifest.run.timeout_s + 15)
        try:
            process = self._process
            if process is not None and process.poll() is None and process.stdin is not None:
                with contextlib.suppress(OSError):  # nothing is buffered (commands bypass it): this never blocks
                    process.stdin.close()  # end of commands: the shim calls close() on the connector and exits
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(5)
            self._end(report=True)
        finally:
            if locked:
                self._commands.release()


class _WebhookReceiver:
    """An HTTP endpoint on 127.0.0.1 that passes the simulators' change events to a python-mode connector."""

    MAX_BODY = 1024 * 1024

    def __init__(self, launcher: PythonLauncher):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 10  # seconds a client may take to send its request

            def do_POST(self) -> None:
                declared = self.headers.get("content-length") or "0"
                length = int(declared) if declared.isdigit() else -1
                if self.path != launcher.manifest.run.webhook_path or not 0 <= length <= receiver.MAX_BODY:
                    self.send_response(404 if self.path != launcher.manifest.run.webhook_path else 413)
                else:
                    headers = {name.lower(): value for name, value in self.headers.items()}
                    self.send_response(launcher.deliver(headers, self.rfile.read(length)))
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                """Deliveries are in the simulators' journal; nothing to print."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="syncert-webhooks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


Launcher = CommandLauncher | ServiceLauncher | PythonLauncher


def make_launcher(manifest: Manifest, env: dict[str, str], containment: Containment) -> Launcher:
    launchers = {"command": CommandLauncher, "service": ServiceLauncher, "python": PythonLauncher}
    return launchers[manifest.run.mode](manifest, env, containment)


def _says_failing(response: httpx.Response) -> bool:
    """A health answer of a service that is up but cannot sync: 503 with {"status": "failing"|"failed"}."""
    if response.status_code != 503:
        return False
    try:
        return response.json().get("status") in ("failing", "failed")
    except (ValueError, AttributeError):
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
