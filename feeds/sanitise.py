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

import nh3

from feeds.normalise import collapse_space, web_link

# What an entry may carry into the store; beyond it, text is cut.
MAX_TITLE = 1000
MAX_TEXT = 4000  # summaries and author names, as plain text
MAX_HTML = 200_000

_URL_SCHEMES = frozenset({"http", "https", "mailto"})
_URL_ATTRIBUTES = frozenset({"href", "src", "cite"})
# Still looks like markup after one round of unescaping: "&lt;script&gt;".
_TAG_LIKE = re.compile(r"<[A-Za-z/!?]")


@lru_cache(maxsize=64)
def _cleaner(base: str | None) -> nh3.Cleaner:
    def absolute_urls(tag: str, attribute: str, value: str) -> str | None:
        if attribute not in _URL_ATTRIBUTES:
            return value
        if value.startswith("mailto:"):
            return value
        return web_link(value, base)

    return nh3.Cleaner(
        url_schemes=set(_URL_SCHEMES),
        attribute_filter=absolute_urls,
        clean_content_tags={"script", "style"},
    )


_TEXT_CLEANER = nh3.Cleaner(tags=set(), clean_content_tags={"script", "style"})


def safe_html(fragment: str | None, base: str | None = None) -> str | None:
    """Sanitised HTML of a remote fragment, relative URLs resolved; None if empty."""
    if not fragment or not fragment.strip():
        return None
    cleaned = _cleaner(base).clean(fragment[:MAX_HTML]).strip()
    return cleaned or None


def plain_text(fragment: str | None, limit: int = MAX_TEXT) -> str | None:
    """Text without markup, entities decoded, whitespace collapsed; None if empty.

    Feeds disagree on whether a title is text or HTML, so it is treated as
    HTML; what still looks like a tag after decoding (double-escaped markup)
    is stripped again, so no ``<script`` survives as text either.
    """
    if not fragment:
        return None
    text = fragment[: limit * 4]
    for _ in range(3):
        text = html.unescape(_TEXT_CLEANER.clean(text))
        if not _TAG_LIKE.search(text):
            break
    else:
        text = _TAG_LIKE.sub(lambda m: "\u2039" + m.group(0)[1:], text)
    text = collapse_space(text)
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "\u2026"
    return text or None


def text_as_html(text: str | None) -> str | None:
    """Plain-text content as HTML paragraphs."""
    if not text or not text.strip():
        return None
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text[:MAX_HTML]) if p.strip()]
    return "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
