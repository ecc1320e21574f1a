"""Thin clients for the two vendor APIs the reference connector speaks.

Salesforce: OAuth 2.0 client credentials, a fresh token on 401 INVALID_SESSION_ID, SOQL with
nextRecordsUrl paging, upsert by external id, create that never duplicates. NetSuite: OAuth 1.0a
token-based authentication (HMAC-SHA256, realm = account) signed per attempt, upsert with
PUT .../eid:X (the new record's URL in Location), lists filtered with q=, SuiteQL.

Money is exact end to end: responses are parsed with Decimal for every number with a fraction, and
request bodies are written by `dumps`, which writes a Decimal as the JSON number it is (never
through float). A call that does not succeed raises ApiError; `ApiError.transient` tells a refusal
that may pass later (throttling, 5xx, 408) from one that will not (the record itself is refused).
An answer whose body cannot be parsed (cut short, a proxy's error page) is never taken for data, nor
for "no records": a read is sent again (read_json), and a create that got one is looked up.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from functools import partial
from typing import Any
from urllib.parse import quote

import httpx
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256, Client

from syncert_reference import resilience
from syncert_reference.resilience import AmbiguousWrite, ResilientClient, gather, is_throttled

SALESFORCE_VERSION = "59.0"
SALESFORCE_DATA = f"/services/data/v{SALESFORCE_VERSION}"
PAGE_SIZE = 1000

Finder = Callable[[], Awaitable[str | None]]


class ApiError(Exception):
    """A vendor API refused a call (after the retries the client makes)."""

    def __init__(self, system: str, response: httpx.Response, problem: str = ""):
        super().__init__(f"{system} {problem or f'answered {response.status_code}'} to {response.request.method} "
                         f"{response.request.url.path}: {response.text[:300]}")
        self.status_code = response.status_code
        self.throttled = is_throttled(response)

    @property
    def transient(self) -> bool:
        """The refusal may not last: throttling past the client's retries, a timeout (408), a 5xx."""
        return self.throttled or self.status_code == 408 or self.status_code >= 500

    @property
    def unauthorized(self) -> bool:
        """The credentials themselves are refused (even after a new login): no record can sync."""
        return self.status_code == 401


class LoginRefused(ApiError):
    """The token endpoint refused the credentials (Salesforce answers 400 invalid_client): no record can sync."""

    @property
    def unauthorized(self) -> bool:
        return True


class UnreadableAnswer(ApiError):
    """Every answer to a call had a body that is not JSON (cut short, an error page): it may pass later."""

    def __init__(self, system: str, response: httpx.Response):
        super().__init__(system, response, f"answered {response.status_code} with a body that is not JSON")

    @property
    def transient(self) -> bool:
        return True


def loads(content: bytes | str) -> Any:
    """JSON with every number that has a fraction as an exact Decimal."""
    return json.loads(content, parse_float=Decimal)


def dumps(value: Any) -> str:
    """JSON text; a Decimal is written as the exact JSON number it is, a float is refused."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a JSON number")
        return format(value, "f")
    if isinstance(value, float):
        raise TypeError("money and quantities are Decimals here, never floats")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(key))}:{dumps(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(item) for item in value) + "]"
    return json.dumps(value)


def soql_literal(value: str) -> str:
    """A SOQL string literal: quoted, with backslash and single quote escaped as Salesforce requires."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def suiteql_literal(value: str) -> str:
    """A SuiteQL (SQL) string literal: quoted, a single quote doubled."""
    return "'" + value.replace("'", "''") + "'"


def _json_body(body: Any, **headers: str) -> dict[str, Any]:
    """httpx keyword arguments sending `body` as exact JSON."""
    return {"content": dumps(body).encode(), "headers": {"Content-Type": "application/json", **headers}}


