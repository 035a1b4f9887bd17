"""What a ``feeds worker`` process runs: jobs in, prepared results out.

Each job is one source: its config and stored state (a ``SourceTask``) and
the daemon's ``[fetch]`` settings, so every worker is as polite as the
daemon would be whatever its own config says. A worker thread takes a slot
for the source's host (shared by every worker on the broker), fetches
(conditional GET, timeouts, size cap, redirects, Retry-After: the
updater's ``HttpRetriever``), frees the slot, then parses, sanitises and
normalises the body and sends the ``PreparedResult`` back. It never writes
the store; the daemon does.

A job is acked only after its result is on the results queue: a worker
killed before that has its job handed to another (``redeliver_after``).
While the broker is unreachable the worker waits, with one log line, and
gives up (exit 1) after ``patience`` seconds of it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from feeds.clock import Clock
from feeds.cluster.codec import MessageError, field_of, from_message, to_message
from feeds.cluster.queue import TaskQueue, WorkerSeen
from feeds.config import FetchConfig
from feeds.errors import BrokerError, FetchError
from feeds.sources.fetch import HttpRetriever
from feeds.sources.step import Retrieval, SourceTask, conclude, prepare_body, retrieve

log = logging.getLogger("feeds.worker")

BEAT_SECONDS = 2.0  # how often a worker reports itself
# A slot is held at most the fetch's own deadline and this much more: a
# worker that dies holding one frees it then.
SLOT_MARGIN = 30.0
SLOT_WAIT = 600.0  # a job that cannot get its host's slot for this long fails as a fetch error
RETRY_MAX = 30.0  # seconds between two tries to reach a lost broker


def host_of(url: str) -> str:
    return urlsplit(url).netloc.lower()


def worker_name() -> str:
    """host:pid, unique among the workers of one broker."""
    return f"{socket.gethostname()}:{os.getpid()}"


class BrokerWatch:
    """Whether the broker is reachable, with one log line per outage;
    ``wait`` blocks until it is back or ``patience`` runs out."""

    def __init__(self, queue: TaskQueue, patience: float, monotonic: Callable[[], float] = time.monotonic):
        self.queue, self.patience, self.monotonic = queue, patience, monotonic
        self.lock = threading.Lock()
        self.down_since: float | None = None

    def lost(self, error: BrokerError) -> None:
        with self.lock:
            if self.down_since is None:
                self.down_since = self.monotonic()
                log.error("worker: lost the broker: %s; retrying (giving up after %gs)", error, self.patience)

    def back(self) -> None:
        with self.lock:
            if self.down_since is not None:
                log.info("worker: broker back after %.1fs", self.monotonic() - self.down_since)
                self.down_since = None

    def given_up(self) -> bool:
        with self.lock:
            return self.down_since is not None and self.monotonic() - self.down_since > self.patience

    def wait(self, stop: threading.Event) -> None:
        """Until the broker answers; BrokerError when patience runs out."""
        pause = 0.5
        while not stop.is_set():
            try:
                self.queue.ping()
            except BrokerError as e:
                self.lost(e)
                if self.given_up():
                    raise
                stop.wait(pause)
                pause = min(pause * 2, RETRY_MAX)
            else:
                self.back()
                return
        raise BrokerError("stopped while waiting for the broker", subject=self.queue.url)


class FetchWorker:
    """Takes fetch jobs from the queue in ``threads`` threads and sends back results."""

    def __init__(
        self, queue: TaskQueue, clock: Clock, *, threads: int, patience: float, name: str | None = None
    ) -> None:
        self.queue = queue
        self.clock = clock
        self.threads = threads
        self.name = name or worker_name()
        self.watch = BrokerWatch(queue, patience)
        self.stop = threading.Event()
        self.started = clock()
        self.done = 0
        self.lock = threading.Lock()
        self.retrievers: dict[FetchConfig, HttpRetriever] = {}

    def run(self) -> int:
        """Work until ``stop`` is set (0) or the broker stays lost past patience (1).
        BrokerError if the broker cannot be reached at the start."""
        self.queue.ping()
        consumer = self.queue.consume("jobs", self.handle, self.threads)
        log.info("worker %s: taking jobs from %s with %d threads", self.name, self.queue.url, self.threads)
        status = 0
        try:
            while not self.stop.wait(BEAT_SECONDS):
                if not self._beat():
                    status = 1
                    break
        finally:
            self.stop.set()
            consumer.stop()
            for retriever in self.retrievers.values():
                retriever.close()
        if status:
            log.error(
                "worker %s: the broker stayed unreachable for over %gs; exiting",
                self.name,
                self.watch.patience,
            )
        else:
            log.info("worker %s: stopped after %d jobs", self.name, self.done)
        return status

    def _beat(self) -> bool:
        """Report this worker; False once the broker has been lost too long."""
        seen = WorkerSeen(
            self.name, socket.gethostname(), os.getpid(), self.started, self.clock(), self.done, self.threads
        )
        try:
            self.queue.beat(seen)
        except BrokerError as e:
            self.watch.lost(e)
            return not self.watch.given_up()
        self.watch.back()
        return True

    # -- one job (a worker thread) --------------------------------------------

    def handle(self, body: dict[str, Any]) -> None:
        """Fetch and prepare one source and send its result; a malformed job is dropped."""
        try:
            task = from_message(field_of(body, "task", "job"), SourceTask, "job")
            fetch = from_message(field_of(body, "fetch", "job"), FetchConfig, "job")
        except MessageError as e:
            log.error("worker: dropped a malformed job: %s", e)
            return
        started = time.monotonic()
        while True:
            try:
                retrieval = self._retrieve(task, fetch)
                break
            except BrokerError as e:  # the host slot lives in Redis
                self.watch.lost(e)
                self.watch.wait(self.stop)
        parsed = prepare_body(retrieval.job) if retrieval.job is not None else None
        prepared = conclude(task, retrieval, parsed, self.clock())
        result = {
            "result": to_message(prepared),
            "token": body.get("token"),
            "worker": self.name,
            "took": round(time.monotonic() - started, 3),
        }
        self._send(result)
        with self.lock:
            self.done += 1

    def _retrieve(self, task: SourceTask, fetch: FetchConfig) -> Retrieval:
        host = host_of(task.url)
        with self.queue.host_slot(host, fetch.per_host, fetch.deadline + SLOT_MARGIN, SLOT_WAIT) as taken:
            if not taken:
                error = FetchError(f"no free slot for {host} within {SLOT_WAIT:g}s", subject=task.name)
                return Retrieval(error=error)
            return retrieve(task, self._retriever(fetch))

    def _send(self, result: dict[str, Any]) -> None:
        while True:
            try:
                self.queue.send("results", result)
                self.watch.back()
                return
            except BrokerError as e:
                self.watch.lost(e)
                self.watch.wait(self.stop)

    def _retriever(self, fetch: FetchConfig) -> HttpRetriever:
        with self.lock:
            retriever = self.retrievers.get(fetch)
            if retriever is None:
                retriever = self.retrievers[fetch] = HttpRetriever(fetch)
            return retriever


def job_body(task: SourceTask, fetch: FetchConfig, token: str, sent: datetime) -> dict[str, Any]:
    """The message of one fetch job (what ``FetchWorker.handle`` reads)."""
    return {"task": to_message(task), "fetch": to_message(fetch), "token": token, "sent": sent.isoformat()}
