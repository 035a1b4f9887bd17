"""Refresh remote sources: the ``Updater``, built once per process.

It owns what lives as long as the process: the fetch threads (``[fetch]
workers``), the retriever (``HttpRetriever``: a Session per fetch thread,
one TLS context cache, one deadline watchdog), the parser processes
(``ParserPool``) and the per-host limits. The daemon's source jobs all go
through one Updater; the CLI builds one for its run (``refresh_sources``).

The shape of a run: the fetch threads run ``step.retrieve`` for each task
(at most ``per_host`` at once against one host, counting every run of this
Updater). The calling thread is the single store writer: it takes fetched
sources as they come, has changed bodies parsed, concludes each source
(``step.conclude``) and applies the result (``SourceWriter``) in one
transaction per source.

Bodies that changed are parsed, sanitised and hashed by parser processes
(one per core but the writer's, started with the first body of a run big
enough), a few bodies ahead each; the writer parses the rest itself (lxml
and json only: feedparser, pure Python at tens of milliseconds a feed,
always goes to a process). So both cores work, and a refresh of a few
sources starts none. The fetch threads never parse: a second CPU-bound
thread in this process makes every SQLite call of the writer (each
releases the GIL) wait a switch interval to get the GIL back.

Every source ends as one ``SourceResult``. A failing source is data, never
an exception out of ``Updater.refresh``.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from urllib.parse import urlsplit

from feeds.clock import Clock
from feeds.config import Config, FetchConfig
from feeds.errors import FeedsError, StoreError
from feeds.sources.fetch import HttpRetriever
from feeds.sources.prepare import (
    ParseFailure,
    RemoteFeed,
    prepare_with_feedparser,
)
from feeds.sources.step import (
    PreparedResult,
    RefreshMode,
    Retrieval,
    Retriever,
    SourceTask,
    conclude,
    plan_refresh,
    retrieve,
    sniff_parser,
)
from feeds.sources.workers import ParserPool
from feeds.sources.writer import SourceWriter
from store import Store
from store.db import store_unwritable

log = logging.getLogger(__name__)

# Bodies fetched but not yet stored, per fetch thread: when parsing and
# writing fall behind, fetching pauses, which bounds memory.
PARSE_BACKLOG = 2
# State-only saves (304s, errors) are written together, this many at most,
# and at least this often while sources keep coming (each transaction costs
# the writer GIL hand-offs, and a thousand 304s are one refresh's worth).
STATE_BATCH = 200
STATE_FLUSH_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class SourceResult:
    """What one refresh did with one source."""

    name: str
    status: str  # updated, unchanged, not-modified, skipped, disabled, error
    items_changed: int = 0
    error: str | None = None
    duration: float = 0.0  # seconds, fetch to stored
    http_status: int | None = None
    warning: str | None = None  # parse problems of a feed that was still stored
    detail: str | None = None  # why a source was skipped


@dataclass(frozen=True, slots=True)
class RefreshReport:
    results: tuple[SourceResult, ...]
    changed_sections: frozenset[str] = field(default_factory=frozenset)  # slugs, and "all" if any

    @property
    def errors(self) -> tuple[SourceResult, ...]:
        return tuple(r for r in self.results if r.status == "error")

    @property
    def items_changed(self) -> int:
        return sum(r.items_changed for r in self.results)


def default_parsers() -> ParserPool:
    """Parser processes for this machine: one per core but the writer's."""
    return ParserPool((os.cpu_count() or 1) - 1)


class HostLimits:
    """One semaphore per host, shared by every run of one Updater: the daemon
    runs each source as its own job, so two runs may fetch at once, and a
    per-run limit would let them together exceed ``per_host``."""

    def __init__(self, per_host: int) -> None:
        self.per_host = per_host
        self._lock = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}

    def slot(self, url: str) -> threading.BoundedSemaphore:
        key = _host(url)
        with self._lock:
            found = self._slots.get(key)
            if found is None:
                found = self._slots[key] = threading.BoundedSemaphore(self.per_host)
            return found


