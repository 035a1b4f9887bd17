"""Refresh remote sources: fetch -> parse -> normalise -> decide -> store.

The shape of a run: a bounded pool of fetch threads (``[fetch] workers``,
at most ``per_host`` at once against one host) does the HTTP; bodies that
changed go to parser processes (feedparser is pure Python and costs tens of
milliseconds a feed, so threads would serialise on the GIL); this thread is
the single store writer, taking finished sources as they come and writing
each in one transaction (its items, their origins and its state).

Every source ends as one ``SourceResult``. A failing source is data, never
an exception out of ``refresh_sources``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import datetime
from multiprocessing import get_context
from typing import Any
from urllib.parse import urlsplit

from feeds.clock import Clock
from feeds.config import Config, SourceConfig
from feeds.decide import (
    max_age_seconds,
    next_refresh_after,
    publisher_floor,
    refresh_action,
    retry_after_time,
    state_after_failure,
    state_after_gone,
    state_after_success,
    state_for_url,
)
from feeds.errors import FeedsError, FetchError, GoneError, ParseError, RetryLaterError, SourceError
from feeds.fetch import Fetcher, FetchRequest, FetchResult
from feeds.model import SourceState
from feeds.normalise import fold_title
from feeds.remote import ParseFailure, PrepareJob, RemoteFeed, SourceTarget, plan_source_writes, prepare_feed
from feeds.timeslots import TimeSlots
from store import Store

log = logging.getLogger(__name__)

# Below this many fetches, parsing in the fetch threads beats starting processes.
PROCESS_POOL_MIN_JOBS = 8
# Bodies waiting for a parser, per parser process: bounds memory when fetching outruns parsing.
PARSE_BACKLOG = 4
# State-only saves (304s, errors) are written together, this many at most.
STATE_BATCH = 200


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


@dataclass(frozen=True, slots=True)
class _Job:
    source: SourceConfig
    state: SourceState

    @property
    def url(self) -> str:
        return self.state.current_url or self.state.url


@dataclass(slots=True)
class _Done:
    """A fetched (and maybe parsed) source, waiting for the writer."""

    job: _Job
    started: float
    fetched: FetchResult | None = None
    error: SourceError | None = None
    fingerprint: str | None = None
    parsed: Future[RemoteFeed | ParseFailure] | None = None


def refresh_sources(
    store: Store,
    config: Config,
    clock: Clock,
    names: Sequence[str] | None = None,
    *,
    force: bool = False,
    progress: Callable[[SourceResult], None] | None = None,
) -> RefreshReport:
    """Fetch due sources (or the ``names`` given) and store what changed.

    ``force`` fetches regardless of due times and backoff, but never a source
    switched off in the config or gone (410). Returns one result per source
    considered, in config order.
    """
    report = progress or (lambda result: None)
    jobs, results = _plan(store, config, clock, names, force)
    for result in results.values():
        report(result)
    changed: set[str] = set()
    if jobs:
        with _Pipeline(store, config, clock, len(jobs)) as pipeline:
            for result, sections in pipeline.run(jobs):
                results[result.name] = result
                changed |= sections
                report(result)
    configured = [s.name for s in config.sources]
    order = configured + [n for n in results if n not in set(configured)]
    return RefreshReport(tuple(results[n] for n in order if n in results), frozenset(changed))


def _plan(
    store: Store, config: Config, clock: Clock, names: Sequence[str] | None, force: bool
) -> tuple[list[_Job], dict[str, SourceResult]]:
    """The sources to fetch, and results for those that will not be."""
    now = clock()
    states = {s.name: s for s in store.source_states()}
    configured = {s.name for s in config.sources}
    results = {
        name: SourceResult(name, "error", error=f"{name}: no such source in the config")
        for name in (names or ()) if name not in configured
    }
    jobs = []
    for source in config.sources:
        if names is not None and source.name not in names:
            continue
        state = state_for_url(states.get(source.name) or SourceState(source.name, source.url), source.url)
        action = refresh_action(state, now, enabled=source.enabled, named=names is not None, force=force)
        if action == "fetch":
            jobs.append(_Job(source, state))
        else:
            status = "disabled" if action == "disabled" else "skipped"
            results[source.name] = SourceResult(
                source.name, status, error=state.last_error if state.disabled else None, detail=action,
                http_status=state.last_status,
            )
    return _interleave_hosts(jobs), results


def _interleave_hosts(jobs: list[_Job]) -> list[_Job]:
    """Round-robin over hosts, so per-host limits rarely leave a worker waiting."""
    by_host: dict[str, list[_Job]] = defaultdict(list)
    for job in jobs:
        by_host[_host(job.url)].append(job)
    lanes = list(by_host.values())
    return [lane[i] for i in range(max(map(len, lanes), default=0)) for lane in lanes if i < len(lane)]


def _host(url: str) -> str:
    return urlsplit(url).netloc.lower()


def body_fingerprint(body: bytes, source: SourceConfig) -> str:
    """Hash of a body and of what decides where its items go: a new section
    mapping must re-file the items even when the feed did not change."""
    digest = hashlib.sha256(body)
    digest.update(json.dumps([source.section, sorted(source.categories.items())]).encode())
    return digest.hexdigest()


class _InlineExecutor(Executor):
    """Runs a task in the calling thread: parsing a handful of feeds needs no processes."""

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        future: Future[object] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as e:  # delivered through the future
            future.set_exception(e)
        return future


class _Pipeline:
    """Fetch threads, parser processes and the writer (the calling thread) of one run."""

    def __init__(self, store: Store, config: Config, clock: Clock, jobs: int) -> None:
        self.store, self.config, self.clock = store, config, clock
        self.fetch_pool = ThreadPoolExecutor(min(config.fetch.workers, jobs), thread_name_prefix="fetch")
        cores = os.cpu_count() or 1
        self.parse_pool: Executor = (
            ProcessPoolExecutor(cores, mp_context=get_context("forkserver"))
            if jobs >= PROCESS_POOL_MIN_JOBS and cores > 1 else _InlineExecutor()
        )
        self.backlog = threading.BoundedSemaphore(PARSE_BACKLOG * cores)
        self.done: queue.Queue[_Done] = queue.Queue()
        self.local = threading.local()
        self.fetchers: list[Fetcher] = []
        self.hosts: dict[str, threading.BoundedSemaphore] = {}
        self.lock = threading.Lock()
        self.slots = TimeSlots(store)
        self.pending_states: list[SourceState] = []
        self.random = random.Random()  # noqa: S311 - jitter, not secrets

    def __enter__(self) -> _Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.fetch_pool.shutdown(wait=True, cancel_futures=True)
        self.parse_pool.shutdown(wait=True, cancel_futures=True)
        for fetcher in self.fetchers:
            fetcher.close()

    def run(self, jobs: list[_Job]) -> Iterator[tuple[SourceResult, frozenset[str]]]:
        """Fetch every job; yield each source's result as the writer finishes it."""
        for job in jobs:
            self.fetch_pool.submit(self._fetch, job)
        for remaining in range(len(jobs), 0, -1):
            done = self.done.get()
            result, sections = self._finish_safely(done)
            if remaining == 1 or self.done.empty() or len(self.pending_states) >= STATE_BATCH:
                self._flush_states()
            yield result, sections

    # -- fetch threads -------------------------------------------------------

    def _fetch(self, job: _Job) -> None:
        done = _Done(job, time.monotonic())
        request = FetchRequest(job.source.name, job.url, job.state.etag, job.state.last_modified)
        try:
            with self._host_slot(job.url):
                fetched = self._fetcher().fetch(request)
        except FetchError as e:
            done.error = e
        except Exception as e:  # a bug must cost one source, not the run
            log.exception("%s: fetch failed", job.source.name)
            done.error = FetchError(f"internal error: {type(e).__name__}: {e}", subject=job.source.name)
        else:
            done.fetched = replace(fetched, body=None)  # the writer never needs the bytes
            if fetched.body is not None:
                done.fingerprint = body_fingerprint(fetched.body, job.source)
                if done.fingerprint != job.state.body_hash:
                    authority = self.config.site.authority
                    self._parse(done, PrepareJob(
                        job.source.name, authority, fetched.url, fetched.body, fetched.headers,
                    ))
                    return
        self.done.put(done)

    def _parse(self, done: _Done, job: PrepareJob) -> None:
        """Hand a body to a parser; the writer gets the source when it is parsed."""
        self.backlog.acquire()

        def handed_over(_: Future[RemoteFeed | ParseFailure]) -> None:
            self.backlog.release()
            self.done.put(done)

        try:
            future = self.parse_pool.submit(prepare_feed, job)
        except (BrokenProcessPool, RuntimeError):  # a parser process died: parse here instead
            future = _InlineExecutor().submit(prepare_feed, job)
        done.parsed = future
        future.add_done_callback(handed_over)

    def _fetcher(self) -> Fetcher:
        fetcher: Fetcher | None = getattr(self.local, "fetcher", None)
        if fetcher is None:
            fetcher = self.local.fetcher = Fetcher(self.config.fetch)
            with self.lock:
                self.fetchers.append(fetcher)
        return fetcher

    def _host_slot(self, url: str) -> threading.BoundedSemaphore:
        with self.lock:
            return self.hosts.setdefault(_host(url), threading.BoundedSemaphore(self.config.fetch.per_host))

    # -- the writer ----------------------------------------------------------

    def _finish_safely(self, done: _Done) -> tuple[SourceResult, frozenset[str]]:
        try:
            return self._finish(done)
        except Exception as e:  # one source's failure is its result
            if not isinstance(e, FeedsError):
                log.exception("%s: refresh failed", done.job.source.name)
            message = str(e) if isinstance(e, FeedsError) else f"internal error: {type(e).__name__}: {e}"
            result = SourceResult(done.job.source.name, "error", error=message, duration=self._took(done))
            return result, frozenset()

    def _finish(self, done: _Done) -> tuple[SourceResult, frozenset[str]]:
        now, name = self.clock(), done.job.source.name
        if done.error is not None:
            return self._failed(done, done.error, now), frozenset()
        fetched = done.fetched
        assert fetched is not None
        if done.parsed is None:
            status = "not-modified" if fetched.status == 304 else "unchanged"
            extra = {} if fetched.status == 304 else {"body_hash": done.fingerprint}
            self.pending_states.append(self._succeeded(done.job, fetched, now, **extra))
            result = SourceResult(name, status, http_status=fetched.status, duration=self._took(done))
            return result, frozenset()
        outcome = done.parsed.result()
        if isinstance(outcome, ParseFailure):
            error = ParseError(outcome.message, subject=name, status=fetched.status)
            return self._failed(done, error, now), frozenset()
        return self._store_feed(done, fetched, outcome, now)

    def _store_feed(
        self, done: _Done, fetched: FetchResult, feed: RemoteFeed, now: datetime
    ) -> tuple[SourceResult, frozenset[str]]:
        job, hints = done.job, feed.hints
        state = self._succeeded(
            job, fetched, now, body_hash=done.fingerprint, title=feed.title or job.state.title,
            warning=feed.warning, skip_hours=hints.skip_hours, skip_days=hints.skip_days,
            min_interval=publisher_floor(hints.ttl_minutes, hints.update_period, hints.update_frequency),
        )
        entries = feed.entries
        matches = self.store.remote_matches(
            job.source.name, [e.key for e in entries], [e.item_id for e in entries],
            [e.canonical_link for e in entries if e.canonical_link], [e.folded for e in entries],
        )
        plan = plan_source_writes(self._target(job, state), feed, matches, self.slots, now)
        self.store.write_source(state, plan.writes)
        result = SourceResult(
            job.source.name, "updated" if plan.items_changed else "unchanged", plan.items_changed,
            http_status=fetched.status, warning=feed.warning, duration=self._took(done),
        )
        return result, plan.changed_sections

    def _failed(self, done: _Done, error: SourceError, now: datetime) -> SourceResult:
        state, max_backoff = done.job.state, self.config.fetch.max_backoff
        if isinstance(error, GoneError):
            self.pending_states.append(state_after_gone(state, now, error=error.message))
            status = "disabled"
        else:
            retry = error.retry_after if isinstance(error, RetryLaterError) else None
            self.pending_states.append(state_after_failure(
                state, now, error=error.message, status=error.status, max_backoff=max_backoff,
                retry_at=retry_after_time(retry, now, cap=max_backoff), jitter=self.random.random(),
            ))
            status = "error"
        return SourceResult(
            done.job.source.name, status, error=str(error), http_status=error.status,
            duration=self._took(done),
        )

    def _succeeded(self, job: _Job, fetched: FetchResult, now: datetime, **changes: Any) -> SourceState:
        """The state after a 200 or 304, next due on its schedule and the publisher's hints."""
        not_modified = fetched.status == 304
        state = state_after_success(
            job.state, now, last_status=fetched.status,
            current_url=fetched.permanent_url or job.state.current_url,
            etag=fetched.etag or (job.state.etag if not_modified else None),
            last_modified=fetched.last_modified or (job.state.last_modified if not_modified else None),
            **changes,
        )
        max_age = max_age_seconds(fetched.headers.get("cache-control"))
        floors = [state.min_interval, publisher_floor(max_age=max_age)]
        next_due = next_refresh_after(
            now, interval=job.source.interval, cron=job.source.cron,
            floor=max((f for f in floors if f), default=None),
            skip_hours=state.skip_hours, skip_days=state.skip_days,
        )
        return replace(state, next_due=next_due)

    def _target(self, job: _Job, state: SourceState) -> SourceTarget:
        sections = self.config.sections
        return SourceTarget(
            name=job.source.name,
            feed_url=state.current_url or state.url,
            feed_title=state.title,
            section=job.source.section,
            categories={fold_title(k): v for k, v in job.source.categories.items()},
            labels={slug: (s.title or slug.replace("-", " ")).upper() for slug, s in sections.items()},
        )

    def _flush_states(self) -> None:
        states, self.pending_states = self.pending_states, []
        self.store.save_source_states(states)

    @staticmethod
    def _took(done: _Done) -> float:
        return round(time.monotonic() - done.started, 3)
