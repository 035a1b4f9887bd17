"""The one publisher: (store, config) -> tree path -> bytes.

``feeds export``, the daemon's HTTP server, ``serve --export`` and ``serve
--get`` all publish through ``Publisher``, so the exported tree and the
served tree are the same bytes by construction. What the site publishes is
a table (``ENTRIES``): a new page or feed is one entry there, of one of
three scopes:

- ``SiteEntry``: files of the whole site (index, OPML), rendered after any change;
- ``FeedEntry``: files made per feed (``all`` and each section), rendered
  when that feed's items change, from the feed's newest items;
- ``ItemEntry``: one file per stored item (permalink pages), never held
  all at once: rendered when asked for, or streamed by an export.

Every byte is a function of the store and the config: no clock is read here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import NamedTuple
from urllib.parse import urlencode

from feeds.config import Config
from feeds.model import Item, SectionInfo
from feeds.publish.archive import (
    ARCHIVE_DIR,
    ARCHIVE_FORMATS,
    archive_files,
    archive_page,
    archive_versions,
    current_links,
    parse_archive_path,
)
from feeds.publish.export import Managed
from feeds.publish.filters import MAX_LIMIT, SCAN_WINDOW, FeedFilter, apply_filter, canonical_query
from feeds.publish.formats import FEED_FORMATS, HTML, feed_format, feed_path
from feeds.publish.generate import EMPTY_FEED_UPDATED, DeletedEntry, FeedSpec, feed_updated
from feeds.publish.health_feed import HEALTH_EPISODES, HEALTH_PATH, render_health_feed
from feeds.publish.pages import (
    INDEX_STORIES,
    SECTION_PAGE_STORIES,
    Pages,
    preview_path,
    section_page_path,
    section_pages,
)
from feeds.publish.site import ALL, all_specs, feed_spec, item_page_path, render_opml
from store import Store
from store.db import ItemVersion

SEARCH = "search"  # /search.atom|rss|json?q= and /search.html?q=, answered by the daemon


class Rendered(NamedTuple):
    """A file's bytes and the newest time its content shows (a seed for Last-Modified)."""

    body: bytes
    modified: datetime


@dataclass(frozen=True, slots=True)
class SiteView:
    """What every file of one build shares, read from the store once.

    This is the only place section sizes are counted.
    """

    store: Store
    config: Config
    sections: tuple[SectionInfo, ...]
    specs: tuple[FeedSpec, ...]  # "all" first, then each section by slug
    counts: Mapping[str, int]  # feed slug -> items stored
    newest: Item | None
    pages: Pages  # the renderer of every HTML page of this build

    @property
    def labels(self) -> dict[str, str | None]:
        return {s.slug: s.label for s in self.sections}

    def label_of(self, item: Item) -> str | None:
        if not item.section_slug:
            return None
        return next((s.label for s in self.sections if s.slug == item.section_slug), None)


def read_view(store: Store, config: Config) -> SiteView:
    """Sections, feed specs and counts as the store holds them now."""
    sections = tuple(store.sections())
    counts = {s.slug: s.items for s in sections}
    counts[ALL] = store.count_items()
    specs = tuple(all_specs(config, sections))
    return SiteView(
        store=store,
        config=config,
        sections=sections,
        specs=specs,
        counts=counts,
        newest=store.newest_item(),
        pages=Pages(config, specs),
    )


Files = Iterable[tuple[str, Rendered]]


@dataclass(frozen=True, slots=True)
class SiteEntry:
    """Files of the whole site, rendered after any change."""

    name: str
    render: Callable[[SiteView], Files]


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """Files made per feed, from its spec and its newest items."""

    name: str
    render: Callable[[SiteView, FeedSpec, Sequence[Item]], Files]
    paths: Callable[[str], Iterable[str]]  # the paths it makes for a feed slug


