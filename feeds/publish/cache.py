"""The daemon's cache over the publisher: the tree held in memory as ready-to-send resources.

Site and feed files (``feeds.publish.tree``) are rendered when their
sections change (never per request) and kept as ``Resource`` records, bytes
and gzip included. Item files are too many to hold (50,000 items would not
fit the memory budget), so only a small index of their versions is kept; a
page is rendered on its first request and cached until its item changes.
What changed is read from the store's change log as well as told by the
daemon's jobs, so a write by another process (``feeds refresh`` beside a
running daemon) is published like the daemon's own.

Last-Modified of a site or feed file is when its bytes last changed, by the
injected clock: never the newest item's date, which an added older item
does not move. Those dates are kept in the store, so a restart keeps them
for unchanged files. Readers get the current mapping by reference: a
rebuild builds a new mapping and swaps it in whole, so a request never sees
half a rebuild.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from feeds.clock import Clock
from feeds.config import Config
from feeds.publish.archive import ARCHIVE_DIR, parse_archive_path
from feeds.publish.export import ExportResult, export_files, prune_stale
from feeds.publish.formats import content_type_of, is_feed_path
from feeds.publish.resources import VARY_ENCODING, VARY_NEGOTIATED, Resource, make_resource
from feeds.publish.site import ALL
from feeds.publish.tree import Publisher, Rendered, SiteView

DEFAULT_PAGE_CACHE = 2048  # pages; a few KB each, so a few MB at most
ARCHIVE_PREFIX = f"{ARCHIVE_DIR}/"


def _feed_of(archive_path: str) -> str | None:
    parsed = parse_archive_path(archive_path)
    return parsed[0] if parsed else None


@dataclass(frozen=True, slots=True)
class PublishReport:
    """What one rebuild changed, as tree paths (``feeds/all.rss``)."""

    sections: frozenset[str]  # feeds re-rendered
    changed: tuple[str, ...]  # site and feed paths whose bytes changed
    removed: tuple[str, ...]  # feed paths of sections that no longer exist
    pages_changed: tuple[str, ...]  # item file paths new or changed
    pages_removed: tuple[str, ...]


def next_last_modified(previous: tuple[str, datetime] | None, digest: str, now: datetime) -> datetime:
    """Last-Modified of a file now holding bytes of ``digest`` (``previous``: digest and date before).

    The same bytes keep their date. New bytes get ``now``, and always a later
    second than before (HTTP dates have whole seconds), so a reader asking
    If-Modified-Since with the old date gets the new bytes.
    """
    if previous is None:
        return now
    before_digest, before = previous
    if before_digest == digest:
        return before
    return max(now, before.replace(microsecond=0) + timedelta(seconds=1))


def digest_of(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def page_versions(publisher: Publisher, view: SiteView) -> dict[str, int]:
    """Item file path -> fingerprint of every item file; its bytes change only with it.

    A page shows its item and its section's name, so both are in the
    fingerprint. It is a hash (an int) rather than text because 50,000 of them
    stay in memory; it is only ever compared within this process.
    """
    labels = view.labels
    versions: dict[str, int] = {}
    for version in publisher.store.iter_item_versions():
        label = labels.get(version.section_slug) if version.section_slug else None
        for path in publisher.page_paths(version):
            versions[path] = hash((version.content_hash, label))
    return versions


class PublishedSite:
    """Site and feed files as resources; item files on demand."""

    def __init__(self, publisher: Publisher, clock: Clock, *, page_cache: int = DEFAULT_PAGE_CACHE) -> None:
        self.publisher = publisher
        self.clock = clock
        self.max_age = int(publisher.config.server.max_age)
        self.seq = 0  # the last store change published
        self._dates: dict[str, tuple[str, datetime]] = {}  # path -> (digest, Last-Modified)
        self._resources: dict[str, Resource] = {}  # tree path -> resource
        self._feeds: dict[str, set[str]] = {}  # feed slug -> its paths
        self._versions: dict[str, int] = {}  # item file path -> fingerprint
        self._view: SiteView | None = None
        self._pages: OrderedDict[str, tuple[int, Resource]] = OrderedDict()
        self._page_cache = page_cache
        self._pages_lock = threading.Lock()
        self._build_lock = threading.Lock()

    # -- reading (any thread) ---------------------------------------------

    def resource(self, tree_path: str) -> Resource | None:
        """A site or feed file; never reads the store."""
        return self._resources.get(tree_path)

    def knows_page(self, tree_path: str) -> bool:
        """Whether an item file exists (a dictionary lookup; never reads the store)."""
        return tree_path in self._versions

    def cached_page(self, tree_path: str) -> Resource | None:
        """An item file already rendered and still current; never reads the store."""
        version = self._versions.get(tree_path)
        with self._pages_lock:
            cached = self._pages.get(tree_path)
        return cached[1] if cached is not None and cached[0] == version else None

    def item_page(self, tree_path: str) -> Resource | None:
        """An item file, rendered on first request and cached until it changes.

        It may read the store: call it off the event loop.
        """
        version = self._versions.get(tree_path)
        view = self._view
        if version is None or view is None:
            return None
        with self._pages_lock:
            cached = self._pages.get(tree_path)
            if cached is not None and cached[0] == version:
                self._pages.move_to_end(tree_path)
                return cached[1]
        rendered = self.publisher.page(view, tree_path)
        if rendered is None:
            return None
        resource = self._make(tree_path, rendered.body, rendered.modified)
        with self._pages_lock:
            self._pages[tree_path] = (version, resource)
            self._pages.move_to_end(tree_path)
            while len(self._pages) > self._page_cache:
                self._pages.popitem(last=False)
        return resource

    def lookup(self, tree_path: str) -> Resource | None:
        """Any file of the tree; item files may read the store (call it off the event loop)."""
        return self.resource(tree_path) or self.item_page(tree_path)

    def paths(self) -> set[str]:
        """Every path of the tree now."""
        return set(self._resources) | set(self._versions)

    def page_bodies(self, paths: Iterable[str]) -> list[tuple[str, bytes]]:
        """Item files as (path, bytes), as the publisher renders them now."""
        view = self._view
        if view is None:
            return []
        found = []
        for path in sorted(paths):
            rendered = self.publisher.page(view, path)
            if rendered is not None:
                found.append((path, rendered.body))
        return found

    # -- rebuilding (scheduler thread) ---------------------------------------

    def reconfigure(self, config: Config) -> PublishReport:
        """Publish under a re-read config (titles, descriptions, base URL): everything is rebuilt."""
        with self._build_lock:
            self.publisher = Publisher(self.publisher.store, config, self.publisher.entries)
            self.max_age = int(config.server.max_age)
            with self._pages_lock:
                self._pages.clear()  # pages show the site's title and links
        return self.rebuild()

    def rebuild(self, sections: Iterable[str] | None = None) -> PublishReport:
        """Re-render the feeds of ``sections`` (None: all), those the store's
        change log names since the last rebuild, and every site file."""
        with self._build_lock:
            store = self.publisher.store
            changes = store.changes_since(self.seq)
            view = self.publisher.view()
            existing = {spec.slug for spec in view.specs}
            wanted = existing
            if sections is not None and self._view is not None and changes.complete:
                logged = {s for s in changes.sections if s} | ({ALL} if changes.slugs else set())
                wanted = (set(sections) | logged) & existing
            if not self._dates:
                self._dates = store.published_dates()
            now = self.clock()
            resources = dict(self._resources)
            feeds = {slug: paths for slug, paths in self._feeds.items() if slug in existing}
            changed: list[str] = []
            gone = {p for slug in self._feeds.keys() - existing for p in self._feeds[slug]}
            for slug in sorted(wanted):
                # A feed's numbered files (section pages, archive pages) come and go with its size.
                files = self.publisher.feed_files(view, [slug])
                for path, rendered in files.items():
                    self._put(resources, path, rendered, changed, now)
                gone |= self._feeds.get(slug, set()) - files.keys()
                feeds[slug] = set(files)
            removed = sorted(gone)
            for path in removed:
                resources.pop(path, None)
            for path, rendered in self.publisher.site_files(view).items():
                self._put(resources, path, rendered, changed, now)
            versions = page_versions(self.publisher, view)
            # Archive pages of the feeds not rebuilt keep their versions.
            versions.update((p, v) for p, v in self._versions.items() if p.startswith(ARCHIVE_PREFIX))
            for path in [p for p in versions if p.startswith(ARCHIVE_PREFIX) and _feed_of(p) in wanted]:
                del versions[path]
            versions.update(self.publisher.archive_versions(view, wanted))
            report = PublishReport(
                sections=frozenset(wanted),
                changed=tuple(changed),
                removed=tuple(removed),
                pages_changed=tuple(sorted(p for p, v in versions.items() if self._versions.get(p) != v)),
                pages_removed=tuple(sorted(self._versions.keys() - versions.keys())),
            )
            store.save_published_dates({p: self._dates[p] for p in changed})
            store.forget_published(removed)
            for path in removed:
                self._dates.pop(path, None)
            # Swap whole mappings: a request sees the old tree or the new one.
            self._view, self._versions, self._feeds, self._resources = view, versions, feeds, resources
            self.seq = changes.seq
            self._forget_pages(report.pages_changed + report.pages_removed)
            return report

    def _put(
        self, resources: dict[str, Resource], path: str, rendered: Rendered, changed: list[str], now: datetime
    ) -> None:
        previous = resources.get(path)
        if previous is not None and previous.body == rendered.body:
            return  # same bytes: keep the resource, its gzip and its ETag
        digest = digest_of(rendered.body)
        last_modified = next_last_modified(self._dates.get(path), digest, now)
        self._dates[path] = (digest, last_modified)
        resources[path] = self._make(path, rendered.body, last_modified)
        changed.append(path)

    def _make(self, path: str, body: bytes, modified: datetime) -> Resource:
        vary = VARY_NEGOTIATED if is_feed_path(path) else VARY_ENCODING
        return make_resource(body, content_type_of(path), modified, self.max_age, vary=vary)

    @property
    def view(self) -> SiteView | None:
        """The view of the last rebuild (None before the first)."""
        return self._view

    def _forget_pages(self, paths: Iterable[str]) -> None:
        with self._pages_lock:
            for path in paths:
                self._pages.pop(path, None)

    def tree_file(self, path: str) -> bytes:
        return self._resources[path].body


def sync_export(root: Path, site: PublishedSite, report: PublishReport) -> ExportResult:
    """Bring an exported tree up to date after a rebuild, with export's atomic writes.

    Only what the rebuild changed is rendered and written; files of removed
    sections and items are pruned as ``feeds export`` would.
    """
    files = [(path, site.tree_file(path)) for path in report.changed]
    result = export_files(root, [*files, *site.page_bodies(report.pages_changed)])
    result.deleted = prune_stale(root, site.paths(), site.publisher.entries.managed)
    return result
