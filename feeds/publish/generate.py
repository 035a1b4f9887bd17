"""Items -> RSS 2.0, Atom 1.0 and JSON Feed 1.1 bytes (the only feedgen user).

feedgen has traps that make output drift between runs, so this adapter sets
everything explicitly: every date comes from the items (the constructors
stamp ``now()``), entries are appended in our order (``add_entry`` prepends by
default), the feedgen generator tag and docs are replaced, and Atom entry
links, categories, authors and ``<source>`` are written by our own extension
(feedgen drops a link's ``rel``/``type`` and writes no Atom category label or
source id). The same items always give the same bytes.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from feedgen.entry import FeedEntry
from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from feeds import __version__
from feeds.model import Enclosure, Item, Origin
from feeds.normalise import has_non_xml, xml_chars

DC_NS = "http://purl.org/dc/elements/1.1/"
ATOM_NS = "http://www.w3.org/2005/Atom"
FH_NS = "http://purl.org/syndication/history/1.0"  # RFC 5005 feed paging and archiving
AT_NS = "http://purl.org/atompub/tombstones/1.0"  # RFC 6721 deleted entries
MEDIA_NS = "http://search.yahoo.com/mrss/"
DCTERMS_NS = "http://purl.org/dc/terms/"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
GENERATOR = "newsroom-feeds"
GENERATOR_URI = "https://pypi.org/project/newsroom-feeds/"
# A feed with no items still needs an updated date; a fixed one keeps it stable.
EMPTY_FEED_UPDATED = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ArchiveLinks:
    """RFC 5005 links of one document, as tree paths without extension (``archive/world-3``)."""

    current: str  # the subscription document: ``feeds/world``
    prev: str | None = None  # the archive page before this document, if any
    next: str | None = None  # the archive page after (archive pages only)
    is_archive: bool = False  # an archive document carries fh:archive


@dataclass(frozen=True, slots=True)
class DeletedEntry:
    """An item the feed once carried and the store has since deleted (RFC 6721)."""

    ref: str  # the item's id
    when: datetime


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """What a feed is, apart from its items."""

    slug: str  # "all" or a section slug
    title: str
    description: str
    base_url: str  # ends with "/"
    language: str
    authority: str  # RFC 4151 tagging entity
    author: str  # the publisher, named on the feed (Atom needs an author)
    section_label: str | None = None
    name: str = ""  # short display name: "All stories", "Arts & Culture"
    hubs: tuple[str, ...] = ()  # WebSub hubs advertised with rel="hub"
    path: str = ""  # this document's tree path without extension; "" is feeds/<slug>
    archive: ArchiveLinks | None = None
    deleted: tuple[DeletedEntry, ...] = ()  # announced in Atom only
    query: str = ""  # of a filtered or search feed: part of its URL and id

    @property
    def stem(self) -> str:
        return self.path or f"feeds/{self.slug}"

    def url(self, ext: str) -> str:
        query = f"?{self.query}" if self.query else ""
        return f"{self.base_url}{self.stem}.{ext}{query}"

    def url_of(self, stem: str, ext: str) -> str:
        return f"{self.base_url}{stem}.{ext}"

    @property
    def feed_id(self) -> str:
        """The same for a feed and its archive pages (RFC 5005); a query makes another feed."""
        query = f"?{self.query}" if self.query else ""
        return f"tag:{self.authority}:feed/{self.slug}{query}"


def item_url(item: Item, base_url: str) -> str:
    """Where a reader goes for an item: its own link, or our permalink page."""
    return item.link or f"{base_url}items/{item.slug}.html"


def feed_updated(items: Sequence[Item]) -> datetime:
    """A feed's updated time: the newest item ``updated``, never the clock."""
    return max((i.updated for i in items), default=EMPTY_FEED_UPDATED)


def item_html(item: Item) -> str | None:
    """The HTML body of an item: its sanitised content, or its paragraphs."""
    if item.content_html:
        return item.content_html
    if not item.body:
        return None
    parts = []
    if item.dateline:
        parts.append(f"<p><strong>{html.escape(item.dateline, quote=False)}</strong></p>")
    if item.author:
        parts.append(f"<p><em>{html.escape(item.author, quote=False)}</em></p>")
    parts.extend(f"<p>{html.escape(p, quote=False)}</p>" for p in item.body)
    return "\n".join(parts)


_ITEM_TEXTS = (
    "id",
    "title",
    "section",
    "section_slug",
    "link",
    "summary",
    "content_html",
    "dateline",
    "author",
    "image",
    "comments",
)