@dataclass(frozen=True, slots=True)
class ItemEntry:
    """One file per item that has one, rendered on demand."""

    name: str
    path: Callable[[ItemVersion], str | None]  # None: this item has no such file
    slug_of: Callable[[str], str | None]  # the item slug a path names, if it is one of ours
    render: Callable[[SiteView, Item], bytes]


@dataclass(frozen=True, slots=True)
class Entries:
    """The table of everything the site publishes."""

    site: tuple[SiteEntry, ...]
    feeds: tuple[FeedEntry, ...]
    items: tuple[ItemEntry, ...]
    managed: Managed  # the folders whose stale files an export removes


# -- the entries of this site ---------------------------------------------------


def _section(spec: FeedSpec) -> str | None:
    return None if spec.slug == ALL else spec.slug


def _feed_files(view: SiteView, spec: FeedSpec, items: Sequence[Item]) -> Files:
    """The subscription feeds, linked to their newest archive page (RFC 5005)."""
    modified = feed_updated(items)
    size = view.config.output.archive_page_items
    # Items retention deleted are announced while their tombstones are kept
    # (RFC 6721; Atom only), here only, so export and daemon say the same.
    deleted = tuple(DeletedEntry(t.item_id, t.deleted) for t in view.store.tombstones(spec.slug))
    current = replace(
        spec,
        archive=current_links(spec.slug, view.store.feed_length(_section(spec)), size),
        deleted=deleted,
    )
    for fmt in FEED_FORMATS:
        assert fmt.render is not None
        yield feed_path(spec.slug, fmt), Rendered(fmt.render(current, items), modified)


def _feed_paths(slug: str) -> Iterator[str]:
    return (feed_path(slug, fmt) for fmt in FEED_FORMATS)


def _preview(view: SiteView, spec: FeedSpec, items: Sequence[Item]) -> Files:
    """What a browser shows for a feed (``feeds/<slug>.html``)."""
    yield preview_path(spec.slug), Rendered(view.pages.preview(spec, items), feed_updated(items))


def _section_pages(view: SiteView, spec: FeedSpec, items: Sequence[Item]) -> Files:
    """A section's (or ``all``'s) pages of stories, newest first, as numbered files."""
    total = view.counts.get(spec.slug, 0)
    pages = section_pages(total)
    stories = view.store.feed_items(_section(spec), pages * SECTION_PAGE_STORIES)
    for page in range(1, pages + 1):
        chunk = stories[(page - 1) * SECTION_PAGE_STORIES : page * SECTION_PAGE_STORIES]
        body = view.pages.section(spec, chunk, page, total)
        yield section_page_path(spec.slug, page), Rendered(body, feed_updated(chunk))


def _no_paths(slug: str) -> Iterator[str]:
    return iter(())


def _site_modified(view: SiteView) -> datetime:
    return view.newest.updated if view.newest is not None else EMPTY_FEED_UPDATED


def _index(view: SiteView) -> Files:
    newest = view.store.feed_items(None, INDEX_STORIES)
    yield "index.html", Rendered(view.pages.index(newest, view.counts), _site_modified(view))


def _opml(view: SiteView) -> Files:
    yield "opml.xml", Rendered(render_opml(view.config, view.specs, view.newest), _site_modified(view))


def _source_health(view: SiteView) -> Files:
    body, modified = render_health_feed(view.config, view.store.error_episodes(HEALTH_EPISODES))
    yield HEALTH_PATH, Rendered(body, modified)


_PAGE_PREFIX, _PAGE_SUFFIX = "items/", ".html"


def _story_path(version: ItemVersion) -> str | None:
    # Items with a link of their own (remote entries) are read there; seed stories get a page.
    return None if version.has_link else item_page_path(version.slug)


def _story_slug(path: str) -> str | None:
    if path.startswith(_PAGE_PREFIX) and path.endswith(_PAGE_SUFFIX):
        slug = path[len(_PAGE_PREFIX) : -len(_PAGE_SUFFIX)]
        return slug if slug and "/" not in slug else None
    return None


