"""Remote entries: from parsed feeds to clean records, and from records to item writes.

``prepare_feed`` runs off the store writer's thread (in the fetch threads,
or in a parser process for feeds that need feedparser): bytes -> parse ->
sanitise -> normalise -> file into a section -> hash, returning only
picklable records, so the writer only compares and writes.
``plan_source_writes`` runs in the single store writer: given what the store
already holds, it decides which entries are new, which changed and which are
the same story another source or a seed already brought. Both are pure.

Who may change a stored item: the source that first brought it (its
"owner"). A second source that carries the same story only adds itself as
provenance; otherwise two feeds with different wordings would rewrite the
item on every refresh, and readers would see it change back and forth.
Items a seed created are likewise never rewritten by a source.
"""

from __future__ import annotations

import heapq
import logging
import mimetypes
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from feeds.errors import ParseError
from feeds.model import Enclosure, Extras, Item, Origin, content_hash
from feeds.normalise import (
    canonical_link,
    entry_published,
    fold_title,
    remote_entry_key,
    remote_item_id,
    remote_item_slug,
    web_link,
)
from feeds.plan import ItemPlanner, WritePlan
from feeds.sanitise import MAX_TITLE, plain_text, safe_html
from feeds.sources.formats import (
    FeedHints,
    ParsedFeed,
    RawEntry,
    parse_feed,
    parse_with_feedparser,
    parse_without_feedparser,
)
from feeds.sources.media import RawEnclosure

if TYPE_CHECKING:  # the parser processes load this module; they need no store
    from store.sources import RemoteMatches

log = logging.getLogger(__name__)
# Longer links are no links: browsers, proxies and sitemaps stop near 2,000
# characters, and a 1 MB <link> would be copied into every feed we publish.
MAX_LINK = 2048


def _words(text: str) -> str:
    """Text as its words, space-separated and padded, for whole-word matching by ``in``."""
    return " " + " ".join(_WORD.findall(text.casefold())) + " "


_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class Filing:
    """Which section a source's entries go to: the first of an entry's
    categories the source maps, else the source's own section."""

    section: str | None = None  # slug
    categories: Mapping[str, str] = field(default_factory=dict)  # folded category -> slug
    labels: Mapping[str, str] = field(default_factory=dict)  # slug -> label shown
    include: tuple[str, ...] = ()  # the source's rules: words or phrases, plain text
    exclude: tuple[str, ...] = ()

    def admits(self, entry: RemoteEntry) -> bool:
        """Whether the source's include/exclude rules let an entry be stored:
        its title, summary (else the start of its text) and categories must
        name an ``include`` phrase, if there are any, and no ``exclude`` one.
        Whole words, any case; a phrase is plain text, never a pattern."""
        if not self.include and not self.exclude:
            return True
        summary = entry.summary or plain_text(entry.content_html, 500) or ""
        words = _words(" ".join([entry.title, summary, *entry.categories]))
        if self.include and not any(_words(p) in words for p in self.include):
            return False
        return not any(_words(p) in words for p in self.exclude)

    def section_of(self, categories: Sequence[str]) -> tuple[str | None, str | None]:
        """(label, slug) of an entry with these categories."""
        slug = self.section
        if self.categories:
            folded = (fold_title(c) for c in categories)
            slug = next((self.categories[c] for c in folded if c in self.categories), self.section)
        if slug is None:
            return None, None
        return self.labels.get(slug) or slug.replace("-", " ").upper(), slug


@dataclass(frozen=True, slots=True)
class RemoteEntry:
    """A remote entry, cleaned: text is text, HTML is safe, links are absolute."""

    key: str  # its identity within its feed: guid/id, else link, else title + date
    item_id: str
    slug: str
    title: str
    folded: str
    link: str | None
    canonical_link: str | None
    date: datetime | None  # UTC; None: first-seen time applies
    modified: datetime | None  # the publisher's own later `updated`, UTC (a correction)
    summary: str | None
    content_html: str | None
    author: str | None
    categories: tuple[str, ...] = ()
    section: str | None = None  # label, as filed
    section_slug: str | None = None
    content_hash: str = ""  # that of the item this entry makes (``new_item``)
    extras: Extras = field(default_factory=Extras)  # every author, categories, enclosures, picture, comments


@dataclass(frozen=True, slots=True)
class RemoteFeed:
    version: str
    title: str | None
    entries: tuple[RemoteEntry, ...]
    hints: FeedHints = field(default_factory=FeedHints)
    warning: str | None = None


