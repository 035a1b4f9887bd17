"""The daemon's answers that depend on the request, not only on the path.

Filtered feeds (``?limit``, ``?q``, ``?exclude``), search feeds and the
search page, section pages by ``?page=``, and which form of a feed URL a
client gets (the preview page for a browser). Each is rendered by the one
publisher; here the query string is read and refused when it asks for
something we do not offer. Nothing here is held between requests: every
filtered or search answer is rendered for its request (off the event loop),
at a cost bounded by the filter's scan window and the search limit.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from feeds.errors import QueryError
from feeds.publish.cache import PublishedSite
from feeds.publish.filters import parse_filter
from feeds.publish.formats import content_type_of
from feeds.publish.pages import MAX_SECTION_PAGES, preview_path
from feeds.publish.resources import Answer, Resource, bad_request, make_resource, not_found
from feeds.publish.tree import SEARCH, Rendered

SEARCH_PATHS = frozenset({f"{SEARCH}.atom", f"{SEARCH}.rss", f"{SEARCH}.json", f"{SEARCH}.html"})
MAX_QUERY_CHARS = 400  # longer search text only costs: FTS keeps the first words anyway
_PAGE = re.compile(r"[1-9][0-9]{0,3}")


def _resource(site: PublishedSite, path: str, rendered: Rendered) -> Resource:
    return make_resource(rendered.body, content_type_of(path), rendered.modified, site.max_age)


def filtered_feed(site: PublishedSite, rel: str, query: str) -> Resource | Answer:
    """``feeds/<slug>.<ext>?...``: the feed with the query's filter applied, or a 400."""
    try:
        feed_filter = parse_filter(query)
    except QueryError as e:
        return bad_request(e.message)
    view = site.view
    name, _, ext = rel.removeprefix("feeds/").rpartition(".")
    rendered = site.publisher.filtered_feed(view, name, ext, feed_filter) if view is not None else None
    return _resource(site, rel, rendered) if rendered is not None else not_found()


def search_answer(site: PublishedSite, rel: str, query: str) -> Resource | Answer:
    """``search.html?q=`` (a form without q) and ``search.atom|rss|json?q=``."""
    try:
        words = _search_words(query)
    except QueryError as e:
        return bad_request(e.message)
    view = site.view
    if view is None:
        return not_found()
    ext = rel.rpartition(".")[2]
    if ext == "html":
        return _resource(site, rel, site.publisher.search_page(view, words))
    if not words:
        return bad_request("q: a search feed needs words, e.g. ?q=election")
    rendered = site.publisher.search_feed(ext, words)
    return _resource(site, rel, rendered) if rendered is not None else not_found()


def _search_words(query: str) -> str:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, max_num_fields=4)
    except ValueError as e:
        raise QueryError(f"query string refused: {e}") from None
    words = ""
    for name, value in pairs:
        if name != "q":
            raise QueryError(f"unknown parameter {name!r} (expected q)")
        words = " ".join((words + " " + value).split())
    if len(words) > MAX_QUERY_CHARS:
        raise QueryError(f"q: at most {MAX_QUERY_CHARS} characters")
    return words


def section_page_path(rel: str, query: str) -> str | None:
    """The numbered file ``sections/<slug>.html?page=N`` names, or None for a bad page.

    Other parameters are ignored: links to a page often carry tracking ones.
    """
    page = next((value for name, value in parse_qsl(query) if name == "page"), None)
    if page is None or page == "1":
        return rel
    if not _PAGE.fullmatch(page) or int(page) > MAX_SECTION_PAGES:
        return None
    return f"{rel.removesuffix('.html')}-{page}.html"


def preview_of(rel: str) -> str:
    """The preview page of a feed path (``feeds/world.atom`` -> ``feeds/world.html``)."""
    return preview_path(rel.removeprefix("feeds/").rpartition(".")[0])
