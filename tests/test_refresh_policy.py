"""When a source is fetched: --all and --force, backoff from the source's own
interval, absurd Retry-After values, and huge feeds, against a real HTTP
server on 127.0.0.1 (and the CLI as a real process where a user would type it)."""

from __future__ import annotations

import time
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path

from pytest_httpserver import HTTPServer

from feeds.sources.update import refresh_sources
from store import Store
from tests.cliutil import run_feeds
from tests.conftest import NOW
from tests.remote_helpers import REMOTE, SteppingClock, config_with_sources

RSS = "application/rss+xml"


def big_feed(count: int) -> bytes:
    """An RSS 2.0 feed of ``count`` entries, one a minute back from NOW, newest first."""
    parts = ['<?xml version="1.0"?><rss version="2.0"><channel><title>Big</title>']
    parts.append("<link>http://127.0.0.1/</link><description>d</description>")
    for n in range(count):
        date = format_datetime(NOW - timedelta(minutes=n), usegmt=True)
        parts.append(
            f"<item><title>Story {n}</title><link>http://127.0.0.1/{n}</link>"
            f"<guid>http://127.0.0.1/{n}</guid><pubDate>{date}</pubDate></item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts).encode()


def test_refresh_all_honours_retry_after_and_only_force_overrides_it_loudly(
    httpserver: HTTPServer, project: Path
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "3600"}
    )
    config_with_sources(project, [{"name": "gazette", "url": httpserver.url_for("/feed.xml")}])
    epoch = int(NOW.timestamp())
    first = run_feeds("refresh", "--all", cwd=project, env={"SOURCE_DATE_EPOCH": str(epoch)})
    assert first.returncode == 0 and "429" in first.stdout + first.stderr
    # Ten seconds later "--all" (due or not) still waits as the publisher asked.
    again = run_feeds("refresh", "--all", cwd=project, env={"SOURCE_DATE_EPOCH": str(epoch + 10)})
    assert again.returncode == 0 and "backing off until" in again.stdout + again.stderr
    assert len(httpserver.log) == 1
    forced = run_feeds("refresh", "--force", cwd=project, env={"SOURCE_DATE_EPOCH": str(epoch + 20)})
    assert forced.returncode == 0 and "ignoring Retry-After and backoff" in forced.stderr
    assert len(httpserver.log) == 2


def test_a_failing_source_is_never_polled_more_often_than_its_interval(
    httpserver: HTTPServer, project: Path, store: Store
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data("oops", status=500)
    config = config_with_sources(
        project, [{"name": "gazette", "url": httpserver.url_for("/feed.xml"), "interval": "1h"}]
    )
    clock = SteppingClock()
    for _ in range(60):  # a run every minute for an hour, as a crontab line might
        refresh_sources(store, config, clock)
        clock.advance(60)
    assert len(httpserver.log) == 1
    (state,) = store.source_states()
    assert state.backoff_until is not None and state.backoff_until >= NOW + timedelta(hours=1)
    # Then it grows: the second failure waits at least two hours more.
    clock.now = state.backoff_until
    refresh_sources(store, config, clock)
    (state,) = store.source_states()
    assert len(httpserver.log) == 2 and state.backoff_until - clock.now >= timedelta(hours=2)


def test_an_absurd_retry_after_is_clamped_to_the_backoff_cap_and_recorded(
    httpserver: HTTPServer, project: Path, store: Store
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(
        "busy", status=503, headers={"Retry-After": "99999999999999999999"}
    )
    config = config_with_sources(project, [{"name": "gazette", "url": httpserver.url_for("/feed.xml")}])
    clock = SteppingClock()
    (result,) = refresh_sources(store, config, clock).results
    assert result.status == "error" and "internal error" not in (result.error or "")
    assert "clamped" in (result.error or "")
    (state,) = store.source_states()
    assert state.backoff_until == NOW + timedelta(seconds=config.fetch.max_backoff)
    assert "Retry-After" in (state.last_error or "") and "clamped" in (state.last_error or "")
    clock.advance(3600)
    assert refresh_sources(store, config, clock).results[0].status == "skipped"
    assert len(httpserver.log) == 1


def test_a_feed_of_100000_entries_keeps_the_newest_max_entries_with_a_warning(
    httpserver: HTTPServer, project: Path, store: Store
) -> None:
    httpserver.expect_request("/big.xml").respond_with_data(big_feed(100_000), content_type=RSS)
    config = config_with_sources(
        project,
        [{"name": "big", "url": httpserver.url_for("/big.xml"), "section": "world"}],
        fetch='max_entries = 2000\nmax_bytes = 50000000\ndeadline = "60s"',
    )
    started = time.monotonic()
    (result,) = refresh_sources(store, config, SteppingClock()).results
    took = time.monotonic() - started
    assert result.status == "updated" and result.items_changed == 2000
    assert "100000 entries: kept the newest 2000" in (result.warning or "")
    titles = {i.title for i in store.feed_items(None, 5000)}
    assert titles == {f"Story {n}" for n in range(2000)}
    (state,) = store.source_states()
    assert "max_entries" in (state.warning or "")
    assert took < 60  # linear: a few seconds here; the quadratic time scan never finished


def test_the_cap_keeps_the_feed_order_of_what_it_keeps(
    httpserver: HTTPServer, project: Path, store: Store
) -> None:
    body = (REMOTE / "rss20.xml").read_bytes()
    httpserver.expect_request("/feed.xml").respond_with_data(body, content_type=RSS)
    config = config_with_sources(
        project, [{"name": "gazette", "url": httpserver.url_for("/feed.xml")}], fetch="max_entries = 1"
    )
    (result,) = refresh_sources(store, config, SteppingClock()).results
    assert result.items_changed == 1 and "kept the newest 1" in (result.warning or "")
