"""Odd remote feeds, fetched from a real 127.0.0.1 server, stored and
republished: whatever a feed holds, our RSS, Atom and JSON Feed stay valid.

Each case is a small feed under tests/data/validity; the checks are those of
tests/feedcheck.py (Atom schema, feedparser without bozo, JSON Feed rules)
plus what the case is about.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from lxml import etree
from pytest_httpserver import HTTPServer

from feeds.publish.generate import FeedSpec, render_atom, render_json, render_rss, rfc3339
from feeds.publish.tree import Publisher
from feeds.sources.prepare import PrepareJob, RemoteFeed, prepare_with_feedparser, prepare_without_feedparser
from feeds.sources.update import refresh_sources
from store import Store
from tests.conftest import NOW
from tests.feedcheck import check_atom, check_json, check_rss
from tests.remote_helpers import SteppingClock, config_with_sources
from tests.strategies import make_item

VALIDITY = Path(__file__).resolve().parent / "data" / "validity"
# What XML 1.0 cannot carry: no published byte may be one of these.
NOT_XML = [bytes([c]) for c in range(32) if c not in (9, 10, 13)] + ["\ufffe".encode(), "\uffff".encode()]


def publish(httpserver: HTTPServer, project: Path, store: Store, name: str) -> dict[str, bytes]:
    """Serve one file as a source, refresh, and render the world section's feeds (checked)."""
    content_type = "application/feed+json" if name.endswith(".json") else "application/rss+xml"
    body = (VALIDITY / name).read_bytes()
    httpserver.expect_request(f"/{name}").respond_with_data(body, content_type=content_type)
    source = {"name": "odd", "url": httpserver.url_for(f"/{name}"), "section": "world"}
    config = config_with_sources(project, [source])
    report = refresh_sources(store, config, SteppingClock())
    (result,) = report.results
    assert result.status == "updated", result
    publisher = Publisher(store, config)
    files = publisher.feed_files(publisher.view(), ["world"])
    feeds = {fmt: files[f"feeds/world.{fmt}"].body for fmt in ("rss", "atom", "json")}
    check_rss(feeds["rss"])
    check_atom(feeds["atom"])
    check_json(feeds["json"])
    return feeds


def test_control_characters_are_dropped_not_fatal(
    httpserver: HTTPServer, project: Path, store: Store
) -> None:
    feeds = publish(httpserver, project, store, "control-chars.xml")
    for data in feeds.values():
        assert not any(c in data for c in NOT_XML)
    (entry,) = feedparser.parse(feeds["atom"]).entries
    assert entry.title == "Bell and escape in a title"
    assert entry.author == "desk@example.org (Desk)"
    assert "Reference  and raw  in HTML" in entry.content[0].value
    assert entry.link == "http://127.0.0.1/bell"


def test_lone_surrogates_from_json_do_not_fail_the_source(
    httpserver: HTTPServer, project: Path, store: Store
) -> None:
    feeds = publish(httpserver, project, store, "lone-surrogates.json")
    parsed = feedparser.parse(feeds["atom"])
    assert sorted(e.title for e in parsed.entries) == ["A lone surrogate", "Control characters in JSON"]
    assert "\\ud8" not in feeds["json"].decode("utf-8")


def test_generator_drops_what_xml_cannot_carry_from_an_older_store() -> None:
    """A store written before remote text was cleaned (or a seed file) may hold
    such characters; one of them must not stop every feed from being written."""
    spec = FeedSpec(
        slug="world",
        title="World",
        description="d",
        base_url="http://127.0.0.1:8080/",
        language="en",
        authority="test.example.org,2026",
        author="Newsroom",
    )
    item = make_item(
        1, title="Bell\x07 \ud800title", summary="Sum\x0bmary", body=("Para\x1b.",), author="A\x00"
    )
    for render, check in ((render_rss, check_rss), (render_atom, check_atom), (render_json, check_json)):
        data = render(spec, [item])
        check(data)
        assert not any(c in data for c in NOT_XML)
    assert feedparser.parse(render_atom(spec, [item])).entries[0].title == "Bell title"


