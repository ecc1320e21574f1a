"""Fault rules: what to match, when to fire, and which fault to inject; parsed and checked from JSON.

A schedule is {"seed": int, "origin": unix seconds?, "rules": [rule, ...]}; a rule is
    {"id"?: str,
     "match": {"kind"?, "operation"?, "access"?: "read"|"write", "method"?, "path"?: regex, "body"?: text,
               "answer"?: text (in the answer the simulator would give)},
     "on_call"?: N (the first matching call it fires on, default 1),
     "calls"?: M (how many calls it fires on, default 1; null: every call from on_call on),
     "probability"?: p (0..1, default 1),
     "window_s"?: [from, to] (seconds after the schedule's origin; with no "calls", every call in it),
     "for_s"?: S (once the rule first fires, it fires on every matching call for S seconds: an outage or a
               maintenance window that opens when the connector gets there, however late),
     "fault": {"type": <one of FAULT_TYPES>, ...its parameters}}
Kinds and operations are canonical (the journal's names). A call counts toward a rule's on_call, calls and
probability only if the simulator would have answered it with success (and, with match.answer, that answer
holds the text): a request refused anyway, or a throwaway one that reads nothing the rule aims at, cannot use
a fault up. In a time window (window_s, or for_s once open) every matching call gets the fault (with
match.answer, every answer holding the text). Every rule draws from its own random stream, seeded by (seed,
simulator, rule position), and only when a call counts: the same seed and the same calls give the same faults.
"""

from __future__ import annotations

import math
import random
import re
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

MAX_RULES = 200
MAX_HOLD_S = 600.0
MAX_LATENCY_MS = 600_000.0
MAX_RETRY_AFTER_S = 3_600

# type -> (parameters it takes, one-line meaning)
FAULT_TYPES: dict[str, tuple[frozenset[str], str]] = {
    "latency": (frozenset({"ms", "min_ms", "max_ms", "median_ms", "sigma"}),
                "delay the answer: fixed ms, uniform min_ms..max_ms, or lognormal median_ms and sigma"),
    "slow_body": (frozenset({"bytes_per_s"}), "send the answer's body slowly (default 256 bytes a second)"),
    "timeout": (frozenset({"seconds", "commit", "then"}),
                "hold the connection (default 30 s, or until released): then close (default), reset or answer"),
    "reset": (frozenset({"commit"}), "reset the connection (TCP RST) without an answer"),
    "empty": (frozenset({"commit"}), "close the connection without sending a byte"),
    "lost_response": (frozenset(), "apply the request, then reset the connection: the ambiguous write"),
    "malformed": (frozenset(), "apply the request, then answer with a body that is not JSON"),
    "truncated": (frozenset(), "apply the request, then answer with the first half of its JSON body"),
    "server_error": (frozenset({"retry_after_s"}), "answer the vendor's internal server error"),
    "unavailable": (frozenset({"retry_after_s"}), "answer the vendor's service-unavailable error"),
    "maintenance": (frozenset({"retry_after_s"}), "answer service unavailable for maintenance (use a window)"),
    "throttle": (frozenset({"retry_after_s"}), "answer the vendor's request-limit refusal with Retry-After"),
    "concurrency": (frozenset({"retry_after_s"}), "answer the vendor's concurrency-limit refusal with Retry-After"),
    "status": (frozenset({"status", "code", "message", "retry_after_s"}),
               "answer any status (400-599) with the vendor's error body"),
    "expire_token": (frozenset(), "expire every access token now: this request and later ones are refused"),
    "revoke": (frozenset(), "revoke the connector's credentials: no token can be had with them any more"),
    "version_conflict": (frozenset(), "refuse the write: the record changed since the client read it"),
    "reject": (frozenset({"field", "equals", "message"}),
               "refuse every write of match.kind whose canonical field equals the value (validation)"),
}
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
# faults that let the simulator apply the request first (the others stand in for it: it is never applied)
APPLIED_FIRST = frozenset({"latency", "slow_body", "malformed", "truncated", "lost_response"})
# the journal's canonical operations (what dialects classify requests as)
OPERATIONS = frozenset({"create", "read", "update", "upsert", "delete", "query", "changes", "describe", "transform",
                        "composite", "replace"})
USAGE = ('a fault rule is {"match": {"kind"?, "operation"?, "access"?, "method"?, "path"?, "body"?, "answer"?}, '
         '"on_call"?: N, "calls"?: M|null, "probability"?: 0..1, "window_s"?: [from, to], '
         '"fault": {"type": "<' + "|".join(FAULT_TYPES) + '>", ...}}')


