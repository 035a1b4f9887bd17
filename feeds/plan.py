"""The one item-write planner: decisions about stories -> what the store writes.

Seeds (``feeds.seeds.ingest``) and remote sources (``feeds.sources.prepare``)
each decide which stored item a story is and what it should now say; both
hand their decisions to an ``ItemPlanner``, which turns them into the
``WritePlan`` the store applies in one transaction (``Store.write_plan``):
the items to upsert with their origins, provenance-only sightings, the
sections whose output changes and how many stories a reader sees change.

Times are never invented here: an item carries the time its source gave it
(a seed's date, an entry's own date) and stories that share a time are
ordered by id when published.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from feeds.model import Item, ItemWrite, Origin


@dataclass(frozen=True, slots=True)
class WritePlan:
    """What one batch (a seed ingest, a source's refresh) writes."""

    writes: tuple[ItemWrite, ...] = ()  # new and changed items, with where they were seen
    sightings: tuple[tuple[str, Origin], ...] = ()  # (item id, origin): provenance of unchanged items
    affected: frozenset[str] = field(default_factory=frozenset)  # "all" and every section touched
    items_changed: int = 0  # new items plus items whose content changed


class ItemPlanner:
    """Collects the decisions of one batch; ``plan()`` gives the ``WritePlan``."""

    def __init__(self) -> None:
        self._writes: list[ItemWrite] = []
        self._sightings: list[tuple[str, Origin]] = []
        self._affected: set[str] = set()
        self._changed = 0

    def store(
        self,
        item: Item,
        existing: Item | None,
        origins: tuple[Origin, ...],
        *,
        canonical_link: str | None = None,
        content_hash: str | None = None,
    ) -> None:
        """A new story, or a stored one whose content changed."""
        self._changed += 1
        self._touch(item, existing)
        self._writes.append(ItemWrite(item, canonical_link, origins, content_hash))

    def credit(
        self, existing: Item, origins: tuple[Origin, ...], *, canonical_link: str | None = None
    ) -> None:
        """A stored story seen in a new place that the output names (a remote
        source's ``<source>``): its row is rewritten with the new origins."""
        self._touch(existing, None)
        self._writes.append(ItemWrite(existing, canonical_link, origins))

    def sighting(self, existing: Item, origins: Iterable[Origin]) -> None:
        """A stored story seen again where the output does not show it: provenance only."""
        self._sightings.extend((existing.id, origin) for origin in origins)

    def plan(self) -> WritePlan:
        return WritePlan(
            tuple(self._writes), tuple(self._sightings), frozenset(self._affected), self._changed
        )

    def _touch(self, item: Item, existing: Item | None) -> None:
        """``all``, the item's section and the one it left, if any."""
        self._affected.update(s for s in ("all", item.section_slug, existing and existing.section_slug) if s)
