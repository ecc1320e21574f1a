"""Connector state in $SYNCERT_STATE_DIR: watermarks per flow and fingerprints of what was synced.

Fingerprints stop echo loops: a record is written to the other system only when the fields this
flow carries changed since the last sync, so our own write-back does not bounce between systems.
The file is replaced atomically, so a killed cycle never leaves it half-written.
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

    def changed(self, key: str, values: dict[str, Any]) -> bool:
        """True when `values` differ from what was last synced under `key`."""
        return self.fingerprints.get(key) != _fingerprint(values)

    def remember(self, key: str, values: dict[str, Any]) -> None:
        self.fingerprints[key] = _fingerprint(values)

    def save(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"watermarks": self.watermarks, "fingerprints": self.fingerprints}))
        os.replace(temporary, self.path)


def _fingerprint(values: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:32]
