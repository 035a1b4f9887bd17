"""What an entry carries beside its story, read from each feed format:
enclosures, pictures, a comments link and its authors.

The three readers of ``feeds.sources.formats`` (feedparser's dictionaries,
lxml elements of plain RSS 2.0, JSON Feed objects) each hand their entry to
one function here, which returns an ``EntryExtras`` of publisher values as
given: URLs not yet resolved, types and lengths not yet checked (that is
``feeds.sources.prepare``'s job). Pictures are listed best first: Media
RSS thumbnail, Media RSS image content, iTunes image, JSON Feed ``image``
then ``banner_image``, then an enclosure that is an image.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MEDIA_NS = "{http://search.yahoo.com/mrss/}"
ITUNES_NS = "{http://www.itunes.com/dtds/podcast-1.0.dtd}"
DC_NS = "{http://purl.org/dc/elements/1.1/}"
# RSS <author> is "email (Name)"; readers show the name.
_EMAIL_AND_NAME = re.compile(r"^\s*[^\s@()]+@[^\s()]+\s*\((.+)\)\s*$")


@dataclass(frozen=True, slots=True)
class RawEnclosure:
    """An attached file as the feed states it."""

    url: str
    type: str | None = None
    length: str | None = None


@dataclass(frozen=True, slots=True)
class EntryExtras:
    enclosures: tuple[RawEnclosure, ...] = ()
    images: tuple[str, ...] = ()  # best first
    comments: str | None = None
    authors: tuple[str, ...] = ()


def _text(value: object) -> str | None:
    if not isinstance(value, (str, int, float)):
        return None
    text = str(value).strip()
    return text or None


def _is_image(kind: str | None, medium: str | None = None) -> bool:
    return (medium or "").lower() == "image" or (kind or "").lower().startswith("image/")


def _unique(values: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def _files(enclosures: list[RawEnclosure]) -> tuple[tuple[RawEnclosure, ...], tuple[str, ...]]:
    """Enclosures, one per URL, and the URLs of those that are pictures."""
    first: dict[str, RawEnclosure] = {}
    for enclosure in enclosures:
        first.setdefault(enclosure.url, enclosure)
    return tuple(first.values()), tuple(url for url, e in first.items() if _is_image(e.type))


def author_name(text: str | None) -> str | None:
    """The name in RSS's "email (Name)", else the text as given."""
    if text is None:
        return None
    match = _EMAIL_AND_NAME.match(text)
    return match.group(1).strip() if match else text.strip() or None


# -- feedparser ---------------------------------------------------------------


def feedparser_authors(detail: Any) -> tuple[str, ...]:
    """Names (else emails) of feedparser's ``authors`` list of an entry or feed."""
    people = detail.get("authors") or []
    return _unique(_text(p.get("name")) or _text(p.get("email")) for p in people if hasattr(p, "get"))


def feedparser_extras(entry: Any) -> EntryExtras:
    """What a feedparser entry (RSS or Atom) carries beside its story."""
    files = [
        RawEnclosure(url, _text(e.get("type")), _text(e.get("length")))
        for e in entry.get("enclosures") or []
        if (url := _text(e.get("href")))
    ]
    pictures: list[str | None] = [_text(t.get("url")) for t in entry.get("media_thumbnail") or []]
    for media in entry.get("media_content") or []:
        url, kind = _text(media.get("url")), _text(media.get("type"))
        if url and _is_image(kind, _text(media.get("medium"))):
            pictures.append(url)
        elif url:
            files.append(RawEnclosure(url, kind, _text(media.get("filesize"))))
    image = entry.get("image")  # itunes:image
    pictures.append(_text(image.get("href")) if hasattr(image, "get") else None)
    enclosures, image_files = _files(files)
    replies = [
        link for link in entry.get("links") or [] if link.get("rel") == "replies" and _text(link.get("href"))
    ]
    replies.sort(key=lambda link: link.get("type") != "text/html")  # a page before a feed of comments
    comments = _text(entry.get("comments")) or (_text(replies[0].get("href")) if replies else None)
    return EntryExtras(enclosures, _unique([*pictures, *image_files]), comments, feedparser_authors(entry))


# -- lxml, plain RSS 2.0 --------------------------------------------------------


def rss_extras(children: Iterable[Any]) -> EntryExtras:
    """What the children of an RSS 2.0 <item> (lxml elements) carry beside its story."""
    files: list[RawEnclosure] = []
    thumbnails: list[str | None] = []
    pictures: list[str | None] = []
    itunes: list[str | None] = []
    authors: list[str | None] = []
    comments: str | None = None
    for child in _flat_media_groups(children):
        tag = child.tag
        if tag == "enclosure" and (url := _text(child.get("url"))):
            files.append(RawEnclosure(url, _text(child.get("type")), _text(child.get("length"))))
        elif tag == f"{MEDIA_NS}thumbnail":
            thumbnails.append(_text(child.get("url")))
        elif tag == f"{MEDIA_NS}content" and (url := _text(child.get("url"))):
            kind = _text(child.get("type"))
            if _is_image(kind, child.get("medium")):
                pictures.append(url)
            else:
                files.append(RawEnclosure(url, kind, _text(child.get("fileSize"))))
        elif tag == f"{ITUNES_NS}image":
            itunes.append(_text(child.get("href")))
        elif tag == "comments" and comments is None:
            comments = _text(child.text)
        elif tag in ("author", f"{DC_NS}creator"):
            authors.append(author_name(_text(child.text)))
    enclosures, image_files = _files(files)
    images = _unique([*thumbnails, *pictures, *itunes[:1], *image_files])
    return EntryExtras(enclosures, images, comments, _unique(authors))


def _flat_media_groups(children: Iterable[Any]) -> Iterable[Any]:
    """The children, with those of each <media:group> in its place."""
    for child in children:
        if child.tag == f"{MEDIA_NS}group":
            yield from child
        else:
            yield child


def rss_channel_authors(channel: Any) -> tuple[str, ...]:
    """Who a channel names as its author, as feedparser reads it."""
    tags = (f"{DC_NS}creator", f"{ITUNES_NS}author", "managingEditor", "author")
    return _unique(author_name(_text(child.text)) for child in channel if child.tag in tags)


# -- JSON Feed ------------------------------------------------------------------


def json_authors(holder: dict[str, Any]) -> tuple[str, ...]:
    """``authors`` (1.1), else ``author`` (1.0), of an item or a feed."""
    people = holder.get("authors")
    if not isinstance(people, list):
        people = [holder.get("author")]
    return _unique(_text(p.get("name")) for p in people if isinstance(p, dict))


def json_extras(item: dict[str, Any]) -> EntryExtras:
    """What a JSON Feed item carries beside its story."""
    found = item.get("attachments")
    attachments: list[Any] = found if isinstance(found, list) else []
    files = [
        RawEnclosure(url, _text(a.get("mime_type")), _text(a.get("size_in_bytes")))
        for a in attachments
        if isinstance(a, dict) and (url := _text(a.get("url")))
    ]
    enclosures, image_files = _files(files)
    images = _unique([_text(item.get("image")), _text(item.get("banner_image")), *image_files])
    return EntryExtras(enclosures, images, None, json_authors(item))
