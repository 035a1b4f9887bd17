"""Feed bytes -> clean entries: data-driven over tests/data/remote, plus the hostile cases."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from feeds.sanitise import plain_text, safe_html
from feeds.sources.formats import parse_feed
from feeds.sources.prepare import Filing, ParseFailure, PrepareJob, RemoteFeed, new_item, prepare_feed
from feeds.sources.workers import ParserProcess
from tests.remote_helpers import REMOTE

BASE = "http://127.0.0.1/gazette/feed.xml"
AUTHORITY = "test.example.org,2026"
CASES = sorted(p for p in REMOTE.iterdir() if p.name.endswith(".expected.json"))
# Markup that would run in a reader's browser.
EXECUTABLE = re.compile(r"<script|<iframe|<style|<object|<form|<svg|\son\w+\s*=|javascript:|data:", re.I)


def prepare(body: bytes, content_type: str = "application/rss+xml", base: str = BASE) -> RemoteFeed:
    result = prepare_feed(PrepareJob("gazette", AUTHORITY, base, body, {"content-type": content_type}))
    assert isinstance(result, RemoteFeed), result
    return result


def as_json(feed: RemoteFeed) -> list[dict[str, object]]:
    return [
        {
            "title": e.title,
            "link": e.link,
            "canonical_link": e.canonical_link,
            "key": e.key,
            "date": e.date.isoformat() if e.date else None,
            "summary": e.summary,
            "content_html": e.content_html,
            "author": e.author,
            "categories": list(e.categories),
        }
        for e in feed.entries
    ]


@pytest.mark.parametrize("expected", CASES, ids=lambda p: p.name.removesuffix(".expected.json"))
def test_feed_files_give_their_expected_entries(expected: Path) -> None:
    stem = expected.name.removesuffix(".expected.json")
    (source,) = [p for p in REMOTE.iterdir() if p.stem == stem and not p.name.endswith(".expected.json")]
    content_type = "application/feed+json" if source.suffix == ".json" else "application/xml"
    feed = prepare(source.read_bytes(), content_type)
    assert as_json(feed) == json.loads(expected.read_text(encoding="utf-8"))
    assert feed.warning is None or stem == "jsonfeed11"


def test_versions_are_recognised() -> None:
    versions = {
        name: prepare((REMOTE / name).read_bytes(), "application/xml").version
        for name in ("rss091.xml", "rss10.xml", "rss20.xml", "atom03.xml", "atom10.xml")
    }
    assert versions == {
        "rss091.xml": "rss091u",
        "rss10.xml": "rss10",
        "rss20.xml": "rss20",
        "atom03.xml": "atom03",
        "atom10.xml": "atom10",
    }
    assert prepare((REMOTE / "jsonfeed11.json").read_bytes(), "application/json").version == "json11"
    assert prepare((REMOTE / "jsonfeed10.json").read_bytes(), "text/plain").version == "json10"


@pytest.mark.parametrize("content_type", ["text/xml", "application/rss+xml", "application/octet-stream"])
@pytest.mark.parametrize("name", ["cp1252.xml", "cp1252-undeclared.xml"])
def test_windows_1252_without_a_charset_header_is_decoded(name: str, content_type: str) -> None:
    feed = prepare((REMOTE / name).read_bytes(), content_type)
    assert feed.title == "Café Times"
    assert feed.entries[0].title == "\u201cQuoted\u201d naïve café \u2013 \u20ac 5"


def test_malformed_xml_with_entries_comes_with_a_warning() -> None:
    feed = prepare((REMOTE / "malformed.xml").read_bytes())
    assert [e.title for e in feed.entries] == [
        "Council approves budget & new park",
        "Bridge repairs finish early",
    ]
    assert feed.warning


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html><body>404</body></html>",
        b"\x00\xff\xfe garbage",
        b"{not json",
        b'{"version": "x"}',
        b"/etc/passwd",
        b"http://127.0.0.1:9/feed.xml",
    ],
)
def test_no_usable_feed_is_a_parse_failure_not_an_exception(body: bytes) -> None:
    result = prepare_feed(PrepareJob("gazette", AUTHORITY, BASE, body, {}))
    assert isinstance(result, ParseFailure) and result.message


def test_entries_without_guids_get_stable_ids() -> None:
    first = prepare((REMOTE / "no-guids.xml").read_bytes())
    again = prepare((REMOTE / "no-guids.xml").read_bytes())
    keys = [e.key for e in first.entries]
    assert keys == [e.key for e in again.entries]
    assert keys[0] == "http://127.0.0.1/g/linked"
    assert keys[1].startswith("title-date:") and keys[2].startswith("title-date:")
    assert len(set(keys)) == 3
    ids = [e.item_id for e in first.entries]
    assert ids[0] == "http://127.0.0.1/g/linked"
    assert all(i.startswith(f"tag:{AUTHORITY}:source/gazette/") for i in ids[1:])


def test_a_non_uri_guid_becomes_a_tag_uri_scoped_by_source() -> None:
    feed = prepare((REMOTE / "rss20.xml").read_bytes())
    assert feed.entries[0].key == "gazette-1001"
    assert feed.entries[0].item_id.startswith(f"tag:{AUTHORITY}:source/gazette/")


def test_publisher_hints_are_read() -> None:
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><ttl>45</ttl>'
        b"<skipHours><hour>0</hour><hour>23</hour><hour>99</hour></skipHours>"
        b"<skipDays><day>Saturday</day><day>sunday</day></skipDays>"
        b"<item><title>x</title></item></channel></rss>"
    )
    hints = parse_feed(body, {}).hints
    assert (hints.ttl_minutes, hints.skip_hours, hints.skip_days) == (45, (0, 23), ("Saturday", "Sunday"))
    sy = parse_feed((REMOTE / "rss10.xml").read_bytes(), {}).hints
    assert (sy.update_period, sy.update_frequency) == ("daily", 4)


def test_xss_payloads_leave_nothing_executable() -> None:
    feed = prepare((REMOTE / "xss.xml").read_bytes())
    (entry,) = feed.entries
    for text in (feed.title, entry.title, entry.summary, entry.content_html, entry.link or ""):
        assert text is not None
        assert not EXECUTABLE.search(text), text
    assert entry.link is None  # a javascript: link is dropped, not stored
    assert entry.title.startswith("Harmless") and "headline" in entry.title
    assert '<a href="http://127.0.0.1/ok" rel="noopener noreferrer">ok</a>' in (entry.content_html or "")


def test_billion_laughs_is_not_expanded() -> None:
    result = prepare_feed(
        PrepareJob("gazette", AUTHORITY, BASE, (REMOTE / "billion-laughs.xml").read_bytes(), {})
    )
    if isinstance(result, RemoteFeed):
        for entry in result.entries:
            assert len(entry.title) < 1000 and "lollollol" not in (entry.content_html or "")
    else:
        assert result.message


def test_external_entities_are_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    body = (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'
        '<rss version="2.0"><channel><title>x &xxe;</title><link>http://127.0.0.1/</link>'
        "<description>d</description><item><title>Entry &xxe;</title><guid>http://127.0.0.1/1</guid>"
        "<description>&xxe;</description></item></channel></rss>"
    ).encode()
    result = prepare_feed(PrepareJob("gazette", AUTHORITY, BASE, body, {}))
    assert "TOP-SECRET" not in repr(result)


def test_sanitiser_rules() -> None:
    assert safe_html('<a href="page">x</a>', "http://127.0.0.1/a/b") == (
        '<a href="http://127.0.0.1/a/page" rel="noopener noreferrer">x</a>'
    )
    assert safe_html("<p>   </p>") == "<p>   </p>"
    assert safe_html("   ") is None
    assert safe_html('<img src="data:image/png;base64,AAAA">') == "<img>"
    assert plain_text("  A &amp; B <b>bold</b>\n text ") == "A & B bold text"
    assert plain_text("&lt;script&gt;alert(1)&lt;/script&gt;x") == "x"
    assert "<script" not in (plain_text("&amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt;x") or "")
    assert plain_text("5 < 6 and 7 > 3") == "5 < 6 and 7 > 3"
    assert len(plain_text("word " * 5000) or "") <= 4000


def test_relative_urls_and_cites_are_made_absolute_or_dropped() -> None:
    base = "http://127.0.0.1/a/b"
    assert safe_html('<img src="/i.png"><a href="//cdn.test/x">x</a>', base) == (
        '<img src="http://127.0.0.1/i.png"><a href="http://cdn.test/x" rel="noopener noreferrer">x</a>'
    )
    assert safe_html('<blockquote cite="q?a=1&amp;b=2">q</blockquote>', base) == (
        '<blockquote cite="http://127.0.0.1/a/q?a=1&amp;b=2">q</blockquote>'
    )
    # nh3 does not treat cite as a URL: a javascript: one must still go.
    assert safe_html('<del datetime=">" cite="javascript:alert(1)">d</del>', base) == (
        '<del datetime="&gt;">d</del>'
    )
    # Without a usable base a relative URL would point into our own site.
    assert safe_html('<a href="page">x</a>', None) == '<a rel="noopener noreferrer">x</a>'
    assert safe_html('<a href="page">x</a>', "http://exa mple.test/") == '<a rel="noopener noreferrer">x</a>'


def test_plain_text_without_markup_matches_the_html_route() -> None:
    # Text with no "<" skips nh3; it must come out as if it had not.
    for text in ["Fish &amp; chips", "A &notit; B", "x &#0; y", "caf\u00e9\u00a0 au\u2003lait", "nul\0byte"]:
        assert plain_text(text) == plain_text(text + "<b></b>")


@pytest.mark.parametrize("expected", CASES, ids=lambda p: p.name.removesuffix(".expected.json"))
def test_an_entry_hashes_like_the_item_it_makes(expected: Path) -> None:
    # The writer skips entries by this hash; it must be the stored item's.
    stem = expected.name.removesuffix(".expected.json")
    (source,) = [p for p in REMOTE.iterdir() if p.stem == stem and not p.name.endswith(".expected.json")]
    filing = Filing("world", {"news": "sport"}, {"world": "WORLD"})
    result = prepare_feed(PrepareJob("gazette", AUTHORITY, BASE, source.read_bytes(), {}, filing))
    assert isinstance(result, RemoteFeed) and result.entries
    now = datetime(2026, 1, 5, tzinfo=UTC)
    for entry in result.entries:
        assert new_item(entry, now).content_hash() == entry.content_hash


def _outcome_of(parser: ParserProcess, job: PrepareJob) -> object:
    got: list[object] = []
    arrived = threading.Event()
    assert parser.submit(job, lambda outcome: (got.append(outcome), arrived.set()))
    assert arrived.wait(30)
    return got[0]


def test_a_parser_process_gives_what_parsing_here_gives() -> None:
    job = PrepareJob("gazette", AUTHORITY, BASE, (REMOTE / "atom10.xml").read_bytes(), {}, Filing("world"))
    parser = ParserProcess()
    try:
        assert _outcome_of(parser, job) == prepare_feed(job)
        assert parser.ready and parser.pending == 0
    finally:
        parser.close()
    assert not parser.submit(job, lambda outcome: None)  # closed: takes no more


def test_a_parser_process_that_dies_fails_what_it_held_and_takes_no_more() -> None:
    # Seconds of feedparser work: the child is still on it when it is killed.
    entries = "".join(f"<entry><id>urn:e:{n}</id><title>Entry {n}</title></entry>" for n in range(20000))
    slow = f'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>{entries}</feed>'.encode()
    parser = ParserProcess()
    try:
        while not parser.ready:
            time.sleep(0.01)
        got: list[object] = []
        arrived = threading.Event()
        job = PrepareJob("gazette", AUTHORITY, BASE, slow, {})
        assert parser.submit(job, lambda o: (got.append(o), arrived.set()))
        parser._child.kill()
        assert arrived.wait(30)
        (outcome,) = got
        assert isinstance(outcome, ParseFailure) and "parser process exited" in outcome.message
        assert not parser.ready and not parser.submit(job, lambda o: None)
    finally:
        parser.close()
