"""The daemon's jobs, driven directly: seeds rescan, source refreshes, debounced publishing, export."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest

from feeds.app import run_export
from feeds.clock import Clock
from feeds.config import Config, SourceConfig
from feeds.daemon.service import Daemon, Pending, add_changes, publish_delay
from feeds.daemon.web import call_app, create_app
from feeds.model import SourceState
from feeds.publish.cache import next_last_modified
from store import Store
from tests.conftest import NOW

T = TypeVar("T")

NEW_SEED = """ date 2025-12-26 Harbour reopens after storm

Harbour reopens after storm

SPORTS Local club wins the cup final

Local club wins the cup final

The club beat its rivals 2-1 in extra time.

SCIENCE Telescope finds a new comet

Telescope finds a new comet

Astronomers spotted the comet on Dec. 25.
"""
FEED_SLUGS = ("all", "world", "economy", "sports")


class FakeTimer:
    """Records what the daemon asks to run later; the test decides when."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, Callable[[], object]]] = []
        self.at: dict[str, tuple[datetime, Callable[[], object]]] = {}  # key -> the one pending call

    def call_later(self, key: str, delay: float, run: Callable[[], object]) -> None:
        self.calls.append((key, delay, run))

    def call_at(self, key: str, when: datetime, run: Callable[[], object]) -> None:
        self.at[key] = (when, run)


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class FakeResult:
    name: str
    status: str = "ok"
    items_changed: int = 0
    error: str | None = None
    duration: float = 0.01


@dataclass(frozen=True)
class FakeReport:
    results: tuple[FakeResult, ...]
    changed_sections: frozenset[str] = frozenset()


@dataclass
class FakeRefresher:
    """Stands in for feeds.sources.update.refresh_sources: records calls, reports a fixed change."""

    changed: frozenset[str] = frozenset({"all", "world"})
    calls: list[Sequence[str] | None] = field(default_factory=list)
    modes: list[str | None] = field(default_factory=list)

    def __call__(
        self,
        store: Store,
        config: Config,
        clock: Clock,
        names: Sequence[str] | None = None,
        *,
        mode: str | None = None,
    ) -> FakeReport:
        self.calls.append(names)
        self.modes.append(mode)
        results = tuple(FakeResult(n, items_changed=3) for n in (names or ["a", "b"]))
        return FakeReport(results, self.changed)


def etags(daemon: Daemon) -> dict[str, bytes]:
    tags = {}
    for slug in ("all", "world", "economy", "sports", "science"):
        for ext in ("rss", "atom", "json"):
            resource = daemon.site.resource(f"feeds/{slug}.{ext}")
            if resource is not None:
                tags[f"{slug}.{ext}"] = resource.etag
    return tags


@pytest.fixture
def timer() -> FakeTimer:
    return FakeTimer()


@pytest.fixture
def monotonic() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
def daemon(store: Store, config: Config, clock: Clock, timer: FakeTimer, monotonic: FakeMonotonic) -> Daemon:
    d = Daemon(store, config, clock, timer=timer, monotonic=monotonic)
    d.start(sources=False)
    return d


@pytest.fixture
def exporting(
    store: Store, config: Config, clock: Clock, timer: FakeTimer, tmp_path: Path
) -> tuple[Daemon, Path]:
    """A started daemon keeping the folder ``out`` in sync, and that folder."""
    out = tmp_path / "out"
    daemon = Daemon(store, config, clock, timer=timer, export_dir=out)
    daemon.start(sources=False)
    return daemon, out


def tree(folder: Path, what: Callable[[Path], T]) -> dict[str, T]:
    """``what`` of every file under ``folder``, by its path relative to it."""
    return {p.relative_to(folder).as_posix(): what(p) for p in folder.rglob("*") if p.is_file()}


def mtime(path: Path) -> int:
    return path.stat().st_mtime_ns


def test_a_new_seed_file_changes_exactly_the_feeds_it_touches(
    daemon: Daemon, project: Path, timer: FakeTimer, monotonic: FakeMonotonic
) -> None:
    before = etags(daemon)
    assert set(before) == {f"{s}.{e}" for s in FEED_SLUGS for e in ("rss", "atom", "json")}
    (project / "seeds" / "001_new.txt").write_text(NEW_SEED, encoding="utf-8")

    daemon.run_seeds_job()
    assert [(key, delay) for key, delay, _ in timer.calls] == [("publish", daemon.quiet)]
    assert etags(daemon) == before  # nothing is published before the burst is over

    monotonic.now += daemon.quiet
    timer.calls[-1][2]()  # the scheduler fires the publish call
    after = etags(daemon)
    app = create_app(daemon.site, daemon.health)
    atom = call_app(app, "/feeds/all.atom").body.decode()
    assert "Telescope finds a new comet" in atom and "Local club wins the cup final" in atom
    assert "Local club wins the cup final" in call_app(app, "/feeds/sports.atom").body.decode()
    assert "Telescope finds a new comet" in call_app(app, "/feeds/science.rss").body.decode()
    changed = {name for name in before if after[name] != before[name]}
    assert changed == {f"{s}.{e}" for s in ("all", "sports") for e in ("rss", "atom", "json")}
    assert {"science.rss", "science.atom", "science.json"} <= set(after)
    assert b"science" in call_app(app, "/opml.xml").body


