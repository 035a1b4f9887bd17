"""Backups and health checks of a store file, without opening it for writing.

``Store()`` migrates and switches to WAL on open; a check must see the file
as it is, and a backup must not take the writer's lock. Both read through a
read-only connection of their own, so they work beside a running daemon.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sqlite_utils import Database

from feeds.errors import StoreError
from store.schema import migrations

_BUSY_MS = 30_000


@dataclass(frozen=True, slots=True)
class StoreHealth:
    """What ``inspect_store`` found; healthy when ``problems`` is empty."""

    items: int
    pending_migrations: tuple[str, ...]  # known to this program, not yet applied
    unknown_migrations: tuple[str, ...]  # applied by a newer program
    problems: tuple[str, ...]  # integrity_check's complaints, and migrations out of step


@contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    if not path.is_file():
        raise StoreError("no store file", subject=str(path))
    try:
        conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
    except sqlite3.Error as e:
        raise StoreError(f"cannot open the store: {e}", subject=str(path)) from e
    with closing(conn):
        yield conn


def _integrity(conn: sqlite3.Connection) -> list[str]:
    rows = [str(row[0]) for row in conn.execute("PRAGMA integrity_check")]
    return [] if rows == ["ok"] else rows


def _items(conn: sqlite3.Connection) -> int:
    has_items = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'items'").fetchone()
    return int(conn.execute("SELECT count(*) FROM items").fetchone()[0]) if has_items else 0


def inspect_store(path: Path) -> StoreHealth:
    """``PRAGMA integrity_check`` and the migrations of the store at ``path``, read-only."""
    with _read_only(path) as conn:
        try:
            problems = _integrity(conn)
            db = Database(conn)
            applied = {m.name for m in migrations.applied(db)}
            pending = tuple(m.name for m in migrations.pending(db))
            items = _items(conn)
        except sqlite3.Error as e:  # "file is not a database", a torn header ...
            raise StoreError(f"cannot read the store: {e}", subject=str(path)) from e
    known = {m.name for m in migrations.pending(Database(memory=True))}  # all of them, on an empty file
    unknown = tuple(sorted(applied - known))
    if pending:
        problems.append(f"migrations not applied yet: {', '.join(pending)} (any feeds command applies them)")
    if unknown:
        problems.append(f"migrations from a newer version of this program: {', '.join(unknown)}")
    return StoreHealth(items, pending, unknown, tuple(problems))


def backup_store(path: Path, target: Path) -> int:
    """Copy the store at ``path`` to ``target`` consistently, beside a running writer.

    SQLite's backup API copies every page in one step, inside one read
    transaction: the copy is the store as of one commit, with every
    transaction committed before it began and none half. The writer is not
    blocked (WAL). The copy is checked and switched to a rollback journal, so
    it is one self-contained file, then renamed into place. Returns its item count.
    """
    if target.resolve() == path.resolve():
        raise StoreError("refusing to back the store up over itself", subject=str(target))
    try:
        fd, temp_name = tempfile.mkstemp(prefix=".backup-", suffix=".db", dir=target.parent)
    except OSError as e:
        raise StoreError(f"cannot write the backup: {e.strerror or e}", subject=str(target)) from e
    os.close(fd)
    temp = Path(temp_name)
    try:
        with _read_only(path) as source, closing(sqlite3.connect(temp)) as copy:
            source.backup(copy)
            copy.execute("PRAGMA journal_mode = DELETE")
            problems = _integrity(copy)
            items = _items(copy)
        if problems:
            raise StoreError(f"the copy fails integrity_check: {problems[0]}", subject=str(path))
        temp.chmod(0o600)  # the store may hold what is not public yet
        temp.replace(target)
    except sqlite3.Error as e:
        raise StoreError(f"backup failed: {e}", subject=str(path)) from e
    except OSError as e:
        raise StoreError(f"cannot write the backup: {e.strerror or e}", subject=str(target)) from e
    finally:
        temp.unlink(missing_ok=True)
    return items
