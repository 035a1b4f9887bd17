"""refresh_sources against a real HTTP server on 127.0.0.1 and a real SQLite file."""

from __future__ import annotations

import gzip
import itertools
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from feeds.config import Config
from feeds.model import SourceState
from feeds.sources.prepare import ParseFailure, PrepareJob
from feeds.sources.update import RefreshReport, Updater, refresh_sources
from feeds.sources.workers import ParserPool
from store import Store
from tests.conftest import NOW
from tests.remote_helpers import REMOTE, SteppingClock, config_with_sources, http_date, rss

RSS = "application/rss+xml"


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


def one_source(project: Path, url: str, fetch: str = "", **extra: object) -> Config:
    return config_with_sources(project, [{"name": "gazette", "url": url, "section": "world", **extra}], fetch)


def refresh(store: Store, config: Config, clock: SteppingClock, **kwargs: object) -> RefreshReport:
    return refresh_sources(store, config, clock, **kwargs)  # type: ignore[arg-type]


def state_of(store: Store, name: str = "gazette") -> SourceState:
    (state,) = [s for s in store.source_states() if s.name == name]
    return state


def gazette() -> bytes:
    return (REMOTE / "rss20.xml").read_bytes()


# -- 200 and conditional GET ------------------------------------------------


def test_200_stores_every_entry_in_the_section_with_its_origin(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(gazette(), content_type=RSS)
    config = one_source(project, httpserver.url_for("/feed.xml"))
    report = refresh(store, config, clock)
    (result,) = report.results
    assert (result.name, result.status, result.items_changed, result.error) == ("gazette", "updated", 2, None)
    assert report.changed_sections == {"all", "world"}
    items = {i.title: i for i in store.feed_items("world", 50)}
    ferry = items["Ferry timetable changes for winter"]
    assert ferry.section == "WORLD" and ferry.kind == "entry"
    assert ferry.published == NOW.replace(day=4, hour=8, minute=30)
    # Relative links are resolved against the URL the feed came from.
    assert ferry.link == httpserver.url_for("/gazette/ferry-timetable") + "?utm_source=rss"
    (origin,) = ferry.origins
    assert (origin.kind, origin.name, origin.title, origin.url, origin.entry_id) == (
        "source",
        "gazette",
        "Harbour Gazette",
        httpserver.url_for("/feed.xml"),
        "gazette-1001",
    )
    state = state_of(store)
    assert state.last_status == 200 and state.items == 2 and state.error_count == 0
    # The feed's <ttl>30</ttl> is below the hour interval, so the hour stands.
    assert state.next_due == NOW + timedelta(hours=1)
    assert state.min_interval == 1800


def test_a_request_names_us_and_asks_for_feeds(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        seen.append(request)
        return Response(gazette(), content_type=RSS)

    httpserver.expect_request("/feed.xml").respond_with_handler(handler)
    refresh(store, one_source(project, httpserver.url_for("/feed.xml")), clock)
    headers = seen[0].headers
    assert headers["User-Agent"].startswith("newsroom-feeds/")
    assert "application/rss+xml" in headers["Accept"] and "application/feed+json" in headers["Accept"]
    assert "gzip" in headers["Accept-Encoding"]


@pytest.mark.parametrize(
    ("validator", "request_header"),
    [("ETag", "If-None-Match"), ("Last-Modified", "If-Modified-Since")],
)
def test_304_on_the_stored_validator_writes_nothing(
    httpserver: HTTPServer,
    project: Path,
    store: Store,
    clock: SteppingClock,
    validator: str,
    request_header: str,
) -> None:
    value = '"v1"' if validator == "ETag" else http_date(NOW - timedelta(days=1))
    conditional: list[str | None] = []

    def handler(request: Request) -> Response:
        conditional.append(request.headers.get(request_header))
        if request.headers.get(request_header) == value:
            return Response(status=304)
        return Response(gazette(), content_type=RSS, headers={validator: value})

    httpserver.expect_request("/feed.xml").respond_with_handler(handler)
    config = one_source(project, httpserver.url_for("/feed.xml"))
    refresh(store, config, clock)
    before = [(i.id, i.updated) for i in store.feed_items(None, 50)]
    clock.advance(3600)
    report = refresh(store, config, clock)
    assert conditional == [None, value]
    assert [(r.status, r.http_status, r.items_changed) for r in report.results] == [("not-modified", 304, 0)]
    assert report.changed_sections == frozenset()
    assert [(i.id, i.updated) for i in store.feed_items(None, 50)] == before
    state = state_of(store)
    assert state.last_success == clock.now and state.last_status == 304


def test_the_same_body_is_not_parsed_again(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(gazette(), content_type=RSS)
    config = one_source(project, httpserver.url_for("/feed.xml"))
    refresh(store, config, clock)
    clock.advance(3600)
    report = refresh(store, config, clock)
    assert [(r.status, r.http_status) for r in report.results] == [("unchanged", 200)]
    assert report.changed_sections == frozenset()


def test_a_changed_feed_writes_only_its_new_and_changed_entries(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    def story(n: int, title: str) -> dict[str, str]:
        return {"guid": f"s{n}", "title": title, "date": http_date(NOW), "description": f"About {n}."}

    first = rss("Gazette", [story(1, "Kept as it was"), story(2, "Old wording"), story(3, "Dropped")])
    second = rss("Gazette", [story(1, "Kept as it was"), story(2, "New wording"), story(4, "Brand new")])
    bodies = iter([first, second])
    httpserver.expect_request("/feed.xml").respond_with_handler(
        lambda request: Response(next(bodies), content_type=RSS)
    )
    config = one_source(project, httpserver.url_for("/feed.xml"))
    refresh(store, config, clock)
    before = {i.title: i for i in store.feed_items(None, 50)}
    clock.advance(3600)
    (result,) = refresh(store, config, clock, mode="force").results
    assert (result.status, result.items_changed) == ("updated", 2)
    after = {i.title: i for i in store.feed_items(None, 50)}
    assert after["Kept as it was"] == before["Kept as it was"]
    assert after["New wording"].updated > before["Old wording"].updated
    assert after["New wording"].id == before["Old wording"].id
    assert "Brand new" in after and "Dropped" in after  # a story a feed drops stays stored


def test_categories_the_source_maps_file_entries_in_their_sections(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    item = "<item><guid>{0}</guid><title>Story {0}</title>{1}</item>"
    body = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Mixed</title>'
        + item.format("a", "<category>Football</category>")
        + item.format("b", "<category>Weather</category><category>FOOTBALL</category>")
        + item.format("c", "<category>Weather</category>")
        + "</channel></rss>"
    ).encode()
    httpserver.expect_request("/feed.xml").respond_with_data(body, content_type=RSS)
    config = one_source(project, httpserver.url_for("/feed.xml"), categories={"football": "sport"})
    report = refresh(store, config, clock)
    sections = {i.title: (i.section_slug, i.section) for i in store.feed_items(None, 50)}
    assert sections == {
        "Story a": ("sport", "SPORT"),
        "Story b": ("sport", "SPORT"),
        "Story c": ("world", "WORLD"),
    }
    assert report.changed_sections == {"all", "sport", "world"}


def test_a_parser_process_that_dies_fails_only_the_sources_it_held(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    class DyingParser:
        """Stands in for a parser process: the first body kills it."""

        ready, pending, broken = True, 0, False

        def submit(self, job: PrepareJob, done: Callable[[ParseFailure], None]) -> bool:
            if self.broken:
                return False
            self.broken = True
            done(ParseFailure("parser process exited (status -9)"))
            return True

        def close(self) -> None:
            pass

    httpserver.expect_request("/feed.xml").respond_with_data(gazette(), content_type=RSS)
    sources = [{"name": n, "url": httpserver.url_for("/feed.xml"), "section": "world"} for n in ("a", "b")]
    config = config_with_sources(project, sources)
    # One parser process, used from the first fetch on: the fake dies with its first body.
    with Updater(config.fetch, parsers=ParserPool(1, min_jobs=1, start=DyingParser)) as updater:
        report = updater.refresh(store, config, clock)
    statuses = sorted((r.status, r.error and "parser process" in r.error) for r in report.results)
    assert statuses == [("error", True), ("updated", None)]  # the second was parsed in the writer


def test_a_run_cut_short_still_ends(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(gazette(), content_type=RSS)
    sources = [{"name": f"s{n}", "url": httpserver.url_for("/feed.xml")} for n in range(60)]
    config = config_with_sources(project, sources, fetch="workers = 4\nper_host = 4")
    outcome: list[BaseException] = []

    def stop(result: object) -> None:
        raise KeyboardInterrupt  # as Ctrl-C would, with fetch threads waiting on the writer

    def run() -> None:
        try:
            refresh(store, config, clock, progress=stop)
        except KeyboardInterrupt as e:
            outcome.append(e)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    runner.join(20)
    assert not runner.is_alive() and outcome


# -- redirects ----------------------------------------------------------------


@pytest.mark.parametrize(("code", "moves"), [(301, True), (308, True), (302, False), (307, False)])
def test_only_permanent_redirects_update_the_url(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock, code: int, moves: bool
) -> None:
    new_url = httpserver.url_for("/new.xml")
    httpserver.expect_request("/old.xml").respond_with_data("", status=code, headers={"Location": "/new.xml"})
    httpserver.expect_request("/new.xml").respond_with_data(gazette(), content_type=RSS)
    config = one_source(project, httpserver.url_for("/old.xml"))
    assert refresh(store, config, clock).results[0].status == "updated"
    assert state_of(store).current_url == (new_url if moves else None)
    httpserver.clear_log()
    refresh(store, config, clock, mode="force")
    paths = [request.path for request, _ in httpserver.log]
    assert paths == (["/new.xml"] if moves else ["/old.xml", "/new.xml"])


def test_a_temporary_hop_after_a_permanent_one_keeps_the_permanent_target(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    httpserver.expect_request("/a").respond_with_data("", status=301, headers={"Location": "/b"})
    httpserver.expect_request("/b").respond_with_data("", status=302, headers={"Location": "/c"})
    httpserver.expect_request("/c").respond_with_data(gazette(), content_type=RSS)
    refresh(store, one_source(project, httpserver.url_for("/a")), clock)
    assert state_of(store).current_url == httpserver.url_for("/b")


def test_a_new_url_in_the_config_starts_afresh(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    httpserver.expect_request("/gone.xml").respond_with_data("", status=410)
    httpserver.expect_request("/feed.xml").respond_with_data(gazette(), content_type=RSS)
    refresh(store, one_source(project, httpserver.url_for("/gone.xml")), clock)
    assert state_of(store).disabled
    report = refresh(store, one_source(project, httpserver.url_for("/feed.xml")), clock)
    assert report.results[0].status == "updated"
    assert not state_of(store).disabled


# -- failures -----------------------------------------------------------------


def test_404_is_an_error_that_backs_off(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data("nope", status=404)
    report = refresh(store, one_source(project, httpserver.url_for("/feed.xml")), clock)
    (result,) = report.results
    assert (result.status, result.http_status) == ("error", 404)
    assert "gazette" in (result.error or "") and "404" in (result.error or "")
    state = state_of(store)
    assert state.error_count == 1 and state.last_error and state.backoff_until is not None
    # The first retry waits the source's own interval (an hour), plus up to a quarter.
    assert NOW + timedelta(hours=1) <= state.backoff_until <= NOW + timedelta(hours=1.25)
    # Not due while backing off, even when named; only --force tries anyway.
    assert (
        refresh(store, one_source(project, httpserver.url_for("/feed.xml")), clock, names=["gazette"])
        .results[0]
        .status
        == "skipped"
    )


def test_410_disables_the_source_and_polling_stops(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data("", status=410)
    config = one_source(project, httpserver.url_for("/feed.xml"))
    assert refresh(store, config, clock).results[0].status == "disabled"
    state = state_of(store)
    assert state.disabled and state.last_status == 410
    httpserver.clear_log()
    clock.advance(86400 * 30)
    report = refresh(store, config, clock, mode="force")
    assert report.results[0].status == "disabled"
    assert httpserver.log == []


@pytest.mark.parametrize("code", [429, 503])
@pytest.mark.parametrize("form", ["seconds", "date"])
def test_retry_after_is_honoured(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock, code: int, form: str
) -> None:
    wait = timedelta(minutes=45)
    value = str(int(wait.total_seconds())) if form == "seconds" else http_date(NOW + wait)
    httpserver.expect_request("/feed.xml").respond_with_data(
        "busy", status=code, headers={"Retry-After": value}
    )
    # On a 10-minute interval the publisher's wait is longer than our backoff.
    config = one_source(project, httpserver.url_for("/feed.xml"), interval="10m")
    assert refresh(store, config, clock).results[0].status == "error"
    assert state_of(store).next_due == NOW + wait
    clock.advance(wait.total_seconds() - 60)
    httpserver.clear_log()
    assert refresh(store, config, clock).results[0].status == "skipped"
    assert httpserver.log == []


def test_500_backs_off_more_each_time_then_resets(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    config = one_source(project, httpserver.url_for("/feed.xml"))
    httpserver.expect_request("/feed.xml").respond_with_data("oops", status=500)
    waits = []
    for _ in range(5):
        assert refresh(store, config, clock).results[0].status == "error"
        state = state_of(store)
        assert state.backoff_until is not None
        waits.append((state.backoff_until - clock.now).total_seconds())
        clock.now = state.backoff_until  # due again exactly then
    assert state_of(store).error_count == 5
    # From the source's own interval (an hour), doubling, up to a quarter more
    # for jitter, capped at max_backoff (a day).
    assert all(later > earlier for earlier, later in itertools.pairwise(waits))
    assert 3600 <= waits[0] <= 1.25 * 3600
    assert 16 * 3600 <= waits[-1] <= 86400
    httpserver.clear_all_handlers()
    httpserver.expect_request("/feed.xml").respond_with_data(gazette(), content_type=RSS)
    assert refresh(store, config, clock).results[0].status == "updated"
    state = state_of(store)
    assert (state.error_count, state.backoff_until, state.last_error) == (0, None, None)
    assert state.next_due == clock.now + timedelta(hours=1)


def test_backoff_is_capped(httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock) -> None:
    config = one_source(project, httpserver.url_for("/feed.xml"), fetch='max_backoff = "10m"', interval=60)
    httpserver.expect_request("/feed.xml").respond_with_data("oops", status=502)
    for _ in range(8):
        refresh(store, config, clock, mode="force")
    state = state_of(store)
    assert state.backoff_until is not None
    assert state.backoff_until - clock.now <= timedelta(minutes=10)


def test_connection_refused_is_a_recorded_error(project: Path, store: Store, clock: SteppingClock) -> None:
    report = refresh(store, one_source(project, "http://127.0.0.1:9/feed.xml"), clock)
    (result,) = report.results
    assert result.status == "error" and result.http_status is None
    assert "refused" in (result.error or "") and "timed out" not in (result.error or "")
    assert state_of(store).error_count == 1


def test_a_proxy_named_in_the_environment_is_used(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    def proxy(request: Request) -> Response:
        seen.append(request.headers.get("Host", ""))
        return Response(gazette(), content_type=RSS)

    httpserver.expect_request("/feed.xml").respond_with_handler(proxy)
    monkeypatch.setenv("http_proxy", httpserver.url_for("/"))
    monkeypatch.setenv("no_proxy", "")
    (result,) = refresh(store, one_source(project, "http://feeds.invalid/feed.xml"), clock).results
    assert (result.status, seen) == ("updated", ["feeds.invalid"])


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def test_a_slow_server_times_out(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock, release: threading.Event
) -> None:
    def stall(request: Request) -> Response:
        release.wait(5)  # held until the test is over; the client gives up first
        return Response(gazette(), content_type=RSS)

    httpserver.expect_request("/feed.xml").respond_with_handler(stall)
    config = one_source(project, httpserver.url_for("/feed.xml"), fetch='timeout = "200ms"')
    (result,) = refresh(store, config, clock).results
    release.set()
    assert result.status == "error" and "timed out" in (result.error or "")
    assert result.duration < 3


def test_a_trickling_server_hits_the_deadline(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock, release: threading.Event
) -> None:
    def trickle() -> Iterator[bytes]:
        yield b"<?xml version='1.0'?><rss version='2.0'><channel><title>slow</title>"
        while not release.wait(0.05):  # a byte at a time, each well inside the read timeout
            yield b" "

    httpserver.expect_request("/feed.xml").respond_with_handler(
        lambda request: Response(trickle(), content_type=RSS)
    )
    config = one_source(project, httpserver.url_for("/feed.xml"), fetch='timeout = "1s"\ndeadline = "300ms"')
    (result,) = refresh(store, config, clock).results
    release.set()
    assert result.status == "error" and "longer than" in (result.error or "")


def test_an_endless_body_is_cut_at_the_size_cap(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    def endless() -> Iterator[bytes]:
        yield b"<?xml version='1.0'?><rss version='2.0'><channel><title>big</title>"
        while True:
            yield b"<item><title>again</title></item>" * 100

    httpserver.expect_request("/feed.xml").respond_with_handler(
        lambda request: Response(endless(), content_type=RSS)
    )
    config = one_source(project, httpserver.url_for("/feed.xml"), fetch="max_bytes = 100000")
    (result,) = refresh(store, config, clock).results
    assert result.status == "error" and "100000-byte limit" in (result.error or "")
    assert store.count_items() == 0


def test_a_declared_oversize_body_is_refused_unread(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(b"x" * 5000, content_type=RSS)
    config = one_source(project, httpserver.url_for("/feed.xml"), fetch="max_bytes = 1000")
    (result,) = refresh(store, config, clock).results
    assert result.status == "error" and "limit" in (result.error or "")


def test_a_gzip_bomb_is_cut_at_the_size_cap_after_decoding(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    bomb = gzip.compress(b"<rss>" + b" " * 5_000_000)
    httpserver.expect_request("/feed.xml").respond_with_data(
        bomb, content_type=RSS, headers={"Content-Encoding": "gzip"}
    )
    config = one_source(project, httpserver.url_for("/feed.xml"), fetch="max_bytes = 1000000")
    (result,) = refresh(store, config, clock).results
    assert result.status == "error" and "limit" in (result.error or "")


def test_gzip_bodies_are_decoded(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(
        gzip.compress(gazette()), content_type=RSS, headers={"Content-Encoding": "gzip"}
    )
    (result,) = refresh(store, one_source(project, httpserver.url_for("/feed.xml")), clock).results
    assert (result.status, result.items_changed) == ("updated", 2)


# -- what the body holds --------------------------------------------------------


def test_a_body_with_no_feed_is_a_parse_error_that_backs_off(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(b"<html><p>not a feed", content_type="text/html")
    (result,) = refresh(store, one_source(project, httpserver.url_for("/feed.xml")), clock).results
    assert result.status == "error" and "no usable feed" in (result.error or "")
    state = state_of(store)
    assert state.error_count == 1 and state.backoff_until is not None and state.body_hash is None


def test_a_malformed_feed_with_entries_is_stored_with_a_warning(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(
        (REMOTE / "malformed.xml").read_bytes(), content_type=RSS
    )
    (result,) = refresh(store, one_source(project, httpserver.url_for("/feed.xml")), clock).results
    assert result.status == "updated" and result.items_changed == 2
    assert result.warning
    assert state_of(store).warning == result.warning


def test_publisher_hints_set_a_floor_on_the_interval(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    body = rss("Hinted", [{"title": "One", "guid": "1"}], extra="<ttl>180</ttl>")
    httpserver.expect_request("/feed.xml").respond_with_data(
        body, content_type=RSS, headers={"Cache-Control": "public, max-age=600"}
    )
    refresh(store, one_source(project, httpserver.url_for("/feed.xml"), interval="15m"), clock)
    assert state_of(store).next_due == NOW + timedelta(hours=3)


def test_cache_control_max_age_alone_is_a_floor(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(
        rss("Cached", [{"title": "One", "guid": "1"}]),
        content_type=RSS,
        headers={"Cache-Control": "max-age=7200"},
    )
    refresh(store, one_source(project, httpserver.url_for("/feed.xml"), interval="15m"), clock)
    assert state_of(store).next_due == NOW + timedelta(hours=2)


def test_not_due_sources_are_skipped_and_force_fetches_them(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(gazette(), content_type=RSS)
    config = one_source(project, httpserver.url_for("/feed.xml"))
    refresh(store, config, clock)
    clock.advance(60)
    (result,) = refresh(store, config, clock).results
    assert result.status == "skipped" and "not due" in (result.detail or "")
    assert refresh(store, config, clock, mode="force").results[0].status == "unchanged"
    assert refresh(store, config, clock, names=["gazette"]).results[0].status == "unchanged"


def test_switched_off_sources_are_never_polled(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    config = one_source(project, httpserver.url_for("/feed.xml"), enabled=False)
    report = refresh(store, config, clock, mode="force")
    assert report.results[0].status == "skipped"
    assert httpserver.log == []


def test_an_unknown_name_is_an_error_result(project: Path, store: Store, clock: SteppingClock) -> None:
    report = refresh(store, one_source(project, "http://127.0.0.1:9/x"), clock, names=["nope"])
    assert [(r.name, r.status) for r in report.results] == [("nope", "error")]


def test_progress_sees_every_result(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(gazette(), content_type=RSS)
    sources = [
        {"name": "a", "url": httpserver.url_for("/feed.xml")},
        {"name": "b", "url": httpserver.url_for("/feed.xml"), "enabled": False},
    ]
    config = config_with_sources(project, sources)
    seen: list[str] = []
    report = refresh_sources(store, config, clock, progress=lambda r: seen.append(r.name))
    assert sorted(seen) == ["a", "b"]
    assert [r.name for r in report.results] == ["a", "b"]


# -- the per-host limit ----------------------------------------------------------


def test_the_per_host_limit_holds_across_concurrent_runs(
    project: Path, store: Store, clock: SteppingClock
) -> None:
    # The daemon refreshes each source in its own job: two runs at once must
    # still send one host no more than per_host requests at a time.
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    lock = threading.Lock()
    in_flight, most = 0, 0
    both_arrived = threading.Event()

    def handler(request: Request) -> Response:
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
            if in_flight == 2:
                both_arrived.set()
        # Holds the first request open while a second could come: with the
        # limit kept it never does, and this waits out its second.
        both_arrived.wait(1.0)
        with lock:
            in_flight -= 1
        return Response(gazette(), content_type=RSS)

    try:
        server.expect_request("/a.xml").respond_with_handler(handler)
        server.expect_request("/b.xml").respond_with_handler(handler)
        config = config_with_sources(
            project,
            [{"name": "a", "url": server.url_for("/a.xml")}, {"name": "b", "url": server.url_for("/b.xml")}],
            fetch="workers = 4\nper_host = 1",
        )
        reports: list[RefreshReport] = []
        with Updater(config.fetch) as updater:  # the process's, as the daemon's jobs share it
            runs = [
                threading.Thread(
                    target=lambda n=name: reports.append(updater.refresh(store, config, clock, [n]))
                )
                for name in ("a", "b")
            ]
            for run in runs:
                run.start()
            for run in runs:
                run.join(30)
    finally:
        server.clear()
        server.stop()
    # Both feeds carry the same stories: whichever is second changes nothing.
    assert sorted(r.status for report in reports for r in report.results) == ["unchanged", "updated"]
    assert most == 1
