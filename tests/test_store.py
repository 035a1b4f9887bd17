"""The store keeps what it is given: items in, the same items out."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from feeds.errors import StoreError
from feeds.model import Item, ItemWrite, Origin
from store import Store
from tests.strategies import item_lists, make_item


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=item_lists())
def test_items_round_trip_through_a_real_file(tmp_path: Path, batch: list[Item]) -> None:
    path = tmp_path / f"{len(list(tmp_path.iterdir()))}.db"
    with Store(path) as store:
        store.write_batch([ItemWrite(item=i, origins=i.origins) for i in batch])
    with Store(path) as reopened:
        stored = {i.id: i for i in reopened.iter_items()}
    assert stored == {i.id: i for i in batch}


def test_feed_order_is_published_desc_then_id(tmp_path: Path) -> None:
    moment = make_item(0).published
    batch = [make_item(i, published=moment) for i in range(3)] + [make_item(i) for i in range(3, 6)]
    with Store(tmp_path / "s.db") as store:
        store.write_batch([ItemWrite(item=i) for i in batch])
        got = [i.id for i in store.feed_items(None, 50)]
        world = [i.id for i in store.feed_items("world", 2)]
    expected = [i.id for i in sorted(batch, key=lambda i: (-i.published.timestamp(), i.id))]
    assert got == expected
    assert world == expected[:2]


def test_origin_keeps_first_sighting(tmp_path: Path) -> None:
    item = make_item(0)
    later = item.published + timedelta(days=1)
    first = Origin(kind="seed", name="a.txt", first_seen=item.published, last_seen=item.published)
    again = replace(first, first_seen=later, last_seen=later)
    with Store(tmp_path / "s.db") as store:
        store.write_batch([ItemWrite(item=item, origins=(first,))])
        store.write_batch([ItemWrite(item=item, origins=(again,))])
        (stored,) = list(store.iter_items())
    assert stored.origins == (replace(first, last_seen=later),)


def test_a_failed_batch_leaves_nothing_behind(tmp_path: Path) -> None:
    good = make_item(0)
    clash = replace(make_item(1), slug=good.slug)  # slugs are unique
    with Store(tmp_path / "s.db") as store:
        with pytest.raises(StoreError, match=r"s\.db"):
            store.write_batch([ItemWrite(item=good), ItemWrite(item=clash)])
        assert store.count_items() == 0


def test_sections_count_items_and_newest(tmp_path: Path) -> None:
    batch = [make_item(i) for i in range(3)] + [make_item(9, section="ECONOMY", section_slug="economy")]
    with Store(tmp_path / "s.db") as store:
        store.write_batch([ItemWrite(item=i) for i in batch])
        sections = {s.slug: (s.label, s.items, s.newest) for s in store.sections()}
    assert sections == {
        "economy": ("ECONOMY", 1, batch[3].published),
        "world": ("WORLD", 3, batch[2].published),
    }


def test_unopenable_store_names_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="file"):
        Store(blocker / "feeds.db")


def test_a_new_store_opened_by_eight_threads_at_once_opens_in_all(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    start = threading.Barrier(8)
    failures: list[BaseException] = []

    def open_it() -> None:
        start.wait()
        try:
            Store(path).close()
        except BaseException as e:  # collected: a thread's exception is lost otherwise
            failures.append(e)

    threads = [threading.Thread(target=open_it) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    with Store(path) as store:
        assert store.count_items() == 0
