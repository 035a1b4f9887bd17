"""WebSub publish pings: sent to a real hub on 127.0.0.1, retried, never in publishing's way."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from lxml import etree
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from feeds.config import Config, config_from_dict
from feeds.daemon.service import Daemon
from feeds.errors import ConfigError
from feeds.publish.websub import RETRY_DELAYS, WebSubNotifier, retry_delay, should_retry
from feeds.sources.fetch import FormPoster
from store import Store
from tests.cliutil import run_feeds
from tests.feedcheck import check_atom, check_rss
from tests.test_daemon import NEW_SEED

ATOM = "{http://www.w3.org/2005/Atom}"

FEED = "http://127.0.0.1:8080/feeds/world.atom"
OTHER = "http://127.0.0.1:8080/feeds/all.atom"


@pytest.fixture
def poster() -> Iterator[FormPoster]:
    p = FormPoster(timeout=5)
    yield p
    p.close()


def pings(server: HTTPServer) -> list[dict[str, list[str]]]:
    return [parse_qs(request.get_data(as_text=True)) for request, _ in server.log]


def test_one_publish_ping_per_changed_feed_and_hub(httpserver: HTTPServer, poster: FormPoster) -> None:
    httpserver.expect_request("/hub", method="POST").respond_with_data("", status=204)
    notifier = WebSubNotifier([httpserver.url_for("/hub")], poster)
    try:
        assert notifier.notify([FEED, OTHER]) == 2
        assert notifier.wait_idle(10)
    finally:
        notifier.close()
    assert pings(httpserver) == [
        {"hub.mode": ["publish"], "hub.url": [FEED]},
        {"hub.mode": ["publish"], "hub.url": [OTHER]},
    ]
    request = httpserver.log[0][0]
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["User-Agent"].startswith("newsroom-feeds/")


def test_a_failing_hub_is_retried_until_it_answers(httpserver: HTTPServer, poster: FormPoster) -> None:
    for status in (503, 500, 204):
        httpserver.expect_ordered_request("/hub", method="POST").respond_with_data("", status=status)
    notifier = WebSubNotifier([httpserver.url_for("/hub")], poster, delays=(0.0, 0.0, 0.0))
    try:
        notifier.notify([FEED])
        assert notifier.wait_idle(10)
    finally:
        notifier.close()
    assert [p["hub.url"] for p in pings(httpserver)] == [[FEED]] * 3
    httpserver.check_assertions()


def test_a_hub_that_refuses_is_not_asked_again(httpserver: HTTPServer, poster: FormPoster) -> None:
    httpserver.expect_request("/hub", method="POST").respond_with_data("bad topic", status=400)
    notifier = WebSubNotifier([httpserver.url_for("/hub")], poster, delays=(0.0, 0.0))
    try:
        notifier.notify([FEED])
        assert notifier.wait_idle(10)
    finally:
        notifier.close()
    assert len(httpserver.log) == 1


def test_an_unreachable_hub_is_given_up_after_the_retries(poster: FormPoster) -> None:
    # A port nothing listens on: the connection is refused at once.
    with HTTPServer(host="127.0.0.1", port=0) as server:
        dead = server.url_for("/hub")
    notifier = WebSubNotifier([dead], poster, delays=(0.0, 0.0))
    try:
        notifier.notify([FEED])
        assert notifier.wait_idle(20)
    finally:
        notifier.close()


def test_a_slow_hub_never_holds_the_caller_and_a_second_hub_still_gets_its_ping(
    httpserver: HTTPServer, poster: FormPoster
) -> None:
    release = threading.Event()
    arrived = threading.Event()

    def slow(request: Request) -> Response:
        arrived.set()
        release.wait(10)
        return Response("", status=204)

    httpserver.expect_request("/slow", method="POST").respond_with_handler(slow)
    notifier = WebSubNotifier([httpserver.url_for("/slow")], poster)
    try:
        notifier.notify([FEED])  # returns while the hub holds the request
        assert arrived.wait(10)
        assert not notifier.wait_idle(0)
        release.set()
        assert notifier.wait_idle(10)
    finally:
        release.set()
        notifier.close()


def test_a_feed_changed_again_while_its_ping_waits_is_pinged_once(
    httpserver: HTTPServer, poster: FormPoster
) -> None:
    httpserver.expect_ordered_request("/hub", method="POST").respond_with_data("", status=503)
    httpserver.expect_ordered_request("/hub", method="POST").respond_with_data("", status=204)
    clock = [0.0]  # the worker's clock: the retry waits until the test moves it
    notifier = WebSubNotifier(
        [httpserver.url_for("/hub")], poster, delays=(60.0,), monotonic=lambda: clock[0]
    )
    try:
        notifier.notify([FEED])
        deadline = time.monotonic() + 10
        while not (len(httpserver.log) == 1 and notifier.queued() == 1):
            assert time.monotonic() < deadline, "the failed ping was not queued for a retry"
            time.sleep(0.01)
        assert notifier.notify([FEED]) == 0  # the waiting retry will tell the hub
        clock[0] += 60
        notifier.notify([])  # wakes the worker to look at its clock
        assert notifier.wait_idle(10)
    finally:
        notifier.close()
    assert [p["hub.url"] for p in pings(httpserver)] == [[FEED], [FEED]]


def test_pure_decisions() -> None:
    assert [should_retry(s) for s in (None, 500, 503, 429, 400, 404, 410)] == [True] * 4 + [False] * 3
    assert retry_delay(1, RETRY_DELAYS) == RETRY_DELAYS[0]
    assert retry_delay(len(RETRY_DELAYS) + 1, RETRY_DELAYS) is None


def test_config_hubs() -> None:
    config = config_from_dict({"websub": {"hubs": ["https://hub.example.org/", "http://127.0.0.1:9/h"]}})
    assert config.websub.hubs == ("https://hub.example.org/", "http://127.0.0.1:9/h")
    assert config_from_dict({}).websub.hubs == ()
    for bad, message in [
        ({"hubs": "https://hub.example.org/"}, "websub.hubs: expected a list of URLs"),
        ({"hubs": ["ftp://x/"]}, "websub.hubs[0]: expected an http(s) URL"),
        ({"hubs": ["https://h/", "https://h/"]}, "websub.hubs: a URL is listed twice"),
        ({"hub": []}, "websub.hub: unknown key"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            config_from_dict({"websub": bad})


def test_the_daemon_pings_once_per_changed_feed_and_never_for_unchanged_ones(
    httpserver: HTTPServer, poster: FormPoster, store: Store, config: Config, clock, project: Path
) -> None:
    httpserver.expect_request("/hub", method="POST").respond_with_data("", status=204)
    notifier = WebSubNotifier([httpserver.url_for("/hub")], poster)
    try:
        daemon = Daemon(store, config, clock, websub=notifier)
        daemon.start(sources=False)
        (project / "seeds" / "001_new.txt").write_text(NEW_SEED, encoding="utf-8")
        daemon.scan_seeds()
        report = daemon.publish_pending(force=True)
        assert report is not None
        assert notifier.wait_idle(10)
        pinged = sorted(p["hub.url"][0] for p in pings(httpserver))
        # New stories in all, sports and the new science section; world and economy untouched.
        assert pinged == sorted(
            f"http://127.0.0.1:8080/feeds/{slug}.{ext}"
            for slug in ("all", "science", "sports")
            for ext in ("atom", "json", "rss")
        )
        # A publish that changes no feed pings nothing.
        daemon.note_changes(frozenset({"world"}))
        daemon.publish_pending(force=True)
        assert notifier.wait_idle(10)
        assert len(httpserver.log) == 9
    finally:
        notifier.close()


def test_feeds_advertise_the_hubs_and_export_announces_what_it_changed(
    httpserver: HTTPServer, project: Path
) -> None:
    httpserver.expect_request("/hub", method="POST").respond_with_data("", status=202)
    hub = httpserver.url_for("/hub")
    with (project / "config.toml").open("a", encoding="utf-8") as handle:
        handle.write(f'\n[websub]\nhubs = ["{hub}"]\n')
    first = run_feeds("export", cwd=project)
    assert first.returncode == 0, first.stderr
    # Every section feed, and the source-health feed (feeds/_sources.atom).
    assert "websub: 13 changed feeds announced to 1 hubs" in first.stdout
    assert sorted(p["hub.url"][0] for p in pings(httpserver)) == sorted(
        [
            *(
                f"http://127.0.0.1:8080/feeds/{slug}.{ext}"
                for slug in ("all", "economy", "sports", "world")
                for ext in ("atom", "json", "rss")
            ),
            "http://127.0.0.1:8080/feeds/_sources.atom",
        ]
    )
    again = run_feeds("export", cwd=project)
    assert again.returncode == 0
    assert len(httpserver.log) == 13  # nothing changed: no ping
    public = project / "public" / "feeds"
    atom = etree.fromstring((public / "world.atom").read_bytes())
    assert [e.get("href") for e in atom.findall(f"{ATOM}link[@rel='hub']")] == [hub]
    assert [e.get("href") for e in atom.findall(f"{ATOM}link[@rel='self']")] == [
        "http://127.0.0.1:8080/feeds/world.atom"
    ]
    rss = etree.fromstring((public / "world.rss").read_bytes())
    assert [e.get("href") for e in rss.find("channel").findall(f"{ATOM}link[@rel='hub']")] == [hub]
    assert json.loads((public / "world.json").read_bytes())["hubs"] == [{"type": "WebSub", "url": hub}]
    check_atom((public / "world.atom").read_bytes())
    check_rss((public / "world.rss").read_bytes())
    # A filtered or search feed is never pinged, so it names no hub.
    served = run_feeds("serve", "--get", "/feeds/world.atom?limit=1", cwd=project)
    assert served.returncode == 0 and 'rel="self"' in served.stdout and 'rel="hub"' not in served.stdout
    searched = run_feeds("serve", "--get", "/search.atom?q=world", cwd=project)
    assert searched.returncode == 0 and 'rel="hub"' not in searched.stdout


def test_an_unreachable_hub_does_not_fail_the_export(project: Path) -> None:
    with HTTPServer(host="127.0.0.1", port=0) as server:
        dead = server.url_for("/hub")
    with (project / "config.toml").open("a", encoding="utf-8") as handle:
        handle.write(f'\n[websub]\nhubs = ["{dead}"]\n')
    result = run_feeds("export", cwd=project)
    assert result.returncode == 0
    assert (project / "public" / "feeds" / "all.atom").is_file()
