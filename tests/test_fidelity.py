"""What a publisher sends is neither lost nor mixed up: two stories with one
title, other 2xx answers, empty entries, the publisher's `updated`, and who a
seed's story is credited to. Real HTTP on 127.0.0.1, a real SQLite file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest
from lxml import etree
from pytest_httpserver import HTTPServer

from feeds.app import run_export, run_ingest
from feeds.sources.update import refresh_sources
from store import Store
from tests.remote_helpers import SteppingClock, config_with_sources, rss

RSS = "application/rss+xml"
ATOM = "{http://www.w3.org/2005/Atom}"
DAY = "Mon, 05 Jan 2026 08:00:00 GMT"


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


def entry(guid: str, link: str, title: str, text: str) -> dict[str, str]:
    return {"guid": guid, "link": link, "title": title, "date": DAY, "description": text}


def test_one_title_on_two_stories_with_different_links_is_two_items(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    one = rss("One", [entry("a", "http://127.0.0.1/one/brief", "Morning briefing", "Rates rise.")])
    two = rss("Two", [entry("b", "http://127.0.0.1/two/brief", "Morning briefing", "Snow falls.")])
    httpserver.expect_request("/one.xml").respond_with_data(one, content_type=RSS)
    httpserver.expect_request("/two.xml").respond_with_data(two, content_type=RSS)
    config = config_with_sources(
        project,
        [
            {"name": "one", "url": httpserver.url_for("/one.xml"), "section": "world"},
            {"name": "two", "url": httpserver.url_for("/two.xml"), "section": "world"},
        ],
    )
    refresh_sources(store, config, clock)
    run_export(store, config, project / "public")
    for feed in ("all", "world"):
        parsed = feedparser.parse((project / "public" / "feeds" / f"{feed}.atom").read_bytes())
        assert sorted(e.summary for e in parsed.entries if e.title == "Morning briefing") == [
            "Rates rise.",
            "Snow falls.",
        ]


@pytest.mark.parametrize("status", [201, 203])
def test_a_feed_served_with_another_2xx_is_read(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock, status: int
) -> None:
    body = rss("Wire", [entry("a", "http://127.0.0.1/a", "Dam opens", "Water.")])
    httpserver.expect_request("/feed.xml").respond_with_data(body, status=status, content_type=RSS)
    config = config_with_sources(project, [{"name": "wire", "url": httpserver.url_for("/feed.xml")}])
    (result,) = refresh_sources(store, config, clock).results
    assert (result.status, result.error, result.items_changed) == ("updated", None, 1)
    assert [i.title for i in store.iter_items()] == ["Dam opens"]


def test_204_is_a_feed_with_no_entries(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(b"", status=204)
    config = config_with_sources(project, [{"name": "wire", "url": httpserver.url_for("/feed.xml")}])
    (result,) = refresh_sources(store, config, clock).results
    assert (result.status, result.error, result.http_status) == ("unchanged", None, 204)
    (state,) = store.source_states()
    assert state.error_count == 0 and state.backoff_until is None


def test_an_entry_with_no_title_content_or_link_is_dropped_with_a_warning(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    def json_feed(items: list[dict[str, str]]) -> bytes:
        feed = {"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": items}
        return json.dumps(feed).encode()

    empty_rss = rss("Wire", [{}, entry("a", "http://127.0.0.1/a", "Dam opens", "Water.")])
    httpserver.expect_request("/r.xml").respond_with_data(empty_rss, content_type=RSS)
    httpserver.expect_request("/j.json").respond_with_data(
        json_feed([{"id": "only-an-id"}, {"id": "x2", "title": "  "}]), content_type="application/feed+json"
    )
    config = config_with_sources(
        project,
        [
            {"name": "wire", "url": httpserver.url_for("/r.xml")},
            {"name": "jay", "url": httpserver.url_for("/j.json")},
        ],
    )
    results = {r.name: r for r in refresh_sources(store, config, clock).results}
    assert [i.title for i in store.iter_items()] == ["Dam opens"]
    assert results["wire"].warning == "1 entry with no title, content or link was dropped"
    assert results["jay"].warning == "2 entries with no title, content or link were dropped"
    assert results["jay"].status == "unchanged" and results["jay"].error is None
    states = {s.name: s for s in store.source_states()}
    assert states["jay"].warning == results["jay"].warning


ATOM_CORRECTED = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Wire</title><id>urn:wire</id>
<updated>2026-01-05T09:00:00Z</updated><author><name>Wire desk</name></author>
<entry><id>urn:wire:1</id><title>Dam opens</title><link href="http://127.0.0.1/dam"/>
<published>2026-01-04T08:00:00Z</published><updated>{updated}</updated>
<content type="html">{text}</content></entry></feed>"""


