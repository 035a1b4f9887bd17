"""Our own rules for a published feed, as `feeds check` applies them.

The same rules the tests hold every feed to: the RFC 4287 RELAX NG schema
(shipped in ``feeds/schemas``) and the prose rules it cannot say for Atom,
RSS 2.0 as feedparser reads it without complaint, and JSON Feed 1.1's
required members. Each returns problems as text; none raises.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import feedparser
from lxml import etree

SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "atom.rng"
ATOM = "{http://www.w3.org/2005/Atom}"
JSON_FEED_11 = "https://jsonfeed.org/version/1.1"


@cache
def _atom_schema() -> etree.RelaxNG:
    return etree.RelaxNG(etree.parse(str(SCHEMA)))


def _xml(data: bytes) -> tuple[Any, list[str]]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        return etree.fromstring(data, parser), []
    except etree.XMLSyntaxError as e:
        return None, [f"not well-formed XML: {e}"]


def _bozo(data: bytes) -> list[str]:
    parsed = feedparser.parse(data)
    return [f"feedparser: {parsed.get('bozo_exception')}"] if parsed.bozo else []


def check_atom(data: bytes) -> list[str]:
    """RFC 4287: the schema, a self link, authors, unique entry ids."""
    doc, problems = _xml(data)
    if doc is None:
        return problems
    schema = _atom_schema()
    if not schema.validate(doc.getroottree()):
        problems.extend(f"schema: line {e.line}: {e.message}" for e in schema.error_log)
    if doc.find(f"{ATOM}link[@rel='self']") is None:
        problems.append("no atom:link rel=self")
    feed_author = doc.find(f"{ATOM}author") is not None
    ids = [entry.findtext(f"{ATOM}id", "") for entry in doc.findall(f"{ATOM}entry")]
    if not feed_author and any(e.find(f"{ATOM}author") is None for e in doc.findall(f"{ATOM}entry")):
        problems.append("an entry without an author in a feed without one")
    if len(ids) != len(set(ids)):
        problems.append("two entries share an atom:id")
    return problems + _bozo(data)


def check_rss(data: bytes) -> list[str]:
    """RSS 2.0: well-formed, feedparser content, a self link, a guid and date per item."""
    doc, problems = _xml(data)
    if doc is None:
        return problems
    channel = doc.find("channel")
    if doc.tag != "rss" or channel is None:
        return ["not an RSS 2.0 document"]
    if channel.find(f"{ATOM}link[@rel='self']") is None:
        problems.append("no atom:link rel=self in the channel")
    for index, item in enumerate(channel.findall("item")):
        if not item.findtext("guid") or not item.findtext("pubDate"):
            problems.append(f"item {index + 1} has no guid or no pubDate")
    return problems + _bozo(data)


def check_json_feed(data: bytes) -> list[str]:
    """JSON Feed 1.1: its version, a title, unique string ids, content per item."""
    try:
        feed = json.loads(data)
    except ValueError as e:
        return [f"not JSON: {e}"]
    if not isinstance(feed, dict) or feed.get("version") != JSON_FEED_11:
        return [f"not a JSON Feed 1.1 (version {feed.get('version') if isinstance(feed, dict) else None!r})"]
    problems = [] if feed.get("title") else ["no title"]
    raw_items = feed.get("items")
    items: list[Any] = [i for i in raw_items if isinstance(i, dict)] if isinstance(raw_items, list) else []
    ids = [item.get("id") for item in items]
    if not all(isinstance(i, str) and i for i in ids) or len(ids) != len(set(ids)):
        problems.append("item ids must be unique non-empty strings")
    if any("content_html" not in item and "content_text" not in item for item in items):
        problems.append("an item without content_html or content_text")
    return problems


CHECKS: dict[str, Callable[[bytes], list[str]]] = {
    ".atom": check_atom,
    ".rss": check_rss,
    ".json": check_json_feed,
}


def check_feed(path: str, data: bytes) -> list[str]:
    """The problems of the feed file ``path`` (by its suffix); [] for any other file."""
    check = CHECKS.get(path[path.rfind(".") :])
    return check(data) if check else []
