"""One item per story across files and runs; only changes are written."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

from feeds.app import run_ingest
from feeds.clock import fixed_clock
from feeds.config import Config
from feeds.errors import StoreError
from feeds.model import Item, ItemWrite, Origin
from feeds.normalise import fold_title
from store import Store
from tests.conftest import NOW

HEADLINE_FILE = """\
date 2026-01-02 Harbour cranes return to the old port

Harbour cranes return to the old port
LATEST NEWS

  1. Harbour cranes return to the old port

    Harbour cranes return to the old port

  2. Ferry timetable changes for winter

    Ferry timetable changes for winter
"""

ARTICLE_FILE = """\
date 2026-01-03 Harbour cranes return to the old port

Harbour cranes return to the old port

İZMİR
Harbour cranes return to the old port

The first of four cranes arrived on Friday, port officials said.

Work on the quay is due to finish in the spring.
\u00a0

ECONOMY Harbour cranes return to the old port

Harbour cranes return to the old port

The first of four cranes arrived on Friday.
"""


def write_seed(config: Config, name: str, text: str) -> Path:
    path = config.seeds.dir / name
    path.write_text(text, encoding="utf-8")
    return path


def by_title(store: Store) -> dict[str, object]:
    return {item.title: item for item in store.iter_items()}


def test_the_same_story_in_two_files_is_one_item(config: Config, store: Store) -> None:
    a = write_seed(config, "a.txt", HEADLINE_FILE)
    b = write_seed(config, "b.txt", HEADLINE_FILE.replace("2026-01-02", "2026-01-04"))
    run_ingest(store, config, fixed_clock(NOW), [a, b])
    items = [i for i in store.iter_items() if i.title == "Harbour cranes return to the old port"]
    assert len(items) == 1
    assert {o.name for o in items[0].origins} == {"a.txt", "b.txt"}


def test_a_richer_form_later_enriches_the_same_item(config: Config, store: Store) -> None:
    first = write_seed(config, "a.txt", HEADLINE_FILE)
    run_ingest(store, config, fixed_clock(NOW), [first])
    (before,) = [i for i in store.iter_items() if i.title.startswith("Harbour")]
    assert before.kind == "headline"
    assert before.published.date().isoformat() == "2026-01-02"

    later = NOW + timedelta(days=1)
    second = write_seed(config, "b.txt", ARTICLE_FILE)
    report = run_ingest(store, config, fixed_clock(later), [first, second])
    (after,) = [i for i in store.iter_items() if i.title.startswith("Harbour")]
    assert after.id == before.id
    assert after.slug == before.slug
    assert after.kind == "article"
    assert after.dateline == "İZMİR"
    assert after.section == "ECONOMY"
    assert after.section_slug == "economy"
    assert len(after.body) == 2
    assert after.published == before.published  # published never moves
    assert after.updated >= later  # the time the change was stored
    assert {"all", "economy"} <= report.changed_sections
    # The story the later scrape dropped is still there.
    assert "Ferry timetable changes for winter" in {i.title for i in store.iter_items()}


def test_reingesting_unchanged_files_writes_nothing(config: Config, store: Store) -> None:
    paths = [write_seed(config, "a.txt", HEADLINE_FILE), write_seed(config, "b.txt", ARTICLE_FILE)]
    run_ingest(store, config, fixed_clock(NOW), paths)
    changes = store.db.conn.total_changes
    report = run_ingest(store, config, fixed_clock(NOW + timedelta(hours=1)), paths)
    assert store.db.conn.total_changes == changes
    assert report.written == 0
    assert {f.status for f in report.files} == {"unchanged"}
    assert report.changed_sections == frozenset()


def test_a_changed_file_with_the_same_stories_changes_no_item(config: Config, store: Store) -> None:
    path = write_seed(config, "a.txt", HEADLINE_FILE)
    run_ingest(store, config, fixed_clock(NOW), [path])
    before = {i.id: i for i in store.iter_items()}
    path.write_text(HEADLINE_FILE + "\n\n\u00a0\n", encoding="utf-8")  # new bytes, same stories
    report = run_ingest(store, config, fixed_clock(NOW + timedelta(hours=1)), [path])
    after = {i.id: i for i in store.iter_items()}
    assert {k: v.updated for k, v in after.items()} == {k: v.updated for k, v in before.items()}
    assert report.files[0].status == "ingested"


def test_times_are_the_seeds_own_and_ties_are_ordered_by_id(config: Config, store: Store) -> None:
    # Stories of one seed day share its midnight: no millisecond is invented
    # to set them apart; feeds list stories of one time by id.
    write_seed(config, "a.txt", HEADLINE_FILE)
    write_seed(config, "b.txt", ARTICLE_FILE)
    run_ingest(store, config, fixed_clock(NOW), sorted(config.seeds.dir.glob("*.txt")))
    items = store.feed_items(None, 100)
    assert all(i.published == i.updated and i.published.time() == time(0) for i in items)
    assert len({i.published for i in items}) < len(items)
    assert items == sorted(items, key=lambda i: (-i.published.timestamp(), i.id))


def test_undated_items_are_published_when_first_stored(config: Config, store: Store) -> None:
    path = write_seed(config, "nodate.txt", HEADLINE_FILE.replace("date 2026-01-02 ", ""))
    run_ingest(store, config, fixed_clock(NOW), [path])
    stored = list(store.iter_items())
    assert stored
    assert all(NOW <= i.published < NOW + timedelta(seconds=1) for i in stored)
    assert all(i.published == i.updated for i in stored)


@pytest.mark.parametrize(
    ("remote_day", "seed_text", "merges"),
    [
        (2, HEADLINE_FILE, True),  # the seed file is dated 2026-01-02
        (5, HEADLINE_FILE, False),
        (2, HEADLINE_FILE.replace("date 2026-01-02 ", ""), False),  # an undated story has no day
    ],
    ids=["same-day", "other-day", "undated-seed"],
)
def test_a_seed_story_merges_into_a_remote_item_only_on_its_day(
    config: Config, store: Store, remote_day: int, seed_text: str, merges: bool
) -> None:
    title = "Ferry timetable changes for winter"
    published = datetime(2026, 1, remote_day, 9, tzinfo=UTC)
    remote = Item(
        id="http://127.0.0.1/wire/ferry",
        key=fold_title(title),
        slug="ferry-wire",
        title=title,
        kind="entry",
        published=published,
        updated=published,
        link="http://127.0.0.1/wire/ferry",
    )
    store.write_batch([ItemWrite(item=remote, origins=(Origin(kind="source", name="wire"),))])
    run_ingest(store, config, fixed_clock(NOW), [write_seed(config, "a.txt", seed_text)])
    ferries = sorted(i.id for i in store.iter_items() if i.title == title)
    if merges:
        assert ferries == [remote.id]
    else:
        assert len(ferries) == 2 and ferries[0] == remote.id and ferries[1].startswith("tag:")


def test_a_later_file_repeating_a_story_is_kept_as_provenance(config: Config, store: Store) -> None:
    a = write_seed(config, "a.txt", ARTICLE_FILE)
    run_ingest(store, config, fixed_clock(NOW), [a])
    (before,) = [i for i in store.iter_items() if i.title.startswith("Harbour")]
    b = write_seed(config, "b.txt", HEADLINE_FILE)  # the same story, poorer: no change
    run_ingest(store, config, fixed_clock(NOW + timedelta(days=1)), [a, b])
    (after,) = [i for i in store.iter_items() if i.title.startswith("Harbour")]
    assert after.updated == before.updated
    assert [o.name for o in after.origins] == ["a.txt", "b.txt"]


def test_a_full_disk_fails_the_batch_naming_the_store_and_loses_nothing(config: Config, store: Store) -> None:
    first = write_seed(config, "a.txt", HEADLINE_FILE)
    run_ingest(store, config, fixed_clock(NOW), [first])
    before = {i.id: i for i in store.iter_items()}
    # SQLite's own "disk is full": the file may not grow past its present pages.
    (pages,) = store.db.execute("PRAGMA page_count").fetchone()
    store.db.execute(f"PRAGMA max_page_count = {pages}")
    rows = "".join(
        f"  {n}. Story number {n} {'x' * 400}\n\n    Story number {n} {'x' * 400}\n\n" for n in range(1, 300)
    )
    big = write_seed(config, "b.txt", f"date 2026-01-05 Many stories\n\nMany stories\nLATEST NEWS\n\n{rows}")
    with pytest.raises(StoreError, match="full") as caught:
        run_ingest(store, config, fixed_clock(NOW + timedelta(hours=1)), [first, big])
    assert str(store.path) in str(caught.value)
    assert {i.id: i for i in store.iter_items()} == before
    assert set(store.seed_file_hashes()) == {"a.txt"}  # b.txt is ingested again once there is room
