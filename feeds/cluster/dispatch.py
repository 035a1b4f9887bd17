"""The daemon's side of the cluster: jobs out, results in, one store writer.

``refresh(names)`` plans as the in-process updater does (due times,
backoff, gone sources: ``plan_refresh``) and sends one job per source that
has none outstanding. One consumer thread takes results in arrival order
and stores each in one transaction (``SourceWriter``), then hands the
changed sections to the daemon's debounced publisher, as an in-process
refresh does.

Every job carries a token of the source state it was planned from, and its
result brings it back. A result whose token no longer matches the stored
state (another result for the source was stored since, or the config moved
the source) is discarded: so a duplicate (a redelivery, a job sent again
after the broker lost its data, or by a restarted daemon) changes nothing,
and a result never overwrites newer validators with older ones.

A monitor thread, every second: has Dramatiq requeue the messages of
silent consumers, notices a broker that lost its data (a new generation
marker) and sends the jobs outstanding again, sends again any job
unanswered for ``job_deadline``, and reads the queue's figures for
/healthz. While the broker is unreachable it retries with backoff, with one
log line when lost and one when back; sources are not fetched in-process
meanwhile (that would put the whole cluster's load on the daemon's
machine), they wait, and the site keeps being served.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC
from typing import Any

from feeds.clock import Clock
from feeds.cluster.codec import MessageError, field_of, from_message, to_message
from feeds.cluster.queue import QueueStats, TaskQueue
from feeds.cluster.status import WORKERS_RECENT, stats_json
from feeds.cluster.worker import SLOT_WAIT, job_body
from feeds.config import Config
from feeds.decide import state_for_url
from feeds.errors import BrokerError
from feeds.model import SourceState
from feeds.sources.step import PreparedResult, RefreshMode, SourceTask, plan_refresh
from feeds.sources.writer import SourceWriter
from store import Store

log = logging.getLogger("feeds.daemon.service")

MONITOR_SECONDS = 1.0
RETRY_MAX = 60.0  # seconds between two tries to reach a lost broker


def state_token(state: SourceState) -> str:
    """What a result must find in the store to be stored: the whole state it was
    planned from (the item count aside, which only the store's count knows)."""
    data = json.dumps(to_message(replace(state, items=0)), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:32]


@dataclass(slots=True)
class _Outstanding:
    task: SourceTask
    token: str
    sent_at: float | None  # monotonic; None while it waits for the broker


class ClusterUpdates:
    """Sends the daemon's source refreshes to fetch workers and stores their results."""

    def __init__(
        self,
        store: Store,
        config: Config,
        clock: Clock,
        queue: TaskQueue,
        on_changes: Callable[[frozenset[str]], None],
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.config, self.clock, self.queue = store, config, clock, queue
        self.on_changes = on_changes
        self.monotonic = monotonic
        self.writer = SourceWriter(store)
        self.sources = {s.name: s for s in config.sources}
        self.job_deadline = SLOT_WAIT + config.fetch.deadline + 2 * config.cluster.redeliver_after + 60
        self.lock = threading.Lock()
        self.outstanding: dict[str, _Outstanding] = {}
        self.stop = threading.Event()
        self.down_since: float | None = None
        self.next_try = 0.0
        self.pause = 1.0
        self.last_error: str | None = None
        self.generation: str | None = None
        self.stats: QueueStats | None = None
        self.results_taken = 0
        self.writer_seconds = 0.0  # spent storing results: the single writer's load
        self.monitor = threading.Thread(target=self._monitor, name="cluster-monitor", daemon=True)

    def start(self) -> None:
        """Take results from the queue and start the monitor; a broker down now is retried."""
        self.queue.consume("results", self.apply, threads=1)
        self.monitor_round()
        self.monitor.start()

    def close(self) -> None:
        self.stop.set()
        if self.monitor.is_alive():
            self.monitor.join(5)
        self.queue.close()

    # -- jobs out -------------------------------------------------------------

    def refresh(self, names: Sequence[str] | None, *, mode: RefreshMode = "due") -> None:
        """Send a job for each of the named sources (None: all) that ``mode``
        fetches (``decide.refresh_action``: due by default) and has none
        outstanding; log the skipped ones as the updater would."""
        if names is None:
            states = self.store.source_states()
        else:  # a source job names one: read its state, not every source's
            states = [state for name in names if (state := self.store.source_state(name))]
        tasks, skipped = plan_refresh(self.config, states, self.clock(), names, mode=mode)
        for s in skipped:
            detail = f": {s.error or s.detail}" if (s.error or s.detail) else ""
            log.info("source %s: %s, 0 items changed, 0.00s%s", s.name, s.status, detail)
        fresh = []
        with self.lock:
            for task in tasks:
                if task.name not in self.outstanding:
                    self.outstanding[task.name] = _Outstanding(task, state_token(task.state), None)
                    fresh.append(task.name)
        sent = self._send(fresh)
        if fresh:
            waiting = len(fresh) - sent
            log.info(
                "cluster: %d jobs sent to %s%s",
                sent,
                self.queue.url,
                f", {waiting} waiting for the broker" if waiting else "",
            )

    def _send(self, names: Sequence[str]) -> int:
        """Send the jobs of these outstanding sources; stops at the first broker error."""
        sent = 0
        for name in names:
            with self.lock:
                job = self.outstanding.get(name)
            if job is None:
                continue
            body = job_body(job.task, self.config.fetch, job.token, self.clock().astimezone(UTC))
            try:
                self.queue.send("jobs", body)
            except BrokerError as e:
                self._lost(e)
                break
            job.sent_at = self.monotonic()
            sent += 1
        return sent

    # -- results in (the single writer) ---------------------------------------

    def apply(self, body: dict[str, Any]) -> None:
        """Store one result unless it is stale; log one line about it."""
        started = self.monotonic()
        try:
            prepared = from_message(field_of(body, "result", "result"), PreparedResult, "result")
            self._store(prepared, body)
        except MessageError as e:
            log.error("cluster: dropped a malformed result: %s", e)
        finally:
            with self.lock:
                self.results_taken += 1
                self.writer_seconds += self.monotonic() - started

    def _store(self, prepared: PreparedResult, body: dict[str, Any]) -> None:
        token, worker = body.get("token"), body.get("worker")
        source = self.sources.get(prepared.name)
        stored = self.store.source_state(prepared.name)
        current = (
            state_for_url(stored or SourceState(prepared.name, source.url), source.url) if source else None
        )
        if current is None or state_token(current) != token:
            self._forget(prepared.name, token)
            why = (
                "no longer in the config" if current is None else "its source changed since the job was sent"
            )
            log.info("source %s: stale result from %s discarded: %s", prepared.name, worker, why)
            return
        applied = self.writer.apply(prepared)
        self._forget(prepared.name, token)
        detail = f": {prepared.error}" if prepared.error else ""
        log.info(
            "source %s: %s, %d items changed, %.2fs%s (worker %s)",
            prepared.name,
            applied.status,
            applied.items_changed,
            float(body.get("took") or 0.0),
            detail,
            worker,
        )
        if applied.sections:
            self.on_changes(applied.sections)

    def _forget(self, name: str, token: object) -> None:
        with self.lock:
            job = self.outstanding.get(name)
            if job is not None and job.token == token:
                del self.outstanding[name]

    # -- the monitor ------------------------------------------------------------

    def _monitor(self) -> None:
        while not self.stop.wait(MONITOR_SECONDS):
            try:
                self.monitor_round()
            except Exception:  # the monitor must outlive any one failure
                log.exception("cluster: monitor failed")

    def monitor_round(self) -> None:
        """One round: reach the broker (with backoff when it is lost), then
        sweep, compare generations, resend what is due and read the figures."""
        now = self.monotonic()
        if self.down_since is not None and now < self.next_try:
            return
        try:
            generation = self.queue.generation()
            self.queue.sweep()
            stats = self.queue.stats(self.clock(), WORKERS_RECENT)
        except BrokerError as e:
            self._lost(e)
            return
        self._back()
        self.stats = stats
        with self.lock:
            if self.generation is not None and generation != self.generation:
                log.warning(
                    "cluster: the broker lost its queues (restarted without persistence?); "
                    "sending %d jobs again",
                    len(self.outstanding),
                )
                for job in self.outstanding.values():
                    job.sent_at = None
            self.generation = generation
            again = [
                name
                for name, job in self.outstanding.items()
                if job.sent_at is None or now - job.sent_at > self.job_deadline
            ]
        if again:
            self._send(again)

    def _lost(self, error: BrokerError) -> None:
        now = self.monotonic()
        with self.lock:
            self.last_error = str(error)
            if self.down_since is None:
                self.down_since, self.pause = now, 1.0
                log.error("cluster: broker unreachable: %s; retrying with backoff", error)
            else:
                self.pause = min(self.pause * 2, RETRY_MAX)
            self.next_try = now + self.pause

    def _back(self) -> None:
        with self.lock:
            if self.down_since is not None:
                waiting = sum(job.sent_at is None for job in self.outstanding.values())
                log.info(
                    "cluster: broker back after %.1fs; sending %d waiting jobs",
                    self.monotonic() - self.down_since,
                    waiting,
                )
                self.down_since = None
                self.last_error = None

    # -- health -------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """The cluster as /healthz shows it (figures from the monitor's last round)."""
        with self.lock:
            body: dict[str, Any] = {
                "broker": self.queue.url,
                "ok": self.down_since is None,
                "error": self.last_error,
                "outstanding": len(self.outstanding),
                "results_taken": self.results_taken,
                "writer_seconds": round(self.writer_seconds, 3),  # the single writer's load
            }
        body.update(stats_json(self.stats))
        return body
