"""The store's SQL for remote sources: their state, and the lookups that
find which stored item a remote entry is.

A mixin of ``store.Store``, kept apart so ``store/db.py`` stays small; it
uses the Store's lock, transaction and item writer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlite_utils import Database

from feeds.model import Item, ItemWrite, SourceState
from store.rows import format_time, item_to_row, origin_to_row, parse_time

_TIMES = ("last_attempt", "last_success", "backoff_until", "next_due")


@dataclass(frozen=True, slots=True)
class RemoteMatches:
    """Stored items a batch of one source's entries may be, each with its origins."""

    by_entry: dict[str, Item] = field(default_factory=dict)  # this source's entry key -> item
    by_id: dict[str, Item] = field(default_factory=dict)
    by_link: dict[str, list[Item]] = field(default_factory=dict)  # canonical link -> items
    by_key: dict[str, list[Item]] = field(default_factory=dict)  # folded title -> items


def state_to_row(state: SourceState) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": state.name, "url": state.url, "current_url": state.current_url,
        "etag": state.etag, "last_modified": state.last_modified, "body_hash": state.body_hash,
        "last_status": state.last_status, "last_error": state.last_error,
        "error_count": state.error_count, "min_interval": state.min_interval,
        "disabled": int(state.disabled), "title": state.title, "warning": state.warning,
        "skip_hours": json.dumps(list(state.skip_hours)), "skip_days": json.dumps(list(state.skip_days)),
    }
    for name in _TIMES:
        moment = getattr(state, name)
        row[name] = format_time(moment) if moment else None
    return row


def row_to_state(row: dict[str, Any]) -> SourceState:
    times = {name: parse_time(row[name]) if row[name] else None for name in _TIMES}
    return SourceState(
        name=row["name"], url=row["url"], current_url=row["current_url"], etag=row["etag"],
        last_modified=row["last_modified"], body_hash=row["body_hash"],
        last_status=row["last_status"], last_error=row["last_error"],
        error_count=row["error_count"] or 0, min_interval=row["min_interval"],
        disabled=bool(row["disabled"]), items=row.get("items") or 0, title=row["title"],
        warning=row["warning"], skip_hours=tuple(json.loads(row["skip_hours"] or "[]")),
        skip_days=tuple(json.loads(row["skip_days"] or "[]")), **times,
    )


class _Store(Protocol):
    """What the mixin uses of ``store.Store``."""

    def _guard(self, doing: str) -> AbstractContextManager[Database]: ...
    def transaction(self, doing: str = ...) -> AbstractContextManager[Database]: ...
    def _write_items(self, db: Database, writes: Sequence[ItemWrite]) -> None: ...
    def _rows_where_in(self, table: str, column: str, values: Iterable[str]) -> list[dict[str, Any]]: ...
    def _with_origins(self, rows: list[dict[str, Any]]) -> list[Item]: ...
    def save_source_states(self, states: Sequence[SourceState]) -> None: ...


class SourcesMixin:
    """Source state and remote-entry lookups (methods of ``store.Store``)."""

    def source_states(self: _Store) -> list[SourceState]:
        """Every source the store remembers, with the number of items it brought."""
        sql = """
            SELECT s.*, (SELECT count(*) FROM origins o
                         WHERE o.kind = 'source' AND o.name = s.name) AS items
            FROM sources s ORDER BY s.name
        """
        with self._guard("reading sources") as db:
            cursor = db.execute(sql)
            columns = [c[0] for c in cursor.description]
            return [row_to_state(dict(zip(columns, r, strict=True))) for r in cursor.fetchall()]

    def save_source_state(self: _Store, state: SourceState) -> None:
        self.save_source_states([state])

    def save_source_states(self: _Store, states: Sequence[SourceState]) -> None:
        """Store states that came with no item changes, in one transaction."""
        if states:
            with self.transaction("saving source states") as db:
                _upsert_states(db, states)

    def write_source(self: _Store, state: SourceState, writes: Sequence[ItemWrite]) -> None:
        """One source's refresh, atomically: its items, their origins and its state."""
        with self.transaction(f"writing source {state.name}") as db:
            if writes:
                _write_remote_items(db, writes)
            _upsert_states(db, [state])

    def remote_matches(
        self: _Store,
        source: str,
        entry_keys: Iterable[str],
        ids: Iterable[str],
        links: Iterable[str],
        keys: Iterable[str],
    ) -> RemoteMatches:
        """Stored items that entries of ``source`` may be: by its own entry keys,
        by item id, by canonical link or by folded title."""
        entry_keys = list(entry_keys)
        by_entry_ids: dict[str, str] = {}
        with self._guard("reading origins") as db:
            for start in range(0, len(entry_keys), 500):
                chunk = entry_keys[start : start + 500]
                marks = ",".join("?" * len(chunk))  # only placeholders are formatted in
                sql = f"SELECT entry_id, item_id FROM origins WHERE kind = 'source' AND name = ? AND entry_id IN ({marks})"  # noqa: E501, S608
                by_entry_ids.update(db.execute(sql, [source, *chunk]).fetchall())
        rows = {r["id"]: r for r in self._rows_where_in("items", "id", [*by_entry_ids.values(), *ids])}
        rows.update({r["id"]: r for r in self._rows_where_in("items", "canonical_link", links)})
        rows.update({r["id"]: r for r in self._rows_where_in("items", "key", keys)})
        canonical = {r["id"]: r["canonical_link"] for r in rows.values()}
        items = {i.id: i for i in self._with_origins(list(rows.values()))}
        matches = RemoteMatches(
            by_entry={k: items[v] for k, v in by_entry_ids.items() if v in items},
            by_id=items,
        )
        for item in items.values():
            if canonical[item.id]:
                matches.by_link.setdefault(canonical[item.id], []).append(item)
            matches.by_key.setdefault(item.key, []).append(item)
        return matches


def _upsert_states(db: Database, states: Sequence[SourceState]) -> None:
    db.table("sources").upsert_all([state_to_row(s) for s in states], pk="name")


# One prepared statement per batch instead of sqlite-utils' upsert_all, which
# inspects the schema on every call: a cold refresh writes 50,000 items and
# this is most of the writer's time. ``first_seen`` is set once, on insert.
_ORIGIN_UPSERT = """
    INSERT INTO origins (item_id, kind, name, url, title, entry_id, first_seen, last_seen)
    VALUES (:item_id, :kind, :name, :url, :title, :entry_id, :first_seen, :last_seen)
    ON CONFLICT (item_id, kind, name) DO UPDATE SET
        url = excluded.url, title = excluded.title,
        entry_id = coalesce(excluded.entry_id, origins.entry_id),
        first_seen = coalesce(origins.first_seen, excluded.first_seen),
        last_seen = coalesce(excluded.last_seen, origins.last_seen)
"""


def _item_upsert(columns: Sequence[str]) -> str:
    updates = ", ".join(f"[{c}] = excluded.[{c}]" for c in columns if c not in ("id", "first_seen"))
    names = ", ".join(f"[{c}]" for c in columns)
    values = ", ".join(f":{c}" for c in columns)
    return f"INSERT INTO items ({names}) VALUES ({values}) ON CONFLICT (id) DO UPDATE SET {updates}"  # noqa: S608


def _write_remote_items(db: Database, writes: Sequence[ItemWrite]) -> None:
    rows = [item_to_row(w.item, w.canonical_link, w.item.updated) for w in writes]
    db.conn.executemany(_item_upsert(list(rows[0])), rows)
    origins = [origin_to_row(w.item.id, o) for w in writes for o in w.origins]
    if origins:
        db.conn.executemany(_ORIGIN_UPSERT, origins)
