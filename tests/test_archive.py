"""RFC 5005 archives: walking prev-archive from every current feed reaches
each stored item of that feed exactly once, full pages never change, and
every archive document is valid Atom/RSS, the same from export and daemon."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import feedparser
import pytest
from lxml import etree

from feeds.app import run_export
from feeds.config import Config, load_config
from feeds.daemon.service import Daemon
from feeds.daemon.web import call_app, create_app
from feeds.model import ItemWrite
from feeds.publish.resources import strong_etag
from store import Store
from tests.cliutil import run_feeds
from tests.feedcheck import check_atom, check_rss
from tests.strategies import make_item

ATOM = "{http://www.w3.org/2005/Atom}"
FH = "{http://purl.org/syndication/history/1.0}"
BASE = "http://127.0.0.1:8080/"
VALIDATOR = os.environ.get("FEEDS_W3C_VALIDATOR")


@pytest.fixture
def small_pages(project: Path) -> Config:
    """The test project with archive pages of 4 items."""
    text = (project / "config.toml").read_text(encoding="utf-8")
    text = text.replace("items_per_feed = 50", "items_per_feed = 3\narchive_page_items = 4")
    (project / "config.toml").write_text(text, encoding="utf-8")
    return load_config(project / "config.toml")


def links(doc: etree._Element, rel: str) -> list[str]:
    if doc.tag == "rss":
        return [e.get("href") for e in doc.find("channel").findall(f"{ATOM}link") if e.get("rel") == rel]
    return [e.get("href") for e in doc.findall(f"{ATOM}link") if e.get("rel") == rel]


def entry_ids(data: bytes) -> list[str]:
    return [e.id for e in feedparser.parse(data).entries]


def walk(public: Path, slug: str, ext: str) -> tuple[list[str], list[list[str]]]:
    """Ids of the current feed, and of each archive page reached by prev-archive."""
    current = (public / "feeds" / f"{slug}.{ext}").read_bytes()
    doc = etree.fromstring(current)
    assert doc.find(f".//{FH}archive") is None
    pages: list[list[str]] = []
    url = links(doc, "prev-archive")
    seen = set()
    while url:
        assert url[0] not in seen, "prev-archive loops"
        seen.add(url[0])
        data = (public / url[0].removeprefix(BASE)).read_bytes()
        page = etree.fromstring(data)
        (check_atom if ext == "atom" else check_rss)(data)
        assert page.find(f".//{FH}archive") is not None
        assert links(page, "current") == [f"{BASE}feeds/{slug}.{ext}"]
        assert links(page, "self") == [url[0]]
        pages.append(entry_ids(data))
        url = links(page, "prev-archive")
    return entry_ids(current), pages


def test_walking_prev_archive_collects_every_stored_item_once(small_pages: Config, project: Path) -> None:
    assert run_feeds("export", cwd=project).returncode == 0
    public = project / "public"
    with Store(small_pages.store.path) as store:
        stored = {None: {i.id for i in store.iter_items()}}
        for item in store.iter_items():
            stored.setdefault(item.section_slug, set()).add(item.id)
    for slug, wanted in [("all", stored[None]), *((s, ids) for s, ids in stored.items() if s)]:
        for ext in ("atom", "rss"):
            current, pages = walk(public, slug, ext)
            archived = [i for page in pages for i in page]
            assert len(archived) == len(set(archived)), f"{slug}.{ext}: an item on two pages"
            assert set(archived) == wanted, f"{slug}.{ext}"
            assert set(current) <= wanted
            assert all(len(page) <= 4 for page in pages)
    # 14 stories: pages of 4, 4, 4 and 2, walked newest first.
    assert [len(p) for p in walk(public, "all", "atom")[1]] == [2, 4, 4, 4]
    assert links(etree.fromstring((public / "archive" / "all-1.atom").read_bytes()), "next-archive") == [
        f"{BASE}archive/all-2.atom"
    ]


def test_full_pages_keep_their_bytes_as_items_arrive(small_pages: Config, project: Path, clock) -> None:
    store = Store(small_pages.store.path)
    try:
        store.write_batch([ItemWrite(item=make_item(i)) for i in range(6)])  # world: 6 -> pages of 4 and 2
        daemon = Daemon(store, small_pages, clock)
        daemon.start(sources=False)
        app = create_app(daemon.site, daemon.health)
        full = call_app(app, "/archive/world-1.atom")
        partial = call_app(app, "/archive/world-2.atom")
        assert full.status == partial.status == 200
        assert call_app(app, "/archive/world-3.atom").status == 404
        # New stories, some dated before all the others: they still go to the newest page.
        store.write_batch(
            [
                ItemWrite(item=make_item(100 + i, published=make_item(0).published.replace(year=2020)))
                for i in range(3)
            ]
        )
        daemon.note_changes(frozenset({"world", "all"}))
        daemon.publish_pending(force=True)
        again = call_app(app, "/archive/world-1.atom")
        assert again.body == full.body
        assert dict(again.headers)[b"etag"] == strong_etag(full.body)
        assert call_app(app, "/archive/world-2.atom").body != partial.body
        assert call_app(app, "/archive/world-3.atom").status == 200  # 9 items: 4, 4, 1
        # The daemon serves what an export writes.
        out = project / "out"
        run_export(store, small_pages, out)
        for page in ("world-1.atom", "world-2.rss", "world-3.atom", "all-1.rss"):
            assert call_app(app, f"/archive/{page}").body == (out / "archive" / page).read_bytes(), page
        for bad in ("world-0.atom", "world-01.atom", "world-1.json", "nosuch-1.atom", "world-x.rss"):
            assert call_app(app, f"/archive/{bad}").status == 404, bad
    finally:
        store.close()


def test_every_archive_document_passes_the_w3c_validator(small_pages: Config, project: Path) -> None:
    if not VALIDATOR:
        pytest.skip("set FEEDS_W3C_VALIDATOR to a command running the W3C Feed Validator")
    assert run_feeds("export", cwd=project).returncode == 0
    documents = [
        path
        for folder in ("archive", "feeds")
        for path in sorted((project / "public" / folder).iterdir())
        if path.suffix in (".atom", ".rss")
    ]
    assert len(documents) == 4 * 2 + 3 * 2 + 4 * 2  # all: 4 pages; 3 sections of 1 page; 4 feeds
    for path in documents:
        url = BASE + str(path.relative_to(project / "public"))
        result = subprocess.run(
            [VALIDATOR, str(path), "--url", url], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
