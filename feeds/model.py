"""Typed records that cross module boundaries.

Every record is frozen: the parser, the store, the generator and the server
hand these to each other and nobody mutates what they did not create.
The store package imports this module (and ``feeds.errors``) and nothing
else from ``feeds``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Kind = Literal["article", "teaser", "headline", "entry"]

# How rich a form of a story is. A richer form wins when two mentions of the
# same story meet; "entry" (a remote feed entry) ranks with an article since it
# usually carries content of its own.
KIND_RANK: dict[str, int] = {"headline": 1, "teaser": 2, "article": 3, "entry": 3}


@dataclass(frozen=True, slots=True)
class SeedItem:
    """One story as the seed parser extracted it from one seed file."""

    title: str
    kind: Kind
    section: str | None = None
    date: str | None = None  # YYYY-MM-DD of the nearest preceding date header
    dateline: str | None = None
    summary: str | None = None
    body: tuple[str, ...] = ()
    author: str | None = None  # byline of an opinion column

    def as_json(self) -> dict[str, object]:
        """The shape `feeds parse` prints (and the expected seed JSON uses)."""
        return {
            "title": self.title,
            "kind": self.kind,
            "section": self.section,
            "date": self.date,
            "dateline": self.dateline,
            "author": self.author,
            "summary": self.summary,
            "body": list(self.body),
            "paragraphs": len(self.body),
        }


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an item was seen: a seed file or a remote source (provenance)."""

    kind: Literal["seed", "source"]
    name: str  # seed file name, or the source's configured name
    url: str | None = None  # the remote feed's URL
    title: str | None = None  # the remote feed's own title
    entry_id: str | None = None  # the remote entry's guid/id, when it had one
    first_seen: datetime | None = None
    last_seen: datetime | None = None


@dataclass(frozen=True, slots=True)
class Enclosure:
    """A file attached to an item: a podcast episode, a video, a PDF."""

    url: str
    type: str  # media type; guessed from the URL when the publisher gave none
    length: int | None = None  # bytes, when the publisher said


@dataclass(frozen=True, slots=True)
class Item:
    """A stored, normalised story: what the generator and the pages render."""

    id: str  # tag: URI for seed items, the feed's guid/id for remote items
    key: str  # folded title: the identity of a story across forms and files
    slug: str  # permalink page name (items/<slug>.html)
    title: str
    kind: Kind
    published: datetime
    updated: datetime
    section: str | None = None  # section label as shown (e.g. "ARTS & CULTURE")
    section_slug: str | None = None
    link: str | None = None  # original link of a remote item; None for seeds
    summary: str | None = None
    content_html: str | None = None  # sanitised HTML of a remote item
    body: tuple[str, ...] = ()
    dateline: str | None = None
    author: str | None = None  # the first (or only) author
    origins: tuple[Origin, ...] = field(default=())
    # What remote publishers send beside the story (empty for seeds).
    authors: tuple[str, ...] = ()  # every author, ``author`` first; () when just ``author``
    categories: tuple[str, ...] = ()  # the publisher's own categories/tags
    enclosures: tuple[Enclosure, ...] = ()
    image: str | None = None  # URL of the entry's picture
    comments: str | None = None  # URL of its comments page

    def content_hash(self) -> str:
        """Hash of what a reader sees; id, times and provenance are left out,
        so re-storing the same story with a new sighting is not a change."""
        return content_hash(
            self.title,
            self.kind,
            self.section,
            self.section_slug,
            self.link,
            self.summary,
            self.content_html,
            self.body,
            self.dateline,
            self.author,
            Extras(self.authors, self.categories, self.enclosures, self.image, self.comments),
        )


@dataclass(frozen=True, slots=True)
class Extras:
    """The fields of an item beyond the story itself, as hashed."""

    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    enclosures: tuple[Enclosure, ...] = ()
    image: str | None = None
    comments: str | None = None


def content_hash(
    title: str,
    kind: str,
    section: str | None,
    section_slug: str | None,
    link: str | None,
    summary: str | None,
    content_html: str | None,
    body: tuple[str, ...],
    dateline: str | None,
    author: str | None,
    extras: Extras | None = None,
) -> str:
    """``Item.content_hash`` of an item with these fields, for those who hash
    before the item exists (the remote parser, off the store writer's thread)."""
    content: list[object] = [
        title,
        kind,
        section,
        section_slug,
        link,
        summary,
        content_html,
        list(body),
        dateline,
        author,
    ]
    if extras is not None and extras != Extras():
        # Only then: an item without any keeps the hash it was stored with
        # before these fields existed, so an upgrade rewrites nothing.
        content.append(
            [
                list(extras.authors),
                list(extras.categories),
                [[e.url, e.type, e.length] for e in extras.enclosures],
                extras.image,
                extras.comments,
            ]
        )
    encoded = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class SectionInfo:
    """A section as the store sees it: a slug, its label and its size."""

    slug: str
    label: str | None
    items: int
    newest: datetime | None


@dataclass(frozen=True, slots=True)
class SeedFile:
    """A seed file as ingested: its name in the seeds dir and its content hash."""

    name: str
    sha256: str
    size: int
    items: int
    ingested_at: datetime


@dataclass(frozen=True, slots=True)
class ItemWrite:
    """An intent for the store: insert or update one item and record where it was seen."""

    item: Item
    canonical_link: str | None = None
    origins: tuple[Origin, ...] = ()
    content_hash: str | None = None  # item.content_hash(), when the writer already has it


@dataclass(frozen=True, slots=True)
class SourceState:
    """What the store remembers about one remote source between fetches."""

    name: str
    url: str  # the configured URL
    current_url: str | None = None  # after permanent redirects (301/308)
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None  # of the last body parsed
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    last_status: int | None = None
    last_error: str | None = None
    error_count: int = 0  # consecutive failures; 0 after a success
    backoff_until: datetime | None = None
    next_due: datetime | None = None
    min_interval: float | None = None  # the publisher's hints (ttl, sy:, max-age), seconds
    disabled: bool = False  # 410 Gone: polling stops
    items: int = 0  # items stored from it
    title: str | None = None  # the feed's own title, named in the output's provenance
    warning: str | None = None  # last parse problem of a feed that was still stored
    skip_hours: tuple[int, ...] = ()  # RSS skipHours (UTC hours the publisher asks us to skip)
    skip_days: tuple[str, ...] = ()  # RSS skipDays ("Monday", ...)


@dataclass(frozen=True, slots=True)
class ErrorEpisode:
    """One unbroken run of failures of a source: from its first failure to the success that ended it."""

    source: str
    started: datetime  # the first failed attempt
    last_failure: datetime  # the latest failed attempt
    last_error: str
    failures: int
    ended: datetime | None = None  # the success that ended it; None while it lasts