def xml_safe_item(item: Item) -> Item:
    """The item without characters XML 1.0 cannot carry.

    Remote text is cleaned of them before it is stored, but a store written
    by an older version, or a seed file, may still hold one, and lxml refuses
    to build a document around it: one such character would stop every feed
    that lists the item from being written. Almost every item passes the
    check unchanged.
    """
    changes: dict[str, object] = {
        name: xml_chars(value)
        for name in _ITEM_TEXTS
        if isinstance(value := getattr(item, name), str) and has_non_xml(value)
    }
    if "title" in changes and not str(changes["title"]).strip():
        changes["title"] = "Untitled"
    for name in ("body", "authors", "categories"):
        values: tuple[str, ...] = getattr(item, name)
        if any(has_non_xml(v) for v in values):
            changes[name] = tuple(xml_chars(v) for v in values)
    if any(isinstance(v, str) and has_non_xml(v) for o in item.origins for v in (o.name, o.url, o.title)):
        changes["origins"] = tuple(
            replace(o, name=xml_chars(o.name), url=_xml_or_none(o.url), title=_xml_or_none(o.title))
            for o in item.origins
        )
    return replace(item, **changes) if changes else item  # type: ignore[arg-type]


def _xml_or_none(text: str | None) -> str | None:
    return None if text is None else xml_chars(text)


def primary_origin(item: Item) -> Origin | None:
    """The remote source an item is credited to: the first that brought it.

    None when a seed brought it first (or at once with a source): the story
    is then ours, and a remote copy that came later adds provenance only.
    """
    if not item.origins:
        return None
    far_past = datetime.min.replace(tzinfo=UTC)
    first = min(item.origins, key=lambda o: (o.first_seen or far_past, o.kind != "seed", o.name))
    return first if first.kind == "source" and first.url else None


class _FeedLinks(BaseExtension):
    """Feed-level links feedgen cannot write: WebSub hubs, RFC 5005 archive
    links and fh:archive, RFC 6721 tombstones (Atom). RSS carries the links
    as atom:link, as WebSub and RFC 5005 ask."""

    spec: FeedSpec
    fmt: str

    def set(self, spec: FeedSpec, fmt: str) -> None:
        self.spec = spec
        self.fmt = fmt

    def extend_ns(self) -> dict[str, str]:
        names = {"dc": DC_NS} if self.fmt == "rss" else {}
        if self.spec.archive is not None:
            names["fh"] = FH_NS
        if self.spec.deleted and self.fmt == "atom":
            names["at"] = AT_NS
        return names

    def extend_atom(self, feed: etree._Element) -> etree._Element:
        # feedgen writes Atom feed children unqualified under a default namespace.
        self._add(feed, "link")
        for gone in self.spec.deleted:
            etree.SubElement(feed, f"{{{AT_NS}}}deleted-entry", ref=gone.ref, when=rfc3339(gone.when))
        return feed

    def extend_rss(self, feed: etree._Element) -> etree._Element:
        self._add(feed.find("channel"), f"{{{ATOM_NS}}}link")
        return feed

    def _add(self, parent: etree._Element, link: str) -> None:
        spec, ext = self.spec, self.fmt
        media_type = _MEDIA_TYPES[ext]
        for hub in spec.hubs:
            etree.SubElement(parent, link, rel="hub", href=hub)
        archive = spec.archive
        if archive is None:
            return
        if archive.is_archive:
            etree.SubElement(
                parent, link, rel="current", type=media_type, href=spec.url_of(archive.current, ext)
            )
        for rel, stem in (("prev-archive", archive.prev), ("next-archive", archive.next)):
            if stem is not None:
                etree.SubElement(parent, link, rel=rel, type=media_type, href=spec.url_of(stem, ext))
        if archive.is_archive:
            etree.SubElement(parent, f"{{{FH_NS}}}archive")


class _MediaFeed(BaseExtension):
    """Declares Media RSS on the root, for feeds with a picture in them."""

    def extend_ns(self) -> dict[str, str]:
        return {"media": MEDIA_NS}


class _DcTermsFeed(BaseExtension):
    """Declares DCMI terms on an RSS root, for items revised after publication."""

    def extend_ns(self) -> dict[str, str]:
        return {"dcterms": DCTERMS_NS}


