"""The store's item-write path: items, origins and source states as
multi-row upserts. Seeds and remote sources write through here alike.

Rows go in as multi-row INSERT ... VALUES (...), (...) upserts: executemany
steps SQLite once per row and releases the GIL around every step, and with
fetch threads waiting for it the writer then waits to get it back, up to a
switch interval (5 ms) a row. sqlite-utils' upsert_all, before that, also
read the schema on every call. A cold refresh writes 50,000 items, a year
of seeds 80,000.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlite_utils import Database

from feeds.model import ItemWrite, Origin
from store.rows import item_to_row, origin_to_row

_ROWS_PER_STATEMENT = 100
# The first sighting of an origin stays; everything else is refreshed.
_ORIGIN_UPDATES = """
    url = excluded.url, title = excluded.title,
    entry_id = coalesce(excluded.entry_id, origins.entry_id),
    first_seen = coalesce(origins.first_seen, excluded.first_seen),
    last_seen = coalesce(excluded.last_seen, origins.last_seen)
"""


def write_items(db: Database, writes: Sequence[ItemWrite]) -> None:
    """Upsert items (an item's ``first_seen`` is kept from its first write) and their origins."""
    if not writes:
        return
    rows = [item_to_row(w.item, w.canonical_link, w.item.updated, w.content_hash) for w in writes]
    upsert(db, "items", rows, updates_of(tuple(rows[0]), ("id", "first_seen")), "id")
    write_origins(db, [(w.item.id, o) for w in writes for o in w.origins])


def write_origins(db: Database, origins: Sequence[tuple[str, Origin]]) -> None:
    """Upsert (item id, origin) pairs: provenance, keeping each origin's first sighting."""
    rows = [origin_to_row(item_id, o) for item_id, o in origins]
    if rows:
        upsert(db, "origins", rows, _ORIGIN_UPDATES, "item_id, kind, name")


def upsert(db: Database, table: str, rows: Sequence[dict[str, Any]], updates: str, key: str) -> None:
    """Insert ``rows`` (dicts with the same keys), updating those already there."""
    columns = tuple(rows[0])
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start : start + _ROWS_PER_STATEMENT]
        sql = _upsert_sql(table, columns, len(chunk), updates, key)
        db.conn.execute(sql, [row[c] for row in chunk for c in columns])


@lru_cache(maxsize=512)
def _upsert_sql(table: str, columns: tuple[str, ...], count: int, updates: str, key: str) -> str:
    """INSERT of ``count`` rows that updates the rows already there. Names
    come from our own row dicts, never from input."""
    row = "(" + ",".join("?" * len(columns)) + ")"
    names = ", ".join(f"[{c}]" for c in columns)
    values = ",".join([row] * count)
    return f"INSERT INTO [{table}] ({names}) VALUES {values} ON CONFLICT ({key}) DO UPDATE SET {updates}"  # noqa: S608


@lru_cache(maxsize=8)
def updates_of(columns: tuple[str, ...], kept: tuple[str, ...]) -> str:
    """``SET`` clause replacing every column but the ``kept`` ones."""
    return ", ".join(f"[{c}] = excluded.[{c}]" for c in columns if c not in kept)