def test_the_publishers_updated_is_kept_and_a_correction_moves_it(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    first = ATOM_CORRECTED.format(updated="2026-01-04T10:30:00Z", text="Water.")
    httpserver.expect_request("/a.xml").respond_with_data(first, content_type="application/atom+xml")
    config = config_with_sources(project, [{"name": "wire", "url": httpserver.url_for("/a.xml")}])
    refresh_sources(store, config, clock)
    run_export(store, config, project / "public")
    atom = etree.fromstring((project / "public" / "feeds" / "all.atom").read_bytes())
    (published, updated) = (atom.findtext(f"{ATOM}entry/{ATOM}{name}") for name in ("published", "updated"))
    assert [datetime.fromisoformat(t) for t in (published, updated)] == [
        datetime(2026, 1, 4, 8, 0, tzinfo=UTC),
        datetime(2026, 1, 4, 10, 30, tzinfo=UTC),
    ]
    feed = json.loads((project / "public" / "feeds" / "all.json").read_bytes())
    assert feed["items"][0]["date_modified"] == "2026-01-04T10:30:00Z"

    httpserver.clear()
    corrected = ATOM_CORRECTED.format(updated="2026-01-05T11:00:00Z", text="Water, corrected.")
    httpserver.expect_request("/a.xml").respond_with_data(corrected, content_type="application/atom+xml")
    clock.advance(7200)
    refresh_sources(store, config, clock, mode="force")
    run_export(store, config, project / "public")
    feed = json.loads((project / "public" / "feeds" / "all.json").read_bytes())
    assert (feed["items"][0]["date_modified"], feed["items"][0]["content_html"]) == (
        "2026-01-05T11:00:00Z",
        "Water, corrected.",
    )
    assert feed["items"][0]["date_published"] == "2026-01-04T08:00:00Z"


def test_a_seed_story_stays_credited_to_the_seed_when_a_remote_copy_arrives(
    httpserver: HTTPServer, project: Path, store: Store, clock: SteppingClock
) -> None:
    config = config_with_sources(project, [])
    run_ingest(store, config, clock)
    seed_item = next(iter(store.iter_items()))
    date = seed_item.published.strftime("%a, %d %b %Y 10:00:00 GMT")
    body = rss("Wire", [{"guid": "w-1", "title": seed_item.title, "date": date, "description": "Copy."}])
    httpserver.expect_request("/w.xml").respond_with_data(body, content_type=RSS)
    config = config_with_sources(project, [{"name": "wire", "url": httpserver.url_for("/w.xml")}])
    clock.advance(3600)
    refresh_sources(store, config, clock)
    (merged,) = [i for i in store.iter_items() if i.id == seed_item.id]
    assert {o.kind for o in merged.origins} == {"seed", "source"}
    run_export(store, config, project / "public")
    feeds = project / "public" / "feeds"
    atom = feedparser.parse((feeds / "all.atom").read_bytes())
    (ours,) = [e for e in atom.entries if e.id == seed_item.id]
    assert "source" not in ours
    rss_out = (feeds / "all.rss").read_text(encoding="utf-8")
    assert "<source" not in rss_out
    (item,) = [i for i in json.loads((feeds / "all.json").read_bytes())["items"] if i["id"] == seed_item.id]
    assert "_source" not in item
