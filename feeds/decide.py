"""Pure decisions: functions of records and ``now``, touching nothing else."""

from __future__ import annotations

from collections.abc import Container
from datetime import datetime, timedelta

# The store keeps milliseconds; one step is the smallest distinct time.
TIME_STEP = timedelta(milliseconds=1)


def first_free_moment(wanted: datetime, taken: Container[datetime]) -> datetime:
    """``wanted``, or the first millisecond after it that no other item uses.

    Atom readers (and the W3C validator) expect every entry of a feed to have
    its own ``updated``; a seed day gives many stories the same midnight, so
    each takes the next free millisecond. It is deterministic: the same
    stories stored in the same order get the same times.
    """
    moment = wanted
    while moment in taken:
        moment += TIME_STEP
    return moment
