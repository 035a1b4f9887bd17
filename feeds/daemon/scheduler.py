"""APScheduler 3.x wiring: the only module that imports it.

The daemon describes its jobs as ``JobSpec`` records (what to run, on which
interval or crontab, with how much jitter and misfire grace); this module
turns them into APScheduler jobs in a ``BackgroundScheduler``. Every job is
``coalesce=True`` (runs missed while the machine slept become one run) and
``max_instances=1`` (a slow refresh is never overlapped by its next run).
Deciding whether a source is really due, backing off or disabled is not done
here: the job calls the updater, which decides from the store's data.
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
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from feeds.config import Config, SourceConfig
from feeds.decide import cron_fields
from feeds.errors import ConfigError

# APScheduler logs two INFO lines per run; the daemon logs its own one line.
logging.getLogger("apscheduler").setLevel(logging.WARNING)

_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
CRON_JITTER = 30.0  # seconds; cron sources share round minutes, so spread them a little
MAX_JITTER = 300.0
CRON_MISFIRE_GRACE = 300.0


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One recurring job: run ``run`` every ``every`` seconds or on a crontab."""

    id: str
    run: Callable[[], object]
    every: float | None = None
    cron: str | None = None  # five crontab fields, day of week 0 or 7 = Sunday
    jitter: float = 0.0
    misfire_grace: float = 60.0


def jitter_for(interval: float | None) -> float:
    """A tenth of the interval, at most five minutes: sources added together
    with one interval drift apart instead of hitting the network at once."""
    if interval is None:
        return CRON_JITTER
    return min(interval / 10, MAX_JITTER)


def misfire_grace_for(interval: float | None) -> float:
    """A run up to half an interval late still happens; later than that, the
    next regular run is as good."""
    if interval is None:
        return CRON_MISFIRE_GRACE
    return max(1.0, interval / 2)


def source_job(source: SourceConfig, run: Callable[[], object]) -> JobSpec:
    """The job of one remote source, on its interval or its cron expression."""
    every = None if source.cron else source.interval
    return JobSpec(
        id=f"source:{source.name}",
        run=run,
        every=every,
        cron=source.cron,
        jitter=jitter_for(every),
        misfire_grace=misfire_grace_for(every),
    )


def seeds_job(config: Config, run: Callable[[], object]) -> JobSpec:
    """The seeds rescan: local and cheap, so no jitter."""
    interval = config.seeds.interval
    return JobSpec(id="seeds", run=run, every=interval, misfire_grace=misfire_grace_for(interval))


def crontab_weekdays(field: str) -> str:
    """A crontab day-of-week field (0 or 7 = Sunday) in APScheduler 3.x terms.

    APScheduler 3.x counts 0 as Monday (its issue 286), so the days are read
    with the crontab rules the updater uses (``decide.cron_fields``) and
    written as names, which both read the same way.
    """
    if field in ("*", "?"):
        return "*"
    days = cron_fields(f"* * * * {field}")[4]
    return ",".join(_WEEKDAYS[day] for day in sorted(days))


def make_trigger(spec: JobSpec) -> BaseTrigger:
    """An APScheduler trigger for a job spec; ConfigError for a bad cron expression."""
    if spec.cron:
        fields = spec.cron.split()
        try:
            if len(fields) != 5:
                raise ValueError("expected 5 fields")
            minute, hour, day, month, weekdays = fields
            return CronTrigger(
                minute=minute,
                hour=hour,
                day=day,
                month=month,
                day_of_week=crontab_weekdays(weekdays),
                timezone=UTC,
                jitter=spec.jitter or None,
            )
        except ValueError as e:
            raise ConfigError(f"cron: bad crontab expression {spec.cron!r}: {e}", subject=spec.id) from e
    if not spec.every:
        raise ConfigError("a job needs an interval or a cron expression", subject=spec.id)
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
        """Run ``run`` once after ``delay`` seconds, replacing a pending call of ``key``.

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
            # The scheduler's own timeline is the wall clock; only scheduling reads it here.
            when = datetime.now(UTC) + timedelta(seconds=max(0.0, delay))
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
