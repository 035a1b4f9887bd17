"""Seed files -> story items: decoding, parsing and merging mentions of one story.

``decode_seed`` turns a file's bytes into text (the only step that can fail);
``parse_seed`` is pure and total: any string gives a list of items, one per
story, in order of first mention. The shapes it reads are described in
DESIGN.md ("The seed format"); the line and block readers live in
``feeds.seeds.lines`` and ``feeds.seeds.blocks``.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from feeds.errors import SeedError
from feeds.model import KIND_RANK, SeedItem
from feeds.normalise import fold_title
from feeds.seeds.blocks import read_mentions
from feeds.seeds.lines import split_lines, story_key

__all__ = ["decode_seed", "merge_forms", "merge_items", "parse_seed"]

# The likely legacy encoding: the site is Turkish. Windows-1254 differs from
# Windows-1252 only in ğĞıİşŞ (where 1252 has Icelandic letters) and in two
# bytes it leaves undefined, so it is tried first and 1252 only after it fails.
_LEGACY = "cp1254"
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_ASCII_BYTES = bytes(range(128))
# C0/C1 control characters other than tab, newlines and form feed: text has
# next to none; binary decoded as a legacy code page is full of them.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_STRAY_BYTES = "feeds.seeds.cp1254"
# What a subscription list or a feed starts with, after an XML declaration,
# comments or a doctype: a seed document is plain text and never does.
_XML_PROLOGUE = re.compile(rb"^(?:\s|<\?[^>]*\?>|<!--.*?-->|<!DOCTYPE[^>]*>)*<([A-Za-z_][\w:.-]*)", re.S)
_NOT_SEEDS = {
    b"opml": "an OPML subscription list; add its feeds with `feeds sources import {name}`",
    b"rss": "an RSS feed; add it as a source with `feeds sources add URL`",
    b"rdf:RDF": "an RSS 1.0 feed; add it as a source with `feeds sources add URL`",
    b"feed": "an Atom feed; add it as a source with `feeds sources add URL`",
}
_JSON_FEED = re.compile(rb'^\s*\{.*?"version"\s*:\s*"https?://jsonfeed\.org/version/', re.S)


def _decode_stray_bytes(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: a stray legacy byte in a UTF-8 file is read as Windows-1254."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start : error.end]
    return bytes(bad).decode(_LEGACY, errors="replace"), error.end


codecs.register_error(_STRAY_BYTES, _decode_stray_bytes)


def decode_seed(data: bytes, name: str) -> str:
    """The text of a seed file: UTF-8 (BOM stripped) or a detected legacy encoding.

    Line endings become ``\\n``. Raises ``SeedError`` naming ``name`` when the
    bytes are not text (NUL bytes outside UTF-16, or mostly control characters)
    or are a feed or an OPML file rather than a seed document.
    """
    refuse_feed_documents(data, name)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in data:
        text = _decode_utf16(data, name)
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = _decode_legacy(data)
    text = text.removeprefix("\ufeff")
    controls = len(_CONTROL.findall(text))
    if controls > max(2, len(text) // 100):
        raise SeedError("not a text file (control characters); cannot decode", subject=name)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def refuse_feed_documents(data: bytes, name: str) -> None:
    """SeedError naming ``name`` if ``data`` is an OPML file or a feed, saying what to do instead."""
    head = data[:4096].removeprefix(codecs.BOM_UTF8)
    match = _XML_PROLOGUE.match(head)
    what = _NOT_SEEDS.get(match.group(1)) if match else None
    if what is None and _JSON_FEED.match(head):
        what = "a JSON feed; add it as a source with `feeds sources add URL`"
    if what is not None:
        raise SeedError(f"not a seed document: {what.format(name=name)}", subject=name)


def _decode_utf16(data: bytes, name: str) -> str:
    """UTF-16 by BOM, or by the NUL-byte pattern of UTF-16 ASCII text; else not text."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif len(data) % 2 == 0 and data[1::2].count(0) * 2 > len(data) // 2:
        encoding = "utf-16-le"
    elif len(data) % 2 == 0 and data[0::2].count(0) * 2 > len(data) // 2:
        encoding = "utf-16-be"
    else:
        raise SeedError("not a text file (NUL bytes); cannot decode", subject=name)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise SeedError(f"invalid {encoding.upper()} at byte {e.start}; cannot decode", subject=name) from e


def _decode_legacy(data: bytes) -> str:
    """Bytes that are not valid UTF-8: a mostly-UTF-8 file with stray bytes, or a code page."""
    utf8_bytes = sum(len(m) for m in _UTF8_SEQUENCE.findall(data))
    other_bytes = len(data.translate(None, _ASCII_BYTES)) - utf8_bytes
    if utf8_bytes > other_bytes:
        # Pasted fragments in an otherwise UTF-8 file: decoding the whole file
        # as a code page would garble every correct letter.
        return data.decode("utf-8", errors=_STRAY_BYTES)
    for encoding in (_LEGACY, "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue  # a byte the code page leaves undefined
    return _decode_detected(data)


def _decode_detected(data: bytes) -> str:
    """Last resort: let charset-normalizer guess; Latin-1 decodes anything (checked later)."""
    from charset_normalizer import from_bytes  # only files no code page above fits get here

    best = from_bytes(data).best()
    return str(best) if best is not None else data.decode("latin-1")


def parse_seed(text: str) -> list[SeedItem]:
    """The stories of one seed file, one item each, in order of first mention.

    Pure and total: never raises, same input gives the same output. Mentions
    of one story (same ``fold_title``) are merged with ``merge_items``.
    """
    # No BOM handling needed: split_lines drops U+FEFF with the other invisible
    # characters. Its lines are NFC and collapsed, so the cheaper key applies.
    return _merge(read_mentions(split_lines(text)), story_key)


def _richness(item: SeedItem) -> tuple[int, int, bool]:
    """Article > teaser > headline; then more paragraphs; then having a summary."""
    return KIND_RANK.get(item.kind, 0), len(item.body), item.summary is not None


_FILLABLE = ("section", "date", "dateline", "author", "summary")


def _fill(winner: SeedItem, others: Sequence[SeedItem]) -> SeedItem:
    """``winner`` with each field it lacks taken from the first of ``others`` that has it."""
    changes: dict[str, Any] = {}
    for field in _FILLABLE:
        if getattr(winner, field) is None:
            value = next((v for v in (getattr(o, field) for o in others) if v is not None), None)
            if value is not None:
                changes[field] = value
    return replace(winner, **changes) if changes else winner


def merge_forms(a: SeedItem, b: SeedItem) -> SeedItem:
    """One item from two mentions of the same story: the richer wins, gaps filled from the other.

    On a tie ``a`` (the earlier or stored mention) wins.
    """
    if _richness(b) > _richness(a):
        return _fill(b, (a,))
    return _fill(a, (b,))


def merge_items(items: Iterable[SeedItem]) -> list[SeedItem]:
    """Group mentions by folded title (first-mention order) and merge each group.

    Within a group the richest form wins and each missing field comes from the
    next richest form that has it; ties go to the earlier mention.
    """
    return _merge(items, fold_title)


def _merge(items: Iterable[SeedItem], key: Callable[[str], str]) -> list[SeedItem]:
    groups: dict[str, list[SeedItem]] = {}
    for item in items:
        groups.setdefault(key(item.title), []).append(item)
    merged: list[SeedItem] = []
    for group in groups.values():
        if len(group) == 1:
            merged.append(group[0])
        else:
            ranked = sorted(group, key=_richness, reverse=True)  # stable: ties keep mention order
            merged.append(_fill(ranked[0], ranked[1:]))
    return merged
