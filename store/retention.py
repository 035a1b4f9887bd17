"""The store's side of ``[store] keep``: deleting old items, except those a
source's current feed document still carries, and the tombstones they leave
(tables of migration ``0010_retention``).

A mixin of ``store.Store``, kept apart so ``store/db.py`` stays small.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlite_utils import Database

from store.archive import ALL_FEED
from store.rows import format_time, parse_time

# Items past the cutoff that no source's current document carries. Seed
# items have no document: their age alone decides.
_EXPIRED = """
    SELECT id, slug, section_slug, published FROM items
    WHERE published < ? AND id NOT IN (
        SELECT o.item_id FROM origins o
        JOIN source_documents d ON d.source = o.name AND d.entry_id = o.entry_id
        WHERE o.kind = 'source'
    )
    ORDER BY published, id
"""
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Tombstone:
    """An item retention deleted, as the feeds it was in announce it."""

    item_id: str
    slug: str
    feeds: tuple[str, ...]  # "all" and the item's section
    published: datetime
    deleted: datetime


@dataclass(frozen=True, slots=True)
class RetentionResult:
    deleted: int
    purged: int  # tombstones past keep_tombstones
    affected: frozenset[str]  # "all" and the sections that lost items


class _Store(Protocol):
    def transaction(self, doing: str = ...) -> AbstractContextManager[Database]: ...
    def _guard(self, doing: str) -> AbstractContextManager[Database]: ...


class RetentionMixin:
    """Retention and tombstones (methods of ``store.Store``)."""

    def apply_retention(
        self: _Store, now: datetime, keep: float | None, keep_tombstones: float
    ) -> RetentionResult:
        """Delete items published more than ``keep`` seconds before ``now``
        (none when ``keep`` is None) that no source's current document
        carries, each leaving a tombstone; purge tombstones deleted more than
        ``keep_tombstones`` seconds ago. One transaction."""
        with self.transaction("applying retention") as db:
            expired = []
            if keep is not None:
                expired = db.execute(_EXPIRED, [format_time(now - timedelta(seconds=keep))]).fetchall()
            affected: set[str] = set()
            for start in range(0, len(expired), _CHUNK):
                affected |= _bury(db, expired[start : start + _CHUNK], format_time(now))
            gone = _purge(db, format_time(now - timedelta(seconds=keep_tombstones)))
        return RetentionResult(len(expired), len(gone), frozenset(affected | {f for g in gone for f in g}))

    def tombstones(self: _Store, feed: str) -> list[Tombstone]:
        """The tombstones of ``feed`` ("all" or a section slug), newest deletion first."""
        sql = """
            SELECT t.item_id, t.slug, t.feeds, t.published, t.deleted FROM tombstones t, json_each(t.feeds) f
            WHERE f.value = ? ORDER BY t.deleted DESC, t.item_id ASC
        """
        with self._guard("reading tombstones") as db:
            return [_tombstone(row) for row in db.execute(sql, [feed]).fetchall()]


def record_document(db: Database, source: str, entry_ids: Iterable[str]) -> None:
    """Remember which entries ``source``'s feed document now carries."""
    db.execute("DELETE FROM source_documents WHERE source = ?", [source])
    db.conn.executemany(
        "INSERT OR IGNORE INTO source_documents (source, entry_id) VALUES (?, ?)",
        [(source, entry_id) for entry_id in entry_ids],
    )


def _bury(db: Database, expired: list[tuple[str, str, str | None, str]], stamp: str) -> set[str]:
    """Delete these items, each leaving a tombstone; the feeds they were in."""
    affected: set[str] = set()
    rows = []
    for item_id, slug, section, published in expired:
        feeds = [ALL_FEED, *([section] if section else [])]
        affected.update(feeds)
        rows.append((item_id, slug, json.dumps(feeds), published, stamp))
    db.conn.executemany(
        "INSERT OR REPLACE INTO tombstones (item_id, slug, feeds, published, deleted) VALUES (?, ?, ?, ?, ?)",
        rows,
    )
    # Origins first (foreign key); the items' delete triggers keep the
    # search index, archive numbering and change log in step.
    ids = [row[0] for row in rows]
    marks = ",".join("?" * len(ids))
    db.execute(f"DELETE FROM origins WHERE item_id IN ({marks})", ids)  # noqa: S608
    db.execute(f"DELETE FROM items WHERE id IN ({marks})", ids)  # noqa: S608
    return affected


def _purge(db: Database, before: str) -> list[tuple[str, ...]]:
    """Drop the tombstones deleted before ``before``; the feeds of each."""
    gone = [
        tuple(json.loads(row[0]))
        for row in db.execute("SELECT feeds FROM tombstones WHERE deleted < ?", [before])
    ]
    # A purged tombstone leaves its feeds: logged as a change, so a running
    # publisher drops it as an export would.
    db.execute(
        "INSERT INTO item_changes (slug, section_slug)"
        " SELECT slug, json_extract(feeds, '$[1]') FROM tombstones WHERE deleted < ?",
        [before],
    )
    db.execute("DELETE FROM tombstones WHERE deleted < ?", [before])
    return gone


def _tombstone(row: tuple[str, str, str, str, str]) -> Tombstone:
    return Tombstone(row[0], row[1], tuple(json.loads(row[2])), parse_time(row[3]), parse_time(row[4]))
