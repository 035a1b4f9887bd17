"""Feed bytes -> typed records (the only feedparser user).

feedparser is handed the bytes and the response headers our fetcher got,
never a URL or a path (given a string it may open either). It reads RSS
0.9x/1.0/2.0 and Atom 0.3/1.0; JSON Feed 1.0/1.1, which feedparser 6 does
not read, is read here with ``json``. Nothing here sanitises: the records
carry the publisher's text and HTML as given, and ``feeds.sanitise`` cleans
them. feedparser's own sanitiser and URL rewriting are turned off for that
reason: they cost about half its time and nh3 does both better.

Malformed input never raises anything but ``ParseError``: a feed with
problems but usable entries comes back with a ``warning``.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin

from lxml import etree

from feeds.errors import ParseError
from feeds.normalise import utc_from_struct, windows_1252_c1
from feeds.sources.media import (
    EntryExtras,
    feedparser_authors,
    feedparser_extras,
    json_authors,
    json_extras,
    rss_channel_authors,
    rss_extras,
)

log = logging.getLogger(__name__)

# Headers that tell feedparser how to read the bytes; the rest are noise to it.
_PARSER_HEADERS = ("content-type", "content-location", "content-language")
_SKIP_HOURS = re.compile(rb"<skipHours\b[^>]*>(.{0,2000}?)</skipHours>", re.S | re.I)
_SKIP_DAYS = re.compile(rb"<skipDays\b[^>]*>(.{0,2000}?)</skipDays>", re.S | re.I)
_HOUR = re.compile(rb"<hour>\s*(\d{1,2})\s*</hour>", re.I)
_DAY = re.compile(rb"<day>\s*([A-Za-z]{3,9})\s*</day>", re.I)
_JSON_FEED = "https://jsonfeed.org/version/1"


@dataclass(frozen=True, slots=True)
class RawEntry:
    """One entry as the feed states it: publisher text and HTML, not yet cleaned."""

    guid: str | None
    link: str | None  # absolute when the feed gave a base, else as written
    title: str | None  # HTML or text; cleaned to text later
    summary: str | None  # HTML
    content: str | None  # HTML
    published: datetime | None  # UTC
    updated: datetime | None  # UTC
    date_text: str | None  # the date as written: part of an id of last resort
    author: str | None
    categories: tuple[str, ...] = ()
    base: str | None = None  # what relative URLs in its HTML are relative to
    extras: EntryExtras = field(default_factory=EntryExtras)  # enclosures, pictures, comments, every author


@dataclass(frozen=True, slots=True)
class FeedHints:
    """How often the publisher says the feed changes (RSS ttl, sy:, skip*)."""

    ttl_minutes: int | None = None
    update_period: str | None = None
    update_frequency: int | None = None
    skip_hours: tuple[int, ...] = ()
    skip_days: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    version: str  # feedparser's name of the format ("rss20", "atom10", "json11")
    title: str | None
    link: str | None
    entries: tuple[RawEntry, ...]
    hints: FeedHints
    warning: str | None = None  # parse problems of a feed that still had entries
    authors: tuple[str, ...] = ()  # the feed's own: credited to entries that name none


def parse_feed(body: bytes, headers: Mapping[str, str], base: str | None = None) -> ParsedFeed:
    """Parse one response body; ParseError when it holds no usable feed."""
    return parse_without_feedparser(body, headers, base) or parse_with_feedparser(body, headers, base)


def parse_without_feedparser(
    body: bytes, headers: Mapping[str, str], base: str | None = None
) -> ParsedFeed | None:
    """A JSON Feed, or plain RSS 2.0 read with lxml; None: feedparser's to read.

    Both release the GIL for most of their work or are quick, so this may run
    in the fetch threads; feedparser is pure Python and runs in processes.
    """
    content_type = _parser_headers(headers, base).get("content-type", "")
    if _looks_like_json(body, content_type):
        return parse_json_feed(body, base)
    return parse_plain_rss(body, content_type, base)


def parse_with_feedparser(body: bytes, headers: Mapping[str, str], base: str | None = None) -> ParsedFeed:
    """Any RSS or Atom document, read by feedparser; ParseError when unusable."""
    # Imported on first use: most feeds never need it, and it weighs ~10 MB
    # in every process that loads it.
    import feedparser

    try:
        result = feedparser.parse(
            io.BytesIO(body),
            response_headers=_parser_headers(headers, base),
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except Exception as e:  # feedparser must never take a refresh down
        raise ParseError(f"feedparser failed: {type(e).__name__}: {e}") from e
    entries, broken = each_entry(result.get("entries", []), _raw_entry)
    warning = _joined(_bozo_message(result) if result.get("bozo") else None, broken)
    if not entries and (warning or not result.get("version")):
        raise ParseError(f"no usable feed: {warning or 'not RSS, Atom or JSON Feed'}")
    feed = result.get("feed", {})
    return ParsedFeed(
        version=result.get("version") or "unknown",
        title=feed.get("title"),
        link=feed.get("link"),
        entries=entries,
        hints=_hints(feed, body),
        warning=warning,
        authors=feedparser_authors(feed),
    )


def each_entry(items: Iterable[Any], convert: Callable[[Any], RawEntry]) -> tuple[tuple[RawEntry, ...], int]:
    """Every item converted, and how many could not be: a bad entry costs itself, never its feed."""
    kept: list[RawEntry] = []
    broken = 0
    for item in items:
        try:
            kept.append(convert(item))
        except Exception:  # whatever one hostile entry holds, its siblings are read
            log.debug("an entry could not be read", exc_info=True)
            broken += 1
    return tuple(kept), broken


def _joined(warning: str | None, broken: int) -> str | None:
    if not broken:
        return warning
    dropped = f"{broken} {'entry' if broken == 1 else 'entries'} could not be read and were dropped"
    return f"{warning}; {dropped}" if warning else dropped


def _parser_headers(headers: Mapping[str, str], base: str | None) -> dict[str, str]:
    wanted = {k.lower(): v for k, v in headers.items() if k.lower() in _PARSER_HEADERS}
    if base and "content-location" not in wanted:
        wanted["content-location"] = base
    return wanted


def _bozo_message(result: Any) -> str:
    error = result.get("bozo_exception")
    return f"{type(error).__name__}: {error}" if error else "malformed feed"


def _raw_entry(entry: Any) -> RawEntry:
    content = _best_content(entry.get("content") or [])
    summary = entry.get("summary")
    if content is None and summary is not None:
        content, summary = _as_html(entry.get("summary_detail"), summary), None
    elif summary is not None:
        summary = _as_html(entry.get("summary_detail"), summary)
    # dict.get: feedparser's own get() maps a missing updated to published, with a warning.
    published = dict.get(entry, "published_parsed") or dict.get(entry, "created_parsed")
    updated = dict.get(entry, "updated_parsed")
    date_text = dict.get(entry, "published") or dict.get(entry, "updated")
    detail = entry.get("content", [{}])[0] if entry.get("content") else entry.get("summary_detail") or {}
    extras = feedparser_extras(entry)
    return RawEntry(
        guid=_text(entry.get("id")),
        link=_text(entry.get("link")),
        title=_as_html(entry.get("title_detail"), entry.get("title")),
        summary=summary,
        content=content,
        published=utc_from_struct(published or updated),
        updated=utc_from_struct(updated or published),
        date_text=_text(date_text),
        # feedparser's "author" is the last of several; the first is the byline.
        author=extras.authors[0] if extras.authors else _text(entry.get("author")),
        categories=tuple(t for t in (_text(tag.get("term")) for tag in entry.get("tags") or []) if t),
        base=_text(detail.get("base")) if hasattr(detail, "get") else None,
        extras=extras,
    )


def _best_content(contents: list[Any]) -> str | None:
    """HTML of an entry's richest content element (Atom may give several)."""
    best: str | None = None
    for item in contents:
        value = _as_html(item, item.get("value"))
        if value and (best is None or len(value) > len(best)):
            best = value
    return best


