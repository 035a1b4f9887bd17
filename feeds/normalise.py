"""Pure normalisation helpers: title folding, slugs, stable ids.

Nothing here does I/O or reads the clock. The identity of a story is its
*folded title* (``fold_title``); ids and permalink slugs are derived from it,
so they never change when the story is enriched.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

# Apostrophes (and look-alikes) are dropped when titles are compared: scraped
# alt text routinely loses them ("North Koreas Kim" for "North Korea's Kim").
_APOSTROPHES = "'\u2018\u2019\u201b\u02bc\u02bb\u0060\u00b4\u2032"
# Double quotes are compared as one straight quote: alt text swaps curly for
# straight quotes.
_DOUBLE_QUOTES = "\u201c\u201d\u201e\u201f\u00ab\u00bb\u2033"
_FOLD_TABLE = str.maketrans(
    {**dict.fromkeys(_APOSTROPHES), **dict.fromkeys(_DOUBLE_QUOTES, '"')}
)
_DROP_APOSTROPHES = str.maketrans(dict.fromkeys(_APOSTROPHES))
# Characters NFKD does not split into ASCII + marks, spelled out for slugs.
_ASCII_EXTRA = str.maketrans(
    {
        "ı": "i",
        "ß": "ss",
        "ø": "o",
        "Ø": "O",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "đ": "d",
        "Đ": "D",
        "ł": "l",
        "Ł": "L",
        "þ": "th",
        "Þ": "Th",
        "&": " ",
    }
)
_WHITESPACE = re.compile(r"\s+")  # \s covers U+00A0 and the other Unicode spaces
_NON_SLUG = re.compile(r"[^a-z0-9]+")


def collapse_space(text: str) -> str:
    """NFC, every run of whitespace (U+00A0 included) to one space, trimmed."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def fold_title(title: str) -> str:
    """The identity key of a story title.

    NFC, whitespace folded, apostrophes removed, quotes unified, case folded.
    Two mentions of a story with equal folded titles are the same story.
    """
    text = collapse_space(title).translate(_FOLD_TABLE)
    return unicodedata.normalize("NFC", text.casefold())


def ascii_fold(text: str) -> str:
    """Best-effort ASCII transliteration (``TÜRKİYE`` -> ``TURKIYE``)."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_ASCII_EXTRA))
    return "".join(c for c in decomposed if ord(c) < 128)


def slugify(text: str, max_length: int = 64) -> str:
    """Lower-case ASCII words joined by hyphens; never longer than ``max_length``."""
    # Apostrophes vanish rather than split a word: "Korea's" -> "koreas".
    slug = _NON_SLUG.sub("-", ascii_fold(text.translate(_DROP_APOSTROPHES)).lower()).strip("-")
    if len(slug) > max_length:
        slug = slug[:max_length].rsplit("-", 1)[0] or slug[:max_length]
    return slug


def section_slug(label: str) -> str:
    """The URL slug of a section label (``ARTS & CULTURE`` -> ``arts-culture``)."""
    return slugify(label) or "section"


def key_digest(key: str) -> str:
    """A short, stable hex digest of an identity key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]


def seed_item_id(authority: str, key: str) -> str:
    """RFC 4151 tag URI of a seed story, from the site's tagging entity."""
    return f"tag:{authority}:item/{key_digest(key)}"


def item_slug(title: str, key: str) -> str:
    """Permalink page name: readable words plus a digest that keeps it unique."""
    words = slugify(title, max_length=60)
    digest = key_digest(key)[:8]
    return f"{words}-{digest}" if words else digest