def test_a_rescan_with_nothing_new_publishes_nothing(daemon: Daemon, timer: FakeTimer) -> None:
    before = etags(daemon)
    report = daemon.scan_seeds()
    assert report is not None and report.written == 0
    assert timer.calls == []
    assert daemon.publish_pending(force=True) is None
    assert etags(daemon) == before


def test_a_burst_of_changes_is_published_once(
    daemon: Daemon, timer: FakeTimer, monotonic: FakeMonotonic, caplog: pytest.LogCaptureFixture
) -> None:
    daemon.note_changes(frozenset({"all", "world"}))
    monotonic.now += 1
    daemon.note_changes(frozenset({"all", "sports"}))
    assert len(timer.calls) == 2
    assert daemon.publish_pending() is None  # the first call fires: the burst is still going
    monotonic.now += daemon.quiet
    with caplog.at_level(logging.INFO, logger="feeds.daemon.service"):
        report = daemon.publish_pending()
    assert report is not None
    assert report.sections == {"all", "world", "sports"}
    assert daemon.publish_pending() is None
    assert [r.message for r in caplog.records if r.message.startswith("publish:")]


def test_publish_waits_for_quiet_but_not_beyond_max_delay() -> None:
    pending = add_changes(None, frozenset({"all"}), 100.0)
    assert publish_delay(pending, 100.0, quiet=2, max_delay=30) == 2
    for moment in range(101, 140):
        pending = add_changes(pending, frozenset({"world"}), float(moment))
    assert pending == Pending(frozenset({"all", "world"}), 100.0, 139.0)
    assert publish_delay(pending, 139.0, quiet=2, max_delay=30) == -9  # overdue: publish now


def test_each_source_gets_one_trigger_and_its_run_calls_the_updater(
    store: Store, config: Config, clock: Clock, timer: FakeTimer, caplog: pytest.LogCaptureFixture
) -> None:
    sources = (
        SourceConfig(name="a", url="https://a.example/feed", interval=600.0),
        SourceConfig(name="b", url="https://b.example/feed", interval=None, cron="*/30 * * * 1-5"),
        SourceConfig(name="off", url="https://c.example/feed", enabled=False),
    )
    refresher = FakeRefresher()
    daemon = Daemon(store, replace(config, sources=sources), clock, refresh=refresher, timer=timer)
    daemon.start()
    assert (refresher.calls, refresher.modes) == ([None], ["due"])  # start-up: every due source
    assert [spec.id for spec in daemon.job_specs()] == ["seeds", "watch"]
    assert daemon.schedule_sources() == 2
    assert {key: when for key, (when, _) in timer.at.items()} == {"source:a": NOW, "source:b": NOW}
    with caplog.at_level(logging.INFO, logger="feeds.daemon.service"):
        timer.at["source:a"][1]()
    assert (refresher.calls[-1], refresher.modes[-1]) == (["a"], "due")
    assert "source a: ok, 3 items changed, 0.01s" in caplog.text
    assert timer.calls and timer.calls[-1][0] == "publish"
    # The fake stored nothing, so "a" still looks due: it is looked at again
    # in a minute (as while a fetch worker has it), not at once.
    assert timer.at["source:a"][0] == NOW + timedelta(seconds=60)


