"""The task queue: Dramatiq on Redis (the only module importing dramatiq or redis).

Two Dramatiq queues carry the cluster's work:

- ``feeds-fetch``: one job per due source, sent by the daemon, taken by
  ``feeds worker`` processes;
- ``feeds-results``: one prepared result per job, sent by a worker, taken by
  the daemon, which is the store's single writer.

Delivery is Dramatiq's, at least once: a message taken by a consumer stays
in that consumer's ack set in Redis until it is acked (a job after its
result was sent, a result after it was stored); the messages of a consumer
whose heartbeat stops for ``redeliver_after`` go back on their queue.
Dramatiq runs that "maintenance" on a small chance per command, so the
daemon calls ``sweep`` every few seconds to make redelivery prompt, and every
process keeps its heartbeat fresh itself: a worker busy with all the jobs
it took sends no command of its own and would look dead.

Beside the queues, plain Redis keys hold the per-host semaphores, the
workers' self-reports (for ``feeds status`` and /healthz) and a generation
marker that tells the daemon when Redis lost its data (a restart without
persistence), so it can send its jobs in flight again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

import dramatiq
import redis
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker
from dramatiq.middleware import AgeLimit, Callbacks, Pipelines, Retries, ShutdownNotifications, TimeLimit

from feeds.errors import BrokerError

log = logging.getLogger(__name__)

NAMESPACE = "feeds"
QUEUES = {"jobs": "feeds-fetch", "results": "feeds-results"}
ACTORS = {"jobs": "feeds_fetch_source", "results": "feeds_apply_result"}
WORKERS_KEY = f"{NAMESPACE}:workers"
GENERATION_KEY = f"{NAMESPACE}:generation"
SOCKET_TIMEOUT = 10.0  # seconds: a Redis that stops answering fails a call instead of hanging it
POLL_MS = 1000  # an idle consumer asks for messages at least this often
SLOT_WAIT_MAX = 0.1  # seconds between two tries for a host slot
FORGET_WORKERS_AFTER = timedelta(days=1)
# A handler that raises (a bug, or the broker lost for longer than the
# handler waits) has its message tried again this many times.
MAX_RETRIES = 5
# Dramatiq stops a handler running longer than this (and retries its
# message); a fetch job may wait up to ten minutes for its host's slot.
TIME_LIMIT = 1800.0
STOP_GRACE = 5.0  # seconds running handlers get to finish when a consumer stops

Kind = Literal["jobs", "results"]

# Take a host slot: drop expired holders, then add this one if there is room.
# The time is Redis's own, so the holders of every machine share one clock.
_TAKE_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return 1
end
return 0
"""


@dataclass(frozen=True, slots=True)
class WorkerSeen:
    """What a ``feeds worker`` says about itself every few seconds."""

    name: str
    host: str
    pid: int
    started: datetime
    seen: datetime
    jobs_done: int = 0
    threads: int = 0


@dataclass(frozen=True, slots=True)
class QueueStats:
    """The cluster at one moment: jobs waiting and taken, results not yet stored."""

    jobs_queued: int
    jobs_in_flight: int
    results_waiting: int
    workers: tuple[WorkerSeen, ...]  # seen recently, by name


class Consumer(Protocol):
    def stop(self) -> None: ...


class TaskQueue(Protocol):
    """The face of the queue that the daemon and the workers use."""

    url: str

    def ping(self) -> None: ...
    def send(self, kind: Kind, payload: Mapping[str, Any]) -> None: ...
    def consume(self, kind: Kind, handle: Callable[[dict[str, Any]], None], threads: int) -> Consumer: ...
    def host_slot(
        self, host: str, limit: int, hold: float, wait: float
    ) -> contextlib.AbstractContextManager[bool]: ...
    def beat(self, worker: WorkerSeen) -> None: ...
    def stats(self, now: datetime, recent: float) -> QueueStats: ...
    def sweep(self) -> None: ...
    def generation(self) -> str: ...
    def close(self) -> None: ...