def test_windows_1252_damage_reads_as_meant_on_both_parsers(
    httpserver: HTTPServer, project: Path, store: Store
) -> None:
    """C1 controls are not text (the W3C validator warns of "bad characters"):
    they become the Windows-1252 characters meant, whether lxml or feedparser
    read the feed, and UTF-8 read as Latin-1 is read again as feedparser does."""
    body = (VALIDITY / "windows-1252-c1.xml").read_bytes()
    headers = {"content-type": "application/rss+xml"}
    job = PrepareJob("odd", "test.example.org,2026", "http://127.0.0.1/feed.xml", body, headers)
    fast, slow = prepare_without_feedparser(job), prepare_with_feedparser(job)
    assert isinstance(fast, RemoteFeed) and isinstance(slow, RemoteFeed)
    assert fast.version == "rss20"  # the lxml reader took it
    assert fast == slow
    feeds = publish(httpserver, project, store, "windows-1252-c1.xml")
    for data in feeds.values():
        assert not re.search("[\x80-\x9f]", data.decode("utf-8"))
    titles = {e.title: e for e in feedparser.parse(feeds["atom"]).entries}
    assert set(titles) == {"Don\u2019t pay \u20ac100 for it", "Wait for it\u2026"}
    content = titles["Don\u2019t pay \u20ac100 for it"].content[0].value
    assert "\u201cQuoted\u201d and \u2019referenced\u2019" in content
    assert titles["Wait for it\u2026"].content[0].value == "Then \u2019this\u2019."


def test_links_are_written_as_uris(httpserver: HTTPServer, project: Path, store: Store) -> None:
    """RSS wants a URL in <link>, and an unescaped space is an error in an Atom
    href too: links are %-escaped as a browser would request them."""
    feeds = publish(httpserver, project, store, "odd-links.xml")
    links = {e.title: e.link for e in feedparser.parse(feeds["rss"]).entries}
    assert links["Relative with a space"] == httpserver.url_for("/stories/Correct%20Value")
    assert links["An IRI"] == (
        "http://xn--exmple-cua.org/%C3%BCn%C3%AF/%E3%83%9A%E3%83%BC%E3%82%B8?q=%C3%A4#frag%20ment"
    )
    assert links["A stray percent"] == "https://example.org/100%25-sure/%22quoted%22?a=%5B1%5D"
    assert links["A space in the host"].startswith("http://127.0.0.1:8080/items/")  # our own page
    for fmt in ("rss", "atom"):
        for entry in feedparser.parse(feeds[fmt]).entries:
            assert re.fullmatch(r"[A-Za-z0-9\-._~:/?#@!$&'()*+,;=%]+", entry.link), entry.link


@pytest.mark.parametrize("name", ["odd-dates.xml", "odd-dates.json"])
def test_implausible_dates_count_as_no_date(
    httpserver: HTTPServer, project: Path, store: Store, name: str
) -> None:
    """A date before 1990 or ahead of the fetch (the W3C validator calls both
    implausible) is not believed: the entry is published when first seen. A
    date out of datetime's range east or west of UTC fails no source."""
    feeds = publish(httpserver, project, store, name)
    entries = feedparser.parse(feeds["atom"]).entries
    published = {e.title: datetime(*e.published_parsed[:6], tzinfo=UTC) for e in entries}
    assert published.pop("Plausible") == datetime(2026, 1, 4, 8, 0, tzinfo=UTC)
    assert published and all(NOW <= moment < NOW + timedelta(seconds=1) for moment in published.values())
    for pub_date in re.findall(rb"<pubDate>([^<]*)</pubDate>", feeds["rss"]):
        assert re.fullmatch(rb"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}", pub_date), pub_date


def test_rfc3339_writes_four_digit_years() -> None:
    assert rfc3339(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00Z"
    assert rfc3339(datetime(2026, 1, 5, 3, 4, 5, 123456, tzinfo=UTC)) == "2026-01-05T03:04:05.123Z"


def test_entities_escaped_twice_are_decoded_in_text(
    httpserver: HTTPServer, project: Path, store: Store
) -> None:
    """An "&nbsp;" left as characters in plain text reads as undeclared HTML (the
    W3C validator warns) and shows as "&nbsp;": text is decoded until no
    entity is left, as it already was until no tag was left."""
    feeds = publish(httpserver, project, store, "escaped-twice.xml")
    (entry,) = feedparser.parse(feeds["atom"]).entries
    assert entry.title == "Research & Development \u2014 an update"
    assert entry.summary == "Version 1.0 released today, 50% faster."
    assert entry.author == "Desk One"
    for data in feeds.values():
        assert b"nbsp" not in data and b"#8212" not in data and b"amp;amp;" not in data


def test_plain_text_summary_is_escaped_in_rss_description(
    httpserver: HTTPServer, project: Path, store: Store
) -> None:
    """RSS <description> holds HTML: a plain-text summary's "&" and "<" are
    escaped there (the W3C validator: "Invalid HTML" for "Q&A"; a reader
    would take "<" for a tag), and stay characters in Atom and JSON Feed."""
    feeds = publish(httpserver, project, store, "plain-text-summary.xml")
    summary = "Q&A: is 5 < 6 & 7 > 3?"
    (description,) = etree.fromstring(feeds["rss"]).findall("channel/item/description")
    assert description.text == "Q&amp;A: is 5 &lt; 6 &amp; 7 &gt; 3?"
    assert feedparser.parse(feeds["atom"]).entries[0].summary == summary
    assert json.loads(feeds["json"])["items"][0]["summary"] == summary
