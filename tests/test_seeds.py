"""Seed parser tests.

Data-driven like feedparser's suite: every ``tests/data/seeds/NAME.txt`` is
parsed and compared with ``NAME.json`` beside it (the ``SeedItem.as_json()``
list). The documents are invented, one per shape the parser must read; only
``000_1e8f96a0d2ae3308`` is the public seed.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.errors import SeedError
from feeds.model import SeedItem
from feeds.normalise import collapse_space, fold_title
from feeds.seeds.document import decode_seed, merge_forms, merge_items, parse_seed
from feeds.seeds.lines import (
    header_prefix,
    is_byline,
    is_dateline,
    section_label,
    split_lines,
    story_key,
)

DATA = Path(__file__).parent / "data" / "seeds"
CASES = sorted(DATA.glob("*.txt"))
PUBLIC = DATA / "000_1e8f96a0d2ae3308.txt"


def _parse_file(path: Path) -> list[dict[str, object]]:
    return [item.as_json() for item in parse_seed(decode_seed(path.read_bytes(), path.name))]


def test_the_data_folder_has_every_case() -> None:
    assert len(CASES) >= 20
    missing = [p.name for p in CASES if not p.with_suffix(".json").is_file()]
    assert missing == []


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_seed_document(path: Path) -> None:
    expected = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    assert _parse_file(path) == expected


def test_public_seed_matches_the_shared_expected_output() -> None:
    # A copy of ../shared/seeds/expected: CI runs on a clean clone without ../shared.
    expected = json.loads((DATA / "expected" / f"{PUBLIC.stem}.json").read_text(encoding="utf-8"))
    got = _parse_file(PUBLIC)
    assert len(got) == len(expected) == 14
    for want, have in zip(expected, got, strict=True):
        assert {key: have[key] for key in want} == want


# -- line shapes --------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "following", "prefix"),
    [
        ("WORLD EU ministers meet", "EU ministers meet", "WORLD"),
        ("WORLD EU’s ministers meet", "EUs ministers meet", "WORLD"),
        ("ARTS & CULTURE “Opera” returns", '"Opera" returns', "ARTS & CULTURE"),
        ("date 2026-01-02 Title here", "Title here", "date 2026-01-02"),
        ("Title here", "Title here", ""),
        ("North Koreas Kim visits subs", "North Korea's Kim visits subs", ""),
        ("date 2026-01-02 Talks in Ankara?", "ANKARA", None),
        ("A paragraph about something.", "Another paragraph.", None),
    ],
)
def test_header_prefix(line: str, following: str, prefix: str | None) -> None:
    assert header_prefix(line, following) == prefix


@pytest.mark.parametrize(
    ("prefix", "label"),
    [
        ("ECONOMY", "ECONOMY"),
        ("ARTS & CULTURE", "ARTS & CULTURE"),
        ("TÜRKİYE", "TÜRKİYE"),
        ("Quark.Models.Entities.Ancestor?.Title?.ToUpperInvariant()", None),
        ("Home", None),
        ("", None),
    ],
)
def test_section_label(prefix: str, label: str | None) -> None:
    assert section_label(prefix) == label


@pytest.mark.parametrize(
    "line", ["SAN SALVADOR", "İZMİR", "GAZİ MAĞUSA", "WASHINGTON, D.C.", "ANKARA/ISTANBUL"]
)
def test_datelines(line: str) -> None:
    assert is_dateline(line)
    assert not is_byline(line)


@pytest.mark.parametrize("line", ["Nilüfer Aksoy", "Mehmet Ali KAYA", "Jane van der Berg", "Barçın Yinanç"])
def test_bylines(line: str) -> None:
    assert is_byline(line)
    assert not is_dateline(line)


@pytest.mark.parametrize(
    "line", ["He declined to comment.", "Protest in Ankara", "Recommended", "The 2026 budget"]
)
def test_neither_dateline_nor_byline(line: str) -> None:
    assert not is_byline(line)
    assert not is_dateline(line)


# -- properties ---------------------------------------------------------------

# Fragments of the real shapes, so generated texts reach the block readers and
# not only the "stray line" path.
_FRAGMENTS = [
    "date 2026-01-02 Title one",
    "date 2026-13-40 Title one",
    "Title one",
    "WORLD Title one",
    "ARTS & CULTURE Title two",
    "Title two",
    "Quark.Models.Entities.Ancestor?.Title?.ToUpperInvariant() Title two",
    "ANKARA",
    "Nilüfer Aksoy",
    "A first paragraph that reads like a sentence of a news story, with a period.",
    "LATEST NEWS",
    "  1. Title one",
    "    Title one",
    "  2. Title two",
    "Recommended",
    "Titles two",
    "\u00a0",
    "",
    " ",
    "İZMİR",
    "Cafe\u0301 opens",
    "Café opens",
]
_LINES = st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=40))
_SEED_LIKE = st.lists(_LINES, max_size=40).map("\n".join)
_ANY_TEXT = st.one_of(st.text(), _SEED_LIKE)


@settings(max_examples=400, deadline=None)
@given(_ANY_TEXT)
def test_parse_never_raises_and_titles_are_clean(text: str) -> None:
    items = parse_seed(text)
    for item in items:
        assert item.title
        assert unicodedata.is_normalized("NFC", item.title)
        assert item.title == collapse_space(item.title)
        assert (item.kind == "article") == bool(item.body)


@settings(max_examples=200, deadline=None)
@given(_SEED_LIKE)
def test_parse_is_deterministic(text: str) -> None:
    assert parse_seed(text) == parse_seed(text)


@settings(max_examples=200, deadline=None)
@given(_SEED_LIKE)
def test_line_endings_and_bom_do_not_change_the_items(text: str) -> None:
    # Only LF line ends are converted: a stray CR before one would make "\r\r\n",
    # two line ends, and blank lines separate paragraphs.
    text = text.replace("\r", "")
    assert parse_seed("\ufeff" + text.replace("\n", "\r\n")) == parse_seed(text)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_lines_are_collapsed_nfc_and_the_fast_key_is_fold_title(text: str) -> None:
    lines = split_lines(text)
    for line, raw in zip(lines.texts, lines.raws, strict=True):
        assert line == collapse_space(line)
        assert story_key(line) == fold_title(line)
        # Body text keeps its inner whitespace: it is only trimmed.
        assert raw == raw.strip()
        assert collapse_space(raw) == line


# -- decoding -----------------------------------------------------------------


def test_decode_strips_the_bom_and_normalises_line_endings() -> None:
    assert decode_seed(b"\xef\xbb\xbfone\r\ntwo\rthree\n", "a.txt") == "one\ntwo\nthree\n"


def test_decode_reads_windows_1254() -> None:
    text = "Iğdır’da kış: sıcaklık eksi 20 derece, İstanbul’da şiddetli rüzgâr"
    assert decode_seed(text.encode("cp1254"), "tr.txt") == text


def test_decode_reads_windows_1252_without_turkish_letters() -> None:
    text = "Café crème at the Bœuf sur le toit – “quoted”"
    assert decode_seed(text.encode("cp1252"), "fr.txt") == text


def test_decode_keeps_utf8_around_a_stray_legacy_byte() -> None:
    data = "Türkiye’nin ihracatı arttı; ".encode() + "şeker".encode("cp1254")
    assert decode_seed(data, "mixed.txt") == "Türkiye’nin ihracatı arttı; şeker"


def test_decode_reads_utf16_with_a_bom() -> None:
    assert decode_seed("Gazi Mağusa\r\n".encode("utf-16"), "u16.txt") == "Gazi Mağusa\n"


def test_decode_of_empty_bytes_is_empty() -> None:
    assert decode_seed(b"", "empty.txt") == ""


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x01\x02binary\x00\xff\xfe\x00\x13",
        bytes(range(1, 32)) * 20,
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    ],
    ids=["nul", "controls", "png"],
)
def test_decode_rejects_binary_naming_the_file(data: bytes) -> None:
    with pytest.raises(SeedError) as caught:
        decode_seed(data, "seeds/broken.txt")
    assert caught.value.subject == "seeds/broken.txt"
    assert "seeds/broken.txt" in str(caught.value)


# -- merging ------------------------------------------------------------------


def test_merge_forms_richest_wins_and_fills_missing_fields() -> None:
    article = SeedItem("Story", "article", body=("First.", "Second."), summary="First.", dateline="VAN")
    teaser = SeedItem("story", "teaser", section="WORLD", date="2026-01-02", summary="Teaser text.")
    headline = SeedItem("STORY", "headline", date="2025-12-31")
    merged = merge_forms(merge_forms(headline, teaser), article)
    assert merged == SeedItem(
        "Story", "article", section="WORLD", date="2026-01-02", dateline="VAN",
        summary="First.", body=("First.", "Second."),
    )  # fmt: skip
    assert merge_forms(article, teaser) == merged


def test_merge_forms_tie_keeps_the_first() -> None:
    first = SeedItem("Story", "headline")
    second = SeedItem("Story’s", "headline", section="ECONOMY")
    assert merge_forms(first, second) == SeedItem("Story", "headline", section="ECONOMY")


def test_merge_items_groups_by_folded_title_in_first_mention_order() -> None:
    items = [
        SeedItem("North Korea's Kim visits subs", "headline"),
        SeedItem("Other story", "headline", date="2026-01-01"),
        SeedItem("North Koreas Kim visits subs", "teaser", section="WORLD", summary="S."),
    ]
    assert merge_items(items) == [
        SeedItem("North Koreas Kim visits subs", "teaser", section="WORLD", summary="S."),
        SeedItem("Other story", "headline", date="2026-01-01"),
    ]
