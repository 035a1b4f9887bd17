"""RFC 5005 archives: the archive pages of a feed, and the links between them.

Every item has a fixed number in each feed it is in (``store.archive``).
Archive page ``n`` of a feed holds the numbers ``(n-1)*size+1`` to
``n*size``, so its boundaries never move: new items only fill the newest
page, and a page, once full, keeps its bytes (and ETag) unless one of its
own items changes. The newest page always exists, possibly empty, so a full
page's ``next-archive`` link is there from the start and never added later.
The current (subscription) feed links to the newest page with
``prev-archive``; walking ``prev-archive`` from it reaches every page.

Archive documents are Atom and RSS; JSON Feed has no archive convention.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime

from feeds.model import Item
from feeds.publish.formats import ATOM, RSS, Format
from feeds.publish.generate import ArchiveLinks, FeedSpec, feed_updated
from store import Store
from store.archive import ALL_FEED, PageVersion

ARCHIVE_FORMATS: tuple[Format, ...] = (ATOM, RSS)
ARCHIVE_DIR = "archive"


def archive_stem(slug: str, page: int) -> str:
    """Tree path of an archive page without its extension: ``archive/world-3``."""
    return f"{ARCHIVE_DIR}/{slug}-{page}"


def archive_count(length: int, size: int) -> int:
    """Pages of a feed whose highest item number is ``length``: the newest may be empty."""
    return length // size + 1


def current_links(slug: str, length: int, size: int) -> ArchiveLinks:
    """The subscription feed's links: itself, and the newest archive page."""
    return ArchiveLinks(current=f"feeds/{slug}", prev=archive_stem(slug, archive_count(length, size)))


def page_links(slug: str, page: int, count: int) -> ArchiveLinks:
    return ArchiveLinks(
        current=f"feeds/{slug}",
        prev=archive_stem(slug, page - 1) if page > 1 else None,
        next=archive_stem(slug, page + 1) if page < count else None,
        is_archive=True,
    )


@dataclass(frozen=True, slots=True)
class ArchiveFile:
    path: str
    body: bytes
    modified: datetime


def parse_archive_path(path: str) -> tuple[str, int, str] | None:
    """(feed slug, page, extension) of ``archive/<slug>-<page>.<ext>``, or None."""
    folder, _, name = path.partition("/")
    stem, dot, ext = name.rpartition(".")
    slug, dash, number = stem.rpartition("-")
    if folder != ARCHIVE_DIR or not (dot and dash and slug) or "/" in name:
        return None
    if not number.isascii() or not number.isdigit() or number.startswith("0"):
        return None
    if f".{ext}" not in {f.extension for f in ARCHIVE_FORMATS}:
        return None
    return slug, int(number), ext


def _section(spec: FeedSpec) -> str | None:
    return None if spec.slug == ALL_FEED else spec.slug


def _page_spec(spec: FeedSpec, page: int, count: int) -> FeedSpec:
    return replace(
        spec, path=archive_stem(spec.slug, page), archive=page_links(spec.slug, page, count), deleted=()
    )


def archive_versions(store: Store, spec: FeedSpec, size: int) -> dict[str, int]:
    """Tree path -> fingerprint of every archive document of a feed.

    A page's bytes depend on its items, on whether a later page exists and
    on the feed's metadata, so all three are in it. Compared within one
    process only.
    """
    section = _section(spec)
    count = archive_count(store.feed_length(section), size)
    pages: dict[int, PageVersion] = store.archive_versions(section, size)
    versions: dict[str, int] = {}
    for page in range(1, count + 1):
        fingerprint = hash((pages.get(page - 1), page < count, spec))
        for fmt in ARCHIVE_FORMATS:
            versions[f"{archive_stem(spec.slug, page)}{fmt.extension}"] = fingerprint
    return versions


def archive_page(store: Store, spec: FeedSpec, size: int, page: int, ext: str) -> ArchiveFile | None:
    """One archive document, read from the store; None past the newest page."""
    section = _section(spec)
    count = archive_count(store.feed_length(section), size)
    fmt = next((f for f in ARCHIVE_FORMATS if f.name == ext), None)
    if fmt is None or not 1 <= page <= count:
        return None
    items = store.archive_items(section, (page - 1) * size + 1, page * size)
    return _render(_page_spec(spec, page, count), items, fmt)


def archive_files(store: Store, spec: FeedSpec, size: int) -> Iterator[ArchiveFile]:
    """Every archive document of one feed, a page at a time (for an export)."""
    section = _section(spec)
    count = archive_count(store.feed_length(section), size)
    for page in range(1, count + 1):
        items = store.archive_items(section, (page - 1) * size + 1, page * size)
        for fmt in ARCHIVE_FORMATS:
            yield _render(_page_spec(spec, page, count), items, fmt)


def _render(spec: FeedSpec, items: list[Item], fmt: Format) -> ArchiveFile:
    assert fmt.render is not None
    return ArchiveFile(f"{spec.stem}{fmt.extension}", fmt.render(spec, items), feed_updated(items))
