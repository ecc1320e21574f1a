"""Behaviour checks over synthetic journals: each finds its defect and stays quiet on good behaviour."""

from __future__ import annotations

import random
from typing import Any

from syncert.harness.checks import (
    in_flight_above,
    login_loops,
    retry_after_violations,
    retry_chains,
    retry_storms,
    unjittered_backoff,
)


def _journal(*attempts: tuple[str, float, float, tuple[str, ...], int | None]) -> list[dict[str, Any]]:
    """(path, started_at, ended_at, tags, retry_after_s) per entry."""
    return [{"seq": n, "method": "POST", "path": path, "query": "", "request_body": "{}", "started_at": start,
             "ended_at": end, "tags": list(tags), "retry_after_s": wait, "in_flight": 1}
            for n, (path, start, end, tags, wait) in enumerate(attempts, 1)]


def _chain(path: str, waits: list[float], retry_after: int | None = None, start: float = 0.0) -> list[tuple]:
    attempts, at = [], start
    for wait in waits:
        attempts.append((path, at, at + 0.01, ("write", "failed"), retry_after))
        at += 0.01 + wait
    attempts.append((path, at, at + 0.01, ("write", "ok"), None))
    return attempts


def test_chains_group_the_attempts_of_one_failing_request() -> None:
    journal = _journal(*_chain("/a", [0.5, 1.0]), ("/b", 5, 5.1, ("write", "ok"), None))
    [chain] = retry_chains(journal)
    assert len(chain.attempts) == 3 and [round(w, 3) for w in chain.waits_s] == [0.5, 1.0]


def test_a_retry_storm_is_found_and_growing_backoff_is_not() -> None:
    assert retry_storms(_journal(*_chain("/a", [0.001, 0.002, 0.001, 0.003])))
    assert not retry_storms(_journal(*_chain("/a", [0.01, 0.4, 1.2, 0.3])))


def test_retry_after_holds_every_request_to_that_system() -> None:
    assert retry_after_violations(_journal(*_chain("/a", [0.5], retry_after=2)))
    assert not retry_after_violations(_journal(*_chain("/a", [2.01], retry_after=2)))
    refused = _chain("/a", [2.01], retry_after=2)
    other = ("/b?_=cache-buster", 0.6, 0.61, ("read", "ok"), None)
    assert retry_after_violations(_journal(*refused, other))  # another request, whatever its shape
    assert not retry_after_violations(_journal(*refused, (other[0], 0.1, 0.11, other[3], None)))  # in the grace


def test_backoff_without_jitter_is_found_over_enough_chains() -> None:
    fixed = [entry for n in range(6) for entry in _chain(f"/{n}", [0.5, 1.0], start=n * 10)]
    jitter = random.Random(3)
    jittered = [entry for n in range(6) for entry in _chain(f"/{n}", [jitter.uniform(0, 0.5)], start=n * 10)]
    assert unjittered_backoff(_journal(*fixed))
    assert not unjittered_backoff(_journal(*jittered))
    assert not unjittered_backoff(_journal(*fixed[:9]))  # three chains say nothing


def test_in_flight_and_login_loops() -> None:
    journal = _journal(*[("/token", n, n + 0.1, ("token", "refused"), None) for n in range(5)])
    assert login_loops(journal) and not login_loops(journal[:3])
    journal[0]["in_flight"] = 6
    assert in_flight_above(journal, 5) and not in_flight_above(journal, 6)
