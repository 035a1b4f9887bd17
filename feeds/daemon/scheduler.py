"""APScheduler 3.x wiring: the only module that imports it.

Two kinds of job. Recurring ones (the seeds rescan) are ``JobSpec`` records
on an interval. Remote sources each get one one-off trigger at the moment
``decide.wake_time`` gives (their interval or cron time, the publisher's
hints, backoff, Retry-After and jitter, all decided there), placed again
after every run: so there is one cron grammar (``decide``'s) and one place
where due times are combined, and a source that is not due costs nothing.
Every job is ``coalesce=True`` (runs missed while the machine slept become
one run) and ``max_instances=1`` (a slow run is never overlapped by its next).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from feeds.config import Config
from feeds.errors import ConfigError

# APScheduler logs two INFO lines per run; the daemon logs its own one line.
logging.getLogger("apscheduler").setLevel(logging.WARNING)


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One recurring job: run ``run`` every ``every`` seconds."""

    id: str
    run: Callable[[], object]
    every: float
    jitter: float = 0.0
    misfire_grace: float = 60.0


def misfire_grace_for(interval: float) -> float:
    """A run up to half an interval late still happens; later than that, the
    next regular run is as good."""
    return max(1.0, interval / 2)


def seeds_job(config: Config, run: Callable[[], object]) -> JobSpec:
    """The seeds rescan: local and cheap, so no jitter."""
    interval = config.seeds.interval
    return JobSpec(id="seeds", run=run, every=interval, misfire_grace=misfire_grace_for(interval))


def make_trigger(spec: JobSpec) -> BaseTrigger:
    """An APScheduler trigger for a job spec."""
    if not spec.every or spec.every <= 0:
        raise ConfigError("a job needs a positive interval", subject=spec.id)
    return IntervalTrigger(seconds=spec.every, timezone=UTC, jitter=spec.jitter or None)


class Scheduler:
    """A background scheduler running recurring jobs and one-off delayed calls."""

    def __init__(self, workers: int = 4) -> None:
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(max_workers=workers)},
            job_defaults={"coalesce": True, "max_instances": 1},
        )
        self._later: dict[str, str] = {}  # key -> id of the pending one-off job
        self._serial = 0
        self._lock = threading.Lock()  # jobs of several threads ask for calls

    def add(self, spec: JobSpec) -> None:
        self._scheduler.add_job(
            spec.run,
            make_trigger(spec),
            id=spec.id,
            name=spec.id,
            misfire_grace_time=int(max(1, spec.misfire_grace)),
            replace_existing=True,
        )

    def call_later(self, key: str, delay: float, run: Callable[[], object]) -> None:
        """Run ``run`` once after ``delay`` seconds, replacing a pending call of ``key``."""
        # The scheduler's own timeline is the wall clock; only scheduling reads it here.
        self.call_at(key, datetime.now(UTC) + timedelta(seconds=max(0.0, delay)), run)

    def call_at(self, key: str, when: datetime, run: Callable[[], object]) -> None:
        """Run ``run`` once at ``when`` (however late the scheduler gets to
        it), replacing a pending call of ``key``.

        Each call gets its own job id, so a call made while the previous one
        is still running is not refused as a second instance.
        """
        with self._lock:
            self._serial += 1
            job_id = f"{key}#{self._serial}"
            previous = self._later.get(key)
            if previous is not None:
                with contextlib.suppress(JobLookupError):  # it already ran
                    self._scheduler.remove_job(previous)
            self._later[key] = job_id
            self._scheduler.add_job(
                run,
                DateTrigger(run_date=when, timezone=UTC),
                id=job_id,
                name=key,
                misfire_grace_time=None,
            )

    def next_runs(self) -> dict[str, datetime | None]:
        """Job id -> next run time (for tests and diagnostics)."""
        return {job.id: job.next_run_time for job in self._scheduler.get_jobs()}

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        """Stop starting jobs; running ones are left to finish (the daemon waits for them)."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
