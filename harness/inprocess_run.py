"""Unit scenarios in this process, for developers of Python connectors on httpx.

    pytest --pyargs syncert.scenarios.unit --connector connector.toml --syncert-in-process

The connector's python-mode object (`[run].entrypoint`) is imported here and its sync() called once per
cycle, against simulators in this process behind the vendors' real hostnames (harness.inprocess): no
socket, no child process, a unit scenario in about a second. It is fast feedback while a connector is
written, never a certificate: the connector shares the harness's process, so nothing it does is
contained (`syncert certify` always runs connectors in processes of their own). Only unit scenarios run
this way; the others are skipped. What the connector prints through sys.stdout and sys.stderr is its
cycle's output (SEC-LEAK-01 reads it).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from syncert.harness.control import SimulatorControl
from syncert.harness.inprocess import InProcessVendors
from syncert.harness.launchers import CycleResult
from syncert.harness.manifest import Manifest
from syncert.harness.runner import Evidence, ScenarioInfo, ScenarioRun


class InProcessLauncher:
    """Calls the connector object's sync() in this process, with the connector's environment in os.environ
    for the duration of the call; a raised exception is a failed cycle with its traceback as stderr."""

    webhook_url = None

    def __init__(self, manifest: Manifest, env: dict[str, str]):
        self.manifest, self.env = manifest, env
        self._connector: Any = None

    def start(self) -> None:
        """Nothing runs between cycles."""

    def run_cycle(self) -> CycleResult:
        started = time.monotonic()
        out, err = io.StringIO(), io.StringIO()
        try:
            with _environment(self.env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                if self._connector is None:
                    self._connector = self._load()
                self._connector.sync()
        except Exception:
            return CycleResult(1, time.monotonic() - started, out.getvalue(), err.getvalue() + traceback.format_exc())
        return CycleResult(0, time.monotonic() - started, out.getvalue(), err.getvalue())

    def _load(self) -> Any:
        module_name, _, factory = str(self.manifest.run.entrypoint).partition(":")
        directory = str(self.manifest.directory)
        if directory not in sys.path:
            sys.path.insert(0, directory)
        return getattr(importlib.import_module(module_name), factory)()

    def close(self) -> list[str]:
        """Nothing to end: no process was started. No leftovers."""
        return []


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


class InProcessRun(ScenarioRun):
    """The `sync` fixture of an in-process unit scenario: ScenarioRun's arranging, running and judging,
    over in-process simulators and an in-process connector."""

    def __init__(self, info: ScenarioInfo, manifest: Manifest, random_seed: int = 0):
        SimulatorControl.__init__(self)
        self.info, self.manifest, self.random_seed, self.keep_state = info, manifest, random_seed, None
        self.evidence = Evidence()
        self.vendors = InProcessVendors()
        self.workspace = self.vendors.workspace
        self.env = {**self.vendors.environment, "SYNCERT_SCENARIO": self.evidence.scenario_label}
        self.launcher = InProcessLauncher(manifest, self.env)  # type: ignore[assignment]
        self._started = False
        self._prepare_judging()

    def _send(self, side: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.vendors._send(side, method, path, **kwargs)

    def issued_secrets(self) -> list[str]:
        return [self.vendors.admin_token, *self.simulator_secrets()]

    def close(self, scrub: Callable[[str], str]) -> None:
        self.vendors.close()
