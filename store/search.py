"""The store's full-text search: the FTS5 index of items (title, summary,
body, remote HTML) that migration ``0003_items_search`` keeps in step with
every write and deletion.

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


_SEARCH = "SELECT items.* FROM items_fts JOIN items ON items.rowid = items_fts.rowid"


class _Store(Protocol):
    def _guard(self, doing: str) -> AbstractContextManager[Database]: ...
    def _with_origins(self, rows: list[dict[str, Any]]) -> list[Item]: ...


def match_expression(query: str) -> str | None:
    """The FTS5 MATCH text for a user's query: every word, quoted, all required.

    None when the query holds no word at all (nothing to search for).
    """
    words = _WORD.findall(query)[:MAX_SEARCH_WORDS]
    if not words:
        return None
    return " ".join(f'"{word}"' for word in words)


class SearchMixin:
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
        with self._guard("searching items") as db:
            rows = list(db.query(sql, [*params, limit]))
        return self._with_origins(rows)