def shown_url(url: str) -> str:
    """A broker URL fit to show (logs, `feeds status`, /healthz): its password hidden."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


class _Consumer:
    """A Dramatiq Worker, stopped once, within ``STOP_GRACE`` seconds: the
    messages it took but did not start go back on the queue, and one still
    running after that is redelivered later (at least once)."""

    def __init__(self, worker: dramatiq.Worker) -> None:
        self.worker = worker
        self.stopped = False

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.worker.stop(timeout=int(STOP_GRACE * 1000))


class _QuietConnectionErrors(logging.Filter):
    """Dramatiq logs every failed reconnect of a consumer (each 3 s, as
    CRITICAL); the daemon and the worker log one line per outage instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "connection error" not in message and "Restarting consumer" not in message


def _quiet(worker: dramatiq.Worker) -> None:
    """Filter the loggers of a started Worker's consumers (named after their queues)."""
    for consumer in worker.consumers.values():
        if not any(isinstance(f, _QuietConnectionErrors) for f in consumer.logger.filters):
            consumer.logger.addFilter(_QuietConnectionErrors())


class RedisQueue:
    """``TaskQueue`` on one Redis database, for the life of a process."""

    def __init__(self, url: str, *, redeliver_after: float, time_limit: float = TIME_LIMIT) -> None:
        self.url = shown_url(url)  # for logs, errors, /healthz: never the password
        self.redeliver_ms = int(redeliver_after * 1000)
        self.client = redis.Redis.from_url(
            url, socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=SOCKET_TIMEOUT
        )
        middleware = [
            AgeLimit(),
            TimeLimit(time_limit=int(time_limit * 1000)),
            ShutdownNotifications(),
            Callbacks(),
            Pipelines(),
            Retries(max_retries=MAX_RETRIES, min_backoff=1000, max_backoff=30000),
        ]
        self.broker = RedisBroker(
            client=self.client,
            namespace=NAMESPACE,
            middleware=middleware,
            heartbeat_timeout=self.redeliver_ms,
        )
        for queue in QUEUES.values():
            self.broker.declare_queue(queue)
        self._take_slot = self.client.register_script(_TAKE_SLOT)
        self._sweeper: RedisBroker | None = None
        self._workers: list[_Consumer] = []
        self._stop = threading.Event()
        self._keepalive: threading.Thread | None = None

    def ping(self) -> None:
        """Raise BrokerError unless Redis answers."""
        with self._redis("ping"):
            self.client.ping()

    def send(self, kind: Kind, payload: Mapping[str, Any]) -> None:
        """Put one message on the jobs or the results queue."""
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=QUEUES[kind], actor_name=ACTORS[kind], args=(dict(payload),), kwargs={}, options={}
        )
        with self._redis(f"sending to {QUEUES[kind]}"):
            self.broker.enqueue(message)

    def consume(self, kind: Kind, handle: Callable[[dict[str, Any]], None], threads: int) -> Consumer:
        """Run ``handle`` on each message of a queue, in ``threads`` threads,
        until ``stop``. A message is acked when ``handle`` returns; if it
        raises, the message is tried again later (``MAX_RETRIES`` times)."""
        dramatiq.Actor(
            handle,
            broker=self.broker,
            actor_name=ACTORS[kind],
            queue_name=QUEUES[kind],
            priority=0,
            options={"max_retries": MAX_RETRIES},
        )
        worker = dramatiq.Worker(
            self.broker, queues={QUEUES[kind]}, worker_threads=threads, worker_timeout=POLL_MS
        )
        worker.start()
        _quiet(worker)
        consumer = _Consumer(worker)
        self._workers.append(consumer)
        if self._keepalive is None:
            self._keepalive = threading.Thread(target=self._keep_alive, name="broker-heartbeat", daemon=True)
            self._keepalive.start()
        return consumer

    def host_slot(
        self, host: str, limit: int, hold: float, wait: float
    ) -> contextlib.AbstractContextManager[bool]:
        """One of ``limit`` slots for ``host``, shared by every process on this
        Redis; held at most ``hold`` seconds (a holder that dies frees it then).
        Yields False if none came free within ``wait`` seconds."""
        return self._slot(host, limit, hold, wait)

    @contextlib.contextmanager
    def _slot(self, host: str, limit: int, hold: float, wait: float) -> Iterator[bool]:
        key, token = f"{NAMESPACE}:host:{host}", uuid.uuid4().hex
        deadline = time.monotonic() + wait
        pause = 0.005
        while True:
            with self._redis("taking a host slot"):
                taken = bool(self._take_slot(keys=[key], args=[token, limit, int(hold * 1000)]))
            if taken or time.monotonic() >= deadline:
                break
            time.sleep(pause)
            pause = min(pause * 2, SLOT_WAIT_MAX)
        try:
            yield taken
        finally:
            if taken:
                with contextlib.suppress(BrokerError), self._redis("freeing a host slot"):
                    self.client.zrem(key, token)

    def beat(self, worker: WorkerSeen) -> None:
        """Record a worker's self-report (read back by ``stats``)."""
        record = asdict(worker)
        record["started"], record["seen"] = worker.started.isoformat(), worker.seen.isoformat()
        with self._redis("reporting a worker"):
            self.client.hset(WORKERS_KEY, worker.name, json.dumps(record))

    def stats(self, now: datetime, recent: float) -> QueueStats:
        """Queue depths, jobs in flight and the workers seen within ``recent`` seconds.

        Read from Dramatiq's keys (see its ``dispatch.lua``): a queue is a
        list of waiting ids plus a hash of every message not yet acked, so
        the hash's size less the list's length is what consumers hold.
        """
        jobs, results = (f"{NAMESPACE}:{QUEUES[k]}" for k in ("jobs", "results"))
        with self._redis("reading queue sizes"):
            pipe = self.client.pipeline(transaction=False)
            pipe.llen(jobs)
            pipe.hlen(f"{jobs}.msgs")
            pipe.hlen(f"{results}.msgs")
            pipe.hgetall(WORKERS_KEY)
            waiting, unacked, results_waiting, reports = pipe.execute()
        workers, forgotten = [], []
        for name, raw in sorted(reports.items()):
            seen = _worker_from_json(raw)
            if seen is None or now - seen.seen > FORGET_WORKERS_AFTER:
                forgotten.append(name)
            elif (now - seen.seen).total_seconds() <= recent:
                workers.append(seen)
        if forgotten:
            with contextlib.suppress(BrokerError), self._redis("forgetting old workers"):
                self.client.hdel(WORKERS_KEY, *forgotten)
        return QueueStats(waiting, max(unacked - waiting, 0), results_waiting, tuple(workers))

    def sweep(self) -> None:
        """Put the messages of consumers silent for ``redeliver_after`` back on their queues now."""
        if self._sweeper is None:
            # A broker that does maintenance on every command: Dramatiq's
            # own requeueing, run when we want it instead of by chance.
            self._sweeper = RedisBroker(
                client=self.client,
                namespace=NAMESPACE,
                middleware=[],
                heartbeat_timeout=self.redeliver_ms,
                maintenance_chance=MAINTENANCE_SCALE,
            )
        with self._redis("requeueing the jobs of silent workers"):
            for queue in QUEUES.values():
                self._sweeper.do_qsize(queue)

    def generation(self) -> str:
        """This Redis's marker, made on first use: a new value means it lost its data."""
        with self._redis("reading the generation marker"):
            self.client.set(GENERATION_KEY, uuid.uuid4().hex, nx=True)
            value = self.client.get(GENERATION_KEY)
        return value.decode() if isinstance(value, bytes) else str(value)

    def close(self) -> None:
        """Stop consumers (their unstarted messages go back on the queue) and disconnect."""
        self._stop.set()
        for consumer in self._workers:
            consumer.stop()
        self._workers.clear()
        self.broker.close()
        self.client.close()

    def _keep_alive(self) -> None:
        """Refresh this process's Dramatiq heartbeat while its consumers are busy."""
        interval = max(0.2, min(2.0, self.redeliver_ms / 4000))
        while not self._stop.wait(interval):
            with contextlib.suppress(BrokerError), self._redis("heartbeat"):
                self.broker.do_qsize(QUEUES["jobs"])

    @contextlib.contextmanager
    def _redis(self, doing: str) -> Iterator[None]:
        try:
            yield
        except redis.RedisError as e:
            raise BrokerError(f"{doing}: {type(e).__name__}: {e}", subject=self.url) from e


def _worker_from_json(raw: bytes | str) -> WorkerSeen | None:
    try:
        data = json.loads(raw)
        return WorkerSeen(
            name=data["name"],
            host=data["host"],
            pid=int(data["pid"]),
            started=datetime.fromisoformat(data["started"]),
            seen=datetime.fromisoformat(data["seen"]),
            jobs_done=int(data.get("jobs_done", 0)),
            threads=int(data.get("threads", 0)),
        )
    except (ValueError, KeyError, TypeError):
        return None
