"""The product's jobs, wired from config, store and clock.

The CLI and the daemon both call these; neither repeats the wiring. Each job
returns a report record and never prints.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from feeds.clock import Clock
from feeds.config import Config
from feeds.publish.export import ExportResult, export_files
from feeds.publish.site import ALL, iter_item_pages, render_site_files
from feeds.seeds.ingest import IngestReport, ingest_seeds, list_seed_files
from store import Store


def open_store(config: Config) -> Store:
    return Store(config.store.path)


def run_ingest(
    store: Store, config: Config, clock: Clock, paths: Sequence[Path] | None = None
) -> IngestReport:
    """Ingest the given seed files, or every seed file of the seeds dir."""
    files = list(paths) if paths else list_seed_files(config.seeds.dir)
    return ingest_seeds(
        store,
        files,
        authority=config.site.authority,
        section_for_label=config.section_for_label,
        now=clock(),
    )


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


def build_tree(store: Store, config: Config) -> Iterator[tuple[str, bytes]]:
    """Every file of the published tree: feeds, index, OPML, then item pages."""
    files, _ = render_site_files(store, config)
    yield from sorted(files.items())
    yield from iter_item_pages(store, config)


def run_export(store: Store, config: Config, out_dir: Path) -> ExportReport:
    """Write the whole tree to ``out_dir``, touching only files whose bytes changed."""
    result = export_files(out_dir, build_tree(store, config))
    counts = {s.slug: s.items for s in store.sections()}
    counts[ALL] = store.count_items()
    written = set(result.written)
    sections = tuple(
        SectionSummary(
            slug=slug,
            items=min(count, config.output.items_per_feed),
            written=sum(f"feeds/{slug}.{fmt}" in written for fmt in ("rss", "atom", "json")),
        )
        for slug, count in sorted(counts.items(), key=lambda kv: (kv[0] != ALL, kv[0]))
    )
    pages = [p for p in (*result.written, *result.unchanged) if p.startswith("items/")]
    pages_written = sum(p.startswith("items/") for p in result.written)
    return ExportReport(sections, pages_written, len(pages), result)
