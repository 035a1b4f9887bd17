"""Fetch a feed once and say what it is, for `feeds sources add`.

The same fetcher and parsers as a refresh, so a URL that passes here is
one the daemon can read; nothing is stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from feeds.config import FetchConfig
from feeds.errors import ParseError
from feeds.sources.fetch import Fetcher, FetchRequest
from feeds.sources.formats import parse_feed


@dataclass(frozen=True, slots=True)
class FeedProbe:
    """What one fetch of a feed found."""

    url: str  # after redirects
    format: str  # feedparser's name of the format: rss20, atom10, json11 ...
    title: str | None
    entries: int


def probe_feed(name: str, url: str, config: FetchConfig) -> FeedProbe:
    """Fetch and parse ``url`` once; SourceError (naming ``name``) if it is no readable feed."""
    fetcher = Fetcher(config)
    try:
        fetched = fetcher.fetch(FetchRequest(name=name, url=url))
    finally:
        fetcher.close()
    if fetched.body is None:  # a 304 to a request without validators: no feed to look at
        raise ParseError(f"HTTP {fetched.status} with no body", subject=name)
    try:
        parsed = parse_feed(fetched.body, fetched.headers, fetched.url)
    except ParseError as e:
        e.subject = name
        raise
    return FeedProbe(fetched.url, parsed.version, parsed.title, len(parsed.entries))
