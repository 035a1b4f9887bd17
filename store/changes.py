"""What the publisher reads to republish only what changed: the change log
that migration ``0008_publish_changes`` keeps by triggers, and the dates
each published file's bytes last changed.

A mixin of ``store.Store``, kept apart so ``store/db.py`` stays small.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlite_utils import Database

from store.rows import format_time, parse_time

# Changes kept beyond the newest; a consumer further behind republishes everything.
KEEP_CHANGES = 200_000


@dataclass(frozen=True, slots=True)
class Changes:
    """Items whose published bytes may differ since ``since``, up to ``seq``.

    ``complete`` is False when the log no longer reaches back to ``since``
    (it was trimmed, or the store is another one): republish everything.
    """

    since: int
    seq: int
    slugs: frozenset[str]
    sections: frozenset[str | None]
    complete: bool = True

    @property
    def empty(self) -> bool:
        return self.complete and not self.slugs


class _Store(Protocol):
    read_only: bool

    def _guard(self, doing: str) -> AbstractContextManager[Database]: ...
    def transaction(self, doing: str = "write") -> AbstractContextManager[Database]: ...


class ChangesMixin:
    def data_version(self: _Store) -> int:
        """SQLite's data_version: it moves when another connection commits (a cheap poll)."""
        with self._guard("polling the store") as db:
            return int(db.execute("PRAGMA data_version").fetchone()[0])

    def last_change(self: _Store) -> int:
        """The newest change's number (0: none yet)."""
        with self._guard("reading changes") as db:
            row = db.execute("SELECT max(seq) FROM item_changes").fetchone()
        return int(row[0] or 0)

    def changes_since(self: _Store, since: int) -> Changes:
        """Every change after ``since``."""
        with self._guard("reading changes") as db:
            oldest, newest = db.execute("SELECT min(seq), max(seq) FROM item_changes").fetchone()
            rows = db.execute(
                "SELECT DISTINCT slug, section_slug FROM item_changes WHERE seq > ?", [since]
            ).fetchall()
        newest = int(newest or since)
        complete = since >= newest or (oldest is not None and oldest <= since + 1)
        return Changes(
            since=since,
            seq=max(newest, since),
            slugs=frozenset(r[0] for r in rows),
            sections=frozenset(r[1] for r in rows),
            complete=complete,
        )

    def trim_changes(self: _Store, keep: int = KEEP_CHANGES) -> None:
        """Forget all but the newest ``keep`` changes."""
        with self.transaction("trimming changes") as db:
            newest = "SELECT max(seq) FROM item_changes"
            db.execute(f"DELETE FROM item_changes WHERE seq <= ({newest}) - ?", [keep])  # noqa: S608

    def published_dates(self: _Store) -> dict[str, tuple[str, datetime]]:
        """path -> (digest, when its bytes last changed) of every published file recorded."""
        with self._guard("reading published dates") as db:
            rows = db.execute("SELECT path, digest, modified FROM published").fetchall()
        return {r[0]: (r[1], parse_time(r[2])) for r in rows}

    def save_published_dates(self: _Store, dates: Mapping[str, tuple[str, datetime]]) -> None:
        if not dates or self.read_only:  # a read-only store is served as it is: dates not kept
            return
        rows = [{"path": p, "digest": d, "modified": format_time(m)} for p, (d, m) in dates.items()]
        with self.transaction("recording published dates") as db:
            db.table("published").upsert_all(rows, pk="path")

    def forget_published(self: _Store, paths: Iterable[str]) -> None:
        wanted = list(paths)
        if not wanted or self.read_only:
            return
        with self.transaction("forgetting published files") as db:
            db.conn.executemany("DELETE FROM published WHERE path = ?", [(p,) for p in wanted])
