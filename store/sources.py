"""The store's SQL for remote sources: their state, and the lookups that
find which stored item a remote entry is.

A mixin of ``store.Store``, kept apart so ``store/db.py`` stays small; it
uses the Store's lock, transaction and item writer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from sqlite_utils import Database

from feeds.model import Item, ItemWrite, SourceState
from store.episodes import record_episodes
from store.retention import record_document
from store.rows import format_time, parse_time
from store.writes import updates_of, upsert, write_items

_TIMES = ("last_attempt", "last_success", "backoff_until", "next_due")


class StoredEntry(NamedTuple):
    """An entry a source brought before: the item it is and that item's content hash."""

    item_id: str
    content_hash: str


@dataclass(frozen=True, slots=True)
class RemoteMatches:
    """Stored items a batch of one source's entries may be, each with its origins."""

    by_entry: dict[str, Item] = field(default_factory=dict)  # this source's entry key -> item
    by_id: dict[str, Item] = field(default_factory=dict)
    by_link: dict[str, list[Item]] = field(default_factory=dict)  # canonical link -> items
    by_key: dict[str, list[Item]] = field(default_factory=dict)  # folded title -> items


def state_to_row(state: SourceState) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": state.name,
        "url": state.url,
        "current_url": state.current_url,
        "etag": state.etag,
        "last_modified": state.last_modified,
        "body_hash": state.body_hash,
        "last_status": state.last_status,
        "last_error": state.last_error,
        "error_count": state.error_count,
        "min_interval": state.min_interval,
        "disabled": int(state.disabled),
        "title": state.title,
        "warning": state.warning,
        "skip_hours": json.dumps(list(state.skip_hours)),
        "skip_days": json.dumps(list(state.skip_days)),
    }
    for name in _TIMES:
        moment = getattr(state, name)
        row[name] = format_time(moment) if moment else None
    return row


def row_to_state(row: dict[str, Any]) -> SourceState:
    times = {name: parse_time(row[name]) if row[name] else None for name in _TIMES}
    return SourceState(
        name=row["name"],
        url=row["url"],
        current_url=row["current_url"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        body_hash=row["body_hash"],
        last_status=row["last_status"],
        last_error=row["last_error"],
        error_count=row["error_count"] or 0,
        min_interval=row["min_interval"],
        disabled=bool(row["disabled"]),
        items=row.get("items") or 0,
        title=row["title"],
        warning=row["warning"],
        skip_hours=tuple(json.loads(row["skip_hours"] or "[]")),
        skip_days=tuple(json.loads(row["skip_days"] or "[]")),
        **times,
    )


class _Store(Protocol):
    """What the mixin uses of ``store.Store``."""

    def _guard(self, doing: str) -> AbstractContextManager[Database]: ...
    def transaction(self, doing: str = ...) -> AbstractContextManager[Database]: ...
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

    def source_state(self: _Store, name: str) -> SourceState | None:
        """One source's state (its item count left at 0): what a writer checks a result against."""
        with self._guard("reading a source") as db:
            rows = list(db["sources"].rows_where("name = ?", [name]))
        return row_to_state(rows[0]) if rows else None

    def save_source_state(self: _Store, state: SourceState) -> None:
        self.save_source_states([state])

    def save_source_states(self: _Store, states: Sequence[SourceState]) -> None:
        """Store states that came with no item changes, in one transaction."""
        if states:
            with self.transaction("saving source states") as db:
                upsert_states(db, states)

    def write_source(
        self: _Store, state: SourceState, writes: Sequence[ItemWrite], carried: Sequence[str] | None = None
    ) -> None:
        """One source's refresh, atomically: its items, their origins and its
        state; ``carried``, the entry keys of the document fetched, replaces
        what retention keeps for this source (None: unchanged)."""
        with self.transaction(f"writing source {state.name}") as db:
            write_items(db, writes)
            if carried is not None:
                record_document(db, state.name, carried)
            upsert_states(db, [state])

    def source_entries(self: _Store, source: str) -> dict[str, StoredEntry]:
        """Every entry ``source`` brought, by entry key: its item and that item's
        content hash. One query, so an entry that did not change costs the
        writer a dict lookup and a string comparison."""
        sql = """
            SELECT o.entry_id, o.item_id, i.content_hash FROM origins o JOIN items i ON i.id = o.item_id
            WHERE o.kind = 'source' AND o.name = ? AND o.entry_id IS NOT NULL
        """
        with self._guard("reading origins") as db:
            return {row[0]: StoredEntry(row[1], row[2]) for row in db.execute(sql, [source]).fetchall()}

    def remote_matches(
        self: _Store,
        entry_items: Mapping[str, str],
        ids: Iterable[str],
        links: Iterable[str],
        keys: Iterable[str],
    ) -> RemoteMatches:
        """Stored items that entries of a source may be: by its own entry keys
        (``entry_items``: entry key -> item id, from ``source_entries``), by
        item id, by canonical link or by folded title."""
        rows = {r["id"]: r for r in self._rows_where_in("items", "id", [*entry_items.values(), *ids])}
        rows.update({r["id"]: r for r in self._rows_where_in("items", "canonical_link", links)})
        rows.update({r["id"]: r for r in self._rows_where_in("items", "key", keys)})
        canonical = {r["id"]: r["canonical_link"] for r in rows.values()}
        items = {i.id: i for i in self._with_origins(list(rows.values()))}
        matches = RemoteMatches(
            by_entry={k: items[v] for k, v in entry_items.items() if v in items},
            by_id=items,
        )
        for item in items.values():
            if canonical[item.id]:
                matches.by_link.setdefault(canonical[item.id], []).append(item)
            matches.by_key.setdefault(item.key, []).append(item)
        return matches


def upsert_states(db: Database, states: Sequence[SourceState]) -> None:
    """Insert or replace source states."""
    if states:
        rows = [state_to_row(s) for s in states]
        upsert(db, "sources", rows, updates_of(tuple(rows[0]), ("name",)), "name")
        record_episodes(db, states)
