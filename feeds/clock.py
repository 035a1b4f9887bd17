"""The one place that reads the wall clock.

Logic never calls ``datetime.now()``: it takes ``now`` from a ``Clock``. The
CLI and daemon pass ``system_clock``; tests pass a fixed or stepping clock.
``SOURCE_DATE_EPOCH`` (the reproducible-builds convention) pins the clock, so
an export can be reproduced to the byte even for items with no date.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """Now, in UTC, to the second (the store keeps seconds)."""
    pinned = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if pinned.isdigit():
        return datetime.fromtimestamp(int(pinned), UTC)
    return datetime.now(UTC).replace(microsecond=0)


def fixed_clock(moment: datetime) -> Clock:
    """A clock that always says ``moment`` (for tests and replays)."""
    return lambda: moment
