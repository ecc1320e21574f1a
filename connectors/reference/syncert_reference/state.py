"""Connector state in $SYNCERT_STATE_DIR: watermarks per flow and fingerprints of what was synced.

Watermarks: each flow reads the source records modified at or after its watermark. The watermark
never moves past a record that is not done (failed transiently, or waiting for a record it depends
on), so that record is read again next cycle; records given up on for good are done.
Records given up on are remembered with their stamp: they are not tried (nor dead-lettered) again
until their source changes.
Fingerprints stop echo loops: a record is written to the other system only when the fields this
flow carries changed since the last sync, so our own write-back does not bounce between systems.
The state is saved when the cycle ends, after its writes, never before them: a cycle killed with
SIGKILL saves nothing, and the next one does its work again (every write is safe to repeat). The file
is replaced atomically, so a kill never leaves it half-written.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


class SyncState:
    def __init__(self, directory: Path):
        self.path = directory / "reference-connector-state.json"
        data = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.watermarks: dict[str, str] = data.get("watermarks", {})
        self.fingerprints: dict[str, str] = data.get("fingerprints", {})
        self.given_up: dict[str, str] = data.get("given_up", {})  # record key -> its stamp when given up

    def changed(self, key: str, values: dict[str, Any]) -> bool:
        """True when `values` differ from what was last synced under `key`."""
        return self.fingerprints.get(key) != _fingerprint(values)

    def remember(self, key: str, values: dict[str, Any]) -> None:
        self.fingerprints[key] = _fingerprint(values)

    def save(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"watermarks": self.watermarks, "fingerprints": self.fingerprints,
                                         "given_up": self.given_up}))
        os.replace(temporary, self.path)


class Watermark:
    """One flow's progress through a batch of source records, by modification stamp.

    Stamps of one flow come from one system in one format, so they sort as text.
    """

    def __init__(self, state: SyncState, flow: str):
        self._state, self._flow = state, flow
        self._latest_done: str | None = None
        self._earliest_held: str | None = None

    @property
    def since(self) -> str | None:
        """Read the records modified at or after this stamp (every record when None)."""
        return self._state.watermarks.get(self._flow)

    def done(self, stamp: str) -> None:
        if self._latest_done is None or stamp > self._latest_done:
            self._latest_done = stamp

    def hold(self, stamp: str) -> None:
        if self._earliest_held is None or stamp < self._earliest_held:
            self._earliest_held = stamp

    def commit(self) -> None:
        """Advance to the earliest record held back, or else to the latest record done."""
        stamp = self._earliest_held or self._latest_done
        if stamp is not None:
            self._state.watermarks[self._flow] = stamp


def _fingerprint(values: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:32]
