"""Python mode: `entrypoint = "syncert_reference.python_mode:create"`."""

from __future__ import annotations

import asyncio

from syncert_reference.flows import Settings, SyncCycle


class ReferenceConnector:
    """One sync cycle (every flow) per sync() call; raises when the cycle cannot complete."""

    def sync(self) -> None:
        asyncio.run(SyncCycle(Settings.from_environment()).run())


def create() -> ReferenceConnector:
    return ReferenceConnector()
