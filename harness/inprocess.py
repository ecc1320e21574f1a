"""In-process unit mode: httpx requests to the vendors' real hostnames, answered by simulators in this process.

    with simulated_vendors(org="acme", account="1234567") as vendors:
        vendors.seed("crm", {"account": [{"name": "Acme Corp"}]})
        asyncio.run(SyncCycle(Settings.from_environment(env=vendors.environment)).run())
        assert vendors.state("erp")["customer"][0]["name"] == "Acme Corp"

While the block runs, respx intercepts every httpx request of the process (`httpx.Client` and
`httpx.AsyncClient`, however and wherever they are made) and routes:

    https://<org>.my.salesforce.com/...                           the Salesforce simulator
    https://login.salesforce.com/services/oauth2/token            its token endpoint (also test.salesforce.com);
                                                                  `instance_url` answers the org's URL
    https://<account slug>.suitetalk.api.netsuite.com/...         the NetSuite simulator; the slug is the
                                                                  account id lower-cased, "_" -> "-"

Any other request raises `UnroutedRequest` (respx's AllMockedAssertionError, naming the routed hosts):
nothing reaches the network. The simulators are those `syncert sim` serves (the whole pipeline: journal,
auth with OAuth 1.0a signatures checked over the vendor URL, governance, faults, dialects, engines),
with in-memory stores, each on an event loop of its own in a helper thread, so sync clients and any
caller's event loop can use them at once. No socket is opened, no name resolved, no process started.

Records are seeded, edited and read through the same control-plane routes the harness uses
(`SimulatorControl`: seed, edit, state, journal, limits, latency, expire_sessions), sent straight into
the simulators with the admin token, which `environment` (what a connector reads) never holds.

Limits: only httpx is intercepted. requests-based clients such as simple-salesforce are not seen by
respx: give them `requests_session()`. Change events (webhooks) are not delivered. There is no TLS
(the URLs say https, no handshake happens; SYNCERT_CA_BUNDLE is not set). The read timeout of an httpx
request bounds the whole answer; connect, write and pool timeouts never apply.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import re
import secrets
from collections.abc import Coroutine, Iterator
from contextvars import ContextVar
from functools import partial
from typing import TYPE_CHECKING, Any

import httpx
import respx
from respx.models import AllMockedAssertionError

from syncert.harness.control import SIDES, SimulatorControl
from syncert.harness.workspace import Workspace
from syncert.simulators.dialects.netsuite.dialect import NetSuiteDialect
from syncert.simulators.dialects.salesforce.dialect import TOKEN_PATH, SalesforceDialect
from syncert.simulators.host import SimulatorThread
from syncert.simulators.simulator import Simulator, build_simulator
from syncert.simulators.stages.pipeline import SimulatorApp

if TYPE_CHECKING:
    import requests

SALESFORCE_LOGIN_HOSTS = ("login.salesforce.com", "test.salesforce.com")
_MY_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$", re.IGNORECASE)
_SYNC_CALLER: ContextVar[bool] = ContextVar("syncert_inprocess_sync_caller", default=False)


class UnroutedRequest(AllMockedAssertionError):
    """A request to a host (or login path) the in-process vendors do not serve: it is never sent."""


def salesforce_host(org: str) -> str:
    """The hostname of a Salesforce org's My Domain: `<org>.my.salesforce.com`."""
    if not _MY_DOMAIN.match(org):
        raise ValueError(f"{org!r} is not a Salesforce My Domain name (letters, digits and inner hyphens)")
    return f"{org.lower()}.my.salesforce.com"


def netsuite_host(account: str) -> str:
    """The SuiteTalk REST hostname of a NetSuite account: `1234567_SB1` -> `1234567-sb1.suitetalk.api.netsuite.com`."""
    return f"{account.lower().replace('_', '-')}.suitetalk.api.netsuite.com"