async def read_json(system: str, send: Callable[[], Awaitable[httpx.Response]]) -> Any:
    """The JSON body of the answer to `send` (an idempotent call). A body that cannot be parsed is asked for
    again, with backoff: a broken page taken for an empty one would skip its records without a word."""
    for attempt in range(1, resilience.MAX_ATTEMPTS + 1):
        response = await send()
        try:
            return loads(response.content)
        except ValueError:
            if attempt == resilience.MAX_ATTEMPTS:
                raise UnreadableAnswer(system, response) from None
            await asyncio.sleep(resilience.backoff_delay(attempt, None))
    raise AssertionError("unreachable")


async def create_once(send: Callable[[], Awaitable[str]], find: Finder) -> str:
    """Create a record with a request that is not idempotent. After an ambiguous failure the record
    is looked up with `find`, and sent again only when it is not there."""
    for attempt in range(1, resilience.MAX_ATTEMPTS + 1):
        try:
            return await send()
        except AmbiguousWrite:
            if (found := await find()) is not None:
                return found
            if attempt == resilience.MAX_ATTEMPTS:
                raise
            await asyncio.sleep(resilience.backoff_delay(attempt, None))
    raise AssertionError("unreachable")


class Salesforce:
    def __init__(self, http: ResilientClient, base_url: str, client_id: str, client_secret: str):
        self.http, self.base_url = http, base_url.rstrip("/")
        self._client_id, self._client_secret = client_id, client_secret
        self._token: str | None = None
        self._login_lock = asyncio.Lock()

    async def _login(self) -> None:
        basic = base64.b64encode(f"{self._client_id}:{self._client_secret}".encode()).decode()

        async def send() -> httpx.Response:
            response = await self.http.request("POST", f"{self.base_url}/services/oauth2/token", capped=False,
                                               idempotent=True, data={"grant_type": "client_credentials"},
                                               headers={"Authorization": f"Basic {basic}"})
            if response.status_code != 200:
                error = ApiError("salesforce", response)
                raise error if error.transient else LoginRefused("salesforce", response)
            return response
        self._token = (await read_json("salesforce", send))["access_token"]

    async def _sign(self, request: httpx.Request) -> None:
        async with self._login_lock:  # one login at a time; the others wait and reuse its token
            if self._token is None:
                await self._login()
        request.headers["Authorization"] = f"Bearer {self._token}"

    async def _session_expired(self, response: httpx.Response) -> bool:
        """A 401: forget the session that failed (not a newer one) so the resend logs in again."""
        if response.request.headers.get("Authorization") == f"Bearer {self._token}":
            self._token = None
        return True

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        response = await self.http.request(method, url, sign=self._sign, reauthenticate=self._session_expired,
                                           **kwargs)
        if response.status_code >= 400:
            raise ApiError("salesforce", response)
        return response

    async def call_json(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON body of an idempotent call's answer (see read_json)."""
        return await read_json("salesforce", partial(self.call, method, path, **kwargs))

    async def query(self, soql: str) -> list[dict[str, Any]]:
        """Every record of a SOQL query, following nextRecordsUrl."""
        page = await self.call_json("GET", f"{SALESFORCE_DATA}/query", params={"q": soql})
        records = page["records"]
        while not page["done"]:
            page = await self.call_json("GET", page["nextRecordsUrl"])
            records += page["records"]
        return records

    async def upsert(self, sobject: str, field: str, value: str, body: dict[str, Any]) -> str:
        """Create or update the record whose external id `field` is `value`; its Salesforce id (in the
        answer's body: 201 when created, 200 when updated from API version 46.0 on)."""
        answer = await self.call_json("PATCH", f"{SALESFORCE_DATA}/sobjects/{sobject}/{field}/{quote(value, safe='')}",
                                      **_json_body(body))
        return answer["id"]

    async def update(self, sobject: str, record_id: str, body: dict[str, Any]) -> None:
        await self.call("PATCH", f"{SALESFORCE_DATA}/sobjects/{sobject}/{record_id}", **_json_body(body))

    async def create(self, sobject: str, body: dict[str, Any], find: Finder) -> str:
        """Create a record (POST, not idempotent: see create_once); its Salesforce id."""
        async def send() -> str:
            response = await self.call("POST", f"{SALESFORCE_DATA}/sobjects/{sobject}/", **_json_body(body))
            try:
                return loads(response.content)["id"]
            except ValueError:  # created, or not: the lookup decides
                raise AmbiguousWrite(f"salesforce answered the create of a {sobject} with a body that is not "
                                     "JSON") from None
        return await create_once(send, find)


class NetSuite:
    def __init__(self, http: ResilientClient, base_url: str, account: str, consumer_key: str, consumer_secret: str,
                 token_id: str, token_secret: str):
        self.http, self.base_url = http, base_url.rstrip("/")
        self._signer = Client(consumer_key, client_secret=consumer_secret, resource_owner_key=token_id,
                              resource_owner_secret=token_secret, signature_method=SIGNATURE_HMAC_SHA256,
                              realm=account)

    async def _sign(self, request: httpx.Request) -> None:
        _, headers, _ = self._signer.sign(str(request.url), http_method=request.method)
        request.headers["Authorization"] = headers["Authorization"]

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = path if path.startswith("http") else f"{self.base_url}/services/rest{path}"
        response = await self.http.request(method, url, sign=self._sign, **kwargs)
        if response.status_code >= 400:
            raise ApiError("netsuite", response)
        return response

    async def call_json(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON body of an idempotent call's answer (see read_json)."""
        return await read_json("netsuite", partial(self.call, method, path, **kwargs))

    async def get(self, record_type: str, key: str) -> dict[str, Any]:
        """The record; `key` is an internal id or eid:<external id>."""
        return await self.call_json("GET", f"/record/v1/{record_type}/{quote(key, safe=':')}")

    async def find(self, record_type: str, key: str) -> dict[str, Any] | None:
        """The record, or None when it does not exist."""
        try:
            return await self.get(record_type, key)
        except ApiError as error:
            if error.status_code == 404:
                return None
            raise

    async def upsert(self, record_type: str, external_id: str, body: dict[str, Any]) -> str:
        """Create or update the record with this external id (PUT eid:, idempotent); its internal id,
        read from Location, which holds the record's URL both when it was created and when updated."""
        response = await self.call("PUT", f"/record/v1/{record_type}/eid:{quote(external_id, safe='')}",
                                   **_json_body(body))
        return response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]

    async def patch(self, record_type: str, record_id: str, body: dict[str, Any]) -> None:
        await self.call("PATCH", f"/record/v1/{record_type}/{record_id}", **_json_body(body))

    async def changed_since(self, record_type: str, since: str | None) -> list[dict[str, Any]]:
        """Full records of `record_type` modified at or after `since` (all records when None)."""
        params: dict[str, Any] = {"limit": PAGE_SIZE, "offset": 0}
        if since:
            params["q"] = f'lastModifiedDate ON_OR_AFTER "{since}"'
        ids: list[str] = []
        while True:
            page = await self.call_json("GET", f"/record/v1/{record_type}", params=params)
            ids += [item["id"] for item in page["items"]]
            if not page["hasMore"]:
                break
            params["offset"] += len(page["items"])  # the page may be smaller than asked for
        records = await gather(self.find(record_type, record_id) for record_id in ids)
        return [record for record in records if record is not None]

    async def suiteql(self, query: str) -> list[dict[str, Any]]:
        """Every row of a SuiteQL query (a read sent as POST, so safe to resend)."""
        rows: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = await self.call_json("POST", "/query/v1/suiteql", params={"limit": PAGE_SIZE, "offset": offset},
                                        idempotent=True, **_json_body({"q": query}, Prefer="transient"))
            rows += page["items"]
            if not page["hasMore"]:
                return rows
            offset += len(page["items"])  # the page may be smaller than asked for