@dataclass(frozen=True, slots=True)
class PrepareJob:
    source: str
    authority: str
    url: str  # where the body came from: the base of relative links
    body: bytes
    headers: Mapping[str, str]
    filing: Filing = field(default_factory=Filing)
    max_entries: int = 5000  # [fetch] max_entries: the newest kept, the rest dropped


@dataclass(frozen=True, slots=True)
class ParseFailure:
    message: str


def prepare_feed(job: PrepareJob) -> RemoteFeed | ParseFailure:
    """Parse, sanitise and normalise one body; failures come back as data.

    May run in a worker process, so nothing may escape it as an exception:
    a crash there would fail every source waiting in the same pool.
    """
    return _prepare(job, parse_feed) or ParseFailure("no parser took the feed")


def prepare_without_feedparser(job: PrepareJob) -> RemoteFeed | ParseFailure | None:
    """``prepare_feed`` for what lxml and json read (plain RSS 2.0, JSON Feed);
    None when the body needs feedparser, pure Python and best in a process."""
    return _prepare(job, parse_without_feedparser)


def prepare_with_feedparser(job: PrepareJob) -> RemoteFeed | ParseFailure:
    """``prepare_feed`` for a body ``prepare_without_feedparser`` turned down."""
    return _prepare(job, parse_with_feedparser) or ParseFailure("no parser took the feed")


def _prepare(
    job: PrepareJob, parse: Callable[[bytes, Mapping[str, str], str | None], ParsedFeed | None]
) -> RemoteFeed | ParseFailure | None:
    try:
        parsed = parse(job.body, job.headers, job.url)
        if parsed is None:
            return None
        entries: dict[str, RemoteEntry] = {}
        empty = long_links = 0
        kept = newest_entries(parsed.entries, job.max_entries)
        for raw in kept:
            if raw.link is not None and len(raw.link) > MAX_LINK:
                raw = replace(raw, link=None)
                long_links += 1
            entry = clean_entry(raw, job.source, job.authority, job.url, job.filing, parsed.authors)
            if entry is None:
                empty += 1
            elif not job.filing.admits(entry):
                continue  # the source's rules say no: not stored
            else:
                entries.setdefault(entry.key, entry)  # a feed repeating an entry: the first wins
        capped = len(parsed.entries) - len(kept)
        cap_warning = (
            f"{len(parsed.entries)} entries: kept the newest {len(kept)} ([fetch] max_entries)"
            if capped
            else None
        )
        long_warning = (
            f"{long_links} {'link' if long_links == 1 else 'links'} over {MAX_LINK} characters dropped"
            if long_links
            else None
        )
        warnings = [w for w in (parsed.warning, _dropped_warning(empty), cap_warning, long_warning) if w]
        return RemoteFeed(
            version=parsed.version,
            title=plain_text(parsed.title, MAX_TITLE),
            entries=tuple(entries.values()),
            hints=parsed.hints,
            warning="; ".join(warnings) or None,
        )
    except ParseError as e:
        return ParseFailure(e.message)
    except Exception as e:  # see prepare_feed
        log.exception("%s: parsing failed", job.source)
        return ParseFailure(f"parser failed: {type(e).__name__}: {e}")


def newest_entries(entries: Sequence[RawEntry], limit: int) -> Sequence[RawEntry]:
    """At most ``limit`` entries, the newest by their date (undated ones rank
    by their place: feeds list newest first), in the feed's order. Capped
    before cleaning, so a feed of 100,000 entries costs its parse and no more."""
    if len(entries) <= limit:
        return entries
    oldest = datetime.min.replace(tzinfo=UTC)

    def rank(index: int) -> tuple[datetime, int]:
        entry = entries[index]
        return entry.published or entry.updated or oldest, -index

    return [entries[i] for i in sorted(heapq.nlargest(limit, range(len(entries)), key=rank))]


def _dropped_warning(count: int) -> str | None:
    if not count:
        return None
    if count == 1:
        return "1 entry with no title, content or link was dropped"
    return f"{count} entries with no title, content or link were dropped"


