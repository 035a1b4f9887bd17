"""The APScheduler adapter: triggers, job options, crontab weekdays, and a real short run."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from feeds.clock import Clock
from feeds.config import Config, SourceConfig
from feeds.daemon.scheduler import (
    JobSpec,
    Scheduler,
    crontab_weekdays,
    jitter_for,
    make_trigger,
    misfire_grace_for,
    source_job,
)
from feeds.daemon.service import Daemon
from feeds.errors import ConfigError
from store import Store
from tests.test_daemon import NEW_SEED


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("*", "*"),
        ("0", "sun"),
        ("7", "sun"),
        ("1", "mon"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("mon-fri", "mon,tue,wed,thu,fri"),
        ("0,6", "sun,sat"),
        ("*/2", "sun,tue,thu,sat"),
        ("5-7", "sun,fri,sat"),
        ("SAT,sun", "sun,sat"),
    ],
)
def test_crontab_weekdays_count_from_sunday(field: str, expected: str) -> None:
    assert crontab_weekdays(field) == expected


def test_a_crontab_monday_fires_on_a_monday() -> None:
    trigger = make_trigger(JobSpec(id="x", run=lambda: None, cron="0 6 * * 1"))
    sunday = datetime(2026, 1, 4, 12, 0, tzinfo=UTC)
    fire = trigger.get_next_fire_time(None, sunday)
    assert fire == datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
    assert fire.strftime("%A") == "Monday"


def test_bad_cron_expressions_are_config_errors() -> None:
    for expr in ("0 6 * * 9", "61 * * * *", "* * *"):
        with pytest.raises(ConfigError):
            make_trigger(JobSpec(id="source:x", run=lambda: None, cron=expr))


def test_jitter_and_misfire_grace_follow_the_interval() -> None:
    assert jitter_for(600) == 60
    assert jitter_for(86400) == 300
    assert jitter_for(None) == 30
    assert misfire_grace_for(600) == 300
    assert misfire_grace_for(0.5) == 1
    source = SourceConfig(name="s", url="https://s.example/", interval=None, cron="*/5 * * * *")
    spec = source_job(source, lambda: None)
    assert (spec.id, spec.every, spec.cron) == ("source:s", None, "*/5 * * * *")


def test_jobs_coalesce_never_overlap_and_have_a_grace() -> None:
    scheduler = Scheduler()
    scheduler.add(JobSpec(id="source:a", run=lambda: None, every=600, jitter=60, misfire_grace=300))
    scheduler.add(JobSpec(id="source:b", run=lambda: None, cron="*/30 * * * *", jitter=30))
    scheduler.start()
    try:
        jobs = {job.id: job for job in scheduler._scheduler.get_jobs()}
        assert set(jobs) == {"source:a", "source:b"}
        for job in jobs.values():
            assert job.coalesce is True
            assert job.max_instances == 1
        assert jobs["source:a"].misfire_grace_time == 300
        assert jobs["source:a"].trigger.jitter == 60
        assert jobs["source:b"].trigger.jitter == 30
        assert all(when is not None for when in scheduler.next_runs().values())
    finally:
        scheduler.shutdown()


def test_call_later_replaces_a_pending_call() -> None:
    scheduler = Scheduler()
    ran: list[str] = []
    done = threading.Event()
    scheduler.start()
    try:
        scheduler.call_later("publish", 0.3, lambda: ran.append("first"))
        scheduler.call_later("publish", 0.2, lambda: (ran.append("second"), done.set()))
        assert done.wait(3)
        time.sleep(0.3)
        assert ran == ["second"]
    finally:
        scheduler.shutdown()


def test_a_real_short_interval_picks_up_a_new_seed_file(
    store: Store, config: Config, clock: Clock, project: Path
) -> None:
    """Acceptance: a new seed file shows in all.atom within two intervals, with real time."""
    interval = 0.5
    scheduler = Scheduler()
    daemon = Daemon(store, config, clock, timer=scheduler, quiet=0.1)
    daemon.start(sources=False)
    scheduler.add(JobSpec(id="seeds", run=daemon.run_seeds_job, every=interval))
    before = daemon.site.resource("feeds/world.atom")
    scheduler.start()
    try:
        (project / "seeds" / "001_new.txt").write_text(NEW_SEED, encoding="utf-8")
        deadline = time.monotonic() + 2 * interval + 1.5
        while time.monotonic() < deadline:
            atom = daemon.site.resource("feeds/all.atom")
            if atom is not None and b"Telescope finds a new comet" in atom.body:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the new seed's items did not appear")
    finally:
        scheduler.shutdown()
        daemon.stop_jobs(5)
    assert daemon.site.resource("feeds/world.atom") is before  # untouched section, same resource
    sports = daemon.site.resource("feeds/sports.atom")
    assert sports is not None and b"Local club wins the cup final" in sports.body
