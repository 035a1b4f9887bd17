"""What publishers send beside the story is carried through: enclosures,
categories, pictures, authors (the feed's own when an entry names none),
comments links and the publisher's `updated`.

Data-driven: each remote feed in tests/data/carry is served on 127.0.0.1,
refreshed into a real store and exported; our RSS, Atom and JSON Feed are
read back (feedparser, json) and each item compared, field by field, with
the expected JSON beside the input.
"""

from __future__ import annotations

import calendar
import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest
from hypothesis import given, settings
from pytest_httpserver import HTTPServer

from feeds.app import run_export
from feeds.model import Item
from feeds.publish.generate import (
    FeedSpec,
    item_authors,
    publisher_categories,
    render_atom,
    render_json,
    render_rss,
)
from feeds.sources.prepare import PrepareJob, RemoteFeed, prepare_with_feedparser, prepare_without_feedparser
from feeds.sources.update import refresh_sources
from store import Store
from tests.feedcheck import check_atom, check_json, check_rss
from tests.remote_helpers import SteppingClock, config_with_sources
from tests.strategies import item_lists

CARRY = Path(__file__).resolve().parent / "data" / "carry"
CASES = sorted(p for p in CARRY.iterdir() if p.name.endswith(".expected.json"))
TYPES = {".rss": "application/rss+xml", ".atom": "application/atom+xml", ".json": "application/feed+json"}
# A command running the W3C Feed Validator on feed files, where a developer has one.
VALIDATOR = os.environ.get("FEEDS_W3C_VALIDATOR")
SECTION = "WORLD"  # the label of the section the test source files into


def _time(parsed: Any) -> str | None:
    if parsed is None:
        return None
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_time(text: str) -> str:
    return datetime.fromisoformat(text).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _enclosures(entry: Any) -> list[dict[str, object]]:
    return [
        {"url": e["href"], "type": e["type"], "length": int(e["length"]) if e.get("length") else None}
        for e in entry.get("enclosures", [])
    ]


def _without_section(terms: list[str], section: str | None) -> list[str]:
    """The categories but the one our section label (or slug) wrote."""
    if section in terms:
        terms.remove(section)
    return terms


def from_feedparser_entry(entry: Any, section: str | None) -> dict[str, object]:
    """One entry of our RSS or Atom, read back into the expected files' shape."""
    replies = [link["href"] for link in entry.get("links", []) if link.get("rel") == "replies"]
    return {
        "authors": [a.get("name") for a in entry.get("authors", [])],
        "categories": _without_section([t["term"] for t in entry.get("tags", [])], section),
        "enclosures": _enclosures(entry),
        "image": (entry.get("media_thumbnail") or [{}])[0].get("url"),
        "comments": entry.get("comments") or (replies[0] if replies else None),
        "published": _time(entry.get("published_parsed")),
        # dict.get: feedparser's own get() maps a missing updated to published, warning.
        "updated": _time(dict.get(entry, "updated_parsed") or dict.get(entry, "published_parsed")),
    }


def from_feedparser(data: bytes, section: str) -> dict[str, dict[str, object]]:
    """Our RSS or Atom, read back, by title."""
    parsed = feedparser.parse(data)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return {entry.title: from_feedparser_entry(entry, section) for entry in parsed.entries}


def from_json_item(item: dict[str, Any], section: str | None) -> dict[str, object]:
    """One item of our JSON Feed, read back into the expected files' shape."""
    return {
        "authors": [a["name"] for a in item.get("authors", [])],
        "categories": _without_section(list(item.get("tags", [])), section),
        "enclosures": [
            {"url": a["url"], "type": a["mime_type"], "length": a.get("size_in_bytes")}
            for a in item.get("attachments", [])
        ],
        "image": item.get("image"),
        "comments": item.get("_comments", {}).get("url"),
        "published": _json_time(item["date_published"]),
        "updated": _json_time(item["date_modified"]),
    }


def from_json(data: bytes) -> dict[str, dict[str, object]]:
    """Our JSON Feed, read back, by title."""
    return {item["title"]: from_json_item(item, SECTION) for item in check_json(data)["items"]}


