"""Thin clients for the two vendor APIs the reference connector speaks.

Salesforce: OAuth 2.0 client credentials, a fresh token on 401, SOQL with nextRecordsUrl paging,
upsert by external id. NetSuite: OAuth 1.0a token-based authentication (HMAC-SHA256, realm = account)
signed per attempt, upsert with PUT .../eid:X, lists filtered with q=. A call that cannot succeed
raises ApiError; the flows turn that into a dead-letter entry for the record concerned.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256, Client

from syncert_reference.resilience import ResilientClient

SALESFORCE_VERSION = "59.0"
PAGE_SIZE = 1000


class ApiError(Exception):
    def __init__(self, system: str, response: httpx.Response):
        super().__init__(f"{system} answered {response.status_code} to {response.request.method} "
                         f"{response.request.url.path}: {response.text[:300]}")
        self.status_code = response.status_code


class Salesforce:
    def __init__(self, http: ResilientClient, base_url: str, client_id: str, client_secret: str):
        self.http, self.base_url = http, base_url.rstrip("/")
        self._client_id, self._client_secret = client_id, client_secret
        self._token: str | None = None
        self._login_lock = asyncio.Lock()

    async def _login(self) -> None:
        basic = base64.b64encode(f"{self._client_id}:{self._client_secret}".encode()).decode()
        response = await self.http.request("POST", f"{self.base_url}/services/oauth2/token", capped=False,
                                           data={"grant_type": "client_credentials"},
                                           headers={"Authorization": f"Basic {basic}"})
        if response.status_code != 200:
            raise ApiError("salesforce", response)
        self._token = response.json()["access_token"]

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

    async def query(self, soql: str) -> list[dict[str, Any]]:
        """Every record of a SOQL query, following nextRecordsUrl."""
        page = (await self.call("GET", f"/services/data/v{SALESFORCE_VERSION}/query", params={"q": soql})).json()
        records = page["records"]
        while not page["done"]:
            page = (await self.call("GET", page["nextRecordsUrl"])).json()
            records += page["records"]
        return records

    async def upsert(self, sobject: str, field: str, value: str, body: dict[str, Any]) -> None:
        await self.call("PATCH", f"/services/data/v{SALESFORCE_VERSION}/sobjects/{sobject}/{field}/{value}", json=body)

    async def update(self, sobject: str, record_id: str, body: dict[str, Any]) -> None:
        await self.call("PATCH", f"/services/data/v{SALESFORCE_VERSION}/sobjects/{sobject}/{record_id}", json=body)

    async def create(self, sobject: str, body: dict[str, Any]) -> str:
        response = await self.call("POST", f"/services/data/v{SALESFORCE_VERSION}/sobjects/{sobject}/", json=body)
        return response.json()["id"]


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

    async def get(self, record_type: str, key: str) -> dict[str, Any] | None:
        """The record, or None when it does not exist."""
        try:
            return (await self.call("GET", f"/record/v1/{record_type}/{key}")).json()
        except ApiError as error:
            if error.status_code == 404:
                return None
            raise

    async def upsert(self, record_type: str, external_id: str, body: dict[str, Any]) -> None:
        await self.call("PUT", f"/record/v1/{record_type}/eid:{external_id}", json=body)

    async def patch(self, record_type: str, key: str, body: dict[str, Any]) -> None:
        await self.call("PATCH", f"/record/v1/{record_type}/{key}", json=body)

    async def changed_since(self, record_type: str, since: str | None) -> list[dict[str, Any]]:
        """Full records of `record_type` modified at or after `since` (all records when None)."""
        params: dict[str, Any] = {"limit": PAGE_SIZE, "offset": 0}
        if since:
            params["q"] = f'lastModifiedDate ON_OR_AFTER "{since}"'
        ids: list[str] = []
        while True:
            page = (await self.call("GET", f"/record/v1/{record_type}", params=params)).json()
            ids += [item["id"] for item in page["items"]]
            if not page["hasMore"]:
                break
            params["offset"] += PAGE_SIZE
        records = await asyncio.gather(*(self.get(record_type, record_id) for record_id in ids))
        return [r for r in records if r is not None]