class RuleError(ValueError):
    """A schedule or rule that cannot be used; the message names the problem."""


@dataclass(frozen=True)
class Match:
    """What a call must be for a rule to count it; None matches anything."""

    kind: str | None = None
    operation: str | None = None
    access: str | None = None
    method: str | None = None
    path: re.Pattern[str] | None = None
    body: bytes | None = None
    answer: bytes | None = None

    def public(self) -> dict[str, Any]:
        return {"kind": self.kind, "operation": self.operation, "access": self.access, "method": self.method,
                "path": self.path.pattern if self.path else None,
                "body": self.body.decode("utf-8") if self.body is not None else None,
                "answer": self.answer.decode("utf-8") if self.answer is not None else None}


@dataclass
class FaultRule:
    """One rule of a schedule, with its own random stream and its counters."""

    id: str
    match: Match
    fault: dict[str, Any]
    on_call: int = 1
    calls: int | None = 1
    probability: float = 1.0
    window_s: tuple[float, float] | None = None
    for_s: float | None = None
    rng: random.Random = field(default_factory=random.Random, repr=False)
    opened_at: float | None = None  # wall time of the first firing, for `for_s`
    seen: int = 0  # matching calls counted
    fired: int = 0  # calls the fault was injected into
    holding: int = 0  # connections held by this rule right now

    @property
    def type(self) -> str:
        return self.fault["type"]

    @property
    def applies_first(self) -> bool:
        """The simulator applies the request before the fault acts on its answer or connection."""
        return self.type in APPLIED_FIRST or bool(self.fault.get("commit"))

    @property
    def timed(self) -> bool:
        """A time window rule: it fires on calls as they come, answered or not (an outage refuses them all)."""
        return self.window_s is not None or (self.for_s is not None and self.opened_at is not None)

    def fires(self, elapsed_s: float) -> bool:
        """Count a matching call; True when the fault is injected into it."""
        self.seen += 1
        if self.opened_at is not None and self.for_s is not None:
            if time.time() - self.opened_at >= self.for_s:
                return False
            self.fired += 1
            return True
        if self.seen < self.on_call or (self.calls is not None and self.fired >= self.calls):
            return False
        if self.window_s is not None and not self.window_s[0] <= elapsed_s < self.window_s[1]:
            return False
        if self.probability < 1.0 and self.rng.random() >= self.probability:
            return False
        self.fired += 1
        if self.for_s is not None:
            self.opened_at = time.time()
        return True

    def count_refusal(self) -> None:
        """A reject fault refused a write (counted by the engine, which applies it)."""
        self.seen += 1
        self.fired += 1

    def latency_s(self) -> float:
        """A latency fault's delay for this call (drawn from the rule's stream for distributions)."""
        fault = self.fault
        if "ms" in fault:
            ms = float(fault["ms"])
        elif "median_ms" in fault:
            ms = fault["median_ms"] * math.exp(self.rng.gauss(0.0, float(fault.get("sigma", 0.5))))
        else:
            ms = self.rng.uniform(float(fault["min_ms"]), float(fault["max_ms"]))
        return min(ms, MAX_LATENCY_MS) / 1000

    def public(self) -> dict[str, Any]:
        open_until = self.opened_at + self.for_s if self.opened_at is not None and self.for_s is not None else None
        return {"id": self.id, "match": self.match.public(), "on_call": self.on_call, "calls": self.calls,
                "probability": self.probability, "window_s": list(self.window_s) if self.window_s else None,
                "for_s": self.for_s, "open_until": open_until, "fault": self.fault, "seen": self.seen,
                "fired": self.fired, "holding": self.holding}


@dataclass
class Schedule:
    """The run's fault rules, their seed and the origin of their time windows."""

    seed: int = 0
    origin: float = field(default_factory=time.time)
    rules: list[FaultRule] = field(default_factory=list)

    def elapsed_s(self) -> float:
        return time.time() - self.origin

    def public(self) -> dict[str, Any]:
        return {"seed": self.seed, "origin": self.origin, "rules": [rule.public() for rule in self.rules]}


