"""The SQLite store: the only place that speaks SQL.

One connection, guarded by a lock, so the daemon's scheduler threads share a
single writer; SQLite runs in WAL mode so readers (status, export) never block
it. Each batch is one transaction: a crash mid-batch leaves the previous
state, never half a batch.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from sqlite_utils import Database

from feeds.errors import StoreError
from feeds.model import Item, ItemWrite, Origin, SectionInfo, SeedFile
from store.archive import ArchiveMixin
from store.changes import ChangesMixin
from store.episodes import EpisodesMixin
from store.retention import RetentionMixin
from store.rows import format_time, parse_time, row_to_item, row_to_origin
from store.schema import migrations
from store.search import SearchMixin, index_pending
from store.sources import SourcesMixin
from store.writes import write_items, write_origins

# SQLITE_CORRUPT and SQLITE_NOTADB: the file is damaged, not merely busy.
_DAMAGED = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
_CHUNK = 500  # SQLite's variable limit is far above this; it keeps IN (...) lists short
_FEED_ALL = "SELECT * FROM items ORDER BY published DESC, id ASC LIMIT ?"
_FEED_SECTION = "SELECT * FROM items WHERE section_slug = ? ORDER BY published DESC, id ASC LIMIT ?"


_CHECKPOINT_PAGES = 8000
# How long an opener waits for another process or thread that holds the write lock.
_BUSY_SECONDS = 30.0


def _migrate(db: Database) -> None:
    """Bring the schema up to date, one opener at a time.

    Migrations.apply reads what is applied and then writes, in separate
    steps: two openers of a new file would both see it empty and both build
    it, and SQLite answers the second writer of a read transaction "database
    is locked" without waiting. So each pending migration is applied under
    BEGIN IMMEDIATE, which takes the write lock first (waiting out the busy
    timeout), and is looked for again once the lock is held: the second
    opener finds it applied. One transaction per migration, so a reader of
    the file sees the first tables as soon as they are made.
    """
    while pending := migrations.pending(db):
        db.execute("BEGIN IMMEDIATE")
        try:
            later = [m.name for m in migrations.pending(db)[1:]]
            migrations.apply(db, stop_before=later or None)
        except BaseException:
            db.conn.rollback()
            raise
        db.execute("COMMIT")
        if migrations.pending(db) == pending:  # cannot happen; never loop on it
            raise sqlite3.OperationalError(f"migration {pending[0].name} did not apply")


def _capped_feed(section_slug: str | None, caps: Mapping[str, int]) -> tuple[str, list[Any]]:
    """The feed query leaving out, for each capped source, its items past
    the cap (ranked newest first among that source's items of this feed)."""
    names = sorted(caps)
    values = ", ".join("(?, ?)" for _ in names)
    where = "i.section_slug = ?" if section_slug is not None else "1"
    params: list[Any] = [v for n in names for v in (n, caps[n])]
    section = [section_slug] if section_slug is not None else []
    sql = f"""
        WITH caps(name, cap) AS (VALUES {values}),
        ranked AS (
            SELECT o.item_id, o.name, row_number() OVER (
                PARTITION BY o.name ORDER BY i.published DESC, i.id ASC) AS n
            FROM origins o JOIN items i ON i.id = o.item_id
            WHERE o.kind = 'source' AND o.name IN (SELECT name FROM caps) AND {where}
        )
        SELECT i.* FROM items i WHERE {where} AND i.id NOT IN (
            SELECT r.item_id FROM ranked r JOIN caps c ON c.name = r.name WHERE r.n > c.cap)
        ORDER BY i.published DESC, i.id ASC LIMIT ?
    """  # noqa: S608 (placeholders only; no input in the text)
    return sql, [*params, *section, *section]


def _while_busy(step: Callable[[], object]) -> None:
    """Run ``step``, again while SQLite reports the file locked: switching
    a new file to WAL needs it to itself, and SQLite may refuse that at once
    rather than call the busy handler."""
    deadline = time.monotonic() + _BUSY_SECONDS
    pause = 0.005
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as e:
            if ("locked" not in str(e) and "busy" not in str(e)) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


# SQLite's codes for a store that cannot be written at all (full, read-only,
# I/O error, gone, damaged): no write of any source can succeed after one.
_UNWRITABLE = (
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_CORRUPT,
    sqlite3.SQLITE_NOTADB,
)


def store_unwritable(error: BaseException) -> bool:
    """Whether a StoreError means the store cannot be written at all (a full or
    read-only disk), rather than that one write failed."""
    cause = error.__cause__
    return isinstance(cause, sqlite3.Error) and getattr(cause, "sqlite_errorcode", 0) & 0xFF in _UNWRITABLE


def is_read_only(path: Path) -> bool:
    """Whether the store at ``path`` (or the folder it would be made in) cannot be
    written: a read-only file system, or no write permission."""
    existing = path if path.exists() else next((p for p in path.parents if p.exists()), path)
    try:
        if os.statvfs(existing).f_flag & os.ST_RDONLY:
            return True
    except OSError:
        return False
    folder = existing if existing.is_dir() else existing.parent
    return not os.access(folder, os.W_OK) or (existing.is_file() and not os.access(existing, os.W_OK))


class ItemVersion(NamedTuple):
    """What a permalink page depends on, read without loading the item."""

    slug: str
    content_hash: str
    section_slug: str | None
    has_link: bool  # items with a link of their own get no page


class Store(SourcesMixin, SearchMixin, EpisodesMixin, ArchiveMixin, ChangesMixin, RetentionMixin):
    """Items, their provenance and ingest bookkeeping in one SQLite file
    (remote source state and lookups: ``store.sources``; search: ``store.search``;
    archive numbering: ``store.archive``; retention: ``store.retention``)."""

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        """Open (creating and migrating) the store; ``read_only`` opens an
        existing one for reading only, as it is, which works on a read-only
        disk or file and never writes."""
        self.path = Path(path)
        self.read_only = read_only
        self._lock = threading.RLock()
        # Set once SQLite reports the file corrupt: a damaged file does not heal
        # while open, so health keeps saying so even when a cheap query works.
        self.damage: str | None = None
        if read_only:
            self._open_read_only()
            return
        try:
            if str(path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), check_same_thread=False, timeout=_BUSY_SECONDS)
            self.db = Database(conn)
            self.db.execute("PRAGMA foreign_keys = ON")
            self.db.execute(f"PRAGMA busy_timeout = {int(_BUSY_SECONDS * 1000)}")
            if str(path) != ":memory:":
                _while_busy(self.db.enable_wal)
                # In WAL mode NORMAL is still crash-safe (a power cut may lose the
                # last commits, never corrupt); FULL's fsync per commit made a
                # refresh of 1,000 sources, one transaction each, disk-bound.
                self.db.execute("PRAGMA synchronous = NORMAL")
                # A source's transaction writes some 400 pages (random index
                # leaves mostly), so the default checkpoint every 1,000 pages
                # copied and fsynced the file every other source: half of a
                # cold refresh's commits. Every 8,000 pages (a WAL of about
                # 32 MB) rewrites hot pages once per checkpoint instead.
                self.db.execute(f"PRAGMA wal_autocheckpoint = {_CHECKPOINT_PAGES}")
            _while_busy(lambda: _migrate(self.db))
        except (sqlite3.Error, OSError) as e:
            if is_read_only(self.path):
                raise StoreError(
                    "cannot open the store for writing: it is read-only (only `feeds status`"
                    " and `feeds serve --get` can use it)",
                    subject=str(path),
                ) from e
            raise StoreError(f"cannot open the store: {e}", subject=str(path)) from e

    def _open_read_only(self) -> None:
        try:
            self.db = Database(self._reading_connection("mode=ro"))
        except sqlite3.Error as e:
            if not is_read_only(self.path):
                raise StoreError(f"cannot open the store for reading: {e}", subject=str(self.path)) from e
            # A WAL store with no -shm file cannot be opened mode=ro where the
            # -shm cannot be made. Nothing can write it either, so SQLite may
            # read it as immutable: no locks, no shared memory.
            try:
                self.db = Database(self._reading_connection("immutable=1"))
            except sqlite3.Error as again:
                raise StoreError(
                    f"cannot open the store for reading: it is read-only and {again}", subject=str(self.path)
                ) from again

    def _reading_connection(self, mode: str) -> sqlite3.Connection:
        uri = f"{self.path.resolve().as_uri()}?{mode}"
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=_BUSY_SECONDS)
        try:
            conn.execute("PRAGMA query_only = ON")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _guard(self, doing: str) -> Iterator[Database]:
        """Serialise access and turn SQLite failures into one StoreError."""
        with self._lock:
            try:
                yield self.db
            except sqlite3.Error as e:
                if getattr(e, "sqlite_errorcode", 0) & 0xFF in _DAMAGED:
                    self.damage = f"{doing} failed: {e}"
                raise StoreError(f"{doing} failed: {e}", subject=str(self.path)) from e

    @contextmanager
    def transaction(self, doing: str = "write") -> Iterator[Database]:
        """One atomic unit of writes; rolled back whole on any error."""
        with self._guard(doing) as db, db.atomic():
            yield db

    # -- seed files ---------------------------------------------------------

    def seed_file_hashes(self) -> dict[str, str]:
        with self._guard("reading seed files") as db:
            return {row["name"]: row["sha256"] for row in db.table("seed_files").rows}

    # -- items --------------------------------------------------------------

    def items_by_keys(self, keys: Iterable[str]) -> dict[str, list[Item]]:
        """Stored items whose folded title is one of ``keys``, grouped by key."""
        found: dict[str, list[Item]] = {}
        for row in self._rows_where_in("items", "key", keys):
            found.setdefault(row["key"], []).append(row_to_item(row))
        return found

    def items_by_ids(self, ids: Iterable[str]) -> dict[str, Item]:
        return {row["id"]: row_to_item(row) for row in self._rows_where_in("items", "id", ids)}

    def _rows_where_in(self, table: str, column: str, values: Iterable[str]) -> list[dict[str, Any]]:
        wanted = sorted(set(values))
        rows: list[dict[str, Any]] = []
        with self._guard(f"reading {table}") as db:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                # Plain SQL: sqlite-utils' rows_where reads the schema twice a call.
                cursor = db.execute(f"SELECT * FROM [{table}] WHERE [{column}] IN ({marks})", chunk)  # noqa: S608
                names = [c[0] for c in cursor.description]
                rows.extend(dict(zip(names, row, strict=True)) for row in cursor.fetchall())
        return rows

    def write_batch(
        self,
        writes: Sequence[ItemWrite],
        seed_files: Sequence[SeedFile] = (),
        sightings: Sequence[tuple[str, Origin]] = (),
    ) -> None:
        """Upsert items, their origins and the seed files they came from, atomically.

        ``sightings`` are (item id, origin) pairs for stored items that did not
        change but were seen again somewhere: provenance only. The batch is
        indexed for search in the same transaction.
        """
        with self.transaction("writing items") as db:
            write_items(db, writes)
            write_origins(db, sightings)
            index_pending(db)
            if seed_files:
                db.table("seed_files").upsert_all(
                    [
                        {
                            "name": f.name,
                            "sha256": f.sha256,
                            "size": f.size,
                            "items": f.items,
                            "ingested_at": format_time(f.ingested_at),
                        }
                        for f in seed_files
                    ],
                    pk="name",
                )

    def feed_items(
        self, section_slug: str | None, limit: int, caps: Mapping[str, int] | None = None
    ) -> list[Item]:
        """Newest ``limit`` items of a section (None: every item), in feed order;
        ``caps``: the most items each named source may give (its newest)."""
        params: list[Any]
        if caps:
            sql, params = _capped_feed(section_slug, caps)
            params.append(limit)
        elif section_slug is None:
            sql, params = _FEED_ALL, [limit]
        else:
            sql, params = _FEED_SECTION, [section_slug, limit]
        with self._guard("reading items") as db:
            rows = list(db.query(sql, params))
        return self._with_origins(rows)

    def iter_items(self, batch: int = 1000) -> Iterator[Item]:
        """Every stored item, in id order, a batch at a time (for permalink pages)."""
        last = ""
        while True:
            with self._guard("reading items") as db:
                rows = list(db.table("items").rows_where("id > ?", [last], order_by="id", limit=batch))
            if not rows:
                return
            yield from self._with_origins(rows)
            last = rows[-1]["id"]

    def _with_origins(self, rows: list[dict[str, Any]]) -> list[Item]:
        by_item: dict[str, list[Origin]] = {}
        for row in self._rows_where_in("origins", "item_id", [r["id"] for r in rows]):
            by_item.setdefault(row["item_id"], []).append(row_to_origin(row))
        for origins in by_item.values():
            origins.sort(key=lambda o: (o.kind, o.name))
        return [row_to_item(r, tuple(by_item.get(r["id"], ()))) for r in rows]

    def sections(self) -> list[SectionInfo]:
        """Every section that has items, by slug, with its label, size and newest date."""
        sql = """
            SELECT section_slug, min(section) AS label, count(*) AS items,
                   max(published) AS newest
            FROM items WHERE section_slug IS NOT NULL
            GROUP BY section_slug ORDER BY section_slug
        """
        with self._guard("reading sections") as db:
            rows = db.execute(sql).fetchall()
        return [
            SectionInfo(slug=r[0], label=r[1], items=r[2], newest=parse_time(r[3]) if r[3] else None)
            for r in rows
        ]

    def count_items(self) -> int:
        with self._guard("counting items") as db:
            return int(db.execute("SELECT count(*) FROM items").fetchone()[0])

    def newest_item(self) -> Item | None:
        items = self.feed_items(None, 1)
        return items[0] if items else None

    def items_by_slugs(self, slugs: Iterable[str]) -> dict[str, Item]:
        """Stored items by permalink slug (the daemon renders item pages on demand)."""
        return {item.slug: item for item in self._with_origins(self._rows_where_in("items", "slug", slugs))}

    def iter_item_versions(self, batch: int = 5000) -> Iterator[ItemVersion]:
        """Slug, content hash, section and link of every item, a batch at a time:
        enough for the daemon to tell which permalink pages changed without
        holding 50,000 items (or rows) in memory at once."""
        sql = (
            "SELECT slug, content_hash, section_slug, link IS NOT NULL FROM items"
            " WHERE slug > ? ORDER BY slug LIMIT ?"
        )
        last = ""
        while True:
            with self._guard("reading item versions") as db:
                rows = db.execute(sql, [last, batch]).fetchall()
            if not rows:
                return
            for row in rows:
                yield ItemVersion(row[0], row[1], row[2], bool(row[3]))
            last = rows[-1][0]