class _ItemExtension(BaseEntryExtension):
    """Writes what feedgen gets wrong or lacks, from one of our Items."""

    item: Item
    spec: FeedSpec

    def set(self, item: Item, spec: FeedSpec) -> None:
        self.item = item
        self.spec = spec

    def extend_atom(self, entry: etree._Element) -> etree._Element:
        # feedgen builds Atom entries without a namespace and declares the
        # default one on <feed>, so plain names land in the Atom namespace.
        # It also drops an enclosure link's length and type, so every link
        # of an entry is written here.
        item = self.item
        for link in entry.findall("link"):
            entry.remove(link)
        href = item_url(item, self.spec.base_url)
        link = etree.Element("link", rel="alternate", type="text/html", href=href)
        _insert_after(entry, link, ("content", "author", "updated"))
        for enclosure in item.enclosures:
            link.addnext(enclosure_link := etree.Element("link", rel="enclosure", href=enclosure.url))
            enclosure_link.set("type", enclosure.type)
            if enclosure.length:
                enclosure_link.set("length", str(enclosure.length))
            link = enclosure_link
        if item.comments:
            link.addnext(etree.Element("link", rel="replies", type="text/html", href=item.comments))
        if item.section_slug:
            category = etree.SubElement(entry, "category", term=item.section_slug)
            if item.section:
                category.set("label", item.section)
        for term in publisher_categories(item):
            etree.SubElement(entry, "category", term=term)
        if item.image:
            etree.SubElement(entry, f"{{{MEDIA_NS}}}thumbnail", url=item.image)
        origin = primary_origin(self.item)
        if origin is not None and origin.url:
            source = etree.SubElement(entry, "source")
            etree.SubElement(source, "id").text = origin.url
            etree.SubElement(source, "title").text = origin.title or origin.name
            etree.SubElement(source, "link", rel="self", href=origin.url)
            # The time we first copied an entry from it: stable, unlike "last fetched".
            seen = origin.first_seen or self.item.published
            etree.SubElement(source, "updated").text = rfc3339(seen)
        return entry

    def extend_rss(self, entry: etree._Element) -> etree._Element:
        item = self.item
        for name in item_authors(item):
            etree.SubElement(entry, f"{{{DC_NS}}}creator").text = name
        if item.section:
            etree.SubElement(entry, "category").text = item.section
        for term in publisher_categories(item):
            etree.SubElement(entry, "category").text = term
        if item.updated != item.published:
            # RSS has no updated date of its own; feedparser reads this one.
            etree.SubElement(entry, f"{{{DCTERMS_NS}}}modified").text = rfc3339(item.updated)
        if item.comments:
            etree.SubElement(entry, "comments").text = item.comments
        for enclosure in item.enclosures:
            # RSS requires a length; 0 is the convention for "not known".
            etree.SubElement(
                entry, "enclosure", url=enclosure.url, length=str(enclosure.length or 0), type=enclosure.type
            )
        origin = primary_origin(item)
        if origin is not None and origin.url:
            etree.SubElement(entry, "source", url=origin.url).text = origin.title or origin.name
        if item.image:
            etree.SubElement(entry, f"{{{MEDIA_NS}}}thumbnail", url=item.image)
        return entry


def item_authors(item: Item) -> tuple[str, ...]:
    """Everyone an item credits, the first author first."""
    return item.authors or ((item.author,) if item.author else ())


def publisher_categories(item: Item) -> tuple[str, ...]:
    """The publisher's categories of an item, but the one its section label repeats."""
    label = (item.section or "").casefold()
    return tuple(c for c in item.categories if c.casefold() != label)


def _insert_after(parent: etree._Element, child: etree._Element, names: Sequence[str]) -> None:
    """Put ``child`` after the siblings of the first name in ``names`` there are (Atom order is free,
    but a stable, readable order keeps diffs small)."""
    for name in names:  # un-namespaced, as feedgen builds entries
        found = parent.findall(name)
        if found:
            found[-1].addnext(child)  # after all of them: several authors stay together
            return
    parent.append(child)


def _generator(spec: FeedSpec, items: Sequence[Item], fmt: str) -> FeedGenerator:
    fg = FeedGenerator()
    if fmt == "rss":
        fg.register_extension("newsroom_rss", _FeedLinks, _ItemExtension, atom=False, rss=True)
    else:
        fg.register_extension("newsroom_atom", _FeedLinks, _ItemExtension, atom=True, rss=False)
    getattr(fg, "newsroom_rss" if fmt == "rss" else "newsroom_atom").set(spec, fmt)
    # Namespaces only where used: a feed without pictures or revisions stays as it was.
    if any(item.image for item in items):
        fg.register_extension("newsroom_media", _MediaFeed, None, atom=True, rss=True)
    if fmt == "rss" and any(item.updated != item.published for item in items):
        fg.register_extension("newsroom_dcterms", _DcTermsFeed, None, atom=False, rss=True)
    updated = feed_updated(items)
    fg.id(spec.feed_id)
    fg.title(spec.title)
    # RSS description (HTML, so escaped) and Atom subtitle (text).
    fg.description(html.escape(spec.description, quote=False) if fmt == "rss" else spec.description)
    fg.language(spec.language)
    fg.author({"name": spec.author})
    fg.generator(GENERATOR, version=__version__, uri=GENERATOR_URI)
    # RSS takes its channel <link> from the last link added, so the self link goes first.
    fg.link(href=spec.url(fmt), rel="self", type=_MEDIA_TYPES[fmt])
    fg.link(href=spec.base_url, rel="alternate", type="text/html")
    fg.updated(updated)
    fg.lastBuildDate(updated)
    for item in items:
        entry = fg.add_entry(order="append")
        _fill_entry(entry, xml_safe_item(item), spec, fmt)
    return fg


