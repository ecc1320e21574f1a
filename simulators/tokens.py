"""Bearer tokens issued by a simulator's token endpoint; they expire after the run's token TTL."""

from __future__ import annotations

import secrets
import time


class TokenStore:
    """Issued access tokens and their expiry (monotonic seconds)."""

    def __init__(self, prefix: str = "") -> None:
        self._prefix = prefix
        self._expiry: dict[str, float] = {}

    def issue(self, ttl_s: float) -> str:
        now = time.monotonic()
        if len(self._expiry) > 10_000:
            self._expiry = {t: e for t, e in self._expiry.items() if e > now}
        token = self._prefix + secrets.token_urlsafe(32)
        self._expiry[token] = now + ttl_s
        return token

    def valid(self, token: str) -> bool:
        expiry = self._expiry.get(token)
        return expiry is not None and expiry > time.monotonic()

    def issued(self) -> list[str]:
        """Every token issued and not yet pruned (for scrubbing reports)."""
        return list(self._expiry)
