"""Replay verification of recordings made by the recording proxy, and the parity page (`syncert contracts replay`).

Each recording (see `recording`) is replayed in order against a fresh simulator of its dialect, in the spirit
of LocalStack's snapshot tests: the simulator must answer every recorded request with the same status and a
body of the same shape and the same key values; the fields the recording marks volatile (ids, timestamps,
links, tokens) are left out of the comparison (DeepDiff). Ids the upstream assigned are followed: when a
volatile value of an answer differs (the upstream's record id, the simulator's), later requests that carry
it get the simulator's. Credentials, redacted in the recording, are the simulator's: token requests are sent
with its client credentials, every other request with one of its access tokens.

The parity page lists every operation of both contracts and whether a recording verifies it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from deepdiff import DeepDiff
from deepdiff.path import extract

from syncert.contracts import load_yaml
from syncert.harness.contract_verify import TOKEN_PATHS, simulator_target
from syncert.harness.recording import DIALECTS, REDACTED, load_recording, parsed_body

_SKIPPED_HEADERS = {"authorization", "proxy-authorization", "cookie", "host", "content-length", "connection",
                    "accept-encoding", "transfer-encoding", "keep-alive"}
_LONG_ID = 8  # values at least this long are also replaced inside longer strings (a query's WHERE clause)


@dataclass
class Outcome:
    """One recorded interaction replayed: what was asked, and how the simulator's answer differs (if it does)."""

    number: int
    operation: str | None
    request: str
    differences: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return not self.differences


@dataclass
class RecordingResult:
    """The outcomes of one recording file."""

    path: Path
    dialect: str
    upstream: str
    outcomes: list[Outcome]

    @property
    def verified(self) -> bool:
        return all(outcome.verified for outcome in self.outcomes)


class _IdMap:
    """The upstream's volatile values and the simulator's, learnt from pairs of answers."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def learn(self, recorded: Any, replayed: Any) -> None:
        if not isinstance(recorded, str | int) or not isinstance(replayed, str | int) or recorded == replayed:
            return
        recorded, replayed = str(recorded), str(replayed)
        if "/" in recorded and "/" in replayed:
            ours = replayed.split("/")
            theirs = recorded.split("/")
            for mine, other in zip(reversed(ours), reversed(theirs), strict=False):
                if mine != other and mine and other:
                    self.values[other] = mine
            return
        if recorded != REDACTED:
            self.values[recorded] = replayed

    def path(self, path: str) -> str:
        return "/".join(self.values.get(segment, segment) for segment in path.split("/"))

    def value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if not isinstance(value, str):
            return value
        if value in self.values:
            return self.values[value]
        for old, new in self.values.items():
            if len(old) >= _LONG_ID and old in value:
                value = value.replace(old, new)
        return value


def replay(path: Path) -> RecordingResult:
    """Replay one recording against a fresh simulator of its dialect."""
    recording = load_recording(path)
    dialect = recording["dialect"]
    outcomes = []
    ids = _IdMap()
    with simulator_target(dialect) as target, httpx.Client(base_url=target.url, timeout=60, trust_env=False) as http:
        for number, interaction in enumerate(recording["interactions"], start=1):
            outcomes.append(_replay_one(http, target.headers, target.credentials, dialect, number, interaction, ids))
    return RecordingResult(path, dialect, recording.get("upstream", "?"), outcomes)


def _replay_one(http: httpx.Client, auth: dict[str, str], credentials: dict[str, str], dialect: str, number: int,
                interaction: dict[str, Any], ids: _IdMap) -> Outcome:
    asked = interaction.get("request", {})
    method, path = str(asked.get("method", "GET")), ids.path(str(asked.get("path", "/")))
    outcome = Outcome(number, interaction.get("operation"), f"{method} {path}")
    headers = {name: value for name, value in asked.get("headers", {}).items() if name.lower() not in _SKIPPED_HEADERS}
    is_token = path.rstrip("/") == TOKEN_PATHS[dialect]
    body_format, body = asked.get("body_format", "none"), ids.value(asked.get("body"))
    recorded = interaction.get("response", {})
    if recorded.get("status") == 401:
        headers["authorization"] = "Bearer credentials-the-upstream-refused"  # refused then: refused now
    elif is_token:
        body = _with_credentials(body, credentials) if body_format == "form" else body
        client = f"{credentials['client_id']}:{credentials['client_secret']}".encode()
        headers["authorization"] = "Basic " + base64.b64encode(client).decode()
    else:
        headers.update(auth)
    options: dict[str, Any] = {"params": ids.value(asked.get("query") or {}), "headers": headers}
    if body_format == "json":
        options["json"] = body
    elif body_format == "form":
        options["data"] = body
    elif body_format == "text":
        options["content"] = body
    elif body_format == "base64":
        options["content"] = base64.b64decode(body)
    try:
        answer = http.request(method, path, **options)
    except httpx.HTTPError as error:
        outcome.differences.append(f"no answer from the simulator ({type(error).__name__})")
        return outcome
    replayed_format, replayed_body = parsed_body(answer.content, answer.headers.get("content-type", ""))
    if answer.status_code != recorded.get("status"):
        outcome.differences.append(f"status {recorded.get('status')} recorded, {answer.status_code} replayed: "
                                   f"{answer.text[:200]}")
        return outcome
    volatile = list(interaction.get("volatile", []))
    theirs = {"body_format": recorded.get("body_format"), "body": recorded.get("body")}
    ours = {"body_format": replayed_format, "body": replayed_body}
    for volatile_path in volatile:
        if volatile_path.startswith("root['body']"):
            ids.learn(_at(theirs, volatile_path), _at(ours, volatile_path))
    for name in ("location",):
        ids.learn(recorded.get("headers", {}).get(name), answer.headers.get(name))
    difference = DeepDiff(theirs, ours, exclude_paths=volatile, verbose_level=2)
    outcome.differences.extend(difference.pretty().splitlines()[:10])
    return outcome


def _at(document: Any, path: str) -> Any:
    try:
        return extract(document, path)
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def _with_credentials(form: dict[str, str], credentials: dict[str, str]) -> dict[str, str]:
    """A token request's form with the simulator's credentials where the recording has redacted ones."""
    return {key: credentials.get(key, value) if value == REDACTED else value for key, value in form.items()}


def operations(dialect: str) -> list[str]:
    """Every operation of the dialect's contract, as 'METHOD /template'."""
    paths = load_yaml(dialect, "openapi.yaml")["paths"]
    methods = ("get", "put", "post", "delete", "patch", "head", "options")
    return [f"{method.upper()} {template}" for template, item in paths.items() for method in methods if method in item]


