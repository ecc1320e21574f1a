"""Serve a CRM and an ERP simulator on 127.0.0.1: plain HTTP always, HTTPS on demand.

Each simulator serves from its own thread and event loop, so an expensive request on one side cannot
stall the other. `SimulatorHost` is started from an asyncio loop (the `syncert sim` command);
`run_in_background` runs one from a thread for tests and the harness. Connections are guarded (see
simulators.connections): a header deadline, a connection cap, malformed requests answered in the
vendor's shape. TLS uses a CA generated for the run (trustme); its PEM
is written to `ca.pem` in the host's work directory and named by SYNCERT_CA_BUNDLE; the server's
private key to `server-key.pem`, readable by its owner only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme
import uvicorn
import uvloop

from syncert.simulators.connections import guarded_protocol, raise_open_file_limit
from syncert.simulators.simulator import Simulator, build_simulator
from syncert.simulators.stages.pipeline import SimulatorApp

HOST = "127.0.0.1"


class Listener:
    """One uvicorn server on one socket bound to 127.0.0.1."""

    def __init__(self, app: SimulatorApp, port: int, ssl_files: tuple[Path, Path] | None = None):
        self.app = app
        self.requested_port = port
        self.ssl_files = ssl_files
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._socket: socket.socket | None = None
        self._ticker: asyncio.Task | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_files else 'http'}://{HOST}:{self.port}"

    async def start(self) -> None:
        # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only then (else Nagle adds 40 ms)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, self.requested_port))
        except OSError as error:
            sock.close()
            raise OSError(f"cannot listen on {HOST}:{self.requested_port}: {error.strerror}") from None
        self.port = sock.getsockname()[1]
        options: dict[str, Any] = {}
        if self.ssl_files:
            options = {"ssl_certfile": str(self.ssl_files[0]), "ssl_keyfile": str(self.ssl_files[1])}
        config = uvicorn.Config(self.app, lifespan="off", log_level="warning", access_log=False,
                                server_header=False, timeout_keep_alive=30, backlog=1024,
                                timeout_graceful_shutdown=3, proxy_headers=False,
                                http=guarded_protocol(self.app.simulator.dialect), **options)
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[sock])
        if server.should_exit:
            raise OSError(f"cannot serve on {HOST}:{self.port}")
        self._server, self._socket = server, sock
        self._ticker = asyncio.get_running_loop().create_task(server.main_loop())

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.should_exit = True
        if self._ticker is not None:
            await self._ticker
        await self._server.shutdown(sockets=[self._socket] if self._socket else None)
        self._server = None


class TlsListener:
    """The HTTPS listener of one simulator, switched on and off through the control plane."""

    def __init__(self, app: SimulatorApp, certificate: tuple[Path, Path], ca_bundle: Path, port: int = 0):
        self._listener = Listener(app, port, certificate)
        self.ca_bundle = ca_bundle
        self.enabled = False

    async def enable(self) -> None:
        if not self.enabled:
            await self._listener.start()
            self.enabled = True

    async def disable(self) -> None:
        if self.enabled:
            await self._listener.stop()
            self.enabled = False

    @property
    def url(self) -> str | None:
        return self._listener.url if self.enabled else None

    def status(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "url": self.url, "ca_bundle": str(self.ca_bundle)}


class SimulatorThread:
    """A thread running one event loop (uvloop's), for one simulator."""

    def __init__(self, name: str):
        self.loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    async def run(self, coroutine: Any) -> Any:
        """Run `coroutine` on this thread's loop and wait for it from the caller's loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self.loop))

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@dataclass
class Side:
    simulator: Simulator
    listener: Listener
    thread: SimulatorThread | None = None


class SimulatorHost:
    """A CRM and an ERP simulator sharing one admin token and one run CA, each on its own thread."""

    def __init__(self, crm: str = "salesforce", erp: str = "netsuite", data_dir: Path | None = None,
                 memory: bool = False, crm_port: int = 0, erp_port: int = 0, tls: bool = False,
                 admin_token: str | None = None):
        self._owns_work_dir = data_dir is None
        self.work_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="syncert-sim-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.admin_token = admin_token or secrets.token_urlsafe(24)
        self.tls_on_start = tls
        self.ca_bundle = self.work_dir / "ca.pem"
        certificate = self._make_certificate()
        self.sides: dict[str, Side] = {}
        for side, dialect, port in (("crm", crm, crm_port), ("erp", erp, erp_port)):
            store_path = None if memory else self.work_dir / f"{side}.sqlite3"
            simulator = build_simulator(side, dialect, store_path, self.admin_token)
            app = SimulatorApp(simulator)
            simulator.tls = TlsListener(app, certificate, self.ca_bundle)
            self.sides[side] = Side(simulator, Listener(app, port))

    def _make_certificate(self) -> tuple[Path, Path]:
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(self.ca_bundle))
        issued = ca.issue_cert(HOST, "localhost")
        chain, key = self.work_dir / "server-chain.pem", self.work_dir / "server-key.pem"
        chain.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
        descriptor = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            os.fchmod(out.fileno(), 0o600)  # a key file left by an earlier run keeps its mode otherwise
            out.write(issued.private_key_pem.bytes())
        return chain, key

    async def start(self) -> None:
        raise_open_file_limit()
        try:
            for name, side in self.sides.items():
                side.thread = SimulatorThread(f"syncert-{name}")
                await side.thread.run(self._start_side(side))
        except BaseException:
            await self.stop()
            raise

    async def _start_side(self, side: Side) -> None:
        await side.listener.start()
        if self.tls_on_start:
            await side.simulator.tls.enable()

    async def stop(self) -> None:
        for side in self.sides.values():
            if side.thread is not None:
                await side.thread.run(self._stop_side(side))
                side.thread.close()
                side.thread = None
        self.remove_work_dir()

    @staticmethod
    async def _stop_side(side: Side) -> None:
        await side.simulator.tls.disable()
        await side.listener.stop()
        await side.simulator.webhooks.close()
        side.simulator.engine.store.close()

    def remove_work_dir(self) -> None:
        """Delete the work dir (stores, CA, TLS key) when this host made it; a --data-dir is the user's."""
        if self._owns_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def url(self, side: str) -> str:
        entry = self.sides[side]
        return entry.simulator.tls.url or entry.listener.url

    def environment(self) -> dict[str, str]:
        """The SYNCERT_* variables for a connector, plus SYNCERT_ADMIN_TOKEN for scripts."""
        env: dict[str, str] = {}
        for side in ("crm", "erp"):
            env.update(self.sides[side].simulator.dialect.environment(self.url(side)))
        if any(side.simulator.tls.enabled for side in self.sides.values()):
            env["SYNCERT_CA_BUNDLE"] = str(self.ca_bundle)
        env["SYNCERT_ADMIN_TOKEN"] = self.admin_token
        return env


@contextlib.contextmanager
def run_in_background(**options: Any) -> Iterator[SimulatorHost]:
    """Run a SimulatorHost in a daemon thread for the duration of the block."""
    host = SimulatorHost(**options)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    failure: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(host.start())
        except BaseException as error:  # reported to the caller below
            failure.append(error)
            ready.set()
            return
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="syncert-simulators", daemon=True)
    thread.start()
    ready.wait(30)
    if failure:
        raise failure[0]
    try:
        yield host
    finally:
        asyncio.run_coroutine_threadsafe(host.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
