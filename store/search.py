"""The store's full-text search: the FTS5 index of items (title, summary,
body, remote HTML), built by migration ``0003_items_search``.

Written rows wait in ``search_pending`` (migration ``0009_search_pending``:
its triggers record every insert and change, and remove a deleted or
changed row's old words at once) and are indexed in bulk by
``index_pending``: by the writers after each batch, and by ``search``
before it reads, so a search finds every stored item and no deleted one.

A mixin of ``store.Store``, kept apart so ``store/db.py`` stays small.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol

from sqlite_utils import Database

from feeds.model import Item

# A user's words, whatever else they typed: FTS5 operators (AND, NEAR, "*",
# column filters, parentheses) never reach the MATCH expression.
_WORD = re.compile(r"\w+")
MAX_SEARCH_WORDS = 16  # more words cost more and find nothing more

Order = Literal["rank", "newest"]

_ORDER_BY = {
    # bm25 ties (common with short headlines) fall back to the feed order.
    "rank": "items_fts.rank, items.published DESC, items.id ASC",
    "newest": "items.published DESC, items.id ASC",
}


_INDEX_PENDING = """
    INSERT INTO items_fts (rowid, title, summary, body, content_html)
    SELECT items.rowid, items.title, items.summary, items.body, items.content_html
    FROM search_pending JOIN items ON items.rowid = search_pending.rowid
    ORDER BY search_pending.rowid
"""
_SEARCH = "SELECT items.* FROM items_fts JOIN items ON items.rowid = items_fts.rowid"


class _Store(Protocol):
    def _guard(self, doing: str) -> AbstractContextManager[Database]: ...
    def transaction(self, doing: str = ...) -> AbstractContextManager[Database]: ...
    def index_for_search(self) -> None: ...
    def _with_origins(self, rows: list[dict[str, Any]]) -> list[Item]: ...


def match_expression(query: str) -> str | None:
    """The FTS5 MATCH text for a user's query: every word, quoted, all required.

    None when the query holds no word at all (nothing to search for).
    """
    words = _WORD.findall(query)[:MAX_SEARCH_WORDS]
    if not words:
        return None
    return " ".join(f'"{word}"' for word in words)


def index_pending(db: Database) -> None:
    """Index every written row still waiting, in the caller's transaction:
    one statement for the whole batch."""
    db.execute(_INDEX_PENDING)
    db.execute("DELETE FROM search_pending")


class SearchMixin:
    def index_for_search(self: _Store) -> None:
        """Index the items written since the last time, if any (a read when none wait)."""
        with self._guard("reading the search index") as db:
            waiting = db.execute("SELECT EXISTS (SELECT 1 FROM search_pending)").fetchone()[0]
        if waiting:
            with self.transaction("indexing items for search") as db:
                index_pending(db)

    def search(
        self: _Store, query: str, limit: int, *, section_slug: str | None = None, order: Order = "rank"
    ) -> list[Item]:
        """Stored items holding every word of ``query`` in their title, summary or text.

        ``order`` is relevance (bm25) or newest first; ``section_slug`` keeps
        one section's items. Any text is safe here: it is reduced to words.
        """
        expression = match_expression(query)
        if expression is None or limit <= 0:
            return []
        section = "" if section_slug is None else " AND items.section_slug = ?"
        params = [expression] if section_slug is None else [expression, section_slug]
        # Only our own fragments are formatted in; every value is a parameter.
        sql = f"{_SEARCH} WHERE items_fts MATCH ?{section} ORDER BY {_ORDER_BY[order]} LIMIT ?"
        self.index_for_search()
        with self._guard("searching items") as db:
            rows = list(db.query(sql, [*params, limit]))
        return self._with_origins(rows)
