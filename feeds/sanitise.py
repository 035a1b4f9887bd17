"""Remote HTML made safe to store and republish (the only nh3 user).

Remote feeds carry whatever their publisher (or an attacker who got into
it) wrote. Everything that could run in a reader's browser goes: scripts,
styles, iframes, forms, event handlers, ``javascript:`` and ``data:`` URLs.
nh3 (Rust's ammonia) parses like a browser does, which a regex or an
allow-list written by hand would not. Relative ``href``/``src`` are made
absolute against the entry's base on the way, because our feeds are read
far from the site that wrote them.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from typing import Literal

import nh3

from feeds.normalise import collapse_space, publishable_chars, web_link, windows_1252_c1, xml_chars

# What an entry may carry into the store; beyond it, text is cut.
MAX_TITLE = 1000
MAX_TEXT = 4000  # summaries and author names, as plain text
MAX_HTML = 200_000

_URL_SCHEMES = frozenset({"http", "https", "mailto"})
# Still looks like markup after one round of unescaping: "&lt;script&gt;",
# or an entity escaped twice ("&amp;nbsp;" arrives as the text "&nbsp;").
_TAG_LIKE = re.compile(r"<[A-Za-z/!?]")
_ESCAPED_TWICE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
# nh3 checks the scheme of href/src and resolves them in Rust with the GIL
# released; a Python attribute callback took the GIL back per attribute and
# made sanitising serial. ``cite`` is not one of its URL attributes, so it
# is fixed up here. nh3 writes every attribute value double-quoted with
# '"' escaped, which is what lets a regex walk its tags exactly.
_CITE = re.compile(r'(<(?:blockquote|q|del|ins)(?:\s+[^\s=>]+(?:="[^"]*")?)*?\s+)cite="([^"]*)"')


@lru_cache(maxsize=256)
def _cleaner(base: str | None) -> nh3.Cleaner:
    """A cleaner resolving relative URLs against ``base``; without a usable
    base, relative URLs are dropped (they would point into our own site)."""
    if base and web_link(base):
        try:
            return _new_cleaner(("rewrite_with_base", base))
        except ValueError:  # a base Python's urllib takes but a browser's URL parser does not
            pass
    return _new_cleaner("deny")


def _new_cleaner(url_relative: Literal["deny"] | tuple[Literal["rewrite_with_base"], str]) -> nh3.Cleaner:
    return nh3.Cleaner(
        url_schemes=set(_URL_SCHEMES), url_relative=url_relative, clean_content_tags={"script", "style"}
    )


_TEXT_CLEANER = nh3.Cleaner(tags=set(), clean_content_tags={"script", "style"})


def safe_html(fragment: str | None, base: str | None = None) -> str | None:
    """Sanitised HTML of a remote fragment, relative URLs resolved; None if empty."""
    if not fragment or not fragment.strip():
        return None
    # Before nh3 (it cannot take a lone surrogate) and after it (it decodes
    # "&#1;" into the character itself): what XML cannot carry goes.
    cleaned = xml_chars(_cleaner(base).clean(xml_chars(fragment[:MAX_HTML]))).strip()
    cleaned = windows_1252_c1(cleaned)
    if "cite=" in cleaned:
        cleaned = _CITE.sub(lambda m: _absolute_cite(m, base), cleaned)
    return cleaned or None


def _absolute_cite(match: re.Match[str], base: str | None) -> str:
    """A ``cite`` made absolute like href and src are, or dropped if it is not http(s)."""
    url = web_link(html.unescape(match.group(2)), base)
    if url is None:
        return match.group(1).rstrip()
    return f'{match.group(1)}cite="{html.escape(url)}"'


def plain_text(fragment: str | None, limit: int = MAX_TEXT) -> str | None:
    """Text without markup, entities decoded, whitespace collapsed; None if empty.

    Feeds disagree on whether a title is text or HTML, so it is treated as
    HTML; what still looks like a tag after decoding (double-escaped markup)
    is stripped again, so no ``<script`` survives as text either.
    """
    if not fragment:
        return None
    text = xml_chars(fragment[: limit * 4])
    for _ in range(3):
        text = _unmarked(text)
        if not _TAG_LIKE.search(text) and not _still_escaped(text):
            break
    else:
        text = _TAG_LIKE.sub(lambda m: "\u2039" + m.group(0)[1:], text)
    # Again: entities may have decoded to some.
    text = collapse_space(publishable_chars(text))
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "\u2026"
    return text or None


def _still_escaped(text: str) -> bool:
    """Whether decoded text still holds an entity a second decoding would turn
    into a character: a publisher escaped it twice (Movable Type's "&amp;nbsp;"),
    and "&nbsp;" left as text is read as undeclared HTML."""
    return "&" in text and any(html.unescape(m.group(0)) != m.group(0) for m in _ESCAPED_TWICE.finditer(text))


def _unmarked(text: str) -> str:
    """One round of markup removal and entity decoding.

    Most titles, names and categories hold no "<": for those an HTML parser
    would only decode entities (and drop NULs), which ``html.unescape`` does
    without the round trip through nh3.
    """
    if "<" in text:
        return html.unescape(_TEXT_CLEANER.clean(text))
    if "&" in text:
        text = html.unescape(text)
    return text.replace("\0", "")
