"""Python mode: `entrypoint = "syncert_reference.python_mode:create"`.

syncert calls sync() once per cycle and, when the manifest sets `webhook_path`, handle_webhook() with
each change event the simulators send (header names in lower case, the raw body). Every sync() is a
full pass, so an event needs no work of its own here beyond checking that it really comes from syncert:
one whose signature does not verify is refused (PermissionError: syncert answers it 401).
"""

from __future__ import annotations

import asyncio
import os

from syncert_reference.flows import Settings, SyncCycle
from syncert_reference.service import signature_valid


class ReferenceConnector:
    """One sync cycle (every flow) per sync() call; raises when the cycle cannot complete."""

    def __init__(self) -> None:
        self.events = 0

    def sync(self) -> None:
        asyncio.run(SyncCycle(Settings.from_environment()).run())

    def handle_webhook(self, headers: dict[str, str], body: bytes) -> None:
        """Accept a signed change event (the next sync() picks the change up); refuse a forged one."""
        if not signature_valid(os.environ.get("SYNCERT_WEBHOOK_SECRET", ""), headers.get("x-syncert-timestamp", ""),
                               body, headers.get("x-syncert-signature", "")):
            raise PermissionError("change event with a bad signature")
        self.events += 1


def create() -> ReferenceConnector:
    return ReferenceConnector()
