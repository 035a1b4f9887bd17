"""Query filters on feed URLs: ``?limit=N``, ``?q=words``, ``?exclude=words``.

Pure functions of the query string and the items. Words are plain words,
matched whole over an item's title and summary, case- and accent-insensitive;
nothing a reader types is a pattern. Anything else in the query string is
refused (a 400), so a typo never silently gives the unfiltered feed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from feeds.errors import QueryError
from feeds.model import Item

MAX_LIMIT = 200  # the most items one filtered feed carries
MAX_WORDS = 20  # per parameter; more only costs
# How many of a feed's newest stored items a filter looks through: the cost
# of a filtered request is bounded whatever the store holds.
SCAN_WINDOW = 1000
PARAMETERS = ("limit", "q", "exclude")
_WORD = re.compile(r"\w+")
_DIGITS = re.compile(r"[0-9]{1,6}")


@dataclass(frozen=True, slots=True)
class FeedFilter:
    """What a feed URL's query string asks for; the empty filter is the plain feed."""

    limit: int | None = None
    include: tuple[str, ...] = ()  # folded words, every one required
    exclude: tuple[str, ...] = ()  # folded words, any one drops an item

    @property
    def empty(self) -> bool:
        return self.limit is None and not self.include and not self.exclude


def fold_words(text: str) -> list[str]:
    """The words of ``text`` as compared: no accents, case-folded (``TÜRKİYE`` -> ``turkiye``)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _WORD.findall(bare)


def parse_filter(query_string: str, *, max_limit: int = MAX_LIMIT) -> FeedFilter:
    """The filter a query string asks for; ``QueryError`` for anything else."""
    try:
        pairs = parse_qsl(query_string, keep_blank_values=True, max_num_fields=2 * MAX_WORDS)
    except ValueError as e:  # too many fields
        raise QueryError(f"query string refused: {e}") from None
    limit: int | None = None
    words: dict[str, list[str]] = {"q": [], "exclude": []}
    for name, value in pairs:
        if name not in PARAMETERS:
            raise QueryError(f"unknown parameter {name!r} (expected one of: {', '.join(PARAMETERS)})")
        if name == "limit":
            if limit is not None:
                raise QueryError("limit: given twice")
            limit = _limit(value, max_limit)
            continue
        found = fold_words(value)
        if not found:
            raise QueryError(f"{name}: expected one or more words, got {value!r}")
        words[name].extend(found)
    for name, found in words.items():
        if len(found) > MAX_WORDS:
            raise QueryError(f"{name}: at most {MAX_WORDS} words")
    return FeedFilter(limit, _unique(words["q"]), _unique(words["exclude"]))


def _limit(value: str, max_limit: int) -> int:
    if not _DIGITS.fullmatch(value) or not 1 <= int(value) <= max_limit:
        raise QueryError(f"limit: expected a whole number from 1 to {max_limit}, got {value!r}")
    return int(value)


def _unique(words: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(words))


def matches(item: Item, feed_filter: FeedFilter) -> bool:
    """Whether an item's title and summary hold every wanted word and no excluded one."""
    if not feed_filter.include and not feed_filter.exclude:
        return True
    words = set(fold_words(item.title))
    if item.summary:
        words.update(fold_words(item.summary))
    return words.issuperset(feed_filter.include) and words.isdisjoint(feed_filter.exclude)


def apply_filter(items: Sequence[Item], feed_filter: FeedFilter, default_limit: int) -> list[Item]:
    """The items a filtered feed carries, in the given (feed) order."""
    limit = feed_filter.limit or default_limit
    chosen: list[Item] = []
    for item in items:
        if matches(item, feed_filter):
            chosen.append(item)
            if len(chosen) == limit:
                break
    return chosen


def canonical_query(feed_filter: FeedFilter) -> str:
    """The filter as one query string: a filtered feed's self link and id name it this way."""
    pairs: list[tuple[str, str]] = []
    if feed_filter.limit is not None:
        pairs.append(("limit", str(feed_filter.limit)))
    if feed_filter.include:
        pairs.append(("q", " ".join(feed_filter.include)))
    if feed_filter.exclude:
        pairs.append(("exclude", " ".join(feed_filter.exclude)))
    return urlencode(pairs)
