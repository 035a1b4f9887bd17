"""What /healthz and `feeds status` say about the sources: pure decisions of records and ``now``.

A source that failed once is not a problem yet: its next run may well
succeed. It is one when it has been failing for longer than its own
schedule: past its interval (or, on a crontab, past the next run after the
first failure), every scheduled attempt since has failed too. Some such
sources make the service ``degraded``: it still serves, from what it has.
A store that cannot be read makes it ``failing`` (HTTP 503): it cannot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from feeds.config import SourceConfig
from feeds.decide import next_cron_time
from feeds.model import ErrorEpisode

OK = "ok"
DEGRADED = "degraded"
FAILING = "failing"


@dataclass(frozen=True, slots=True)
class FailingSource:
    """A source failing for longer than its schedule."""

    name: str
    since: datetime
    failures: int
    last_error: str


def overdue_after(source: SourceConfig, started: datetime) -> datetime:
    """When a failure that began at ``started`` has lasted longer than the source's schedule."""
    if source.cron:
        return next_cron_time(source.cron, started)
    return started + timedelta(seconds=source.interval or 3600.0)


def failing_sources(
    sources: Iterable[SourceConfig], episodes: Mapping[str, ErrorEpisode], now: datetime
) -> tuple[FailingSource, ...]:
    """The enabled sources whose open error episode has outlasted their schedule, by name."""
    found = []
    for source in sources:
        episode = episodes.get(source.name)
        if not source.enabled or episode is None or episode.ended is not None:
            continue
        if now > overdue_after(source, episode.started):
            found.append(FailingSource(source.name, episode.started, episode.failures, episode.last_error))
    return tuple(sorted(found, key=lambda f: f.name))


def service_status(store_readable: bool, failing: Iterable[FailingSource]) -> str:
    """``failing`` without a store, ``degraded`` with overdue sources, else ``ok``."""
    if not store_readable:
        return FAILING
    return DEGRADED if any(True for _ in failing) else OK
