"""Seed files -> stored items.

The steps: list the seed files, skip those whose bytes the store has already
ingested (by SHA-256), parse the rest, merge every mention of a story across
the changed files, merge again with what the store holds, and write only the
items that changed, with the seed-file records, in one transaction.

Merging decisions (``merge_with_stored``) are pure and take ``now``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from feeds.errors import ConfigError, SeedError
from feeds.model import Item, Origin, SeedFile, SeedItem
from feeds.normalise import fold_title, item_slug, seed_item_id
from feeds.plan import ItemPlanner, WritePlan
from feeds.seeds.document import decode_seed, merge_forms, parse_seed
from store import Store

SEED_GLOB = "*.txt"

SectionMapper = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class SeedFileResult:
    """What happened to one seed file in one ingest run."""

    name: str
    status: str  # "ingested", "unchanged" or "error"
    items: int = 0
    error: str | None = None
    warning: str | None = None  # e.g. not UTF-8, decoded by detection


@dataclass(frozen=True, slots=True)
class IngestReport:
    files: tuple[SeedFileResult, ...]
    written: int  # items inserted or changed
    changed_sections: frozenset[str] = field(default_factory=frozenset)  # slugs; "all" if any

    @property
    def errors(self) -> tuple[SeedFileResult, ...]:
        return tuple(f for f in self.files if f.status == "error")


@dataclass(frozen=True, slots=True)
class _Parsed:
    name: str
    sha256: str
    size: int
    items: list[SeedItem]


def list_seed_files(seeds_dir: Path) -> list[Path]:
    """The seed files of a directory, sorted by name so every run sees one order."""
    if not seeds_dir.is_dir():
        raise ConfigError("seeds.dir: not a readable directory", subject=str(seeds_dir))
    try:
        return sorted(p for p in seeds_dir.glob(SEED_GLOB) if p.is_file())
    except OSError as e:
        raise ConfigError(f"seeds.dir: cannot list: {e.strerror or e}", subject=str(seeds_dir)) from e


DEFAULT_MAX_SEED_BYTES = 20 * 1024 * 1024


def read_seed_file(path: Path, max_bytes: int = DEFAULT_MAX_SEED_BYTES) -> tuple[bytes, str]:
    """The bytes of a seed file and their SHA-256; SeedError names the file.

    A file over ``max_bytes`` is refused before it is read: parsing costs
    several times a file's size in memory (200 MB needed over 1 GB).
    """
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            data = b"" if size > max_bytes else handle.read(max_bytes + 1)
    except OSError as e:
        raise SeedError(f"cannot read: {e.strerror or e}", subject=str(path)) from e
    if size > max_bytes or len(data) > max_bytes:  # a file still growing is caught by the read
        raise SeedError(
            f"{max(size, len(data))} bytes is over the {max_bytes}-byte limit ([seeds] max_bytes)",
            subject=str(path),
        )
    return data, hashlib.sha256(data).hexdigest()


def ingest_seeds(
    store: Store,
    paths: Sequence[Path],
    *,
    authority: str,
    section_for_label: SectionMapper,
    now: datetime,
    force: bool = False,
    max_bytes: int = DEFAULT_MAX_SEED_BYTES,
) -> IngestReport:
    """Parse changed seed files and store their items; one bad file is reported, not fatal."""
    known = {} if force else store.seed_file_hashes()
    results: list[SeedFileResult] = []
    parsed: list[_Parsed] = []
    for path in paths:
        try:
            data, digest = read_seed_file(path, max_bytes)
            if known.get(path.name) == digest:
                results.append(SeedFileResult(path.name, "unchanged"))
                continue
            items = parse_seed(decode_seed(data, str(path)))
        except SeedError as e:
            results.append(SeedFileResult(path.name, "error", error=str(e)))
            continue
        parsed.append(_Parsed(path.name, digest, len(data), items))
        results.append(SeedFileResult(path.name, "ingested", items=len(items), warning=_utf8_problem(data)))
    if not parsed:
        return IngestReport(tuple(results), 0)
    plan = plan_writes(store, parsed, authority, section_for_label, now)
    seed_files = [SeedFile(p.name, p.sha256, p.size, len(p.items), now) for p in parsed]
    store.write_batch(plan.writes, seed_files, plan.sightings)
    return IngestReport(tuple(results), plan.items_changed, plan.affected)


def plan_writes(
    store: Store,
    parsed: Sequence[_Parsed],
    authority: str,
    section_for_label: SectionMapper,
    now: datetime,
) -> WritePlan:
    """What to write for freshly parsed files: changed items, and provenance
    for the unchanged ones (every file a story appears in is kept)."""
    merged: dict[str, SeedItem] = {}
    seen_in: dict[str, list[str]] = {}
    for p in parsed:
        for seed in p.items:
            key = fold_title(seed.title)
            merged[key] = merge_forms(merged[key], seed) if key in merged else seed
            seen_in.setdefault(key, []).append(p.name)
    stored = store.items_by_keys(merged)
    planner = ItemPlanner()
    # A few labels and dates recur across thousands of stories: map each once.
    slugs = _Memo(section_for_label)
    for key, seed in merged.items():
        existing = _pick_stored(stored.get(key, ()), authority, key, seed.date)
        item = merge_with_stored(seed, existing, authority, slugs, now, key=key)
        origins = tuple(
            Origin(kind="seed", name=name, first_seen=now, last_seen=now)
            for name in dict.fromkeys(seen_in[key])
        )
        if item is not None:
            planner.store(item, existing, origins)
        elif existing is not None:
            planner.sighting(existing, origins)
    return planner.plan()


def _utf8_problem(data: bytes) -> str | None:
    """Why the bytes are not UTF-8, if they are not (the file was decoded by detection)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"not valid UTF-8 (byte {e.start}); decoded by detection"
    return None


