"""The queue adapter against a real redis-server: delivery, host slots, stats, outages."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from feeds.cluster.queue import RedisQueue, WorkerSeen
from feeds.errors import BrokerError
from tests.redisutil import RedisServer, free_port

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def queues(redis_server: RedisServer) -> Iterator[list[RedisQueue]]:
    made: list[RedisQueue] = []
    yield made
    for queue in made:
        queue.close()


def make(redis_server: RedisServer, queues: list[RedisQueue]) -> RedisQueue:
    queue = RedisQueue(redis_server.url, redeliver_after=2.0)
    queues.append(queue)
    return queue


def wait_until(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_job_sent_by_one_process_reaches_the_consumer_of_another(
    redis_server: RedisServer, queues: list[RedisQueue]
) -> None:
    sender, taker = make(redis_server, queues), make(redis_server, queues)
    got: list[dict[str, Any]] = []
    for n in range(5):
        sender.send("jobs", {"n": n, "text": "Türkiye"})
    assert sender.stats(NOW, 60).jobs_queued == 5
    taker.consume("jobs", got.append, threads=1)
    wait_until(lambda: len(got) == 5)
    assert sorted(g["n"] for g in got) == list(range(5)) and got[0]["text"] == "Türkiye"
    wait_until(lambda: sender.stats(NOW, 60).jobs_in_flight == 0)
    assert sender.stats(NOW, 60).jobs_queued == 0


def test_host_slots_are_shared_by_every_process(redis_server: RedisServer, queues: list[RedisQueue]) -> None:
    one, two = make(redis_server, queues), make(redis_server, queues)
    with one.host_slot("h", 2, hold=30, wait=0) as a, two.host_slot("h", 2, hold=30, wait=0) as b:
        assert a and b
        with one.host_slot("h", 2, hold=30, wait=0) as c:
            assert not c
        with two.host_slot("other", 2, hold=30, wait=0) as d:
            assert d
    with two.host_slot("h", 2, hold=30, wait=0) as e:
        assert e  # freed on leaving


def test_a_slot_whose_holder_vanished_frees_itself_after_its_hold(
    redis_server: RedisServer, queues: list[RedisQueue]
) -> None:
    queue = make(redis_server, queues)
    slot = queue.host_slot("h", 1, hold=0.3, wait=0)
    assert slot.__enter__()  # never left: as if the process died holding it
    started = time.monotonic()
    with queue.host_slot("h", 1, hold=30, wait=5) as later:
        assert later and time.monotonic() - started >= 0.2


def test_a_waiting_taker_gets_the_slot_when_it_is_freed(
    redis_server: RedisServer, queues: list[RedisQueue]
) -> None:
    queue = make(redis_server, queues)
    freed = threading.Event()

    def hold() -> None:
        with queue.host_slot("h", 1, hold=30, wait=0):
            freed.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    wait_until(lambda: redis_server.client().zcard("feeds:host:h") == 1)
    threading.Timer(0.2, freed.set).start()
    with queue.host_slot("h", 1, hold=30, wait=5) as taken:
        assert taken
    holder.join()


def test_workers_seen_recently_are_listed(redis_server: RedisServer, queues: list[RedisQueue]) -> None:
    queue = make(redis_server, queues)
    queue.beat(WorkerSeen("w1", "box", 10, NOW, NOW, jobs_done=3, threads=4))
    queue.beat(WorkerSeen("w2", "box", 11, NOW, NOW - timedelta(minutes=5)))
    stats = queue.stats(NOW + timedelta(seconds=5), recent=60)
    assert [(w.name, w.jobs_done, w.threads) for w in stats.workers] == [("w1", 3, 4)]


def test_an_unreachable_broker_is_one_broker_error_naming_it() -> None:
    queue = RedisQueue(f"redis://127.0.0.1:{free_port()}/0", redeliver_after=2.0)
    with pytest.raises(BrokerError) as info:
        queue.ping()
    assert str(info.value).startswith(f"{queue.url}: ping: ConnectionError")
    with pytest.raises(BrokerError):
        queue.send("jobs", {"n": 1})
    queue.close()


def test_the_generation_marker_changes_when_redis_loses_its_data(
    redis_server: RedisServer, queues: list[RedisQueue]
) -> None:
    queue = make(redis_server, queues)
    first = queue.generation()
    assert queue.generation() == first
    redis_server.stop()
    with pytest.raises(BrokerError):
        queue.generation()
    redis_server.start()
    assert queue.generation() != first


def test_a_broker_password_is_never_shown() -> None:
    queue = RedisQueue(f"redis://:s3cret@127.0.0.1:{free_port()}/0", redeliver_after=2.0)
    assert queue.url.startswith("redis://:***@127.0.0.1:")
    with pytest.raises(BrokerError) as info:
        queue.ping()
    assert "s3cret" not in str(info.value)
    queue.close()