def _as_html(detail: Any, value: object) -> str | None:
    """A text construct as HTML: plain text is escaped, HTML kept as is."""
    text = _text(value)
    if text is None:
        return None
    kind = (detail or {}).get("type", "text/html") if hasattr(detail or {}, "get") else "text/html"
    if kind == "text/plain":
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _hints(feed: Any, body: bytes) -> FeedHints:
    hours: tuple[int, ...] = ()
    days: tuple[str, ...] = ()
    if match := _SKIP_HOURS.search(body):
        hours = tuple(sorted({int(h) for h in _HOUR.findall(match.group(1)) if int(h) < 24}))
    if match := _SKIP_DAYS.search(body):
        days = tuple(sorted({d.decode("ascii").capitalize() for d in _DAY.findall(match.group(1))}))
    return FeedHints(
        ttl_minutes=_int(feed.get("ttl")),
        update_period=_text(feed.get("sy_updateperiod")),
        update_frequency=_int(feed.get("sy_updatefrequency")),
        skip_hours=hours,
        skip_days=days,
    )


def _int(value: object) -> int | None:
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None


# -- the fast path: plain, well-formed RSS 2.0 -------------------------------------
#
# feedparser spends ~30 ms on a 50-item feed, nearly all in Python callbacks
# per XML event; lxml reads the same document in about one. Most feeds are
# plain RSS 2.0, so those are read here, with the rules feedparser applies to
# them (a permalink guid is the link when there is none; links are relative
# to the feed's URL). Anything unusual goes to feedparser instead: another
# format, a DOCTYPE or entity declaration, xml:base, a charset header that
# disagrees with the document, a date we cannot read, or XML that is not
# well-formed.

