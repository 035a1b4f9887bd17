"""Feed query filters as pure functions: what a query string means, and which items pass."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from feeds.errors import QueryError
from feeds.model import Item
from feeds.publish.filters import MAX_LIMIT, FeedFilter, apply_filter, fold_words, parse_filter

WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def item(n: int, title: str, summary: str | None = None) -> Item:
    return Item(
        id=f"tag:x,2026:{n}",
        key=title.lower(),
        slug=f"s{n}",
        title=title,
        kind="headline",
        published=WHEN,
        updated=WHEN,
        summary=summary,
    )


ITEMS = [
    item(1, "Earthquake hits Izmir", "Buildings damaged."),
    item(2, "Award for the earthquake rescue team"),
    item(3, "Football: Galatasaray win", "An earthquake of joy in Istanbul."),
    item(4, "War in Sudan", "Ceasefire talks."),
    item(5, "TÜRKİYE and the earthquake", None),
]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", FeedFilter()),
        ("limit=2", FeedFilter(limit=2)),
        ("q=Earthquake", FeedFilter(include=("earthquake",))),
        ("q=earthquake+rescue&q=team", FeedFilter(include=("earthquake", "rescue", "team"))),
        ("exclude=Football&exclude=war", FeedFilter(exclude=("football", "war"))),
        ("q=T%C3%BCrkiye", FeedFilter(include=("turkiye",))),
        ("q=a.*b", FeedFilter(include=("a", "b"))),  # no pattern: two words
        (f"limit={MAX_LIMIT}", FeedFilter(limit=MAX_LIMIT)),
    ],
)
def test_query_strings(query: str, expected: FeedFilter) -> None:
    assert parse_filter(query) == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("page=2", "unknown parameter 'page' (expected one of: limit, q, exclude)"),
        ("Q=x", "unknown parameter 'Q'"),
        ("limit=0", "limit: expected a whole number from 1 to 200, got '0'"),
        (f"limit={MAX_LIMIT + 1}", "limit: expected a whole number from 1 to 200"),
        ("limit=-1", "limit: expected a whole number"),
        ("limit=2.5", "limit: expected a whole number"),
        ("limit=", "limit: expected a whole number"),
        ("limit=99999999999999999999", "limit: expected a whole number"),
        ("limit=1&limit=2", "limit: given twice"),
        ("q=", "q: expected one or more words, got ''"),
        ("exclude=%20...", "exclude: expected one or more words"),
        ("q=" + "+".join(["w"] * 21), "q: at most 20 words"),
        ("&".join(["q=a"] * 50), "query string refused"),
    ],
)
def test_bad_query_strings_are_refused_with_a_reason(query: str, message: str) -> None:
    with pytest.raises(QueryError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        parse_filter(query)


def titles(items: list[Item]) -> list[str]:
    return [i.title for i in items]


def test_whole_words_over_title_and_summary_case_and_accents_aside() -> None:
    found = apply_filter(ITEMS, parse_filter("q=earthquake"), 50)
    assert titles(found) == [
        "Earthquake hits Izmir",
        "Award for the earthquake rescue team",
        "Football: Galatasaray win",
        "TÜRKİYE and the earthquake",
    ]
    # "war" is a word of item 4 only, not a part of "Award".
    assert titles(apply_filter(ITEMS, parse_filter("q=war"), 50)) == ["War in Sudan"]
    assert titles(apply_filter(ITEMS, parse_filter("q=turkiye"), 50)) == ["TÜRKİYE and the earthquake"]


def test_limit_and_include_give_the_first_matching_items() -> None:
    found = apply_filter(ITEMS, parse_filter("limit=2&q=earthquake"), 50)
    assert titles(found) == ["Earthquake hits Izmir", "Award for the earthquake rescue team"]


def test_exclude_drops_items_holding_any_excluded_word() -> None:
    found = apply_filter(ITEMS, parse_filter("q=earthquake&exclude=football+award"), 50)
    assert titles(found) == ["Earthquake hits Izmir", "TÜRKİYE and the earthquake"]


def test_the_default_limit_applies_without_one() -> None:
    assert len(apply_filter(ITEMS, FeedFilter(), 3)) == 3


def test_folding() -> None:
    assert fold_words("TÜRKİYE, Türkiye; türkiye") == ["turkiye"] * 3
    assert fold_words("Q&A: it's") == ["q", "a", "it", "s"]
