"""The store's side of RFC 5005 feed archives: every item's fixed number in
each feed it is in (table ``feed_sequence``, kept by the triggers of
migration ``0004_archive_sequence``), and the items of a range of numbers.

A mixin of ``store.Store``, kept apart so ``store/db.py`` stays small.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, NamedTuple, Protocol

from sqlite_utils import Database

from feeds.model import Item

ALL_FEED = "all"  # the feed of every item, as feed_sequence names it

_PAGE_ITEMS = """
    SELECT items.* FROM feed_sequence JOIN items ON items.id = feed_sequence.item_id
    WHERE feed_sequence.feed = ? AND feed_sequence.seq BETWEEN ? AND ?
    ORDER BY feed_sequence.seq DESC
"""
_PAGE_VERSIONS = """
    SELECT (feed_sequence.seq - 1) / ?, count(*), max(items.updated), group_concat(items.content_hash, '')
    FROM feed_sequence JOIN items ON items.id = feed_sequence.item_id
    WHERE feed_sequence.feed = ? GROUP BY 1
"""


class PageVersion(NamedTuple):
    """What an archive page's bytes depend on, read without loading its items."""

    items: int
    newest_update: str
    content: int  # a hash of its items' content hashes, compared within one process


class _Store(Protocol):
    def _guard(self, doing: str) -> AbstractContextManager[Database]: ...
    def _with_origins(self, rows: list[dict[str, Any]]) -> list[Item]: ...


def _feed(section_slug: str | None) -> str:
    return ALL_FEED if section_slug is None else section_slug


class ArchiveMixin:
    def feed_length(self: _Store, section_slug: str | None) -> int:
        """The highest number given in a feed (None: ``all``): its archive's extent."""
        with self._guard("reading the archive") as db:
            row = db.execute("SELECT max(seq) FROM feed_sequence WHERE feed = ?", [_feed(section_slug)])
            return int(row.fetchone()[0] or 0)

    def archive_items(self: _Store, section_slug: str | None, first: int, last: int) -> list[Item]:
        """The items numbered ``first`` to ``last`` in a feed, last stored first."""
        with self._guard("reading the archive") as db:
            rows = list(db.query(_PAGE_ITEMS, [_feed(section_slug), first, last]))
        return self._with_origins(rows)

    def archive_versions(self: _Store, section_slug: str | None, page_size: int) -> dict[int, PageVersion]:
        """page index (0 for numbers 1..page_size) -> version of every page holding items."""
        with self._guard("reading the archive") as db:
            rows = db.execute(_PAGE_VERSIONS, [page_size, _feed(section_slug)]).fetchall()
        return {int(r[0]): PageVersion(int(r[1]), r[2], hash(r[3])) for r in rows}