def _story(view: SiteView, item: Item) -> bytes:
    return view.pages.item(item)


ENTRIES = Entries(
    site=(SiteEntry("index", _index), SiteEntry("opml", _opml), SiteEntry("source-health", _source_health)),
    feeds=(
        FeedEntry("feeds", _feed_files, _feed_paths),
        FeedEntry("preview", _preview, _no_paths),
        FeedEntry("sections", _section_pages, _no_paths),
    ),
    items=(ItemEntry("story", _story_path, _story_slug, _story),),
    managed={
        "feeds": (*(f.extension for f in FEED_FORMATS), HTML.extension),
        ARCHIVE_DIR: tuple(f.extension for f in ARCHIVE_FORMATS),
        "sections": (HTML.extension,),
        "items": (HTML.extension,),
    },
)


def version_of(item: Item) -> ItemVersion:
    """What an item's files depend on, from the item itself."""
    return ItemVersion(item.slug, item.content_hash(), item.section_slug, item.link is not None)


# -- the publisher ----------------------------------------------------------------


class Publisher:
    """Renders any part of the tree from one store and one config."""

    def __init__(self, store: Store, config: Config, entries: Entries = ENTRIES) -> None:
        self.store = store
        self.config = config
        self.entries = entries

    def view(self) -> SiteView:
        return read_view(self.store, self.config)

    def feed_items(self, slug: str) -> list[Item]:
        """The newest items of a feed, in feed order."""
        caps = {s.name: s.max_items for s in self.config.sources if s.max_items}
        return self.store.feed_items(None if slug == ALL else slug, self.config.output.items_per_feed, caps)

    def feed_files(self, view: SiteView, slugs: Iterable[str] | None = None) -> dict[str, Rendered]:
        """The files of every feed entry for the feeds ``slugs`` (None: every feed)."""
        wanted = None if slugs is None else set(slugs)
        files: dict[str, Rendered] = {}
        for spec in view.specs:
            if wanted is None or spec.slug in wanted:
                items = self.feed_items(spec.slug)
                for entry in self.entries.feeds:
                    files.update(entry.render(view, spec, items))
        return files

    def feed_paths(self, slug: str) -> set[str]:
        """Every path the feed entries make for one feed."""
        return {path for entry in self.entries.feeds for path in entry.paths(slug)}

    def site_files(self, view: SiteView) -> dict[str, Rendered]:
        return {path: rendered for entry in self.entries.site for path, rendered in entry.render(view)}

    def page_paths(self, version: ItemVersion) -> Iterator[str]:
        """The paths of an item's own files."""
        for entry in self.entries.items:
            path = entry.path(version)
            if path is not None:
                yield path

    def page(self, view: SiteView, path: str) -> Rendered | None:
        """The item or archive file at ``path``, read from the store; None if there is none."""
        archived = parse_archive_path(path)
        if archived is not None:
            return self.archive_page(view, *archived)
        for entry in self.entries.items:
            slug = entry.slug_of(path)
            if slug is None:
                continue
            item = self.store.items_by_slugs([slug]).get(slug)
            if item is not None and entry.path(version_of(item)) == path:
                return Rendered(entry.render(view, item), item.updated)
        return None

    def pages_of(self, view: SiteView, items: Iterable[Item]) -> Iterator[tuple[str, Rendered]]:
        """Every item file of ``items``."""
        for item in items:
            version = version_of(item)
            for entry in self.entries.items:
                path = entry.path(version)
                if path is not None:
                    yield path, Rendered(entry.render(view, item), item.updated)

    def pages_by_slugs(self, view: SiteView, slugs: Iterable[str]) -> Iterator[tuple[str, Rendered]]:
        """The item files of the items ``slugs``, read from the store in chunks."""
        wanted = sorted(slugs)
        for start in range(0, len(wanted), 500):
            found = self.store.items_by_slugs(wanted[start : start + 500])
            yield from self.pages_of(view, (found[s] for s in wanted[start : start + 500] if s in found))

    def is_item_file(self, path: str) -> bool:
        """Whether ``path`` has the shape of an item file (it may not exist)."""
        return any(entry.slug_of(path) is not None for entry in self.entries.items)

    def _current_spec(self, view: SiteView, slug: str) -> FeedSpec | None:
        return next((spec for spec in view.specs if spec.slug == slug), None)

    def archive_versions(self, view: SiteView, slugs: Iterable[str]) -> dict[str, int]:
        """Path -> fingerprint of every RFC 5005 archive document of the feeds ``slugs``.

        Archive pages are many and rarely change, so, like item files, they
        are rendered when asked for (or by an export), not held.
        """
        size = self.config.output.archive_page_items
        versions: dict[str, int] = {}
        for slug in slugs:
            spec = self._current_spec(view, slug)
            if spec is not None:
                versions.update(archive_versions(self.store, spec, size))
        return versions

    def archive_page(self, view: SiteView, slug: str, page: int, ext: str) -> Rendered | None:
        spec = self._current_spec(view, slug)
        if spec is None:
            return None
        found = archive_page(self.store, spec, self.config.output.archive_page_items, page, ext)
        return Rendered(found.body, found.modified) if found is not None else None

    # -- answers that depend on the request (the daemon only) -------------------

    def filtered_feed(self, view: SiteView, slug: str, ext: str, feed_filter: FeedFilter) -> Rendered | None:
        """A feed with ``?limit``/``?q``/``?exclude`` applied to its newest stored items."""
        spec, fmt = self._current_spec(view, slug), feed_format(ext)
        if spec is None or fmt is None or fmt.render is None:
            return None
        items = self.store.feed_items(_section(spec), max(SCAN_WINDOW, self.config.output.items_per_feed))
        chosen = apply_filter(items, feed_filter, self.config.output.items_per_feed)
        # No hub is told of a filtered feed's changes, so none is advertised in it.
        filtered = replace(spec, query=canonical_query(feed_filter), hubs=())
        return Rendered(fmt.render(filtered, chosen), feed_updated(chosen))

    def search_results(self, query: str) -> list[Item]:
        return self.store.search(query, min(MAX_LIMIT, self.config.output.items_per_feed), order="newest")

    def search_spec(self, query: str) -> FeedSpec:
        """The feed of the stories holding every word of ``query``."""
        site = self.config.site
        base = feed_spec(self.config, ALL)
        return replace(
            base,
            slug=SEARCH,
            path=SEARCH,
            title=f"{site.title}: {query}",
            description=f"Stories from {site.title} with the words: {query}",
            name=f"Search: {query}",
            query=urlencode([("q", query)]),
            hubs=(),  # hubs hear of the section feeds only
        )

    def search_feed(self, ext: str, query: str) -> Rendered | None:
        fmt = feed_format(ext)
        if fmt is None or fmt.render is None:
            return None
        items = self.search_results(query)
        return Rendered(fmt.render(self.search_spec(query), items), feed_updated(items))

    def search_page(self, view: SiteView, query: str) -> Rendered:
        items = self.search_results(query) if query else []
        spec = self.search_spec(query)
        urls = {fmt.name: spec.url(fmt.name) for fmt in FEED_FORMATS}
        return Rendered(view.pages.search(query, items, urls), feed_updated(items))

    def files(self, view: SiteView | None = None) -> Iterator[tuple[str, bytes]]:
        """The whole tree, one file at a time: feeds, index and OPML, archives, then item files."""
        view = view or self.view()
        eager = {**self.feed_files(view), **self.site_files(view)}
        for path in sorted(eager):
            yield path, eager[path].body
        for spec in view.specs:
            for archived in archive_files(self.store, spec, self.config.output.archive_page_items):
                yield archived.path, archived.body
        for path, rendered in self.pages_of(view, self.store.iter_items()):
            yield path, rendered.body