_CONTENT_NS = "{http://purl.org/rss/1.0/modules/content/}"
_DC_NS = "{http://purl.org/dc/elements/1.1/}"
_DCTERMS_NS = "{http://purl.org/dc/terms/}"
_SY_NS = "{http://purl.org/rss/1.0/modules/syndication/}"
_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding=["']([A-Za-z0-9._-]+)["']""")
_CHARSET = re.compile(r"charset=[\"']?([A-Za-z0-9._-]+)", re.I)
# One parser per thread: lxml parses without the GIL, but a parser object
# serialises the threads that share it.
_PARSERS = threading.local()


def _safe_parser() -> etree.XMLParser:
    parser: etree.XMLParser | None = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = _PARSERS.parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=True
        )
    return parser


class _NotPlainError(Exception):
    """This document is for feedparser."""


def parse_plain_rss(body: bytes, content_type: str, base: str | None) -> ParsedFeed | None:
    """A plain, well-formed RSS 2.0 document read with lxml; None: not one."""
    unusual = (b"<!DOCTYPE", b"<!ENTITY", b"xml:base")
    if any(marker in body for marker in unusual) or not _charset_agrees(body, content_type):
        return None
    try:
        root = etree.fromstring(body, _safe_parser())
        channel = root.find("channel")
        if root.tag != "rss" or root.get("version") != "2.0" or channel is None:
            return None
        utf8 = codecs.lookup(root.getroottree().docinfo.encoding or "utf-8").name == "utf-8"
        entries = tuple(_plain_entry(item, base, utf8) for item in channel.iterfind("item"))
    except (etree.XMLSyntaxError, ValueError, LookupError, OverflowError, RecursionError, _NotPlainError):
        return None  # feedparser judges it
    return ParsedFeed(
        version="rss20",
        authors=tuple(a for a in (_repaired(a, utf8) for a in rss_channel_authors(channel)) if a),
        title=_repaired(_text(channel.findtext("title")), utf8),
        link=_text(channel.findtext("link")),
        entries=entries,
        hints=FeedHints(
            ttl_minutes=_int(channel.findtext("ttl")),
            update_period=_text(channel.findtext(f"{_SY_NS}updatePeriod")),
            update_frequency=_int(channel.findtext(f"{_SY_NS}updateFrequency")),
            skip_hours=_hours(channel.xpath("skipHours/hour/text()")),
            skip_days=tuple(
                sorted({str(d).strip().capitalize() for d in channel.xpath("skipDays/day/text()")})
            ),
        ),
    )


def _hours(values: list[Any]) -> tuple[int, ...]:
    hours = (_int(v) for v in values)
    return tuple(sorted({h for h in hours if h is not None and 0 <= h < 24}))


def _charset_agrees(body: bytes, content_type: str) -> bool:
    """A charset in the header must name the document's own encoding (else
    feedparser's RFC 3023 rules decide)."""
    header = _CHARSET.search(content_type)
    if not header:
        return True
    declared = _DECLARED_ENCODING.match(body[:200])
    try:
        wanted = codecs.lookup(header.group(1)).name
        actual = codecs.lookup(declared.group(1).decode("ascii") if declared else "utf-8").name
    except LookupError:
        return False
    return wanted == actual


# The children of an <item> that _plain_entry reads: the first of each counts.
_ITEM_FIELDS = frozenset(
    {
        "guid",
        "link",
        "title",
        "description",
        "pubDate",
        f"{_CONTENT_NS}encoded",
        f"{_DC_NS}date",
        f"{_DCTERMS_NS}modified",
    }
)


def _repaired(text: str | None, utf8: bool) -> str | None:
    """Text as feedparser hands it out, so both readers of RSS 2.0 agree: in a
    UTF-8 document, text that is UTF-8 read as Latin-1 ("â€¦") is decoded
    again, and C1 controls become the Windows-1252 characters they were."""
    if text is None or text.isascii():
        return text
    if utf8:
        with contextlib.suppress(UnicodeError):  # not UTF-8 read as Latin-1
            text = text.encode("iso-8859-1").decode("utf-8")
    return windows_1252_c1(text)