class _VendorRouter(respx.MockRouter):
    """A respx router that tells its side effects whether a sync client waits (respx calls `handler`
    for those, `async_handler` for async ones), and names the routed hosts when it refuses a request."""

    def __init__(self, routed: list[str]) -> None:
        super().__init__(assert_all_called=False, assert_all_mocked=True)
        self.routed = routed

    def handler(self, request: httpx.Request) -> httpx.Response:
        sync_caller = _SYNC_CALLER.set(True)
        try:
            return super().handler(request)
        except AllMockedAssertionError:
            raise self._unrouted(request) from None
        finally:
            _SYNC_CALLER.reset(sync_caller)

    async def async_handler(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().async_handler(request)
        except AllMockedAssertionError:
            raise self._unrouted(request) from None

    def _unrouted(self, request: httpx.Request) -> UnroutedRequest:
        return UnroutedRequest(f"in-process vendors: {request.method} {request.url} is not served here and was not "
                               f"sent (nothing reaches the network in this mode); served: {', '.join(self.routed)}")


class InProcessVendors(SimulatorControl):
    """A Salesforce org and a NetSuite account simulated in this process, behind their real hostnames.

    `environment` is what a connector reads (credentials, vendor URLs, a state dir and a dead-letter file
    of its own); `seed`, `edit`, `state`, `journal`... arrange and read the simulators (SimulatorControl);
    `router` is the respx router (its `calls` hold every request it routed). Use `simulated_vendors()`.
    """

    def __init__(self, org: str = "acme", account: str = "1234567") -> None:
        super().__init__()
        crm_host, erp_host = salesforce_host(org), netsuite_host(account)
        self.urls = {"crm": f"https://{crm_host}", "erp": f"https://{erp_host}"}
        self.admin_token = secrets.token_urlsafe(24)
        self.simulators: dict[str, Simulator] = {"crm": build_simulator("crm", "salesforce", None, self.admin_token),
                                                 "erp": build_simulator("erp", "netsuite", None, self.admin_token)}
        crm, erp = self.simulators["crm"].dialect, self.simulators["erp"].dialect
        assert isinstance(crm, SalesforceDialect) and isinstance(erp, NetSuiteDialect)
        crm.instance_url = self.urls["crm"]
        erp.use_account(account)
        self._transports = {side: httpx.ASGITransport(SimulatorApp(simulator))
                            for side, simulator in self.simulators.items()}
        self.workspace = Workspace()
        self._threads = {side: SimulatorThread(f"syncert-inprocess-{side}") for side in SIDES}
        self.router = _VendorRouter([*self.urls.values(), *(f"https://{host}{TOKEN_PATH}"
                                                            for host in SALESFORCE_LOGIN_HOSTS)])
        self.router.route(scheme="https", host=crm_host).mock(side_effect=partial(self._serve, "crm"))
        self.router.route(scheme="https", host__in=SALESFORCE_LOGIN_HOSTS, path=TOKEN_PATH).mock(
            side_effect=partial(self._serve, "crm"))
        self.router.route(scheme="https", host=erp_host).mock(side_effect=partial(self._serve, "erp"))
        self.router.start()

    @property
    def environment(self) -> dict[str, str]:
        """The connector's environment (docs/protocol.md section 2), credentials as they are now."""
        env: dict[str, str] = {}
        for side in SIDES:
            env.update(self.simulators[side].dialect.environment(self.urls[side]))
        return {**env, "SYNCERT_STATE_DIR": str(self.workspace.state_dir),
                "SYNCERT_DEAD_LETTER": str(self.workspace.dead_letter)}

    def dead_letters(self) -> list[dict[str, Any]]:
        """What the connector dead-lettered; raises EvidenceError when the file breaks the protocol."""
        return self.workspace.dead_letters()

    def requests_session(self) -> requests.Session:
        """A requests.Session whose requests are answered here like httpx ones (any other host refused), for
        requests-based clients such as simple-salesforce: `Salesforce(instance_url=vendors.urls["crm"],
        session_id=token, session=vendors.requests_session())`. respx alone does not see requests."""
        import requests  # not a dependency of syncert: only clients built on it need this

        session = requests.Session()
        session.trust_env = False
        adapter = _RequestsAdapter(self.router)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def _submit(self, side: str, coroutine: Coroutine[Any, Any, httpx.Response]) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coroutine, self._threads[side].loop)

    def _serve(self, side: str, request: httpx.Request) -> httpx.Response | Coroutine[Any, Any, httpx.Response]:
        """The respx side effect: `request` answered by `side`'s simulator, on its loop: the answer itself for
        a sync caller, a coroutine for an async one (so its event loop keeps running meanwhile)."""
        future = self._submit(side, _exchange(self._transports[side], request))
        timeout = (request.extensions.get("timeout") or {}).get("read")
        if not _SYNC_CALLER.get():
            return _answer(future, timeout, request)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise _timed_out(request, timeout) from None

    def _send(self, side: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        request = httpx.Request(method, f"{self.urls[side]}{path}",
                                headers={"Authorization": f"Bearer {self.admin_token}"}, **kwargs)
        return self._submit(side, _exchange(self._transports[side], request)).result()

    def close(self) -> None:
        """Stop routing, stop the simulators and their threads, remove the connector's files."""
        try:
            self.router.stop()
            for side, thread in self._threads.items():
                asyncio.run_coroutine_threadsafe(_shut_down(self.simulators[side]), thread.loop).result(10)
        finally:
            for thread in self._threads.values():
                thread.close()
            self.workspace.remove()


@contextlib.contextmanager
def simulated_vendors(org: str = "acme", account: str = "1234567") -> Iterator[InProcessVendors]:
    """Serve `https://<org>.my.salesforce.com` and the NetSuite account `account` in process for the block."""
    vendors = InProcessVendors(org, account)
    try:
        yield vendors
    finally:
        vendors.close()


class _RequestsAdapter:
    """A requests transport adapter (duck-typed, so that requests is imported only when used) that sends
    each request through the vendors' router."""

    def __init__(self, router: _VendorRouter) -> None:
        self.router = router

    def send(self, request: Any, timeout: Any = None, **_: Any) -> Any:
        import requests
        from requests.structures import CaseInsensitiveDict

        body = request.body.encode() if isinstance(request.body, str) else request.body or b""
        read_timeout = timeout[1] if isinstance(timeout, tuple) else timeout
        answer = self.router.handler(httpx.Request(request.method, request.url, headers=dict(request.headers),
                                                   content=body, extensions={"timeout": {"read": read_timeout}}))
        response = requests.Response()
        response.status_code, response.reason = answer.status_code, answer.reason_phrase
        response.headers = CaseInsensitiveDict(answer.headers.multi_items())
        response._content = answer.content
        response.encoding = answer.charset_encoding
        response.url, response.request, response.connection = request.url, request, self
        return response

    def close(self) -> None:
        """Nothing to release: no connection is ever opened."""


async def _exchange(transport: httpx.ASGITransport, request: httpx.Request) -> httpx.Response:
    """`request` answered by the simulator behind `transport`, its body read (runs on the simulator's loop)."""
    response = await transport.handle_async_request(request)
    body = b"".join([chunk async for chunk in response.aiter_raw()])
    return httpx.Response(response.status_code, headers=response.headers, content=body)


async def _answer(future: concurrent.futures.Future, timeout: float | None, request: httpx.Request) -> httpx.Response:
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
    except TimeoutError:
        raise _timed_out(request, timeout) from None


def _timed_out(request: httpx.Request, timeout: float | None) -> httpx.ReadTimeout:
    return httpx.ReadTimeout(f"the simulator did not answer {request.method} {request.url} within {timeout} s",
                             request=request)


async def _shut_down(simulator: Simulator) -> None:
    await simulator.webhooks.close()
    simulator.engine.store.close()