def parity_page(results: Iterable[RecordingResult], recordings: list[Path]) -> str:
    """The parity page in Markdown: each contract operation and whether a recording verifies it."""
    results = list(results)
    lines = ["# Parity with the vendors' APIs", "",
             "Generated by `syncert contracts replay --parity` (do not edit). Each operation of the contracts is",
             "listed with the recordings that exercise it (`syncert contracts record`, made through the recording",
             "proxy against an upstream) and whether the simulator answers them as the upstream did: same status,",
             "same shape, same key fields, volatile fields left out.", ""]
    lines.append(f"Recordings replayed: {len(recordings)}" + ("" if recordings else
                 " (none yet: every operation below is unverified by a recording)") + ".")
    for result in results:
        lines.append(f"- `{result.path.name}`: {result.dialect}, upstream {result.upstream}, "
                     f"{len(result.outcomes)} interactions, "
                     f"{sum(outcome.verified for outcome in result.outcomes)} answered as recorded")
    for dialect in DIALECTS:
        seen: dict[str, list[Outcome]] = {}
        for result in results:
            if result.dialect == dialect:
                for outcome in result.outcomes:
                    seen.setdefault(outcome.operation or "", []).append(outcome)
        listed = operations(dialect)
        verified = sum(1 for operation in listed if seen.get(operation) and all(o.verified for o in seen[operation]))
        lines += ["", f"## {dialect.capitalize()}", "",
                  f"{verified} of {len(listed)} operations verified by a recording.", "",
                  "| Operation | Recorded interactions | Replay |", "|---|---|---|"]
        for operation in listed:
            outcomes = seen.get(operation, [])
            lines.append(f"| `{operation}` | {len(outcomes)} | {_verdict(outcomes)} |")
        unknown = seen.get("", [])
        if unknown:
            lines += ["", f"{len(unknown)} recorded interactions match no operation of the contract: "
                      + ", ".join(sorted({f'`{o.request}`' for o in unknown}))]
    return "\n".join(lines) + "\n"


def _verdict(outcomes: list[Outcome]) -> str:
    if not outcomes:
        return "not recorded"
    failed = [outcome for outcome in outcomes if not outcome.verified]
    if not failed:
        return "verified"
    first = re.sub(r"\s+", " ", failed[0].differences[0]).replace("|", "\\|")[:160]
    return f"{len(failed)} of {len(outcomes)} differ: {first}"