def test_a_failing_job_is_logged_and_the_daemon_goes_on(
    store: Store, config: Config, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> FakeReport:
        raise RuntimeError("boom")

    sources = (SourceConfig(name="a", url="https://a.example/feed"),)
    daemon = Daemon(store, replace(config, sources=sources), clock, refresh=broken)
    with caplog.at_level(logging.ERROR, logger="feeds.daemon.service"):
        daemon.run_source_job("a")
    assert "job failed" in caplog.text
    assert daemon.stop_jobs(0.1) is True


def test_stop_refuses_new_runs(daemon: Daemon, project: Path) -> None:
    assert daemon.stop_jobs(1.0) is True
    (project / "seeds" / "001_new.txt").write_text(NEW_SEED, encoding="utf-8")
    daemon.run_seeds_job()
    assert daemon.last_scan is not None and daemon.last_scan.files == 1  # the start-up scan only


def test_export_dir_is_kept_in_sync_with_atomic_change_only_writes(
    exporting: tuple[Daemon, Path], store: Store, config: Config, project: Path, tmp_path: Path
) -> None:
    daemon, out = exporting
    files = tree(out, mtime)
    assert "feeds/all.rss" in files and "index.html" in files and any(f.startswith("items/") for f in files)
    (project / "seeds" / "001_new.txt").write_text(NEW_SEED, encoding="utf-8")
    daemon.scan_seeds()
    report = daemon.publish_pending(force=True)
    assert report is not None
    now = tree(out, mtime)
    assert "feeds/science.atom" in now
    assert now["feeds/world.rss"] == files["feeds/world.rss"]  # untouched
    assert (out / "feeds/all.rss").read_bytes() == daemon.site.resource("feeds/all.rss").body  # type: ignore[union-attr]
    new_pages = [f for f in now if f.startswith("items/") and f.endswith(".html") and f not in files]
    assert len(new_pages) == 3
    # The daemon's tree is exactly what `feeds export` writes.
    fresh = tmp_path / "fresh"
    run_export(store, config, fresh)
    assert tree(out, Path.read_bytes) == tree(fresh, Path.read_bytes)


def test_item_pages_are_rendered_once_and_again_only_when_they_change(
    daemon: Daemon, store: Store, project: Path
) -> None:
    slug = next(iter(daemon.site._versions))
    first = daemon.site.item_page(slug)
    assert first is not None
    assert daemon.site.item_page(slug) is first  # cached
    assert daemon.site.item_page("no-such-page") is None
    (project / "seeds" / "001_new.txt").write_text(NEW_SEED, encoding="utf-8")
    daemon.scan_seeds()
    daemon.publish_pending(force=True)
    assert daemon.site.item_page(slug) is first  # its item did not change


def test_last_modified_moves_with_the_bytes_and_never_goes_back() -> None:
    before = ("old digest", NOW)
    assert next_last_modified(before, "old digest", NOW + timedelta(hours=1)) == NOW  # same bytes
    assert next_last_modified(before, "new digest", NOW + timedelta(hours=1)) == NOW + timedelta(hours=1)
    # New bytes within the same second (or a clock behind) still get a later second.
    assert next_last_modified(before, "new digest", NOW) == NOW + timedelta(seconds=1)
    assert next_last_modified(before, "new digest", NOW - timedelta(days=1)) == NOW + timedelta(seconds=1)
    assert next_last_modified(None, "x", NOW) == NOW


def test_health_lists_each_source_with_its_last_success_and_error(daemon: Daemon, store: Store) -> None:
    store.save_source_state(
        SourceState(
            name="wire",
            url="https://wire.example/feed",
            last_success=NOW,
            last_error="HTTP 503",
            last_status=503,
            error_count=1,
        )
    )
    status, body = daemon.health()
    assert status == 200
    (wire,) = json.loads(body)["sources"]
    assert wire["name"] == "wire"
    assert wire["last_success"] == "2026-01-05T12:00:00Z"
    assert wire["last_error"] == "HTTP 503" and wire["last_status"] == 503
    assert wire["disabled"] is False


def test_a_failed_export_is_retried_in_full(
    exporting: tuple[Daemon, Path], timer: FakeTimer, project: Path
) -> None:
    daemon, out = exporting
    (project / "seeds" / "001_new.txt").write_text(NEW_SEED, encoding="utf-8")
    daemon.scan_seeds()
    blocker = out / "feeds" / "all.rss"
    blocker.unlink()
    blocker.mkdir()  # a folder where the feed goes: writing it fails
    assert daemon.publish_pending(force=True) is not None  # served from memory all the same
    assert timer.calls[-1][:2] == ("publish", daemon.max_delay)
    blocker.rmdir()
    daemon.publish_pending(force=True)
    assert blocker.read_bytes() == daemon.site.resource("feeds/all.rss").body  # type: ignore[union-attr]
    assert (out / "feeds" / "science.atom").is_file()


def test_after_a_run_the_trigger_moves_to_the_time_the_state_gives(
    store: Store, config: Config, clock: Clock, timer: FakeTimer
) -> None:
    sources = (SourceConfig(name="a", url="https://a.example/feed", interval=600.0),)
    refresher = FakeRefresher()
    daemon = Daemon(store, replace(config, sources=sources), clock, refresh=refresher, timer=timer)
    # The publisher's ttl put the next fetch an hour out.
    state = SourceState(name="a", url="https://a.example/feed", next_due=NOW + timedelta(hours=1))
    store.save_source_state(state)
    daemon.schedule_sources()
    when, run = timer.at["source:a"]
    # An hour out, plus at most a tenth of the interval of jitter.
    assert NOW + timedelta(hours=1) <= when <= NOW + timedelta(hours=1, seconds=60)
    store.save_source_state(replace(state, next_due=NOW + timedelta(hours=3)))  # another process fetched it
    run()
    assert refresher.modes == ["due"]  # the updater skips it if it is not due
    assert NOW + timedelta(hours=3) <= timer.at["source:a"][0] <= NOW + timedelta(hours=3, seconds=60)