def clean_entry(
    raw: RawEntry,
    source: str,
    authority: str,
    feed_url: str,
    filing: Filing | None = None,
    feed_authors: Sequence[str] = (),
) -> RemoteEntry | None:
    """One raw entry as a clean record: plain-text title, safe HTML, absolute
    links, its section and the hash of the item it makes. None for an entry
    with nothing a reader could see or follow (no title, text or link): each
    would be an "Untitled" item, and such items from two feeds would meet.
    An entry that names no author is the feed's (``feed_authors``)."""
    base = raw.base or feed_url
    link = web_link(raw.link, base)
    if link is not None and len(link) > MAX_LINK:  # grew past the limit when made absolute
        link = None
    content = safe_html(raw.content, base)
    summary = plain_text(raw.summary)
    title = plain_text(raw.title, MAX_TITLE) or plain_text(raw.summary or raw.content, 80) or link
    if title is None:
        return None
    key = remote_entry_key(raw.guid, link, title, raw.date_text)
    item_id = remote_item_id(authority, source, key)
    authors = _texts(raw.extras.authors or (raw.author,), MAX_AUTHORS) or _texts(feed_authors, MAX_AUTHORS)
    author = authors[0] if authors else None
    categories = _texts(raw.categories, MAX_CATEGORIES)
    extras = Extras(
        authors=authors if len(authors) > 1 else (),
        categories=categories,
        enclosures=_enclosures(raw.extras.enclosures, base),
        image=next((u for u in (web_link(i, base) for i in raw.extras.images) if u), None),
        comments=web_link(raw.extras.comments, base),
    )
    label, slug = (filing or Filing()).section_of(categories)
    return RemoteEntry(
        key=key,
        item_id=item_id,
        slug=remote_item_slug(title, item_id),
        title=title,
        folded=fold_title(title),
        link=link,
        canonical_link=canonical_link(link),
        date=raw.published,
        modified=raw.updated if raw.updated and raw.published and raw.updated > raw.published else None,
        summary=summary,
        content_html=content,
        author=author,
        categories=categories,
        section=label,
        section_slug=slug,
        content_hash=content_hash(
            title, "entry", label, slug, link, summary, content, (), None, author, extras
        ),
        extras=extras,
    )


# Bounds on what one entry may carry: a feed is not trusted to be sensible.
MAX_AUTHORS = 10
MAX_CATEGORIES = 20
MAX_ENCLOSURES = 10
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")


def _texts(values: Iterable[str | None], limit: int) -> tuple[str, ...]:
    """Plain-text values, each once (case aside), at most ``limit``."""
    kept: dict[str, str] = {}
    for value in values:
        text = plain_text(value, 200)
        if text and text.casefold() not in kept:
            kept[text.casefold()] = text
    return tuple(kept.values())[:limit]


def _enclosures(raw: Sequence[RawEnclosure], base: str) -> tuple[Enclosure, ...]:
    """Attached files with absolute http(s) URLs, a media type (guessed from
    the URL when missing or malformed) and a length when one was given."""
    files: dict[str, Enclosure] = {}
    for enclosure in raw:
        url = web_link(enclosure.url, base)
        if url is None or url in files:
            continue
        kind = (enclosure.type or "").split(";")[0].strip().lower()
        if not _MEDIA_TYPE.match(kind):
            kind = _known_types().guess_type(url, strict=False)[0] or "application/octet-stream"
        length = enclosure.length.strip() if enclosure.length else ""
        size = int(length) if length.isdigit() and 0 < len(length) <= 15 else 0
        files[url] = Enclosure(url, kind, size or None)
    return tuple(files.values())[:MAX_ENCLOSURES]


@cache
def _known_types() -> mimetypes.MimeTypes:
    """Python's own table of media types, not the machine's (/etc/mime.types
    differs between hosts, and the same feed must give the same item)."""
    return mimetypes.MimeTypes(filenames=())


# -- planning the writes of one source -------------------------------------


@dataclass(frozen=True, slots=True)
class SourceTarget:
    """How one source's provenance reads."""

    name: str
    feed_url: str
    feed_title: str | None


def plan_source_writes(
    target: SourceTarget,
    entries: Sequence[RemoteEntry],
    matches: RemoteMatches,
    now: datetime,
) -> WritePlan:
    """The writes entries of one feed need, given the stored items they may match."""
    planner = ItemPlanner()
    used: set[str] = set()
    for entry in entries:
        origin = Origin(
            kind="source",
            name=target.name,
            url=target.feed_url,
            title=target.feed_title,
            entry_id=entry.key,
            first_seen=now,
            last_seen=now,
        )
        existing = find_match(entry, matches, target.name, now)
        if existing is not None and existing.id in used:
            continue  # two entries of one feed met the same stored story
        if existing is None:
            planner.store(
                new_item(entry, now),
                None,
                (origin,),
                canonical_link=entry.canonical_link,
                content_hash=entry.content_hash,
            )
        elif owns(existing, target.name, entry) and (changed := changed_item(existing, entry, now)):
            planner.store(changed, existing, (origin,), canonical_link=entry.canonical_link)
        elif not _has_origin(existing, target.name):
            # Provenance only; the output now names this source too.
            planner.credit(existing, (origin,), canonical_link=entry.canonical_link)
        else:
            continue
        used.add(existing.id if existing is not None else entry.item_id)
    return planner.plan()


