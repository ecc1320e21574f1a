"""Bearer tokens issued by a simulator's token endpoint, and the record of every secret it issued.

Tokens expire after the run's token TTL on the simulated clock (moving the clock forward expires them),
when the control plane rotates the credentials, or when a scheduled session expiry comes due.
"""

from __future__ import annotations

import math
import secrets
from collections import deque
from collections.abc import Callable

SECRETS_KEPT = 100_000


class IssuedSecrets:
    """Every secret value a simulator issued (credentials, tokens, signatures), the newest SECRETS_KEPT."""

    def __init__(self, capacity: int = SECRETS_KEPT) -> None:
        self._values: deque[str] = deque(maxlen=capacity)

    def add(self, *values: str) -> None:
        self._values.extend(values)

    def values(self) -> list[str]:
        """Oldest first."""
        return list(self._values)


class TokenStore:
    """Issued access tokens and their expiry (seconds on the simulated clock `now`); each token is also
    logged as a secret."""

    def __init__(self, log: IssuedSecrets, now: Callable[[], float], prefix: str = "") -> None:
        self._log = log
        self._now = now
        self._prefix = prefix
        self._expiry: dict[str, float] = {}
        self._expire_countdown: int | None = None

    def issue(self, ttl_s: float) -> str:
        now = self._now()
        if len(self._expiry) > 10_000:
            self._expiry = {t: e for t, e in self._expiry.items() if e > now}
        token = self._prefix + secrets.token_urlsafe(32)
        self._expiry[token] = now + ttl_s
        self._log.add(token)
        return token

    def valid(self, token: str) -> bool:
        expiry = self._expiry.get(token)
        return expiry is not None and expiry > self._now()

    def issued(self) -> list[str]:
        """Every token issued and not yet pruned (for scrubbing reports)."""
        return list(self._expiry)

    def revoke_all(self) -> None:
        """Invalidate every token issued so far (they stay listed by `issued`)."""
        self._expiry = dict.fromkeys(self._expiry, -math.inf)

    def expire_after(self, requests: int) -> None:
        """Revoke every token issued until then once `requests` more API requests are answered (0: now)."""
        self._expire_countdown = requests or None
        if not requests:
            self.revoke_all()

    def cancel_expiry(self) -> None:
        """Drop a scheduled expiry (control-plane reset)."""
        self._expire_countdown = None

    def answered(self) -> None:
        """Count one answered API request toward a scheduled expiry."""
        if self._expire_countdown is not None:
            self._expire_countdown -= 1
            if self._expire_countdown == 0:
                self._expire_countdown = None
                self.revoke_all()
