"""Health that tells the truth: error episodes, /healthz ok/degraded/failing, `feeds status`."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import feedparser
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from feeds.config import SourceConfig
from feeds.daemon.health import failing_sources, overdue_after, service_status
from feeds.daemon.service import Daemon
from feeds.daemon.web import call_app, create_app
from feeds.model import ErrorEpisode, SourceState
from store import Store
from tests.cliutil import run_feeds
from tests.conftest import NOW
from tests.feedcheck import check_atom
from tests.remote_helpers import REMOTE, SteppingClock, config_with_sources

RSS = "application/rss+xml"
HOUR = 3600


def test_an_episode_opens_at_the_first_failure_grows_and_ends_at_the_next_success(store: Store) -> None:
    def failed(at: int, errors: int, error: str) -> SourceState:
        when = NOW + timedelta(seconds=at)
        return SourceState("wire", "http://x/", last_attempt=when, error_count=errors, last_error=error)

    store.save_source_state(failed(0, 1, "HTTP 500"))
    store.save_source_state(failed(60, 2, "timed out"))
    store.save_source_state(failed(60, 2, "timed out"))  # saved twice: nothing new
    (episode,) = store.error_episodes()
    assert (episode.started, episode.last_failure) == (NOW, NOW + timedelta(seconds=60))
    assert (episode.failures, episode.last_error, episode.ended) == (2, "timed out", None)
    assert store.open_episodes() == {"wire": episode}
    back = NOW + timedelta(seconds=120)
    store.save_source_state(SourceState("wire", "http://x/", last_attempt=back, last_success=back))
    (ended,) = store.error_episodes()
    assert ended.ended == back and store.open_episodes() == {}
    store.save_source_state(failed(300, 1, "HTTP 502"))
    assert [e.last_error for e in store.error_episodes()] == ["HTTP 502", "timed out"]


def test_a_source_is_overdue_only_after_its_own_schedule() -> None:
    hourly = SourceConfig("hourly", "http://x/", interval=HOUR)
    nightly = SourceConfig("nightly", "http://y/", interval=None, cron="0 3 * * *")
    off = SourceConfig("off", "http://z/", enabled=False)
    episodes = {name: ErrorEpisode(name, NOW, NOW, "HTTP 500", 1) for name in ("hourly", "nightly", "off")}
    assert overdue_after(nightly, NOW) == NOW.replace(day=6, hour=3)
    sources = (hourly, nightly, off)
    assert failing_sources(sources, episodes, NOW + timedelta(minutes=59)) == ()
    (late,) = failing_sources(sources, episodes, NOW + timedelta(minutes=61))
    assert (late.name, late.since, late.last_error) == ("hourly", NOW, "HTTP 500")
    next_day = failing_sources(sources, episodes, NOW + timedelta(days=1))
    assert [f.name for f in next_day] == ["hourly", "nightly"]
    ended = {"hourly": replace(episodes["hourly"], ended=NOW)}
    assert failing_sources(sources, ended, NOW + timedelta(days=1)) == ()
    assert service_status(True, []) == "ok" and service_status(False, []) == "failing"


def test_healthz_goes_degraded_while_a_source_fails_past_its_interval_and_ok_when_it_recovers(
    httpserver: HTTPServer, project: Path
) -> None:
    feed = (REMOTE / "rss20.xml").read_bytes()
    outcome = {"status": 200}

    def answer(request: Request) -> Response:
        body = feed if outcome["status"] == 200 else b"down"
        return Response(body, status=outcome["status"], content_type=RSS)

    httpserver.expect_request("/feed.xml").respond_with_handler(answer)
    config = config_with_sources(project, [{"name": "wire", "url": httpserver.url_for("/feed.xml")}])
    clock = SteppingClock()
    with Store(config.store.path) as store:
        daemon = Daemon(store, config, clock)
        app = create_app(daemon.site, daemon.health)

        def health() -> tuple[int, dict]:
            reply = call_app(app, "/healthz")
            return reply.status, json.loads(reply.body)

        daemon.refresh_sources(["wire"])
        assert health()[1]["status"] == "ok"
        outcome["status"] = 500
        clock.advance(HOUR)
        daemon.refresh_sources(["wire"])
        status, body = health()
        assert (status, body["status"], body["ok"]) == (200, "ok", True)  # one failure, within its hour
        assert body["sources"][0]["failing_since"] == "2026-01-05T13:00:00Z"
        # Backoff waits the source's own interval plus up to a quarter: then it fails again.
        clock.advance(1.25 * HOUR + 60)
        daemon.refresh_sources(["wire"])
        status, body = health()
        assert (status, body["status"], body["ok"]) == (200, "degraded", False)
        (named,) = body["degraded"]
        assert named["name"] == "wire" and named["since"] == "2026-01-05T13:00:00Z"
        assert "500" in named["last_error"] and named["failures"] == 2
        outcome["status"] = 200
        clock.advance(2.5 * HOUR + 60)  # past the second backoff (twice the interval, plus jitter)
        daemon.refresh_sources(["wire"])
        status, body = health()
        assert (status, body["status"], body["degraded"]) == (200, "ok", [])


def test_status_shows_pending_sources_and_since_when_one_fails(httpserver: HTTPServer, project: Path) -> None:
    httpserver.expect_request("/broken.xml").respond_with_data("down", status=500)
    config_with_sources(
        project,
        [
            {"name": "broken", "url": httpserver.url_for("/broken.xml")},
            {"name": "later", "url": httpserver.url_for("/later.xml")},
        ],
    )
    assert run_feeds("refresh", "broken", cwd=project).returncode == 0
    text = run_feeds("status", cwd=project).stdout
    assert "source later: pending (never fetched), 0 items" in text
    assert "source broken: failing since 20" in text and "(1 errors)" in text
    rows = {r["name"]: r for r in json.loads(run_feeds("status", "--json", cwd=project).stdout)["sources"]}
    assert rows["later"]["state"] == "pending" and rows["later"]["failing_since"] is None
    assert rows["broken"]["state"] == "failing" and rows["broken"]["failing_since"]


def test_the_source_health_feed_has_one_valid_entry_per_error_episode(
    httpserver: HTTPServer, project: Path
) -> None:
    outcome = {"status": 500}

    def answer(request: Request) -> Response:
        body = (REMOTE / "rss20.xml").read_bytes() if outcome["status"] == 200 else b"down"
        return Response(body, status=outcome["status"], content_type=RSS)

    httpserver.expect_request("/feed.xml").respond_with_handler(answer)
    config = config_with_sources(project, [{"name": "wire", "url": httpserver.url_for("/feed.xml")}])
    clock = SteppingClock()
    with Store(config.store.path) as store:
        daemon = Daemon(store, config, clock)
        app = create_app(daemon.site, daemon.health)
        daemon.start()

        def entries() -> list[dict]:
            reply = call_app(app, "/feeds/_sources.atom")
            assert reply.status == 200
            check_atom(reply.body)
            return feedparser.parse(reply.body).entries

        (failing,) = entries()
        assert failing.title == "wire: failing since 2026-01-05T12:00:00Z"
        assert "HTTP 500" in failing.summary and failing.link == httpserver.url_for("/feed.xml")
        outcome["status"] = 200
        clock.advance(2 * HOUR)
        daemon.refresh_sources(["wire"])  # recovers: the health feed changes with no section behind it
        daemon.publish_pending(force=True)
        (recovered,) = entries()
        assert recovered.id == failing.id
        assert recovered.title == "wire: failed from 2026-01-05T12:00:00Z, recovered 2026-01-05T14:00:00Z"
        outcome["status"] = 500
        clock.advance(2 * HOUR)
        daemon.refresh_sources(["wire"])
        daemon.publish_pending(force=True)
        assert [e.title for e in entries()] == [
            "wire: failing since 2026-01-05T16:00:00Z",
            "wire: failed from 2026-01-05T12:00:00Z, recovered 2026-01-05T14:00:00Z",
        ]
    assert run_feeds("export", "--offline", cwd=project).returncode == 0
    exported = (project / "public" / "feeds" / "_sources.atom").read_bytes()
    check_atom(exported)
    assert exported.count(b"<entry>") == 2
