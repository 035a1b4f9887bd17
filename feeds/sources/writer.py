"""The single writer of remote sources: a ``PreparedResult`` -> the store.

A result with entries is written in one transaction (its new and changed
items, their origins and the source's state); one without (a 304, the same
body, an error) only saves the state, and those are batched, since a
thousand 304s are one refresh's worth. Entries whose content hash matches
what the store holds cost one dict lookup each.

Applying the same result twice changes nothing the second time: every
entry then matches its stored item (or already names this source), and the
state is the same row. Which stored item an entry is, and who may rewrite
it, is decided by ``prepare.plan_source_writes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from feeds.model import ItemWrite, SourceState
from feeds.sources.prepare import SourceTarget, plan_source_writes
from feeds.sources.step import PreparedResult
from store import Store


@dataclass(frozen=True, slots=True)
class Applied:
    """What applying one result did."""

    status: str  # the result's status, with "fetched" read as "updated" or "unchanged"
    items_changed: int = 0
    sections: frozenset[str] = field(default_factory=frozenset)  # slugs, and "all" if any


class SourceWriter:
    """Applies prepared results to one store; state-only saves wait in a batch
    until ``flush`` (the caller flushes at its own pace, and at the end), and
    so does indexing the written items for search: one statement for every
    source written since, instead of an FTS5 segment per source."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.pending: list[SourceState] = []

    def apply(self, prepared: PreparedResult, *, batch: bool = False) -> Applied:
        """Write one result. With ``batch``, a state-only save and indexing
        for search wait for ``flush``."""
        if prepared.status != "fetched":
            self.pending.append(prepared.state)
            applied = Applied(prepared.status)
        else:
            applied = self._write_entries(prepared)
        if not batch:
            self.flush()
        return applied

    def flush(self) -> None:
        """Save the states waiting in the batch, in one transaction, and index
        the items written since the last flush."""
        states, self.pending = self.pending, []
        self.store.save_source_states(states)
        self.store.index_for_search()

    def _write_entries(self, prepared: PreparedResult) -> Applied:
        state, now = prepared.state, prepared.prepared_at
        stored = self.store.source_entries(prepared.name)
        # An entry whose item already has its content is neither new nor
        # changed, and this source is already among its origins: nothing to do.
        fresh = [
            e
            for e in prepared.entries
            if (s := stored.get(e.key)) is None or s.content_hash != e.content_hash
        ]
        writes: tuple[ItemWrite, ...] = ()
        changed, sections = 0, frozenset[str]()
        if fresh:
            matches = self.store.remote_matches(
                {e.key: stored[e.key].item_id for e in fresh if e.key in stored},
                [e.item_id for e in fresh],
                [e.canonical_link for e in fresh if e.canonical_link],
                [e.folded for e in fresh],
            )
            target = SourceTarget(prepared.name, state.current_url or state.url, state.title)
            plan = plan_source_writes(target, fresh, matches, now)
            writes, changed, sections = plan.writes, plan.items_changed, plan.affected
        self.store.write_source(state, writes, [e.key for e in prepared.entries])
        return Applied("updated" if changed else "unchanged", changed, sections)
