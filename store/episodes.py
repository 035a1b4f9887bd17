"""The store's SQL for error episodes: each unbroken run of a source's failures.

Episodes are derived from the source states as they are saved, in the same
transaction (``record_episodes`` is called by ``upsert_states``), so every
writer of states (the updater, the cluster's result writer) keeps them, and
a state saved twice records nothing new: the update is idempotent.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from sqlite_utils import Database

from feeds.model import ErrorEpisode, SourceState
from store.rows import format_time, parse_time

_OPEN = "SELECT id, source FROM source_episodes WHERE ended IS NULL AND source IN ({})"


class _Store(Protocol):
    def _guard(self, doing: str) -> AbstractContextManager[Database]: ...


def _failing(state: SourceState) -> bool:
    return state.error_count > 0 or state.disabled


def record_episodes(db: Database, states: Sequence[SourceState]) -> None:
    """Open, extend or end each state's source's episode as its state says."""
    names = [s.name for s in states]
    open_ids: dict[str, int] = {}
    for start in range(0, len(names), 500):
        chunk = names[start : start + 500]
        rows = db.execute(_OPEN.format(", ".join("?" * len(chunk))), chunk).fetchall()
        open_ids.update({row[1]: row[0] for row in rows})
    for state in states:
        episode = open_ids.get(state.name)
        when = state.last_attempt or state.last_success
        if _failing(state) and when is not None:
            fields = [format_time(when), state.last_error or "failed", max(1, state.error_count)]
            if episode is None:
                db.execute(
                    "INSERT INTO source_episodes (source, started, last_failure, last_error, failures)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [state.name, fields[0], *fields],
                )
            else:
                db.execute(
                    "UPDATE source_episodes SET last_failure = ?, last_error = ?, failures = ? WHERE id = ?",
                    [*fields, episode],
                )
        elif not _failing(state) and episode is not None and when is not None:
            ended = state.last_success or when
            db.execute("UPDATE source_episodes SET ended = ? WHERE id = ?", [format_time(ended), episode])


def _episode(row: dict[str, Any]) -> ErrorEpisode:
    return ErrorEpisode(
        source=row["source"],
        started=parse_time(row["started"]),
        last_failure=parse_time(row["last_failure"]),
        last_error=row["last_error"],
        failures=row["failures"],
        ended=parse_time(row["ended"]) if row["ended"] else None,
    )


class EpisodesMixin:
    """Error episodes (methods of ``store.Store``)."""

    def error_episodes(self: _Store, limit: int = 100) -> list[ErrorEpisode]:
        """The newest ``limit`` episodes, newest first (by start, then source)."""
        with self._guard("reading error episodes") as db:
            rows = db["source_episodes"].rows_where(order_by="started DESC, source ASC, id DESC", limit=limit)
            return [_episode(row) for row in rows]

    def open_episodes(self: _Store) -> dict[str, ErrorEpisode]:
        """Every source failing now, with the episode that says since when."""
        with self._guard("reading error episodes") as db:
            return {row["source"]: _episode(row) for row in db["source_episodes"].rows_where("ended IS NULL")}
