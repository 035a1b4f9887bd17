"""Items -> RSS/Atom/JSON -> parsed back: the same items, valid and stable."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import feedparser
from hypothesis import given, settings

from feeds.model import Item, Origin
from feeds.publish.generate import FeedSpec, render_atom, render_json, render_rss
from tests.feedcheck import check_atom, check_json, check_rss
from tests.strategies import item_lists, make_item

SPEC = FeedSpec(
    slug="world",
    title="Test: World",
    description="World news.",
    base_url="http://127.0.0.1:8080/",
    language="en",
    authority="test.example.org,2026",
    author="Newsroom",
    section_label="WORLD",
)


def _unique_updated(items: list[Item]) -> list[Item]:
    """Give each item its own ``updated``, so the round trip can check the order of times."""
    base = max((i.published for i in items), default=None)
    return [replace(i, updated=base + timedelta(seconds=n)) for n, i in enumerate(items) if base]


@settings(max_examples=60, deadline=None)
@given(batch=item_lists())
def test_rss_and_atom_round_trip_titles_ids_and_dates(batch: list[Item]) -> None:
    batch = _unique_updated(batch)
    for render, check in ((render_rss, check_rss), (render_atom, check_atom)):
        data = render(SPEC, batch)
        check(data)
        parsed = feedparser.parse(data)
        assert [e.title for e in parsed.entries] == [i.title for i in batch]
        assert [e.id for e in parsed.entries] == [i.id for i in batch]
        published = [e.published_parsed[:6] for e in parsed.entries]
        assert published == [i.published.utctimetuple()[:6] for i in batch]


@settings(max_examples=30, deadline=None)
@given(batch=item_lists())
def test_json_feed_round_trip(batch: list[Item]) -> None:
    feed = check_json(render_json(SPEC, batch))
    assert [(i["id"], i["title"]) for i in feed["items"]] == [(i.id, i.title) for i in batch]


def test_same_items_give_the_same_bytes() -> None:
    batch = [make_item(i) for i in range(5)]
    for render in (render_rss, render_atom, render_json):
        assert render(SPEC, batch) == render(SPEC, list(batch))


def test_feed_dates_come_from_items_not_the_clock() -> None:
    batch = [make_item(i) for i in range(3)]
    newest = max(i.updated for i in batch)
    rss = feedparser.parse(render_rss(SPEC, batch))
    atom = feedparser.parse(render_atom(SPEC, batch))
    assert rss.feed.updated_parsed[:6] == newest.utctimetuple()[:6]
    assert atom.feed.updated_parsed[:6] == newest.utctimetuple()[:6]


def test_order_is_kept_as_given() -> None:
    batch = [make_item(i) for i in range(4)]
    parsed = feedparser.parse(render_atom(SPEC, batch))
    assert [e.id for e in parsed.entries] == [i.id for i in batch]


def test_markup_in_titles_is_text_not_html() -> None:
    item = make_item(1, title='Tom & Jerry <script>alert(1)</script> "quoted"')
    for render in (render_rss, render_atom):
        data = render(SPEC, [item])
        assert b"<script" not in data
        assert feedparser.parse(data).entries[0].title == item.title


def test_remote_item_names_its_source() -> None:
    origin = Origin(
        kind="source",
        name="wire",
        url="https://wire.example/feed.xml",
        title="Wire",
        first_seen=make_item(0).published,
    )
    item = make_item(
        2, link="https://wire.example/story", kind="entry", origins=(origin,), content_html="<p>Body</p>"
    )
    rss = feedparser.parse(render_rss(SPEC, [item]))
    assert rss.entries[0].link == "https://wire.example/story"
    assert rss.entries[0].source.href == "https://wire.example/feed.xml"
    atom_bytes = render_atom(SPEC, [item])
    check_atom(atom_bytes)
    atom = feedparser.parse(atom_bytes)
    assert atom.entries[0].source.title == "Wire"
    feed = json.loads(render_json(SPEC, [item]))
    assert feed["items"][0]["_source"]["feed_url"] == "https://wire.example/feed.xml"


def test_seed_article_links_to_its_permalink_page() -> None:
    item = make_item(3, kind="article", body=("One.", "Two."), dateline="İZMİR")
    atom = feedparser.parse(render_atom(SPEC, [item]))
    assert atom.entries[0].link == f"http://127.0.0.1:8080/items/{item.slug}.html"
    assert "<p>Two.</p>" in atom.entries[0].content[0].value
    assert "İZMİR" in atom.entries[0].content[0].value
