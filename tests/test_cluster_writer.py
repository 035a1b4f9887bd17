"""The daemon's side of the cluster in-process, on a real redis-server and a real store:
jobs sent once per source, duplicates and stale results changing nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from feeds.cluster.codec import to_message
from feeds.cluster.dispatch import ClusterUpdates, state_token
from feeds.cluster.queue import RedisQueue
from feeds.cluster.status import cluster_status, describe_cluster
from feeds.config import ClusterConfig, Config
from feeds.sources.fetch import FetchRequest, FetchResult
from feeds.sources.step import SourceTask, fetch_and_prepare, plan_refresh
from store import Store
from tests.conftest import NOW
from tests.redisutil import RedisServer, free_port
from tests.remote_helpers import SteppingClock, config_with_sources, rss


class Served:
    """A retriever that answers every URL with one body."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def fetch(self, request: FetchRequest) -> FetchResult:
        return FetchResult(200, request.url, None, self.body, {"etag": '"v1"'})


def story(n: int) -> dict[str, str]:
    return {"title": f"Story {n}", "link": f"http://127.0.0.1/s/{n}", "guid": f"s{n}", "description": "d"}


@pytest.fixture
def setup(
    project: Path, redis_server: RedisServer
) -> Iterator[tuple[Config, Store, ClusterUpdates, list[frozenset[str]]]]:
    config = config_with_sources(project, [{"name": "paper", "url": "http://127.0.0.1:9/feed.xml"}])
    store = Store(config.store.path)
    changes: list[frozenset[str]] = []
    queue = RedisQueue(redis_server.url, redeliver_after=2.0)
    cluster = ClusterUpdates(store, config, SteppingClock(), queue, changes.append)
    yield config, store, cluster, changes
    queue.close()
    store.close()


def result_body(task: SourceTask, token: str, stories: int) -> dict[str, Any]:
    prepared = fetch_and_prepare(task, Served(rss("Paper", [story(n) for n in range(stories)])), NOW)
    return {"result": to_message(prepared), "token": token, "worker": "w", "took": 0.1}


def planned(config: Config, store: Store) -> SourceTask:
    tasks, _ = plan_refresh(config, store.source_states(), NOW, ["paper"])
    return tasks[0]


def test_a_result_stored_twice_changes_nothing_the_second_time(
    setup: tuple[Config, Store, ClusterUpdates, list[frozenset[str]]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    config, store, cluster, changes = setup
    task = planned(config, store)
    body = result_body(task, state_token(task.state), 3)
    cluster.apply(body)
    assert store.count_items() == 3 and len(changes) == 1
    rows = [(i.id, i.updated) for i in store.iter_items()]
    cluster.apply(body)  # redelivered
    assert [(i.id, i.updated) for i in store.iter_items()] == rows and len(changes) == 1
    assert "stale result from w discarded" in caplog.text


def test_a_result_planned_from_an_older_state_is_discarded(
    setup: tuple[Config, Store, ClusterUpdates, list[frozenset[str]]],
) -> None:
    config, store, cluster, _ = setup
    old_task = planned(config, store)
    cluster.apply(result_body(old_task, state_token(old_task.state), 2))
    new_task = planned(config, store)
    assert new_task.state.etag == '"v1"'
    cluster.apply(result_body(new_task, state_token(new_task.state), 4))
    assert store.count_items() == 4
    cluster.apply(result_body(old_task, state_token(old_task.state), 6))  # late, from the old state
    assert store.count_items() == 4
    assert store.source_state("paper").etag == '"v1"'  # type: ignore[union-attr]


def test_a_source_gets_one_job_until_its_result_is_stored(
    setup: tuple[Config, Store, ClusterUpdates, list[frozenset[str]]], redis_server: RedisServer
) -> None:
    _, _, cluster, _ = setup
    cluster.refresh(None)
    cluster.refresh(["paper"])
    assert redis_server.client().llen("feeds:feeds-fetch") == 1
    assert cluster.health()["outstanding"] == 1


def test_status_names_an_unreachable_broker() -> None:
    config = Config(cluster=ClusterConfig(broker=f"redis://127.0.0.1:{free_port()}/0"))
    line = describe_cluster(cluster_status(config, SteppingClock()))
    assert line.startswith("cluster: redis://127.0.0.1:") and "UNREACHABLE: " in line


def test_a_job_lost_without_a_trace_is_sent_again_after_the_job_deadline(
    project: Path, redis_server: RedisServer
) -> None:
    config = config_with_sources(project, [{"name": "paper", "url": "http://127.0.0.1:9/feed.xml"}])
    now = [1000.0]
    with Store(config.store.path) as store:
        queue = RedisQueue(redis_server.url, redeliver_after=2.0)
        cluster = ClusterUpdates(store, config, SteppingClock(), queue, print, monotonic=lambda: now[0])
        try:
            cluster.refresh(None)
            client = redis_server.client()
            assert client.llen("feeds:feeds-fetch") == 1
            client.delete("feeds:feeds-fetch", "feeds:feeds-fetch.msgs")  # lost, e.g. dead-lettered
            cluster.monitor_round()
            assert client.llen("feeds:feeds-fetch") == 0  # not yet: it may still be running
            now[0] += cluster.job_deadline + 1
            cluster.monitor_round()
            assert client.llen("feeds:feeds-fetch") == 1
        finally:
            queue.close()
