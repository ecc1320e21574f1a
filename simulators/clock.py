"""The simulated clock: wall time plus an offset the control plane can move (time travel), and can stop."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


class Clock:
    """Current time as the simulator sees it; `offset_s` shifts it for time-travel scenarios. A frozen clock
    stays at the wall time it was frozen at (plus the offset): everything written meanwhile shares one stamp."""

    def __init__(self) -> None:
        self.offset_s = 0.0
        self.frozen_at: float | None = None  # the wall time the clock stopped at; None while it runs

    @property
    def frozen(self) -> bool:
        return self.frozen_at is not None

    def freeze(self, frozen: bool) -> None:
        """Stop the clock at the current moment, or let it run again (from wall time plus the offset)."""
        if frozen != self.frozen:
            self.frozen_at = time.time() if frozen else None

    def reset(self) -> None:
        self.offset_s, self.frozen_at = 0.0, None

    def timestamp(self) -> float:
        return (time.time() if self.frozen_at is None else self.frozen_at) + self.offset_s

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp(), UTC)

    def iso(self) -> str:
        """`format_datetime(self.now())`, without its conversion to UTC (the moment is UTC already)."""
        return datetime.fromtimestamp(self.timestamp(), UTC).isoformat(timespec="milliseconds")[:-6] + "Z"

    def today(self) -> str:
        return self.now().date().isoformat()


def format_datetime(moment: datetime) -> str:
    """Canonical datetime text: UTC, millisecond precision, `Z` suffix (sorts as text)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_datetime(text: str) -> datetime:
    """Parse ISO 8601 (with `Z` or an offset; a bare date means midnight UTC)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def add_days(date_text: str, days: int) -> str:
    return (datetime.fromisoformat(date_text) + timedelta(days=days)).date().isoformat()