def parse_schedule(body: dict[str, Any], side: str, now: float) -> Schedule:
    """A schedule from its JSON form; raises RuleError naming the first problem."""
    unknown = set(body) - {"seed", "origin", "rules"}
    if unknown:
        raise RuleError(f"unknown schedule keys {sorted(unknown)}; a schedule is "
                        '{"seed": int, "origin"?: unix seconds, "rules": [...]}')
    seed, origin, rules = body.get("seed", 0), body.get("origin", now), body.get("rules", [])
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise RuleError(f"seed must be an integer, not {seed!r}")
    if not _number(origin):
        raise RuleError(f"origin must be unix seconds, not {origin!r}")
    if not isinstance(rules, list) or len(rules) > MAX_RULES:
        raise RuleError(f"rules must be a list of at most {MAX_RULES} rules")
    schedule = Schedule(seed, float(origin))
    for rule in rules:
        add_rule(schedule, rule, side)
    return schedule


def add_rule(schedule: Schedule, body: Any, side: str) -> FaultRule:
    """Check one rule and append it to `schedule`, with its random stream."""
    if len(schedule.rules) >= MAX_RULES:
        raise RuleError(f"at most {MAX_RULES} fault rules a run")
    if not isinstance(body, dict) or not isinstance(body.get("fault"), dict):
        raise RuleError(USAGE)
    unknown = set(body) - {"id", "match", "on_call", "calls", "probability", "window_s", "for_s", "fault"}
    if unknown:
        raise RuleError(f"unknown rule keys {sorted(unknown)}; {USAGE}")
    position = len(schedule.rules) + 1
    rule_id = body.get("id", f"fault-{position}")
    if not isinstance(rule_id, str) or not rule_id or any(r.id == rule_id for r in schedule.rules):
        raise RuleError(f"rule id must be a new, non-empty text, not {rule_id!r}")
    on_call, calls, probability = body.get("on_call", 1), body.get("calls", 1), body.get("probability", 1)
    window = body.get("window_s")
    for_s = body.get("for_s")
    if "calls" not in body and (window is not None or for_s is not None):
        calls = None
    if isinstance(on_call, bool) or not isinstance(on_call, int) or on_call < 1:
        raise RuleError(f"{rule_id}: on_call must be an integer >= 1, not {on_call!r}")
    if calls is not None and (isinstance(calls, bool) or not isinstance(calls, int) or calls < 1):
        raise RuleError(f"{rule_id}: calls must be an integer >= 1 or null (every call), not {calls!r}")
    if not _number(probability) or not 0 <= probability <= 1:
        raise RuleError(f"{rule_id}: probability must be a number from 0 to 1, not {probability!r}")
    if window is not None and not (isinstance(window, list) and len(window) == 2 and all(map(_number, window))
                                   and 0 <= window[0] < window[1]):
        raise RuleError(f"{rule_id}: window_s must be [from, to] seconds with 0 <= from < to, not {window!r}")
    if window is not None and for_s is not None:
        raise RuleError(f"{rule_id}: give window_s (a window fixed in time) or for_s (one that opens at the first "
                        "call the rule fires on), not both")
    if for_s is not None and not (_number(for_s) and 0 < for_s <= MAX_HOLD_S):
        raise RuleError(f"{rule_id}: for_s must be seconds, more than 0 and at most {MAX_HOLD_S:.0f}, not {for_s!r}")
    rule = FaultRule(rule_id, _match(rule_id, body.get("match", {})), _fault(rule_id, body["fault"]), on_call,
                     calls, float(probability), (float(window[0]), float(window[1])) if window else None,
                     float(for_s) if for_s is not None else None, random.Random(f"{schedule.seed}:{side}:{position}"))
    if rule.type == "reject":
        if rule.match.kind is None:
            raise RuleError(f"{rule_id}: a reject fault needs match.kind (the kind whose writes it refuses)")
        defaults = {"on_call": 1, "calls": 1, "probability": 1, "window_s": None, "for_s": None}
        ignored = sorted(key for key, default in defaults.items() if key in body and body[key] != default)
        if ignored or any(value is not None for key, value in body.get("match", {}).items() if key != "kind"):
            raise RuleError(f"{rule_id}: a reject fault is a validation rule on every write of match.kind; it takes "
                            f"no {ignored or 'match other than kind'}")
    if rule.match.operation is not None and rule.match.operation not in OPERATIONS:
        raise RuleError(f"{rule_id}: match.operation must be one of {', '.join(sorted(OPERATIONS))}, "
                        f"not {rule.match.operation!r}")
    schedule.rules.append(rule)
    return rule