def find_match(entry: RemoteEntry, matches: RemoteMatches, source: str, now: datetime) -> Item | None:
    """The stored item an entry is: the same entry of this source, the same id,
    or the same story (canonical link, or folded title on the same day) from
    another source or a seed."""
    if (item := matches.by_entry.get(entry.key)) is not None:
        return item
    item = matches.by_id.get(entry.item_id)
    if item is not None and not _other_entry_of(item, source, entry.key):
        return item
    for item in matches.by_link.get(entry.canonical_link or "", ()):
        if not _other_entry_of(item, source, entry.key):
            return item
    day = entry_published(entry.date, now).astimezone(UTC).date()
    for item in matches.by_key.get(entry.folded, ()):
        # Titles repeat ("Morning briefing", "Live updates"): two links that
        # differ are two stories. A title decides only where one side has
        # no link to compare, as a seed's story has none.
        if entry.canonical_link and item.link:
            continue
        if item.published.astimezone(UTC).date() == day and not _other_entry_of(item, source, entry.key):
            return item
    return None


def owns(item: Item, source: str, entry: RemoteEntry) -> bool:
    """Whether ``source`` may rewrite ``item``: it created it and was first to bring it."""
    if item.id != entry.item_id:
        return False
    far_past = datetime.min.replace(tzinfo=UTC)
    mine = [o.first_seen or far_past for o in item.origins if o.kind == "source" and o.name == source]
    others = [o.first_seen or far_past for o in item.origins if o.kind == "source" and o.name != source]
    # Sources met in one refresh may share a first_seen: the id decides then.
    return not others or not mine or min(mine) <= min(others)


def new_item(entry: RemoteEntry, now: datetime) -> Item:
    """A story first seen now: published on its own date (else now). Entries
    sharing a time keep it: feeds order ties by id, never by inventing time."""
    moment = entry_published(entry.date, now)
    revised = _believable(entry.modified, now)
    return Item(
        id=entry.item_id,
        key=entry.folded,
        slug=entry.slug,
        title=entry.title,
        kind="entry",
        published=moment,
        updated=revised if revised and revised > moment else moment,
        section=entry.section,
        section_slug=entry.section_slug,
        link=entry.link,
        summary=entry.summary,
        content_html=entry.content_html,
        author=entry.author,
        **_extra_fields(entry.extras),
    )


def _extra_fields(extras: Extras) -> dict[str, Any]:
    """An entry's extras as ``Item`` fields."""
    return {
        "authors": extras.authors,
        "categories": extras.categories,
        "enclosures": extras.enclosures,
        "image": extras.image,
        "comments": extras.comments,
    }


def changed_item(existing: Item, entry: RemoteEntry, now: datetime) -> Item | None:
    """The owner's new version of a stored item, or None when a reader would see no change.

    ``published`` never moves (an undated entry keeps its first-seen time);
    ``updated`` moves to the publisher's own ``updated`` when it gives a
    later one, else to now.
    """
    candidate = replace(
        existing,
        title=entry.title,
        key=entry.folded,
        kind="entry",
        link=entry.link,
        summary=entry.summary,
        content_html=entry.content_html,
        author=entry.author,
        section=entry.section,
        section_slug=entry.section_slug,
        **_extra_fields(entry.extras),
    )
    if candidate.content_hash() == existing.content_hash():
        return None
    revised = _believable(entry.modified, now)
    wanted = revised if revised and revised > existing.updated else max(now, existing.updated)
    return replace(candidate, updated=wanted)


def _believable(moment: datetime | None, now: datetime) -> datetime | None:
    """A publisher's date, unless ``entry_published`` would not believe it."""
    if moment is None or entry_published(moment, now) != moment:
        return None
    return moment


def _has_origin(item: Item, source: str) -> bool:
    return any(o.kind == "source" and o.name == source for o in item.origins)


def _other_entry_of(item: Item, source: str, key: str) -> bool:
    """The item is a different entry of the same source (feeds repeat titles)."""
    return any(o.kind == "source" and o.name == source and o.entry_id != key for o in item.origins)