@pytest.fixture
def exported(httpserver: HTTPServer, project: Path, store: Store) -> Path:
    """Every carry/ feed served, refreshed into the store and exported."""
    sources = []
    for expected in CASES:
        stem = expected.name.removesuffix(".expected.json")
        (feed,) = [p for p in CARRY.iterdir() if p.stem == stem and p != expected]
        httpserver.expect_request(f"/{feed.name}").respond_with_data(
            feed.read_bytes(), content_type=TYPES[feed.suffix]
        )
        sources.append({"name": stem, "url": httpserver.url_for(f"/{feed.name}"), "section": "world"})
    config = config_with_sources(project, sources)
    report = refresh_sources(store, config, SteppingClock())
    assert [r.error for r in report.results] == [None] * len(CASES)
    run_export(store, config, project / "public")
    return project / "public" / "feeds"


@pytest.mark.parametrize("expected", CASES, ids=lambda p: p.name.removesuffix(".expected.json"))
@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
def test_what_a_publisher_sends_comes_out_in_every_format(exported: Path, expected: Path, fmt: str) -> None:
    data = (exported / f"world.{fmt}").read_bytes()
    section_term = {"rss": SECTION, "atom": "world"}.get(fmt, SECTION)
    ours = from_json(data) if fmt == "json" else from_feedparser(data, section_term)
    for title, fields in json.loads(expected.read_text(encoding="utf-8")).items():
        assert ours[title] == fields, f"{fmt}: {title}"


def test_feeds_carrying_it_all_are_valid(exported: Path) -> None:
    check_rss((exported / "world.rss").read_bytes())
    check_atom((exported / "world.atom").read_bytes())
    check_json((exported / "world.json").read_bytes())
    if VALIDATOR:
        files = [str(exported / f"world.{ext}") for ext in ("rss", "atom")]
        out = subprocess.run([VALIDATOR, *files], capture_output=True, text=True, check=False, timeout=300)
        assert out.returncode == 0, out.stdout


def test_the_same_store_gives_the_same_bytes(exported: Path, project: Path, store: Store) -> None:
    before = {p.name: p.read_bytes() for p in exported.iterdir()}
    config = config_with_sources(project, [])
    run_export(store, config, project / "again")
    again = {p.name: p.read_bytes() for p in (project / "again" / "feeds").iterdir()}
    assert {n: again[n] for n in before if n.startswith("world.")} == {
        n: b for n, b in before.items() if n.startswith("world.")
    }


def _carried(item: Item) -> dict[str, object]:
    """The expected files' shape, from an item we published."""
    return {
        "authors": list(item_authors(item)),
        "categories": list(publisher_categories(item)),
        "enclosures": [{"url": e.url, "type": e.type, "length": e.length} for e in item.enclosures],
        "image": item.image,
        "comments": item.comments,
    }


@settings(max_examples=40, deadline=None)
@given(batch=item_lists())
def test_any_items_extras_round_trip_through_every_format(batch: list[Item]) -> None:
    spec = FeedSpec("all", "T", "D", "http://127.0.0.1/", "en", "test.example.org,2026", "Us")
    times = {"published", "updated"}
    expected = [_carried(i) for i in batch]
    for fmt, render in (("rss", render_rss), ("atom", render_atom)):
        data = render(spec, batch)
        (check_rss if fmt == "rss" else check_atom)(data)
        entries = feedparser.parse(data).entries
        got = []
        for entry, item in zip(entries, batch, strict=True):
            fields = from_feedparser_entry(entry, item.section if fmt == "rss" else item.section_slug)
            got.append({k: v for k, v in fields.items() if k not in times})
        for row in expected:  # RSS needs a length; ours says 0 where none is known
            for enclosure in row["enclosures"]:  # type: ignore[attr-defined]
                enclosure["length"] = enclosure["length"] or (0 if fmt == "rss" else None)
        assert got == expected, fmt
        expected = [_carried(i) for i in batch]
    items = check_json(render_json(spec, batch))["items"]
    got = [from_json_item(i, item.section) for i, item in zip(items, batch, strict=True)]
    assert [{k: v for k, v in fields.items() if k not in times} for fields in got] == expected


def test_both_readers_of_rss_carry_the_same() -> None:
    body = (CARRY / "podcast.rss").read_bytes()
    job = PrepareJob("pod", "test.example.org,2026", "http://127.0.0.1/pod/feed.rss", body, {})
    fast, full = prepare_without_feedparser(job), prepare_with_feedparser(job)
    assert isinstance(fast, RemoteFeed) and isinstance(full, RemoteFeed)
    assert fast.entries == full.entries
    assert fast.entries[0].extras.enclosures[0].length == 38520114