def _match(rule_id: str, body: Any) -> Match:
    if not isinstance(body, dict):
        raise RuleError(f"{rule_id}: match must be an object; {USAGE}")
    unknown = set(body) - {"kind", "operation", "access", "method", "path", "body", "answer"}
    if unknown:
        raise RuleError(f"{rule_id}: unknown match keys {sorted(unknown)}")
    if not all(isinstance(value, str | None) for value in body.values()):
        raise RuleError(f"{rule_id}: match values must be texts")
    if body.get("access") not in (None, "read", "write"):
        raise RuleError(f"{rule_id}: match.access must be read or write, not {body['access']!r}")
    if body.get("method") is not None and body["method"].upper() not in HTTP_METHODS:
        raise RuleError(f"{rule_id}: match.method must be one of {', '.join(HTTP_METHODS)}, not {body['method']!r}")
    if any(body.get(key) == "" for key in ("path", "body", "answer")):
        raise RuleError(f"{rule_id}: match.path, match.body and match.answer must not be empty (leave them out)")
    try:
        path = re.compile(body["path"]) if body.get("path") else None
    except re.error as error:
        raise RuleError(f"{rule_id}: match.path is not a regular expression: {error}") from None
    method = body.get("method")
    texts = {key: body[key].encode("utf-8") if body.get(key) is not None else None for key in ("body", "answer")}
    return Match(body.get("kind"), body.get("operation"), body.get("access"), method.upper() if method else None,
                 path, texts["body"], texts["answer"])


def _fault(rule_id: str, body: dict[str, Any]) -> dict[str, Any]:
    fault_type = body.get("type")
    if fault_type not in FAULT_TYPES:
        raise RuleError(f"{rule_id}: fault type must be one of {', '.join(FAULT_TYPES)}, not {fault_type!r}")
    allowed = FAULT_TYPES[fault_type][0]
    unknown = set(body) - allowed - {"type"}
    if unknown:
        raise RuleError(f"{rule_id}: a {fault_type} fault takes {sorted(allowed) or 'no parameters'}, "
                        f"not {sorted(unknown)}")
    fault = {key: float(value) if isinstance(value, Decimal) else value for key, value in body.items()}
    _check_fault(rule_id, fault_type, fault)
    return fault


def _check_fault(rule_id: str, fault_type: str, fault: dict[str, Any]) -> None:
    def need(condition: bool, message: str) -> None:
        if not condition:
            raise RuleError(f"{rule_id}: {fault_type}: {message}")

    for key in ("ms", "min_ms", "max_ms", "median_ms"):
        if key in fault:
            need(_number(fault[key]) and 0 <= fault[key] <= MAX_LATENCY_MS, f"{key} must be 0..{MAX_LATENCY_MS:.0f}")
    if fault_type == "latency":
        shapes = [{"ms"}, {"min_ms", "max_ms"}, {"median_ms"}, {"median_ms", "sigma"}]
        need(set(fault) - {"type"} in shapes, "give ms, or min_ms and max_ms, or median_ms (and sigma)")
        need("min_ms" not in fault or fault["min_ms"] <= fault["max_ms"], "min_ms must not be above max_ms")
        need("sigma" not in fault or (_number(fault["sigma"]) and 0 <= fault["sigma"] <= 5), "sigma must be 0..5")
    if "bytes_per_s" in fault:
        need(_number(fault["bytes_per_s"]) and fault["bytes_per_s"] >= 1, "bytes_per_s must be >= 1")
    if "seconds" in fault:
        need(_number(fault["seconds"]) and 0 < fault["seconds"] <= MAX_HOLD_S,
             f"seconds must be more than 0 and at most {MAX_HOLD_S:.0f}")
    if "commit" in fault:
        need(isinstance(fault["commit"], bool), "commit must be true or false")
    if "then" in fault:
        need(fault["then"] in ("close", "reset", "answer"), "then must be close, reset or answer")
    if "retry_after_s" in fault:
        value = fault["retry_after_s"]
        need(not isinstance(value, bool) and isinstance(value, int) and 0 <= value <= MAX_RETRY_AFTER_S,
             f"retry_after_s must be an integer 0..{MAX_RETRY_AFTER_S}")
    if fault_type == "status":
        status = fault.get("status")
        need(not isinstance(status, bool) and isinstance(status, int) and 400 <= status <= 599,
             "status must be an integer from 400 to 599")
        need(all(isinstance(fault.get(key, ""), str) for key in ("code", "message")), "code and message are texts")
    if fault_type == "reject":
        need(isinstance(fault.get("field"), str) and "equals" in fault, "give field and equals")
        need(isinstance(fault.get("message", ""), str), "message is a text")


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float | Decimal) and math.isfinite(value)
