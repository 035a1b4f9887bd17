"""Every kind of file the site publishes, in one registry.

A feed format is one ``Format`` with its renderer: the feeds of every
section, their Content-Type, the subscribe links of the index and item
pages, OPML and the files ``feeds export`` manages are all derived from
``FEED_FORMATS``. Pages (HTML) and OPML are formats without a feed renderer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from feeds.model import Item
from feeds.publish.generate import FeedSpec, render_atom, render_json, render_rss

FeedRenderer = Callable[[FeedSpec, Sequence[Item]], bytes]
FALLBACK_TYPE = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class Format:
    """One kind of published file: its extension, media type and, for feeds, renderer."""

    name: str  # the extension without its dot: "rss"
    media_type: str  # "application/rss+xml"
    label: str  # how pages name it: "RSS"
    render: FeedRenderer | None = None  # feeds only

    @property
    def extension(self) -> str:
        return f".{self.name}"

    @property
    def content_type(self) -> str:
        """The HTTP Content-Type: every file we publish is UTF-8."""
        return f"{self.media_type}; charset=utf-8"


RSS = Format("rss", "application/rss+xml", "RSS", render_rss)
ATOM = Format("atom", "application/atom+xml", "Atom", render_atom)
JSON_FEED = Format("json", "application/feed+json", "JSON Feed", render_json)
HTML = Format("html", "text/html", "HTML")
# OPML has no registered type; text/x-opml is what readers and OPML tools expect.
OPML = Format("xml", "text/x-opml", "OPML")

# In the order pages list them.
FEED_FORMATS: tuple[Format, ...] = (RSS, ATOM, JSON_FEED)
FORMATS: tuple[Format, ...] = (*FEED_FORMATS, HTML, OPML)
_BY_EXTENSION = {f.extension: f for f in FORMATS}


def format_of(path: str) -> Format | None:
    """The format of a published path, by its extension."""
    dot = path.rfind(".")
    return _BY_EXTENSION.get(path[dot:]) if dot >= 0 else None


def content_type_of(path: str) -> str:
    """The Content-Type of a published path."""
    found = format_of(path)
    return found.content_type if found is not None else FALLBACK_TYPE


def feed_path(slug: str, fmt: Format) -> str:
    """Where the feed of ``slug`` in ``fmt`` lives in the tree."""
    return f"feeds/{slug}{fmt.extension}"


def is_feed_path(path: str) -> bool:
    """Whether a tree path is a subscription feed (``feeds/<slug>.<feed format>``)."""
    folder, _, name = path.partition("/")
    fmt = format_of(name)
    return folder == "feeds" and "/" not in name and fmt is not None and fmt in FEED_FORMATS


def feed_format(name: str) -> Format | None:
    """The feed format named by an extension without its dot (``"atom"``)."""
    return next((f for f in FEED_FORMATS if f.name == name), None)