class Updater:
    """Fetch threads, retriever, parser processes and host limits of one process."""

    def __init__(
        self,
        fetch: FetchConfig,
        *,
        retriever: Retriever | None = None,
        parsers: ParserPool | None = None,
    ) -> None:
        self.fetch_config = fetch
        self._http = HttpRetriever(fetch) if retriever is None else None
        self.retriever: Retriever = retriever or self._http  # type: ignore[assignment]
        self.parsers = parsers if parsers is not None else default_parsers()
        self.hosts = HostLimits(fetch.per_host)
        self.pool = ThreadPoolExecutor(fetch.workers, thread_name_prefix="fetch")

    def __enter__(self) -> Updater:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Wait for fetches under way, end the parser processes, close the Sessions."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.parsers.close()
        if self._http is not None:
            self._http.close()

    def refresh(
        self,
        store: Store,
        config: Config,
        clock: Clock,
        names: Sequence[str] | None = None,
        *,
        mode: RefreshMode | None = None,
        progress: Callable[[SourceResult], None] | None = None,
    ) -> RefreshReport:
        """Fetch due sources (or the ``names`` given) and store what changed.

        ``mode`` (``decide.refresh_action``): "due" (the default without
        names), "all" (due or not, backoff and Retry-After still honoured;
        the default for names) or "force" (those overridden too); never a
        source switched off in the config or gone (410). Returns one result
        per source considered, in config order.
        """
        report = progress or (lambda result: None)
        if names is None:
            states = store.source_states()
        else:  # a daemon job names one source: read its row, not every source's
            states = [state for name in names if (state := store.source_state(name))]
        tasks, skipped = plan_refresh(config, states, clock(), names, mode=mode)
        results = {
            s.name: SourceResult(s.name, s.status, error=s.error, detail=s.detail, http_status=s.http_status)
            for s in skipped
        }
        for result in results.values():
            report(result)
        changed: set[str] = set()
        if tasks:
            with _Run(self, store, clock, len(tasks)) as run:
                for result, sections in run.run(_interleave_hosts(tasks)):
                    results[result.name] = result
                    changed |= sections
                    report(result)
        # [store] keep: what this refresh dropped from its sources' documents
        # may now be old enough to go.
        changed |= store.apply_retention(clock(), config.store.keep, config.store.keep_tombstones).affected
        configured = {s.name: None for s in config.sources}  # ordered, and a set for `in`
        order = [*configured, *(n for n in results if n not in configured)]
        return RefreshReport(tuple(results[n] for n in order if n in results), frozenset(changed))


def refresh_sources(
    store: Store,
    config: Config,
    clock: Clock,
    names: Sequence[str] | None = None,
    *,
    mode: RefreshMode | None = None,
    progress: Callable[[SourceResult], None] | None = None,
) -> RefreshReport:
    """One refresh with an Updater of its own (the CLI's; see ``Updater.refresh``)."""
    with Updater(config.fetch) as updater:
        return updater.refresh(store, config, clock, names, mode=mode, progress=progress)


def _interleave_hosts(tasks: list[SourceTask]) -> list[SourceTask]:
    """Round-robin over hosts, so per-host limits rarely leave a worker waiting."""
    by_host: dict[str, list[SourceTask]] = defaultdict(list)
    for task in tasks:
        by_host[_host(task.url)].append(task)
    lanes = list(by_host.values())
    return [lane[i] for i in range(max(map(len, lanes), default=0)) for lane in lanes if i < len(lane)]


def _host(url: str) -> str:
    return urlsplit(url).netloc.lower()


_Parsed = RemoteFeed | ParseFailure


@dataclass(slots=True)
class _Done:
    """A fetched (and maybe parsed) source, waiting for the writer."""

    task: SourceTask
    started: float
    retrieval: Retrieval = field(default_factory=Retrieval)
    parsed: _Parsed | None = None
    holds_backlog: bool = False  # the writer releases its place in the backlog


