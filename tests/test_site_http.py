"""The daemon's request-dependent answers over a real socket: a browser gets a
feed's preview page, filters and search give valid feeds with their own
ETags, bad queries are a 400, section pages answer ?page=."""

from __future__ import annotations

from collections.abc import Iterator

import feedparser
import pytest

from feeds.config import Config
from feeds.daemon.service import Daemon
from feeds.daemon.web import HttpServer, bind_socket, create_app
from feeds.model import ItemWrite
from feeds.publish.resources import prefers_html
from store import Store
from tests.feedcheck import check_atom, check_json, check_rss
from tests.strategies import make_item
from tests.test_serve import Reply, Served

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
READER = "application/atom+xml, application/rss+xml;q=0.9, application/xml;q=0.8, */*;q=0.5"
CHECKS = {"atom": check_atom, "rss": check_rss, "json": check_json}


@pytest.fixture
def served(store: Store, config: Config, clock) -> Iterator[Served]:
    # 30 World stories (two section pages) besides the public seed's.
    store.write_batch([ItemWrite(item=make_item(i)) for i in range(30)])
    daemon = Daemon(store, config, clock)
    daemon.start(sources=False)
    server = HttpServer(create_app(daemon.site, daemon.health), bind_socket("127.0.0.1", 0))
    server.start()
    try:
        yield Served(server.port, daemon)
    finally:
        server.stop()


def get(served: Served, path: str, **headers: str) -> Reply:
    return served.request(path, headers={k.replace("_", "-"): v for k, v in headers.items()})


def titles(reply: Reply) -> list[str]:
    return [e.title for e in feedparser.parse(reply.body).entries]


def test_a_browser_gets_the_preview_page_and_a_reader_the_feed(served: Served) -> None:
    page = get(served, "/feeds/world.atom", Accept=BROWSER)
    assert page.status == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["vary"] == "Accept, Accept-Encoding"
    assert page.body == get(served, "/feeds/world.html").body
    assert b"<code>http://127.0.0.1:8080/feeds/world.atom</code>" in page.body
    for accept in (READER, "*/*", "application/rss+xml", None):
        feed = get(served, "/feeds/world.atom", **({"Accept": accept} if accept else {}))
        assert feed.headers["content-type"] == "application/atom+xml; charset=utf-8", accept
        assert feed.headers["vary"] == "Accept, Accept-Encoding"
        check_atom(feed.body)
    # The two forms are different representations: a cache must not mix their validators.
    assert page.headers["etag"] != feed.headers["etag"]


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (BROWSER, True),
        ("text/html", True),
        (READER, False),
        ("*/*", False),
        ("text/html;q=0.5, application/atom+xml", False),
        ("text/html, application/atom+xml", False),  # a tie goes to the feed
        ("text/*, application/*;q=0.5", True),
        ("text/html;q=0, */*", False),
        ("text/html;q=bogus, */*;q=0.1", False),
        ("", False),
    ],
)
def test_accept_preference(accept: str, html: bool) -> None:
    assert prefers_html(accept.encode()) is html


def test_limit_and_q_give_the_right_items_as_a_valid_feed_with_its_own_etag(served: Served) -> None:
    everything = titles(get(served, "/feeds/all.atom"))
    turkiye = [t for t in everything if "Türkiye" in t]
    assert len(turkiye) == 3
    for ext in ("atom", "rss", "json"):
        reply = get(served, f"/feeds/all.{ext}?limit=2&q=turkiye")
        assert reply.status == 200, reply.body
        CHECKS[ext](reply.body)
        if ext != "json":
            assert titles(reply) == turkiye[:2]
    filtered = get(served, "/feeds/all.atom?limit=2&q=turkiye")
    assert filtered.headers["etag"] != get(served, "/feeds/all.atom").headers["etag"]
    assert (
        get(served, "/feeds/all.atom?limit=2&q=turkiye", If_None_Match=filtered.headers["etag"]).status == 304
    )
    # Its self link names the filter, so a reader subscribing to it keeps it.
    assert b'href="http://127.0.0.1:8080/feeds/all.atom?limit=2&amp;q=turkiye" rel="self"' in filtered.body
    excluded = titles(get(served, "/feeds/all.atom?q=turkiye&exclude=MediaMarkt"))
    assert excluded == [t for t in turkiye if "MediaMarkt" not in t]
    assert titles(get(served, "/feeds/world.atom?limit=3")) == titles(get(served, "/feeds/world.atom"))[:3]


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=201", "limit=two", "q=", "page=2", "limit=1&limit=2", "q=a&regex=.*"]
)
def test_a_bad_filter_is_a_400_with_its_reason(served: Served, query: str) -> None:
    reply = get(served, f"/feeds/all.rss?{query}")
    assert reply.status == 400
    assert reply.headers["content-type"] == "text/plain; charset=utf-8"
    assert reply.body.startswith(b"400 Bad Request: ")


def test_search_feeds_and_page(served: Served) -> None:
    for ext in ("atom", "rss", "json"):
        reply = get(served, f"/search.{ext}?q=Galatasaray")
        assert reply.status == 200
        CHECKS[ext](reply.body)
    assert titles(get(served, "/search.atom?q=galatasaray")) == [
        "Galatasaray crowned winter champion in Süper Lig"
    ]
    page = get(served, "/search.html?q=galatasaray")
    assert page.status == 200
    assert b"Galatasaray crowned winter champion" in page.body
    assert b'href="http://127.0.0.1:8080/search.atom?q=galatasaray"' in page.body
    form = get(served, "/search.html")
    assert form.status == 200 and b'name="q"' in form.body
    nothing = get(served, "/search.html?q=%3Cscript%3Enothing")
    assert b"No story holds every one of these words." in nothing.body
    assert b"<script>" not in nothing.body
    assert get(served, "/search.atom").status == 400
    assert get(served, "/search.atom?q=x&sort=date").status == 400


def test_section_pages_answer_page_numbers(served: Served) -> None:
    first = get(served, "/sections/world.html")
    assert first.status == 200
    assert b'href="http://127.0.0.1:8080/sections/world-2.html" rel="next"' in first.body
    second = get(served, "/sections/world.html?page=2")
    assert second.status == 200
    assert second.body == get(served, "/sections/world-2.html").body
    assert get(served, "/sections/world.html?page=1").body == first.body
    for bad in ("3", "0", "x", "-1", "99999"):
        assert get(served, f"/sections/world.html?page={bad}").status == 404, bad
    assert get(served, "/sections/nosuch.html").status == 404