def _plain_entry(item: Any, base: str | None, utf8: bool = True) -> RawEntry:
    # One pass over the children: a find() per field walked them ten times.
    first: dict[str, Any] = {}
    categories: list[str] = []
    children = list(item)
    for child in children:
        tag = child.tag
        if tag == "category":
            if text := _repaired(_text(child.text), utf8):
                categories.append(text)
        elif tag in _ITEM_FIELDS and tag not in first:
            first[tag] = child
    texts = {tag: _repaired(_text(child.text), utf8) for tag, child in first.items()}
    guid, link = texts.get("guid"), texts.get("link")
    if link is None and guid and first["guid"].get("isPermaLink", "true").lower() != "false":
        link = guid
    date_text = texts.get("pubDate") or texts.get(f"{_DC_NS}date")
    published = _plain_date(date_text)
    modified = _plain_date(texts.get(f"{_DCTERMS_NS}modified"))
    content, summary = texts.get(f"{_CONTENT_NS}encoded"), texts.get("description")
    if content is None:
        content, summary = summary, None
    extras = rss_extras(children)
    if any(not a.isascii() for a in extras.authors):
        extras = replace(extras, authors=tuple(a for a in (_repaired(a, utf8) for a in extras.authors) if a))
    return RawEntry(
        guid=guid,
        link=_resolve(link, base),
        title=texts.get("title"),
        summary=summary,
        content=content,
        published=published or modified,
        updated=modified or published,
        date_text=date_text,
        author=extras.authors[0] if extras.authors else None,
        categories=tuple(categories),
        base=base,
        extras=extras,
    )


def _plain_date(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):  # year 99999999999: not a date
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except (ValueError, OverflowError):
            raise _NotPlainError from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # the year 1 east of UTC, 9999 west of it: feedparser's to judge
        raise _NotPlainError from None


def _resolve(link: str | None, base: str | None) -> str | None:
    if not link or not base or link.startswith(("http://", "https://")):
        return link  # absolute already: nothing to join
    return urljoin(base, link)


# -- JSON Feed ----------------------------------------------------------------


def _looks_like_json(body: bytes, content_type: str) -> bool:
    if "json" in content_type.lower():
        return True
    return body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"


def parse_json_feed(body: bytes, base: str | None = None) -> ParsedFeed:
    """JSON Feed 1.0/1.1 (https://jsonfeed.org/version/1.1) -> records."""
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ParseError(f"not valid JSON: {e}") from e
    if not isinstance(data, dict) or not str(data.get("version", "")).startswith(_JSON_FEED):
        raise ParseError("not a JSON Feed (no jsonfeed.org version)")
    raw_items = data.get("items")
    if not isinstance(raw_items, list):
        raise ParseError("JSON Feed without an items list")
    objects = [item for item in raw_items if isinstance(item, dict)]
    entries, broken = each_entry(objects, lambda item: _json_entry(item, base))
    skipped = len(raw_items) - len(objects)
    warning = _joined(f"{skipped} items were not objects" if skipped else None, broken)
    if not entries and skipped:
        raise ParseError(f"no usable feed: {warning}")
    version = "json11" if str(data["version"]).endswith("1.1") else "json10"
    return ParsedFeed(
        version=version,
        title=_text(data.get("title")) if isinstance(data.get("title"), str) else None,
        link=_text(data.get("home_page_url")) if isinstance(data.get("home_page_url"), str) else None,
        entries=entries,
        hints=FeedHints(),
        warning=warning,
        authors=json_authors(data),
    )


def _json_entry(item: dict[str, Any], base: str | None) -> RawEntry:
    def text(key: str) -> str | None:
        value = item.get(key)
        return _text(value) if isinstance(value, (str, int, float)) else None

    content = text("content_html")
    if content is None and (plain := text("content_text")):
        content = plain.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    title = text("title")
    published, updated = _json_date(text("date_published")), _json_date(text("date_modified"))
    tags = item["tags"] if isinstance(item.get("tags"), list) else []
    extras = json_extras(item)
    return RawEntry(
        guid=text("id"),
        link=text("url") or text("external_url"),
        title=title.replace("&", "&amp;").replace("<", "&lt;") if title else None,
        summary=(s.replace("&", "&amp;").replace("<", "&lt;") if (s := text("summary")) else None),
        content=content,
        published=published or updated,
        updated=updated or published,
        date_text=text("date_published") or text("date_modified"),
        author=extras.authors[0] if extras.authors else None,
        categories=tuple(str(t) for t in tags if isinstance(t, (str, int))),
        base=base,
        extras=extras,
    )


def _json_date(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # the year 1 east of UTC, 9999 west of it
        return None