class _Run:
    """One refresh: its queue of fetched sources, its backlog and its writer."""

    def __init__(self, updater: Updater, store: Store, clock: Clock, jobs: int) -> None:
        self.updater, self.clock, self.jobs = updater, clock, jobs
        self.writer = SourceWriter(store)
        self.workers = min(updater.fetch_config.workers, jobs)
        self.backlog = threading.Semaphore(PARSE_BACKLOG * self.workers)
        # SimpleQueue is C: a Queue's Python lock, contended by eight fetch
        # threads that each wait for the GIL while holding it, cost the writer
        # a third of a refresh of a thousand 304s.
        self.done: queue.SimpleQueue[_Done] = queue.SimpleQueue()
        self.cancelled = threading.Event()
        self.flushed = time.monotonic()

    def __enter__(self) -> _Run:
        return self

    def __exit__(self, *exc: object) -> None:
        # A run cut short leaves fetch threads waiting for room in the backlog
        # that the writer will not make: make it, and let the rest not start.
        self.cancelled.set()
        for _ in range(self.workers):
            self.backlog.release()

    def run(self, tasks: list[SourceTask]) -> Iterator[tuple[SourceResult, frozenset[str]]]:
        """Fetch every task; yield each source's result as the writer finishes it."""
        for task in tasks:
            self.updater.pool.submit(self._fetch, task)
        remaining = len(tasks)
        while remaining:
            done = self.done.get()
            if done.retrieval.job is not None and done.parsed is None and not self._parse(done):
                continue  # in a parser process; back in the queue when parsed
            try:
                result, sections = self._finish_safely(done)
            finally:
                if done.holds_backlog:
                    self.backlog.release()
            remaining -= 1
            if (
                not remaining
                or len(self.writer.pending) >= STATE_BATCH
                or (time.monotonic() - self.flushed >= STATE_FLUSH_SECONDS and self.done.empty())
            ):
                self.flushed = time.monotonic()
                self.writer.flush()
            yield result, sections

    # -- fetch threads -------------------------------------------------------

    def _fetch(self, task: SourceTask) -> None:
        if self.cancelled.is_set():
            return
        done = _Done(task, time.monotonic())
        with self.updater.hosts.slot(task.url):
            done.retrieval = retrieve(task, self.updater.retriever)
        if done.retrieval.job is not None:
            self.backlog.acquire()
            done.holds_backlog = True
        self.done.put(done)

    # -- the writer ----------------------------------------------------------

    def _parse(self, done: _Done) -> bool:
        """Parse a body here, or hand it to a parser process and return False
        (it comes back to the queue when parsed)."""
        job = done.retrieval.job
        assert job is not None
        parsers, parser = self.updater.parsers, sniff_parser(job)
        if parser.light:
            if (child := parsers.pick(self.jobs, free=True)) and child.submit(
                job, partial(self._parsed, done)
            ):
                return False
            done.parsed = parser.prepare(job)
            if done.parsed is not None:
                return True
        # feedparser is pure Python: even a busy or starting process beats the writer.
        if (child := parsers.pick(self.jobs, free=False)) and child.submit(job, partial(self._parsed, done)):
            return False
        done.parsed = prepare_with_feedparser(job)
        return True

    def _parsed(self, done: _Done, outcome: _Parsed) -> None:
        done.parsed = outcome
        self.done.put(done)

    def _finish_safely(self, done: _Done) -> tuple[SourceResult, frozenset[str]]:
        name = done.task.name
        try:
            prepared = conclude(done.task, done.retrieval, done.parsed, self.clock())
            applied = self.writer.apply(prepared, batch=True)
        except Exception as e:  # one source's failure is its result
            if isinstance(e, StoreError) and store_unwritable(e):
                raise  # a full or read-only store fails the run, not each source in turn
            if not isinstance(e, FeedsError):
                log.exception("%s: refresh failed", name)
            message = str(e) if isinstance(e, FeedsError) else f"internal error: {type(e).__name__}: {e}"
            return SourceResult(name, "error", error=message, duration=self._took(done)), frozenset()
        return _result(prepared, applied.status, applied.items_changed, self._took(done)), applied.sections

    @staticmethod
    def _took(done: _Done) -> float:
        return round(time.monotonic() - done.started, 3)


def _result(prepared: PreparedResult, status: str, changed: int, duration: float) -> SourceResult:
    return SourceResult(
        prepared.name,
        status,
        changed,
        error=prepared.error,
        duration=duration,
        http_status=prepared.http_status,
        warning=prepared.warning,
    )
