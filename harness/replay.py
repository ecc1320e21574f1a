"""Replay files: a failing generated case, written into the report, that `syncert certify --replay FILE` runs
again. A replay file is JSON: {"syncert_replay": 1, "scenario": "<id>", "seed": <int>, "connector": {"name",
"version"}, "case": {...}}; the scenario that wrote it reads `case` (see `ScenarioRun.replay_case`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = 1


class ReplayError(ValueError):
    """A replay file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Replay:
    scenario: str
    seed: int
    case: dict[str, Any]
    connector: dict[str, str] | None = None  # the connector the case failed: {"name", "version"}

    def dumps(self) -> str:
        return json.dumps({"syncert_replay": FORMAT, "scenario": self.scenario, "seed": self.seed,
                           "connector": self.connector, "case": self.case}, indent=2)


def load_replay(path: str | Path) -> Replay:
    """Read and check a replay file; raises ReplayError."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ReplayError(f"cannot read the replay file {path}: {error.strerror or error}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReplayError(f"{path} is not a replay file (not JSON: {error})") from None
    if not isinstance(data, dict) or data.get("syncert_replay") != FORMAT:
        raise ReplayError(f"{path} is not a syncert replay file (it has no \"syncert_replay\": {FORMAT})")
    scenario, seed, case = data.get("scenario"), data.get("seed"), data.get("case")
    if not isinstance(scenario, str) or not scenario:
        raise ReplayError(f"{path}: \"scenario\" must name the scenario that wrote it")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ReplayError(f"{path}: \"seed\" must be an integer")
    if not isinstance(case, dict):
        raise ReplayError(f"{path}: \"case\" must be an object")
    connector = data.get("connector")
    if connector is not None and not (isinstance(connector, dict)
                                      and all(isinstance(connector.get(k), str) for k in ("name", "version"))):
        raise ReplayError(f"{path}: \"connector\" must be {{\"name\": ..., \"version\": ...}}")
    return Replay(scenario, seed, case, connector)
