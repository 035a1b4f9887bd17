"""Remote sources end to end: duplicates, provenance in the output, hostile
content in the published feeds, a farm of feeds, the CLI, and the pure
scheduling decisions."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from pytest_httpserver import HTTPServer

from feeds.app import run_export, run_ingest
from feeds.decide import (
    backoff_delay,
    next_cron_time,
    next_refresh_after,
    publisher_floor,
    retry_after_time,
    skip_forward,
)
from feeds.normalise import canonical_link
from feeds.sources.update import refresh_sources
from store import Store
from tests.cliutil import run_feeds
from tests.conftest import NOW
from tests.feedcheck import check_atom, check_json, check_rss
from tests.remote_helpers import REMOTE, SteppingClock, config_with_sources, rss

RSS = "application/rss+xml"
EXECUTABLE = re.compile(rb"<script|<iframe|<style|<object|<form|<svg|\son\w+\s*=|javascript:|data:", re.I)
# A command running the W3C Feed Validator on feed files, where a developer
# has one (it is not a dependency): exit status 0 when they validate.
VALIDATOR = os.environ.get("FEEDS_W3C_VALIDATOR")


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


def story(guid: str, link: str, title: str, date: str = "Mon, 05 Jan 2026 08:00:00 GMT") -> dict[str, str]:
    return {"guid": guid, "link": link, "title": title, "date": date, "description": f"About {title}."}


def test_the_same_story_from_two_sources_is_one_item_with_both_origins(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    first = rss(
        "Wire One",
        [
            story("one-1", "http://127.0.0.1/news/dam?utm_source=one", "Dam opens"),
            story("one-2", "http://127.0.0.1/news/other", "Only in one"),
        ],
    )
    second = rss(
        "Wire Two",
        [
            story("two-9", "HTTP://127.0.0.1:80/news/dam/#top", "Dam opens today"),
            # No link to compare: the same title on the same day is the same story.
            {k: v for k, v in story("two-8", "", "Only in one").items() if k != "link"},
        ],
    )
    httpserver.expect_request("/one.xml").respond_with_data(first, content_type=RSS)
    httpserver.expect_request("/two.xml").respond_with_data(second, content_type=RSS)
    config = config_with_sources(
        project,
        [
            {"name": "one", "url": httpserver.url_for("/one.xml"), "section": "world"},
            {"name": "two", "url": httpserver.url_for("/two.xml"), "section": "world"},
        ],
    )
    report = refresh_sources(store, config, clock)
    # Whichever source is stored first owns the story; the other adds provenance.
    statuses = {r.name: r.status for r in report.results}
    assert sorted(statuses.values()) == ["unchanged", "updated"]
    owner = "one" if statuses["one"] == "updated" else "two"
    dam_title = "Dam opens" if owner == "one" else "Dam opens today"
    items = {i.title: i for i in store.iter_items()}
    # Matched by canonical link, and by folded title on the same day.
    assert sorted(items) == sorted([dam_title, "Only in one"])
    for item in items.values():
        assert sorted(o.name for o in item.origins) == ["one", "two"]
    # A second refresh keeps it so (the sources' entries are remembered).
    clock.advance(7200)
    again = refresh_sources(store, config, clock, mode="force")
    assert again.changed_sections == frozenset()
    assert store.count_items() == 2
    run_export(store, config, project / "public")
    atom = feedparser.parse((project / "public" / "feeds" / "world.atom").read_bytes())
    (dam,) = [e for e in atom.entries if e.title == dam_title]
    # The output names the first source to bring it (by name when both came at once).
    named = "one" if dam.source.title == "Wire One" else "two"
    assert dam.source.title == f"Wire {named.title()}"
    rss_out = (project / "public" / "feeds" / "world.rss").read_bytes()
    source_element = f'<source url="{httpserver.url_for(f"/{named}.xml")}">Wire {named.title()}</source>'
    assert source_element.encode() in rss_out


def test_a_source_carrying_a_seed_story_adds_provenance_not_a_copy(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    config = config_with_sources(project, [])
    run_ingest(store, config, clock)
    seed_item = next(iter(store.iter_items()))
    body = rss(
        "Wire",
        [
            story(
                "w-1",
                "http://127.0.0.1/w/1",
                seed_item.title.upper(),
                seed_item.published.strftime("%a, %d %b %Y 10:00:00 GMT"),
            )
        ],
    )
    httpserver.expect_request("/w.xml").respond_with_data(body, content_type=RSS)
    config = config_with_sources(project, [{"name": "wire", "url": httpserver.url_for("/w.xml")}])
    before = store.count_items()
    report = refresh_sources(store, config, clock)
    assert store.count_items() == before
    stored = store.items_by_ids([seed_item.id])[seed_item.id]
    assert stored.title == seed_item.title and stored.link is None  # the seed's story, untouched
    assert report.results[0].items_changed == 0 and "all" in report.changed_sections
    (merged,) = [i for i in store.iter_items() if i.id == seed_item.id]
    assert {o.kind for o in merged.origins} == {"seed", "source"}


def test_xss_is_not_stored_nor_published(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    httpserver.expect_request("/x.xml").respond_with_data((REMOTE / "xss.xml").read_bytes(), content_type=RSS)
    config = config_with_sources(
        project, [{"name": "evil", "url": httpserver.url_for("/x.xml"), "section": "world"}]
    )
    assert refresh_sources(store, config, clock).results[0].items_changed == 1
    store.close()
    database = config.store.path.read_bytes()
    assert (
        b"<script" not in database.lower() and b"onerror" not in database and b"javascript:" not in database
    )
    with Store(config.store.path) as reopened:
        run_export(reopened, config, project / "public")
    for path in sorted(p for p in (project / "public" / "feeds").iterdir() if p.suffix != ".html"):
        data = path.read_bytes()
        # Escaped markup in feeds is text; decode one level as a reader would, then look.
        for text in (data, data.replace(b"&lt;", b"<").replace(b"&#x3C;", b"<").replace(b"&gt;", b">")):
            assert not EXECUTABLE.search(text.replace(b'rel="noopener noreferrer"', b"")), path


def test_published_feeds_with_remote_items_are_valid(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    for name in ("rss20", "atom10", "jsonfeed11", "malformed", "no-guids", "xss"):
        source = next(p for p in REMOTE.iterdir() if p.stem == name and ".expected" not in p.name)
        httpserver.expect_request(f"/{name}").respond_with_data(
            source.read_bytes(), content_type="application/xml"
        )
    config = config_with_sources(
        project,
        [
            {"name": name, "url": httpserver.url_for(f"/{name}"), "section": "world"}
            for name in ("rss20", "atom10", "jsonfeed11", "malformed", "no-guids", "xss")
        ],
    )
    run_ingest(store, config, clock)
    report = refresh_sources(store, config, clock)
    assert not report.errors, report.errors
    run_export(store, config, project / "public")
    feeds_dir = project / "public" / "feeds"
    check_rss((feeds_dir / "world.rss").read_bytes())
    check_atom((feeds_dir / "world.atom").read_bytes())
    check_json((feeds_dir / "world.json").read_bytes())
    if VALIDATOR:
        out = subprocess.run(
            [
                VALIDATOR,
                str(feeds_dir / "world.rss"),
                str(feeds_dir / "world.atom"),
                str(feeds_dir / "all.atom"),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert out.returncode == 0, out.stdout


# -- a farm of feeds --------------------------------------------------------


@pytest.fixture
def farm() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


def farm_feed(n: int, items: int) -> bytes:
    base = datetime(2025, 12, 1, tzinfo=UTC)
    entries = [
        story(
            f"f{n}-{i}",
            f"http://127.0.0.1/f/{n}/{i}",
            f"Feed {n} story {i}",
            (base + timedelta(hours=i, seconds=n)).strftime("%a, %d %b %Y %H:%M:%S GMT"),
        )
        for i in range(items)
    ]
    return rss(f"Feed {n}", entries)


def test_a_farm_of_feeds_stores_every_item_once_and_a_second_refresh_writes_nothing(
    farm: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    feeds, items = 40, 50  # bench/bench_refresh.py does 1,000 x 50
    for n in range(feeds):
        farm.expect_request(f"/f/{n}.xml").respond_with_data(
            farm_feed(n, items), content_type=RSS, headers={"ETag": f'"f{n}"'}
        )
    config = config_with_sources(
        project,
        [{"name": f"f{n}", "url": farm.url_for(f"/f/{n}.xml")} for n in range(feeds)],
        fetch="workers = 8\nper_host = 4",
    )
    report = refresh_sources(store, config, clock)
    assert {r.status for r in report.results} == {"updated"}
    assert store.count_items() == feeds * items
    run_export(store, config, project / "public")
    before = {i.id: i for i in store.iter_items()}
    times = [i.updated for i in before.values()]
    assert len(set(times)) == len(times)  # every item on its own millisecond
    clock.advance(7200)
    again = refresh_sources(store, config, clock)
    assert {r.status for r in again.results} == {"unchanged"}  # this server ignores If-None-Match
    assert again.changed_sections == frozenset()
    assert {i.id: i for i in store.iter_items()} == before
    assert run_export(store, config, project / "public").result.written == []


# -- the command line ---------------------------------------------------------


def test_refresh_and_status_commands(httpserver: HTTPServer, project: Path) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(
        (REMOTE / "rss20.xml").read_bytes(), content_type=RSS
    )
    httpserver.expect_request("/gone.xml").respond_with_data("", status=410)
    config_with_sources(
        project,
        [
            {"name": "gazette", "url": httpserver.url_for("/feed.xml"), "section": "world"},
            {"name": "gone", "url": httpserver.url_for("/gone.xml")},
        ],
    )
    out = run_feeds("refresh", cwd=project)
    assert out.returncode == 0, out.stderr
    assert "source gazette: updated, HTTP 200, 2 items changed" in out.stdout
    assert "source gone: disabled, HTTP 410" in out.stderr + out.stdout
    assert (project / "public" / "feeds" / "world.atom").exists()
    status = json.loads(run_feeds("status", "--json", cwd=project).stdout)
    sources = {s["name"]: s for s in status["sources"]}
    assert sources["gazette"]["items"] == 2 and sources["gazette"]["last_status"] == 200
    assert sources["gone"]["disabled"] is True
    assert {s["slug"] for s in status["sections"]} == {"world"}
    text = run_feeds("status", cwd=project).stdout
    assert "source gone: DISABLED (gone)" in text and "section world: 2 items" in text
    offline = run_feeds("export", "--offline", cwd=project)
    assert offline.returncode == 0 and "source gazette" not in offline.stdout


# -- pure decisions -------------------------------------------------------------


def test_backoff_grows_from_the_sources_own_interval_up_to_the_cap() -> None:
    assert [backoff_delay(n, base=600, cap=86400, jitter=0.0) for n in range(1, 10)] == [
        600,
        1200,
        2400,
        4800,
        9600,
        19200,
        38400,
        76800,
        86400,
    ]
    assert backoff_delay(1, base=600, cap=86400, jitter=0.999) < 750  # a quarter more at most
    assert backoff_delay(50, base=600, cap=86400, jitter=0.999) == 86400
    # A cap below the interval never makes a failing source polled more often than a healthy one.
    assert backoff_delay(1, base=7 * 86400, cap=86400, jitter=0.5) == 7 * 86400


def test_absurd_retry_after_values_are_clamped_never_an_overflow() -> None:
    for value in ("99999999999999999999", "9" * 400, "Mon, 01 Jan 99999999999 00:00:00 GMT"):
        moment = retry_after_time(value, NOW, cap=86400)
        assert moment is None or moment == NOW + timedelta(seconds=86400)
    assert retry_after_time("99999999999999999999", NOW, cap=86400) == NOW + timedelta(days=1)


def test_retry_after_forms() -> None:
    assert retry_after_time("90", NOW, cap=86400) == NOW + timedelta(seconds=90)
    assert retry_after_time("Mon, 05 Jan 2026 13:00:00 GMT", NOW, cap=86400) == NOW + timedelta(hours=1)
    assert retry_after_time("Mon, 05 Jan 2026 11:00:00 GMT", NOW, cap=86400) == NOW  # in the past
    assert retry_after_time("999999999", NOW, cap=600) == NOW + timedelta(seconds=600)
    assert retry_after_time("soon", NOW, cap=600) is None
    assert retry_after_time(None, NOW, cap=600) is None


def test_publisher_floor_and_skips() -> None:
    assert publisher_floor(ttl_minutes=30) == 1800
    assert publisher_floor(update_period="hourly", update_frequency=2) == 1800
    assert publisher_floor(update_period="daily", update_frequency=1, max_age=60) == 86400
    assert publisher_floor(ttl_minutes=10**6) == 86400  # capped
    assert publisher_floor() is None
    monday_noon = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    assert skip_forward(monday_noon, [12, 13], []) == monday_noon.replace(hour=14)
    assert skip_forward(monday_noon, [], ["Monday"]) == monday_noon.replace(day=6, hour=0)
    assert skip_forward(monday_noon, range(24), []) == monday_noon  # skipping everything is ignored
    assert next_refresh_after(monday_noon, interval=900, cron=None, floor=3600) == monday_noon.replace(
        hour=13
    )
    assert next_refresh_after(monday_noon, interval=900, cron=None, skip_hours=[12]) == monday_noon.replace(
        hour=13
    )


def test_cron_times() -> None:
    at = datetime(2026, 1, 5, 12, 0, 30, tzinfo=UTC)  # a Monday
    assert next_cron_time("*/15 * * * *", at) == at.replace(minute=15, second=0)
    assert next_cron_time("0 6 * * 1", at) == datetime(2026, 1, 12, 6, 0, tzinfo=UTC)
    assert next_cron_time("30 8 1 * *", at) == datetime(2026, 2, 1, 8, 30, tzinfo=UTC)
    assert next_cron_time("0 0 * * 0", at) == datetime(2026, 1, 11, tzinfo=UTC)  # Sunday
    assert next_refresh_after(at, interval=None, cron="0 * * * *", floor=7200) == at.replace(
        hour=15, second=0
    )
    with pytest.raises(ValueError, match="cron"):
        next_cron_time("61 * * * *", at)


def test_canonical_links() -> None:
    assert (
        canonical_link("HTTPS://Example.ORG:443/a/b/?utm_medium=x&id=3#c") == "https://example.org/a/b?id=3"
    )
    assert canonical_link("http://example.org:8080/") == "http://example.org:8080"
    assert canonical_link("javascript:alert(1)") is None
    assert canonical_link(None) is None
