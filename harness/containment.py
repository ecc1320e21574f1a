"""Containment: find and end every process a connector started, even one that left with setsid.

Each scenario gets a `Containment`. Every connector process starts with `SYNCERT_RUN_ID=<marker>` in
its environment and, where the machine lets us create one, inside a cgroup of its own (joined
before exec, so a child cannot fork before it is counted). A process belongs to the scenario when it
is in that cgroup or carries the marker; a daemon that double-forks, calls setsid and even clears
its environment is still in the cgroup. Where no cgroup can be made, `syncert certify` makes itself
the "child subreaper" of its process tree (Linux prctl): an orphaned connector process is then
re-parented to the harness instead of init, and every child of the harness that is not one of its own
launches belongs to the scenario. `end_all()` kills the whole cgroup at once (cgroup.kill, so fork
chains die too), stops the other processes found (SIGSTOP, so they cannot fork while they are being
killed), kills them (SIGKILL), reaps adopted orphans, and returns their command lines as evidence.

The harness also makes itself non-dumpable and empties every connector's capability bounding set, so
that even a connector running as root cannot read the harness's memory (where the admin token lives)
through /proc or ptrace, nor sniff the harness's loopback traffic to the control plane (raw sockets). Known limit:
a connector running as the same user can still send the harness signals (SIGSTOP freezes the run);
running connectors as another user needs that user's access to the connector's files.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MARKER_VARIABLE = "SYNCERT_RUN_ID"
_PROC = Path("/proc")
_PR_SET_DUMPABLE, _PR_CAPBSET_DROP, _PR_SET_CHILD_SUBREAPER = 4, 24, 36

def _last_capability() -> int:
    try:
        return int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    except (OSError, ValueError):
        return 40


# a connector keeps no capability at all (matters when syncert runs as root): no reading or tracing other
# processes' memory, no sniffing loopback traffic (raw sockets), no mounts, namespaces or devices
_DROPPED_CAPABILITIES = tuple(range(_last_capability() + 1))
_subreaper = False
try:
    _libc: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:
    _libc = None


def _prctl(option: int, value: int) -> bool:
    return _libc is not None and hasattr(_libc, "prctl") and _libc.prctl(option, value, 0, 0, 0) == 0


def harden_harness() -> bool:
    """Make this process (it runs nothing but the catalogue) adopt the connector's orphans and reap them
    as they die, and make its memory unreadable through /proc to processes without CAP_SYS_PTRACE (every
    connector process). Returns whether orphans will be adopted (Linux)."""
    global _subreaper
    make_undumpable()
    _subreaper = _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    if _subreaper:
        threading.Thread(target=_reap_forever, name="syncert-reaper", daemon=True).start()
    return _subreaper


def _reap_forever() -> None:
    while True:
        reap_adopted()
        time.sleep(0.2)


@dataclass(frozen=True)
class Leftover:
    """A process found still running after the connector should have ended."""

    pid: int
    command_line: str

    def __str__(self) -> str:
        return f"pid {self.pid}: {self.command_line}" if self.pid else self.command_line


class Containment:
    """The processes of one scenario's connector."""

    def __init__(self) -> None:
        self.marker = secrets.token_hex(16)
        self._needle = f"{MARKER_VARIABLE}={self.marker}".encode()
        self.cgroup = _create_cgroup(f"syncert-{self.marker}")

    def environment(self) -> dict[str, str]:
        return {MARKER_VARIABLE: self.marker}

    def enlist_self(self) -> None:
        """Join the cgroup and give up every capability (from exec on); runs in the child between fork and
        exec (os and libc calls only)."""
        if self.cgroup is not None:
            with contextlib.suppress(OSError):
                fd = os.open(self.cgroup / "cgroup.procs", os.O_WRONLY)
                try:
                    os.write(fd, b"0")
                finally:
                    os.close(fd)
        for capability in _DROPPED_CAPABILITIES:
            _prctl(_PR_CAPBSET_DROP, capability)

    def processes(self) -> list[int]:
        """Live processes of this scenario (zombies excluded), never the harness itself."""
        found: set[int] = set()
        if self.cgroup is not None:
            with contextlib.suppress(OSError):
                found.update(int(pid) for pid in (self.cgroup / "cgroup.procs").read_text().split())
        me = os.getpid()
        for entry in _PROC.iterdir():
            if entry.name.isdigit() and int(entry.name) not in found:
                with contextlib.suppress(OSError):
                    if self._needle in (entry / "environ").read_bytes() or (
                            _subreaper and _parent(entry) == me and int(entry.name) not in _harness_own):
                        found.add(int(entry.name))
        found.discard(os.getpid())
        return sorted(pid for pid in found if not _is_zombie(pid))

    def end_all(self, rounds: int = 50) -> list[Leftover]:
        """Kill every process of the scenario; returns what was found running (empty when none)."""
        seen: dict[int, Leftover] = {}
        for _ in range(rounds):
            pids = self.processes()
            populated = self._cgroup_populated()
            if not pids and not populated:
                break
            for pid in pids:
                seen.setdefault(pid, Leftover(pid, _command_line(pid)))
            if populated and not pids:  # a fork chain: each listed process had already handed over and exited
                seen.setdefault(0, Leftover(0, f"processes in the scenario's cgroup {self.cgroup.name} that "
                                               "forked and exited faster than they could be listed"))
            self._kill_cgroup()  # every member at once, fork chains included (cgroup v2 with cgroup.kill)
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGSTOP)
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)
            reap_adopted()
        return list(seen.values())

    def _cgroup_populated(self) -> bool:
        """Whether a live process is left in the cgroup (cgroup v2 keeps count in cgroup.events)."""
        if self.cgroup is None:
            return False
        try:
            return "populated 1" in (self.cgroup / "cgroup.events").read_text()
        except OSError:
            return False

    def _kill_cgroup(self) -> None:
        if self.cgroup is not None and (self.cgroup / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                (self.cgroup / "cgroup.kill").write_text("1")

    def close(self) -> list[Leftover]:
        """End everything and remove the cgroup; a cgroup that cannot be emptied is a leftover in itself."""
        leftovers = self.end_all()
        if self.cgroup is not None:
            for _ in range(100):
                try:
                    self.cgroup.rmdir()
                    break
                except OSError:  # busy until the kernel has released the last killed task
                    self._kill_cgroup()
                    reap_adopted()
                    time.sleep(0.02)
            else:
                leftovers.append(Leftover(0, f"cgroup {self.cgroup} could not be emptied"))
        return leftovers


def _create_cgroup(name: str) -> Path | None:
    """A new cgroup under ours (cgroup v2, else v1's pids hierarchy), or None where we may not."""
    for mount, own_path in _cgroup_hierarchies():
        path = mount / own_path.lstrip("/") / name
        try:
            path.mkdir()
        except OSError:
            continue
        if (path / "cgroup.procs").exists():
            return path
        with contextlib.suppress(OSError):
            path.rmdir()
    return None


def _cgroup_hierarchies() -> list[tuple[Path, str]]:
    try:
        memberships = [line.split(":", 2) for line in Path("/proc/self/cgroup").read_text().splitlines()]
        mounts = [line.split() for line in Path("/proc/self/mounts").read_text().splitlines()]
    except OSError:
        return []
    unified = next((path for _, controllers, path in memberships if controllers == ""), None)
    pids = next((path for _, controllers, path in memberships if "pids" in controllers.split(",")), None)
    found = []
    for fields in mounts:
        if len(fields) < 4:
            continue
        mount_point, kind, options = Path(fields[1]), fields[2], fields[3].split(",")
        if kind == "cgroup2" and unified is not None:
            found.insert(0, (mount_point, unified))
        elif kind == "cgroup" and "pids" in options and pids is not None:
            found.append((mount_point, pids))
    return found


def _is_zombie(pid: int) -> bool:
    """Dead and only waiting to be reaped: a zombie leader whose other threads still run is alive."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
        if stat[stat.rfind(")") + 2:][:1] not in ("Z", "X"):
            return False
        return len(list((_PROC / str(pid) / "task").iterdir())) <= 1
    except OSError:
        return True


_managed: set[int] = set()
_harness_own: set[int] = set()
_spawn_lock = threading.Lock()


@contextlib.contextmanager
def spawning() -> Iterator[None]:
    """Hold while starting a child and calling manage(): the reaper never takes a child in between."""
    with _spawn_lock:
        yield


def manage(pid: int) -> None:
    """A child the harness waits for itself (subprocess.Popen): never reaped by reap_adopted()."""
    _managed.add(pid)


def harness_own(pid: int) -> None:
    """A child the harness started for itself (Locust for a surge), never a connector's: no scenario's."""
    _harness_own.add(pid)


def release(pid: int) -> None:
    _managed.discard(pid)
    _harness_own.discard(pid)


def make_undumpable() -> None:
    """Make this process's memory and environment unreadable through /proc to other processes of its user."""
    _prctl(_PR_SET_DUMPABLE, 0)


def reap_adopted() -> None:
    """Reap the zombie children this process adopted as subreaper (orphans of the connector)."""
    if not _subreaper:
        return
    me = os.getpid()
    with _spawn_lock:
        for entry in _PROC.iterdir():
            if entry.name.isdigit() and int(entry.name) not in _managed:
                with contextlib.suppress(OSError, ValueError, IndexError, ChildProcessError):
                    if _parent(entry) == me and _is_zombie(int(entry.name)):
                        os.waitpid(int(entry.name), os.WNOHANG)


def children() -> list[int]:
    """This process's live children."""
    me, found = os.getpid(), []
    for entry in _PROC.iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            if entry.name.isdigit() and _parent(entry) == me and not _is_zombie(int(entry.name)):
                found.append(int(entry.name))
    return found


def _parent(entry: Path) -> int:
    stat = (entry / "stat").read_text()
    return int(stat[stat.rfind(")") + 2:].split()[1])


def _command_line(pid: int) -> str:
    """The command line, or for a process whose main thread has exited, its threads' name."""
    for source in (_PROC / str(pid) / "cmdline", _PROC / str(pid) / "comm"):
        with contextlib.suppress(OSError):
            text = source.read_bytes().replace(b"\0", b" ").decode("utf-8", "replace").strip()[:300]
            if text:
                return text if source.name == "cmdline" else f"[{text}, main thread exited]"
    return "?"
