"""The APScheduler adapter: triggers, job options, one-off calls, and a real short run."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from feeds.clock import Clock
from feeds.config import Config
from feeds.daemon.scheduler import JobSpec, Scheduler, make_trigger, misfire_grace_for
from feeds.daemon.service import Daemon
from feeds.errors import ConfigError
from store import Store
from tests.test_daemon import NEW_SEED


def test_misfire_grace_follows_the_interval() -> None:
    assert misfire_grace_for(600) == 300
    assert misfire_grace_for(0.5) == 1


def test_jobs_coalesce_never_overlap_and_have_a_grace() -> None:
    scheduler = Scheduler()
    scheduler.add(JobSpec(id="seeds", run=lambda: None, every=600, jitter=60, misfire_grace=300))
    scheduler.start()
    try:
        (job,) = scheduler._scheduler.get_jobs()
        assert (job.id, job.coalesce, job.max_instances, job.misfire_grace_time) == ("seeds", True, 1, 300)
        assert job.trigger.jitter == 60
        assert all(when is not None for when in scheduler.next_runs().values())
    finally:
        scheduler.shutdown()


def test_a_job_without_a_positive_interval_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        make_trigger(JobSpec(id="seeds", run=lambda: None, every=0))


def test_call_at_runs_once_at_its_time_and_replaces_a_pending_call() -> None:
    scheduler = Scheduler()
    ran: list[str] = []
    done = threading.Event()
    scheduler.start()
    try:
        soon = datetime.now(UTC) + timedelta(seconds=0.2)
        scheduler.call_at("source:a", soon, lambda: ran.append("first"))
        scheduler.call_at("source:a", soon, lambda: (ran.append("second"), done.set()))
        assert done.wait(3)
        assert ran == ["second"] and "source:a" not in {k.split("#")[0] for k in scheduler.next_runs()}
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
