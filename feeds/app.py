"""The product's jobs, wired from config, store and clock.

The CLI and the daemon both call these; neither repeats the wiring. Each job
returns a report record and never prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from feeds.clock import Clock
from feeds.config import Config
from feeds.publish.export import ExportResult, export_files
from feeds.publish.tree import Publisher
from feeds.seeds.ingest import IngestReport, ingest_seeds, list_seed_files
from store import Store
from store.db import is_read_only


def open_store(config: Config, *, read_only: bool = False) -> Store:
    """The configured store; ``read_only`` (commands that only read) opens an
    existing store without writing to it, so a read-only disk or file works."""
    path = config.store.path
    if read_only and path.exists():
        return Store(path, read_only=True)
    return Store(path)


def store_is_read_only(config: Config) -> bool:
    """Whether the configured store exists and cannot be written."""
    return config.store.path.exists() and is_read_only(config.store.path)


def run_ingest(
    store: Store, config: Config, clock: Clock, paths: Sequence[Path] | None = None
) -> IngestReport:
    """Ingest the given seed files, or every seed file of the seeds dir."""
    files = list(paths) if paths else list_seed_files(config.seeds.dir)
    report = ingest_seeds(
        store,
        files,
        authority=config.site.authority,
        section_for_label=config.section_for_label,
        now=clock(),
        max_bytes=config.seeds.max_bytes,
    )
    removed = apply_retention(store, config, clock)
    return replace(report, changed_sections=report.changed_sections | removed)


def apply_retention(store: Store, config: Config, clock: Clock) -> frozenset[str]:
    """``[store] keep`` and ``keep_tombstones``; the feeds that lost items."""
    return store.apply_retention(clock(), config.store.keep, config.store.keep_tombstones).affected


@dataclass(frozen=True, slots=True)
class SectionSummary:
    slug: str
    items: int
    written: int  # files of this feed written (0 to 3)


@dataclass(frozen=True, slots=True)
class ExportReport:
    sections: tuple[SectionSummary, ...]
    pages_written: int
    pages: int
    result: ExportResult


def run_export(store: Store, config: Config, out_dir: Path) -> ExportReport:
    """Write the whole tree to ``out_dir``, touching only files whose bytes changed."""
    publisher = Publisher(store, config)
    view = publisher.view()
    result = export_files(out_dir, publisher.files(view), publisher.entries.managed)
    written = set(result.written)
    sections = tuple(
        SectionSummary(
            slug=spec.slug,
            items=min(view.counts.get(spec.slug, 0), config.output.items_per_feed),
            written=len(publisher.feed_paths(spec.slug) & written),
        )
        for spec in view.specs
    )
    pages = [p for p in (*result.written, *result.unchanged) if publisher.is_item_file(p)]
    pages_written = sum(publisher.is_item_file(p) for p in result.written)
    return ExportReport(sections, pages_written, len(pages), result)
