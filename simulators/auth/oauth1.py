"""OAuth 1.0a token-based authentication (TBA) as NetSuite verifies it.

Header: `Authorization: OAuth realm="<account>", oauth_consumer_key, oauth_token, oauth_nonce,
oauth_timestamp, oauth_signature_method="HMAC-SHA256", oauth_version="1.0", oauth_signature`
(plus `oauth_body_hash` when the client signs a non-form body). The signature is HMAC-SHA256 over
the RFC 5849 base string, keyed by `consumer_secret&token_secret`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from urllib.parse import unquote

from oauthlib.oauth1.rfc5849 import signature as rfc5849
from oauthlib.oauth1.rfc5849.utils import parse_authorization_header

MAX_CLOCK_SKEW_S = 300


@dataclass(frozen=True)
class TbaCredentials:
    account: str
    consumer_key: str
    consumer_secret: str
    token_id: str
    token_secret: str


class SignatureVerifier:
    """Checks TBA headers against one set of credentials, refusing replayed nonces."""

    def __init__(self, credentials: TbaCredentials):
        self.credentials = credentials
        self._seen_nonces: dict[str, float] = {}

    def verify(self, method: str, url: str, query: str, headers: dict[str, str], body: bytes) -> str | None:
        """None when the request is signed correctly, else the reason it is not."""
        header = headers.get("authorization", "")
        if not header.lower().startswith("oauth "):
            return "missing OAuth authorization header"
        try:
            params = {key: unquote(value) for key, value in parse_authorization_header(header)}
        except ValueError:
            return "malformed OAuth authorization header"
        creds = self.credentials
        realm = params.get("realm", "")
        if realm.replace("-", "_").upper() != creds.account.upper():
            return f"realm {realm!r} does not match the account"
        if params.get("oauth_signature_method") != "HMAC-SHA256":
            return "signature method must be HMAC-SHA256"
        if not hmac.compare_digest(params.get("oauth_consumer_key", "").encode(), creds.consumer_key.encode()):
            return "unknown consumer key"
        if not hmac.compare_digest(params.get("oauth_token", "").encode(), creds.token_id.encode()):
            return "unknown token"
        try:
            timestamp = int(params.get("oauth_timestamp", ""))
        except ValueError:
            return "missing or malformed oauth_timestamp"
        if abs(time.time() - timestamp) > MAX_CLOCK_SKEW_S:
            return "oauth_timestamp is too far from the current time"
        nonce = params.get("oauth_nonce", "")
        if not nonce:
            return "missing oauth_nonce"
        if nonce in self._seen_nonces:
            return "oauth_nonce was already used"
        if "oauth_body_hash" in params:
            expected_hash = base64.b64encode(hashlib.sha1(body).digest()).decode()
            if not hmac.compare_digest(params["oauth_body_hash"].encode(), expected_hash.encode()):
                return "oauth_body_hash does not match the body"
        is_form = "application/x-www-form-urlencoded" in headers.get("content-type", "")
        collected = rfc5849.collect_parameters(uri_query=query, body=body.decode("utf-8", "replace") if is_form
                                               else None, headers={"Authorization": header},
                                               exclude_oauth_signature=True, with_realm=False)
        base = rfc5849.signature_base_string(method.upper(), rfc5849.base_string_uri(url),
                                             rfc5849.normalize_parameters(collected))
        key = f"{rfc5849.utils.escape(creds.consumer_secret)}&{rfc5849.utils.escape(creds.token_secret)}"
        expected = base64.b64encode(hmac.new(key.encode(), base.encode(), hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(params.get("oauth_signature", "").encode(), expected.encode()):
            return "signature does not match"
        self._remember(nonce, timestamp)
        return None

    def _remember(self, nonce: str, timestamp: int) -> None:
        now = time.time()
        if len(self._seen_nonces) > 50_000:
            self._seen_nonces = {n: t for n, t in self._seen_nonces.items() if now - t < MAX_CLOCK_SKEW_S}
        self._seen_nonces[nonce] = timestamp
