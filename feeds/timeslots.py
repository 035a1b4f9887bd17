"""Unique item times: every stored ``updated`` differs from every other."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from feeds.decide import first_free_moment


class TimeSource(Protocol):
    def updated_times_between(self, start: datetime, end: datetime) -> set[datetime]: ...


class TimeSlots:
    """Claims free times for one write batch, asking the store once per day."""

    def __init__(self, store: TimeSource) -> None:
        self._store = store
        self._taken: set[datetime] = set()
        self._loaded: set[datetime] = set()

    def _load(self, moment: datetime) -> None:
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        if day not in self._loaded:
            self._taken |= self._store.updated_times_between(day, day + timedelta(days=1))
            self._loaded.add(day)

    def claim(self, wanted: datetime) -> datetime:
        """The first free time at or after ``wanted``; it is then taken."""
        while True:
            self._load(wanted)
            moment = first_free_moment(wanted, self._taken)
            self._load(moment)  # a long run of bumps may cross midnight
            if moment not in self._taken:
                self._taken.add(moment)
                return moment
            wanted = moment