def _pick_stored(candidates: Iterable[Item], authority: str, key: str, date: str | None) -> Item | None:
    """The stored item a seed story updates: its own tag id first, else one
    with its title. A remote entry only counts if it was published on the
    seed's date: feeds repeat titles ("Morning briefing"), so a title is the
    same story only on the same day, and an undated seed story has no day."""
    candidates = list(candidates)
    own_id = seed_item_id(authority, key)
    for item in candidates:
        if item.id == own_id:
            return item
    for item in candidates:
        if item.kind != "entry" or (date and item.published.astimezone(UTC).date().isoformat() == date):
            return item
    return None


def merge_with_stored(
    seed: SeedItem,
    existing: Item | None,
    authority: str,
    section_for_label: SectionMapper,
    now: datetime,
    *,
    key: str | None = None,
) -> Item | None:
    """The item to store for ``seed``, or None when the store already has it as is.

    A new item is published on its seed date (midnight UTC) or ``now`` and its
    first ``updated`` equals ``published``: stories of one day share its
    midnight, and feeds order them by id. An existing item keeps its id, slug
    and ``published``; ``updated`` moves to ``now`` only if the content
    changed. ``key`` is ``fold_title(seed.title)``, when the caller has it.
    """
    if existing is None:
        key = key or fold_title(seed.title)
        published = _seed_date(seed.date) or now
        identity = (seed_item_id(authority, key), key, item_slug(seed.title, key))
        return _item_from_seed(seed, identity, None, published, published, section_for_label)
    combined = merge_forms(_as_seed_item(existing), seed)
    identity = (existing.id, existing.key, existing.slug)
    candidate = _item_from_seed(
        combined, identity, existing, existing.published, existing.updated, section_for_label
    )
    if candidate.content_hash() == existing.content_hash():
        return None
    return replace(candidate, updated=max(now, existing.updated))


def _item_from_seed(
    seed: SeedItem,
    identity: tuple[str, str, str],
    existing: Item | None,
    published: datetime,
    updated: datetime,
    section_for_label: SectionMapper,
) -> Item:
    """The item a (merged) seed story makes; ``identity`` is its (id, key, slug)."""
    item_id, key, slug = identity
    return Item(
        id=item_id,
        key=key,
        slug=slug,
        title=seed.title,
        kind=existing.kind if existing and existing.kind == "entry" else seed.kind,
        published=published,
        updated=updated,
        section=seed.section,
        section_slug=section_for_label(seed.section) if seed.section else None,
        link=existing.link if existing else None,
        summary=seed.summary,
        content_html=existing.content_html if existing else None,
        body=seed.body,
        dateline=seed.dateline,
        author=seed.author,
    )


def _as_seed_item(item: Item) -> SeedItem:
    """A stored item seen as one more mention of the story, for merging."""
    return SeedItem(
        title=item.title,
        kind=item.kind,
        section=item.section,
        date=item.published.date().isoformat(),
        dateline=item.dateline,
        summary=item.summary,
        body=item.body,
        author=item.author,
    )


def _seed_date(date: str | None) -> datetime | None:
    """Midnight UTC of a seed's ``YYYY-MM-DD`` date; None without one."""
    if not date or len(date) != 10:
        return None
    try:
        return datetime.fromisoformat(date).replace(tzinfo=UTC)  # C; strptime was a tenth of ingest
    except ValueError:
        return None


class _Memo:
    """A mapping function remembered for the labels of one batch."""

    def __init__(self, mapper: SectionMapper) -> None:
        self._mapper = mapper
        self._known: dict[str, str] = {}

    def __call__(self, label: str) -> str:
        slug = self._known.get(label)
        if slug is None:
            slug = self._known[label] = self._mapper(label)
        return slug