_MEDIA_TYPES = {"rss": "application/rss+xml", "atom": "application/atom+xml"}


def _fill_entry(entry: FeedEntry, item: Item, spec: FeedSpec, fmt: str) -> None:
    url = item_url(item, spec.base_url)
    entry.id(item.id)
    entry.guid(item.id, permalink=False)
    entry.title(item.title)
    entry.link(href=url, rel="alternate")
    entry.published(item.published)
    entry.updated(item.updated)
    body = item_html(item)
    # A headline has no text but its title; Atom wants some textual content.
    summary = item.summary or (None if body else item.title)
    if fmt == "rss":
        if summary:
            # <description> is HTML to every reader: plain text is escaped ("Q&A").
            entry.description(html.escape(summary, quote=False))
        if body:
            entry.content(body, type="CDATA" if "]]>" not in body else None)
    else:
        if body:
            entry.content(body, type="html")
        if summary:
            entry.summary(summary)
        if authors := item_authors(item):
            entry.author([{"name": name} for name in authors])
    ext = getattr(entry, "newsroom_rss" if fmt == "rss" else "newsroom_atom")
    ext.set(item, spec)


def render_rss(spec: FeedSpec, items: Sequence[Item]) -> bytes:
    """RSS 2.0 bytes, items in the given order."""
    data = bytes(_generator(spec, items, "rss").rss_str(pretty=True))
    # RSS never said whether <title> is text or HTML; the RSS Best Practices
    # Profile (and the W3C validator) ask for "<" and "&" in text as hex
    # character references, which every reader decodes as plain characters.
    # lxml only writes these three entities for escaped text, and CDATA holds
    # none, so the swap is exact.
    return data.replace(b"&lt;", b"&#x3C;").replace(b"&amp;", b"&#x26;").replace(b"&gt;", b"&#x3E;")


def render_atom(spec: FeedSpec, items: Sequence[Item]) -> bytes:
    """Atom 1.0 bytes, entries in the given order."""
    return bytes(_generator(spec, items, "atom").atom_str(pretty=True))


def render_json(spec: FeedSpec, items: Sequence[Item]) -> bytes:
    """JSON Feed 1.1 bytes (feedgen has no JSON Feed; written with ``json``)."""
    feed: dict[str, object] = {
        "version": JSON_FEED_VERSION,
        "title": spec.title,
        "home_page_url": spec.base_url,
        "feed_url": spec.url("json"),
        "description": spec.description,
        "language": spec.language,
        "authors": [{"name": spec.author}],
        **({"hubs": [{"type": "WebSub", "url": hub} for hub in spec.hubs]} if spec.hubs else {}),
        "items": [_json_item(xml_safe_item(item), spec) for item in items],
    }
    return (json.dumps(feed, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _json_item(item: Item, spec: FeedSpec) -> dict[str, object]:
    entry: dict[str, object] = {"id": item.id, "url": item_url(item, spec.base_url), "title": item.title}
    body = item_html(item)
    if body:
        entry["content_html"] = body
    else:
        entry["content_text"] = item.summary or item.title
    if item.summary:
        entry["summary"] = item.summary
    entry["date_published"] = rfc3339(item.published)
    entry["date_modified"] = rfc3339(item.updated)
    if authors := item_authors(item):
        entry["authors"] = [{"name": name} for name in authors]
    tags = [*([item.section] if item.section else []), *publisher_categories(item)]
    if tags:
        entry["tags"] = tags
    if item.image:
        entry["image"] = item.image
    if item.enclosures:
        entry["attachments"] = [_json_attachment(e) for e in item.enclosures]
    if item.comments:
        entry["_comments"] = {"url": item.comments}
    origin = primary_origin(item)
    if origin is not None and origin.url:
        entry["_source"] = {"name": origin.title or origin.name, "feed_url": origin.url}
    return entry


def _json_attachment(enclosure: Enclosure) -> dict[str, object]:
    attachment: dict[str, object] = {"url": enclosure.url, "mime_type": enclosure.type}
    if enclosure.length:
        attachment["size_in_bytes"] = enclosure.length
    return attachment


def rfc3339(moment: datetime) -> str:
    """RFC 3339 in UTC; milliseconds only when there are some."""
    moment = moment.astimezone(UTC)
    # Not strftime: its %Y writes the year 1 as "1", which RFC 3339 does not allow.
    text = f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}"
    if moment.microsecond:
        return f"{text}.{moment.microsecond // 1000:03d}Z"
    return f"{text}Z"


RENDERERS = {"rss": render_rss, "atom": render_atom, "json": render_json}
