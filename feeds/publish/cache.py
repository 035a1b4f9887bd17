"""The daemon's published tree, held in memory as ready-to-send resources.

Feeds, the index and OPML are rendered when their sections change (never per
request) and kept as ``Resource`` records, bytes and gzip included. Item
pages are too many to hold (50,000 items would not fit the memory budget), so
only a small index of their versions is kept; a page is rendered on its first
request and cached until its item changes. Readers get the current mapping
by reference: a rebuild builds a new mapping and swaps it in whole, so a
request never sees half a rebuild.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from feeds.config import Config
from feeds.model import SectionInfo
from feeds.publish.export import ExportResult, export_files, prune_stale
from feeds.publish.generate import EMPTY_FEED_UPDATED, FeedSpec, feed_updated
from feeds.publish.resources import Resource, content_type_of, make_resource
from feeds.publish.site import (
    ALL,
    all_specs,
    feed_items,
    has_page,
    render_feed_files,
    render_index,
    render_item_page,
    render_opml,
)
from store import Store

INDEX = "index.html"
OPML = "opml.xml"
ITEMS_PREFIX = "items/"
PAGE_SUFFIX = ".html"
DEFAULT_PAGE_CACHE = 2048  # pages; a few KB each, so a few MB at most


@dataclass(frozen=True, slots=True)
class PublishReport:
    """What one rebuild changed, as tree paths (``feeds/all.rss``) and item slugs."""

    sections: frozenset[str]  # feeds re-rendered
    changed: tuple[str, ...]  # feed, index and OPML paths whose bytes changed
    removed: tuple[str, ...]  # feed paths of sections that no longer exist
    pages_changed: tuple[str, ...]  # slugs of item pages new or changed
    pages_removed: tuple[str, ...]


def next_last_modified(computed: datetime, previous: Resource | None, body: bytes) -> datetime:
    """Last-Modified for new bytes: the newest item time, but never earlier than before.

    A feed whose newest item moves to another section would otherwise go back
    in time, and a reader asking If-Modified-Since would be told nothing
    changed. Unchanged bytes keep their date.
    """
    if previous is None:
        return computed
    if previous.body == body:
        return previous.last_modified
    if computed <= previous.last_modified:
        return previous.last_modified + timedelta(seconds=1)
    return computed


def page_versions(store: Store, labels: dict[str, str | None]) -> dict[str, int]:
    """slug -> fingerprint of every item page; a page's bytes change only with it.

    A page shows its item and its section's name, so both are in the
    fingerprint. It is a hash (an int) rather than text because 50,000 of them
    stay in memory; it is only ever compared within this process.
    """
    return {
        v.slug: hash((v.content_hash, labels.get(v.section_slug) if v.section_slug else None))
        for v in store.iter_item_versions()
        if not v.has_link
    }


def page_slug(tree_path: str) -> str | None:
    """The slug of ``items/<slug>.html``, or None for any other path."""
    if tree_path.startswith(ITEMS_PREFIX) and tree_path.endswith(PAGE_SUFFIX):
        slug = tree_path[len(ITEMS_PREFIX) : -len(PAGE_SUFFIX)]
        return slug or None
    return None


class PublishedSite:
    """Feeds, index and OPML as resources; item pages on demand."""

    def __init__(self, store: Store, config: Config, *, page_cache: int = DEFAULT_PAGE_CACHE) -> None:
        self.store = store
        self.config = config
        self.max_age = int(config.server.max_age)
        self._resources: dict[str, Resource] = {}  # tree path -> resource
        self._versions: dict[str, int] = {}  # page slug -> fingerprint
        self._labels: dict[str, str | None] = {}
        self._pages: OrderedDict[str, tuple[int, Resource]] = OrderedDict()
        self._page_cache = page_cache
        self._pages_lock = threading.Lock()
        self._build_lock = threading.Lock()

    # -- reading (any thread) ---------------------------------------------

    def resource(self, tree_path: str) -> Resource | None:
        """A feed, the index or OPML; never reads the store."""
        return self._resources.get(tree_path)

    def knows_page(self, slug: str) -> bool:
        """Whether an item page exists (a dictionary lookup; never reads the store)."""
        return slug in self._versions

    def cached_page(self, slug: str) -> Resource | None:
        """An item page already rendered and still current; never reads the store."""
        version = self._versions.get(slug)
        with self._pages_lock:
            cached = self._pages.get(slug)
        return cached[1] if cached is not None and cached[0] == version else None

    def item_page(self, slug: str) -> Resource | None:
        """An item's page, rendered on first request and cached until it changes.

        It may read the store: call it off the event loop.
        """
        version = self._versions.get(slug)
        if version is None:
            return None
        with self._pages_lock:
            cached = self._pages.get(slug)
            if cached is not None and cached[0] == version:
                self._pages.move_to_end(slug)
                return cached[1]
        item = self.store.items_by_slugs([slug]).get(slug)
        if item is None:
            return None
        label = self._labels.get(item.section_slug) if item.section_slug else None
        body = render_item_page(self.config, item, label)
        resource = make_resource(body, content_type_of(PAGE_SUFFIX), item.updated, self.max_age)
        with self._pages_lock:
            self._pages[slug] = (version, resource)
            self._pages.move_to_end(slug)
            while len(self._pages) > self._page_cache:
                self._pages.popitem(last=False)
        return resource

    def paths(self) -> set[str]:
        """Every path of the tree now: feeds, index, OPML and item pages."""
        return set(self._resources) | {f"{ITEMS_PREFIX}{slug}{PAGE_SUFFIX}" for slug in self._versions}

    def render_pages(self, slugs: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """Item pages as (tree path, bytes), read from the store in chunks."""
        wanted = sorted(slugs)
        for start in range(0, len(wanted), 500):
            items = self.store.items_by_slugs(wanted[start : start + 500])
            for slug in wanted[start : start + 500]:
                item = items.get(slug)
                if item is not None and has_page(item):
                    label = self._labels.get(item.section_slug) if item.section_slug else None
                    yield f"{ITEMS_PREFIX}{slug}{PAGE_SUFFIX}", render_item_page(self.config, item, label)

    # -- rebuilding (scheduler thread) ---------------------------------------

    def rebuild(self, sections: Iterable[str] | None = None) -> PublishReport:
        """Re-render the feeds of ``sections`` (None: all), the index and OPML."""
        with self._build_lock:
            infos = self.store.sections()
            specs = all_specs(self.config, infos)
            existing = {spec.slug for spec in specs}
            wanted = existing if sections is None else set(sections) & existing
            resources = dict(self._resources)
            changed: list[str] = []
            for spec in specs:
                if spec.slug in wanted:
                    items = feed_items(self.store, self.config, spec.slug)
                    modified = feed_updated(items)
                    for path, body in render_feed_files(spec, items).items():
                        self._put(resources, path, body, modified, changed)
            removed = sorted(
                p for p in resources if p.startswith("feeds/") and p[6:].rpartition(".")[0] not in existing
            )
            for path in removed:
                del resources[path]
            self._put_index(resources, infos, specs, changed)
            labels = {s.slug: s.label for s in infos}
            versions = page_versions(self.store, labels)
            report = PublishReport(
                sections=frozenset(wanted),
                changed=tuple(changed),
                removed=tuple(removed),
                pages_changed=tuple(sorted(s for s, v in versions.items() if self._versions.get(s) != v)),
                pages_removed=tuple(sorted(self._versions.keys() - versions.keys())),
            )
            # Swap whole mappings: a request sees the old tree or the new one.
            self._labels, self._versions, self._resources = labels, versions, resources
            self._forget_pages(report.pages_changed + report.pages_removed)
            return report

    def _put_index(
        self,
        resources: dict[str, Resource],
        infos: list[SectionInfo],
        specs: list[FeedSpec],
        changed: list[str],
    ) -> None:
        counts = {s.slug: s.items for s in infos}
        counts[ALL] = self.store.count_items()
        all_feed = resources.get(f"feeds/{ALL}.atom")
        modified = all_feed.last_modified if all_feed else EMPTY_FEED_UPDATED
        self._put(resources, INDEX, render_index(self.config, specs, counts), modified, changed)
        opml = render_opml(self.config, specs, self.store.newest_item())
        self._put(resources, OPML, opml, modified, changed)

    def _put(
        self, resources: dict[str, Resource], path: str, body: bytes, modified: datetime, changed: list[str]
    ) -> None:
        previous = resources.get(path)
        if previous is not None and previous.body == body:
            return  # same bytes: keep the resource, its gzip and its ETag
        last_modified = next_last_modified(modified, previous, body)
        resources[path] = make_resource(body, content_type_of(path), last_modified, self.max_age)
        changed.append(path)

    def _forget_pages(self, slugs: Iterable[str]) -> None:
        with self._pages_lock:
            for slug in slugs:
                self._pages.pop(slug, None)

    def tree_file(self, path: str) -> bytes:
        return self._resources[path].body


def sync_export(root: Path, site: PublishedSite, report: PublishReport) -> ExportResult:
    """Bring an exported tree up to date after a rebuild, with export's atomic writes.

    Only what the rebuild changed is rendered and written; files of removed
    sections and items are pruned as ``feeds export`` would.
    """
    files = [(path, site.tree_file(path)) for path in report.changed]
    result = export_files(root, [*files, *site.render_pages(report.pages_changed)], prune=False)
    result.deleted = prune_stale(root, site.paths())
    return result
