"""Behaviour checks read from one simulator's journal (reconciliation per business key is in reconciliation.py).

Each check reads the journal's canonical tags only and returns what it found wrong, one line each:
- retry_after_violations: any request sent to a system before the Retry-After it gave had passed;
- retry_storms: a request sent again at once, three times in a row, after failures (no backoff);
- unjittered_backoff: many retry chains waiting exactly the same time (backoff without jitter);
- in_flight_above: requests served while more than the limit were in flight;
- login_loops: logins attempted again and again once the credentials were refused for good;
- stale_credential_refusals: requests refused for their credentials after a rotation, beyond what one
  stale session explains.
`retry_chains` groups the attempts of one request, for scenarios that want the figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RETRY_TOLERANCE_S = 0.05  # clock and scheduling slack for a request sent again after its own Retry-After
RETRY_AFTER_GRACE_S = 0.25  # a request this soon after a refusal may have left before the refusal was read
STORM_GAP_S = 0.05  # a retry this soon after the failed answer was not delayed at all
STORM_LENGTH = 3  # so many immediate retries in a row are a storm
JITTER_MIN_CHAINS = 5  # chains needed before their waits are compared
JITTER_SPREAD_S = 0.01  # first waits all within this of each other: no jitter
MAX_REFUSED_LOGINS = 3  # refused logins a connector may try before it gives up


@dataclass
class RetryChain:
    """Consecutive attempts of one request (same method, path and body) while the earlier ones failed."""

    attempts: list[dict[str, Any]]

    @property
    def waits_s(self) -> list[float]:
        """Seconds from each failed answer to the next attempt."""
        pairs = zip(self.attempts, self.attempts[1:], strict=False)
        return [later["started_at"] - earlier["ended_at"] for earlier, later in pairs]

    def describe(self) -> str:
        first = self.attempts[0]
        waits = ", ".join(f"{wait:.3f}" for wait in self.waits_s)
        return f"{first['method']} {first['path']}: {len(self.attempts)} attempts, waits {waits} s"


def _failed(entry: dict[str, Any]) -> bool:
    return bool({"throttled", "failed"} & set(entry["tags"]))


def retry_chains(journal: list[dict[str, Any]]) -> list[RetryChain]:
    """Every request that was sent again after a failed (5xx, unanswered) or throttled attempt."""
    open_chains: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    chains = []
    for entry in journal:
        if "token" in entry["tags"]:
            continue
        key = (entry["method"], entry["path"] + "?" + entry["query"], entry["request_body"])
        attempts = open_chains.get(key)
        if attempts is not None:
            attempts.append(entry)
        if not _failed(entry):
            finished = open_chains.pop(key, None)
            if finished is not None and len(finished) > 1:
                chains.append(RetryChain(finished))
        elif attempts is None:
            open_chains[key] = [entry]
    chains.extend(RetryChain(attempts) for attempts in open_chains.values() if len(attempts) > 1)
    return sorted(chains, key=lambda chain: chain.attempts[0]["seq"])


def retry_after_violations(journal: list[dict[str, Any]], grace_s: float = RETRY_AFTER_GRACE_S) -> list[str]:
    """Requests sent to a system while the Retry-After of a refusal it had answered was not over: the refused
    request sent again (at any time before), or any other request, whatever its shape, sent later than
    `grace_s` after the refusal (sooner, the client may not have read the refusal yet). A Retry-After asks
    the client to wait, not only the refused request."""
    violations = []
    for chain in retry_chains(journal):
        for refused, retry in zip(chain.attempts, chain.attempts[1:], strict=False):
            wait = refused["retry_after_s"]
            if wait and retry["started_at"] < refused["ended_at"] + wait - RETRY_TOLERANCE_S:
                violations.append(f"{refused['method']} {refused['path']} sent again "
                                  f"{retry['started_at'] - refused['ended_at']:.2f}s after a Retry-After of {wait}s")
    for refusal in (e for e in journal if e["retry_after_s"] and "token" not in e["tags"]):
        opens, closes = refusal["ended_at"] + grace_s, refusal["ended_at"] + refusal["retry_after_s"] - grace_s
        early = [e for e in journal if "token" not in e["tags"] and opens < e["started_at"] < closes]
        if early:
            first = early[0]
            violations.append(f"{len(early)} request(s) sent within the Retry-After of {refusal['retry_after_s']}s "
                              f"given to {refusal['method']} {refusal['path']} (first: {first['method']} "
                              f"{first['path']}, {first['started_at'] - refusal['ended_at']:.2f}s after it)")
    return violations


def retry_storms(journal: list[dict[str, Any]]) -> list[str]:
    """Requests retried at once (within STORM_GAP_S of the failure) STORM_LENGTH times in a row."""
    storms = []
    for chain in retry_chains(journal):
        run = 0
        for wait in chain.waits_s:
            run = run + 1 if wait < STORM_GAP_S else 0
            if run >= STORM_LENGTH:
                storms.append(f"no backoff: {chain.describe()}")
                break
    return storms


def unjittered_backoff(journal: list[dict[str, Any]]) -> list[str]:
    """Backoff without jitter: at least JITTER_MIN_CHAINS retry chains (not paced by Retry-After) whose first
    waits all lie within JITTER_SPREAD_S, so that clients failing together retry together."""
    firsts = [chain.waits_s[0] for chain in retry_chains(journal) if chain.attempts[0]["retry_after_s"] is None]
    if len(firsts) < JITTER_MIN_CHAINS or max(firsts) - min(firsts) > JITTER_SPREAD_S:
        return []
    return [f"{len(firsts)} retry chains all waited {min(firsts):.3f}-{max(firsts):.3f} s before their first retry"]


def in_flight_above(journal: list[dict[str, Any]], limit: int) -> list[str]:
    """Requests admitted while more than `limit` API requests were in flight."""
    return [f"{e['method']} {e['path']} with {e['in_flight']} in flight (limit {limit})"
            for e in journal if e["in_flight"] > limit]


def login_loops(journal: list[dict[str, Any]], allowed: int = MAX_REFUSED_LOGINS) -> list[str]:
    """More than `allowed` refused logins: a connector that keeps trying credentials that no longer work."""
    refused = [e for e in journal if "token" in e["tags"] and "ok" not in e["tags"]]
    if len(refused) <= allowed:
        return []
    span = refused[-1]["ended_at"] - refused[0]["started_at"]
    return [f"{len(refused)} refused logins in {span:.1f}s (at most {allowed} before giving up)"]


def stale_credential_refusals(journal: list[dict[str, Any]], since: float) -> list[dict[str, Any]]:
    """Requests begun at or after `since` (a time.time() stamp: when credentials were rotated) and refused for
    their credentials, beyond what a login retry explains: every refused login (it can only have been sent with
    credentials no longer issued), and every API request refused except those begun before the first one that
    succeeded (a session kept from before the rotation, which a connector finds stale by being refused)."""
    after = [entry for entry in journal if entry["started_at"] >= since]
    answered = [entry["ended_at"] for entry in after if "ok" in entry["tags"] and "token" not in entry["tags"]]
    first_success = min(answered, default=None)
    return [entry for entry in after if {"token", "refused"} <= set(entry["tags"]) or (
        "auth" in entry["tags"] and (first_success is None or entry["started_at"] > first_success))]
