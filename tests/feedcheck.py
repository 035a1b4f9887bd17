"""Checks every published feed must pass, shared by the tests."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import feedparser
from lxml import etree

SCHEMA = Path(__file__).resolve().parent / "data" / "schemas" / "atom.rng"
ATOM = "{http://www.w3.org/2005/Atom}"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


@cache
def atom_schema() -> etree.RelaxNG:
    return etree.RelaxNG(etree.parse(str(SCHEMA)))


def check_atom(data: bytes) -> None:
    """RFC 4287: the schema, plus the prose rules the schema cannot say."""
    doc = etree.fromstring(data)
    schema = atom_schema()
    assert schema.validate(doc.getroottree()), schema.error_log
    feed_has_author = doc.find(f"{ATOM}author") is not None
    assert doc.find(f"{ATOM}link[@rel='self']") is not None
    ids = []
    for entry in doc.findall(f"{ATOM}entry"):
        assert feed_has_author or entry.find(f"{ATOM}author") is not None
        if entry.find(f"{ATOM}content") is None:
            assert entry.find(f"{ATOM}link[@rel='alternate']") is not None
        assert ":" in entry.findtext(f"{ATOM}id", "")  # an IRI with a scheme
        for name in ("updated", "published"):
            value = entry.findtext(f"{ATOM}{name}")
            assert value is None or RFC3339.match(value), value
        ids.append(entry.findtext(f"{ATOM}id"))
    # Entries may share atom:updated (a seed day's stories share its
    # midnight: times are the source's own, never invented); RFC 4287 only
    # asks that one id not appear twice.
    assert len(ids) == len(set(ids)), "two entries share atom:id"
    assert not feedparser.parse(data).bozo


def check_rss(data: bytes) -> None:
    parsed = feedparser.parse(data)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "rss20"
    doc = etree.fromstring(data)
    channel = doc.find("channel")
    assert channel is not None
    assert channel.find("{http://www.w3.org/2005/Atom}link[@rel='self']") is not None
    for item in channel.findall("item"):
        assert item.findtext("guid")
        assert item.findtext("pubDate")


def check_json(data: bytes) -> dict:
    feed = json.loads(data)
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["title"]
    ids = [i["id"] for i in feed["items"]]
    assert all(isinstance(i, str) and i for i in ids)
    assert len(ids) == len(set(ids))
    for item in feed["items"]:
        assert "content_html" in item or "content_text" in item
    return feed
