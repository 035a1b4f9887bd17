"""Refresh remote sources: fetch -> parse -> normalise -> decide -> store.

The shape of a run: a bounded pool of fetch threads (``[fetch] workers``,
at most ``per_host`` at once against one host, counting every run in the
process) does the HTTP. This thread is the single store writer: it takes
fetched sources as they come and writes each in one transaction (its new
and changed items, their origins and its state); entries whose content hash
matches what the store holds cost it one dict lookup each.

Bodies that changed are parsed, sanitised and hashed by parser processes
(one per core but the writer's, started with the first body), a few bodies
ahead each; the writer parses the rest itself (lxml and json only:
feedparser, pure Python at tens of milliseconds a feed, always goes to a
process). So both cores work, and a refresh of a few sources starts none.
The fetch threads never parse: a second CPU-bound thread in this process
makes every SQLite call of the writer (each releases the GIL) wait a
switch interval to get the GIL back.

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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
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
from feeds.model import ItemWrite, SourceState
from feeds.normalise import fold_title
from feeds.sources.fetch import Fetcher, FetchRequest, FetchResult
from feeds.sources.prepare import (
    Filing,
    ParseFailure,
    PrepareJob,
    RemoteFeed,
    SourceTarget,
    plan_source_writes,
    prepare_with_feedparser,
    prepare_without_feedparser,
)
from feeds.sources.workers import ParserProcess
from feeds.timeslots import TimeSlots
from store import Store

log = logging.getLogger(__name__)

# Below this many fetches, parsing in the writer beats starting processes.
PARSER_PROCESS_MIN_JOBS = 8
# Bodies queued for each parser process; the writer parses any beyond these
# itself. Enough that a process never waits for the writer to hand it one.
PARSE_AHEAD = 8
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


@dataclass(frozen=True, slots=True)
class _Job:
    source: SourceConfig
    state: SourceState

    @property
    def url(self) -> str:
        return self.state.current_url or self.state.url


_Parsed = RemoteFeed | ParseFailure


@dataclass(slots=True)
class _Done:
    """A fetched (and maybe parsed) source, waiting for the writer."""

    job: _Job
    started: float
    fetched: FetchResult | None = None
    error: SourceError | None = None
    fingerprint: str | None = None
    to_parse: PrepareJob | None = None  # a body that changed
    parsed: _Parsed | None = None
    holds_backlog: bool = False  # the writer releases its place in the backlog


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
    configured = {s.name: None for s in config.sources}  # ordered, and a set for `in`
    order = [*configured, *(n for n in results if n not in configured)]
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
        for name in (names or ())
        if name not in configured
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
                source.name,
                status,
                error=state.last_error if state.disabled else None,
                detail=action,
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


class HostLimits:
    """One semaphore per (host, limit), shared by every refresh in this process.

    The daemon runs each source as its own scheduled job, so two runs of
    ``refresh_sources`` may fetch at once: a per-run limit would let them
    together exceed ``per_host`` against a host they share.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[tuple[str, int], threading.BoundedSemaphore] = {}

    def slot(self, url: str, limit: int) -> threading.BoundedSemaphore:
        key = (_host(url), limit)
        with self._lock:
            found = self._slots.get(key)
            if found is None:
                found = self._slots[key] = threading.BoundedSemaphore(limit)
            return found


HOST_LIMITS = HostLimits()


def body_fingerprint(body: bytes, source: SourceConfig) -> str:
    """Hash of a body and of what decides where its items go: a new section
    mapping must re-file the items even when the feed did not change."""
    digest = hashlib.sha256(body)
    digest.update(json.dumps([source.section, sorted(source.categories.items())]).encode())
    return digest.hexdigest()


class _Pipeline:
    """Fetch threads, parser processes and the writer (the calling thread) of one run."""

    def __init__(self, store: Store, config: Config, clock: Clock, jobs: int) -> None:
        self.store, self.config, self.clock = store, config, clock
        workers = min(config.fetch.workers, jobs)
        self.fetch_pool = ThreadPoolExecutor(workers, thread_name_prefix="fetch")
        cores = os.cpu_count() or 1
        self.parsers_wanted = cores - 1 if jobs >= PARSER_PROCESS_MIN_JOBS else 0
        self.parsers: list[ParserProcess] = []  # started with the first body
        self.workers = workers
        self.backlog = threading.Semaphore(PARSE_BACKLOG * workers)
        # SimpleQueue is C: a Queue's Python lock, contended by eight fetch
        # threads that each wait for the GIL while holding it, cost the writer
        # a third of a refresh of a thousand 304s.
        self.done: queue.SimpleQueue[_Done] = queue.SimpleQueue()
        self.local = threading.local()
        self.fetchers: list[Fetcher] = []
        self.lock = threading.Lock()
        self.slots = TimeSlots(store)
        self.pending_states: list[SourceState] = []
        self.flushed = time.monotonic()
        self.random = random.Random()  # noqa: S311 - jitter, not secrets
        labels = {slug: (s.title or slug.replace("-", " ")).upper() for slug, s in config.sections.items()}
        self.filings = {
            s.name: Filing(s.section, {fold_title(k): v for k, v in s.categories.items()}, labels)
            for s in config.sources
        }

    def __enter__(self) -> _Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        # A run cut short leaves fetch threads waiting for room in the backlog
        # that the writer will not make: make it, or shutdown waits forever.
        for _ in range(self.workers):
            self.backlog.release()
        self.fetch_pool.shutdown(wait=True, cancel_futures=True)
        for parser in self.parsers:
            parser.close()
        for fetcher in self.fetchers:
            fetcher.close()

    def run(self, jobs: list[_Job]) -> Iterator[tuple[SourceResult, frozenset[str]]]:
        """Fetch every job; yield each source's result as the writer finishes it."""
        for job in jobs:
            self.fetch_pool.submit(self._fetch, job)
        remaining = len(jobs)
        while remaining:
            done = self.done.get()
            if done.to_parse is not None and done.parsed is None and not self._parse(done):
                continue  # in a parser process; back in the queue when parsed
            try:
                result, sections = self._finish_safely(done)
            finally:
                if done.holds_backlog:
                    self.backlog.release()
            remaining -= 1
            if (
                not remaining
                or len(self.pending_states) >= STATE_BATCH
                or (time.monotonic() - self.flushed >= STATE_FLUSH_SECONDS and self.done.empty())
            ):
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
                    self.backlog.acquire()
                    done.holds_backlog = True
                    done.to_parse = PrepareJob(
                        job.source.name,
                        self.config.site.authority,
                        fetched.url,
                        fetched.body,
                        fetched.headers,
                        self.filings[job.source.name],
                    )
        self.done.put(done)

    # -- the writer ----------------------------------------------------------

    def _parse(self, done: _Done) -> bool:
        """Parse a body here, or hand it to a parser process and return False
        (it comes back to the queue when parsed)."""
        job = done.to_parse
        assert job is not None
        if (parser := self._parser(free=True)) and parser.submit(job, lambda o: self._parsed(done, o)):
            return False
        done.parsed = prepare_without_feedparser(job)
        if done.parsed is not None:
            return True
        # feedparser is pure Python: even a busy or starting process beats the writer.
        if (parser := self._parser(free=False)) and parser.submit(job, lambda o: self._parsed(done, o)):
            return False
        done.parsed = prepare_with_feedparser(job)
        return True

    def _parsed(self, done: _Done, outcome: _Parsed) -> None:
        done.parsed = outcome
        self.done.put(done)

    def _parser(self, *, free: bool) -> ParserProcess | None:
        """The least busy parser process (a ``free`` one: up, and with room);
        the first call starts them. Until they are up the writer parses: a
        body sent now would wait out their start, longer than a dozen parses."""
        if len(self.parsers) < self.parsers_wanted:
            try:
                while len(self.parsers) < self.parsers_wanted:
                    self.parsers.append(ParserProcess())
            except OSError:  # no (more) to be had: the writer parses the rest
                log.exception("cannot start parser processes")
                self.parsers_wanted = len(self.parsers)
        usable = [p for p in self.parsers if p.ready and p.pending < PARSE_AHEAD] if free else self.parsers
        return min(usable, key=lambda p: p.pending, default=None)

    def _fetcher(self) -> Fetcher:
        fetcher: Fetcher | None = getattr(self.local, "fetcher", None)
        if fetcher is None:
            fetcher = self.local.fetcher = Fetcher(self.config.fetch)
            with self.lock:
                self.fetchers.append(fetcher)
        return fetcher

    def _host_slot(self, url: str) -> threading.BoundedSemaphore:
        return HOST_LIMITS.slot(url, self.config.fetch.per_host)

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
        outcome = done.parsed
        if isinstance(outcome, ParseFailure):
            error = ParseError(outcome.message, subject=name, status=fetched.status)
            return self._failed(done, error, now), frozenset()
        return self._store_feed(done, fetched, outcome, now)

    def _store_feed(
        self, done: _Done, fetched: FetchResult, feed: RemoteFeed, now: datetime
    ) -> tuple[SourceResult, frozenset[str]]:
        job, hints = done.job, feed.hints
        state = self._succeeded(
            job,
            fetched,
            now,
            body_hash=done.fingerprint,
            title=feed.title or job.state.title,
            warning=feed.warning,
            skip_hours=hints.skip_hours,
            skip_days=hints.skip_days,
            min_interval=publisher_floor(hints.ttl_minutes, hints.update_period, hints.update_frequency),
        )
        name = job.source.name
        stored = self.store.source_entries(name)
        # An entry whose item already has its content is neither new nor
        # changed, and this source is already among its origins: nothing to do.
        fresh = [
            e for e in feed.entries if (s := stored.get(e.key)) is None or s.content_hash != e.content_hash
        ]
        writes: tuple[ItemWrite, ...] = ()
        changed, sections = 0, frozenset[str]()
        if fresh:
            matches = self.store.remote_matches(
                {e.key: stored[e.key].item_id for e in fresh if e.key in stored},
                [e.item_id for e in fresh],
                [e.canonical_link for e in fresh if e.canonical_link],
                [e.folded for e in fresh],
            )
            target = SourceTarget(name, state.current_url or state.url, state.title)
            plan = plan_source_writes(target, fresh, matches, self.slots, now)
            writes, changed, sections = plan.writes, plan.items_changed, plan.changed_sections
        self.store.write_source(state, writes)
        result = SourceResult(
            name,
            "updated" if changed else "unchanged",
            changed,
            http_status=fetched.status,
            warning=feed.warning,
            duration=self._took(done),
        )
        return result, sections

    def _failed(self, done: _Done, error: SourceError, now: datetime) -> SourceResult:
        state, max_backoff = done.job.state, self.config.fetch.max_backoff
        if isinstance(error, GoneError):
            self.pending_states.append(state_after_gone(state, now, error=error.message))
            status = "disabled"
        else:
            retry = error.retry_after if isinstance(error, RetryLaterError) else None
            self.pending_states.append(
                state_after_failure(
                    state,
                    now,
                    error=error.message,
                    status=error.status,
                    max_backoff=max_backoff,
                    retry_at=retry_after_time(retry, now, cap=max_backoff),
                    jitter=self.random.random(),
                )
            )
            status = "error"
        return SourceResult(
            done.job.source.name,
            status,
            error=str(error),
            http_status=error.status,
            duration=self._took(done),
        )

    def _succeeded(self, job: _Job, fetched: FetchResult, now: datetime, **changes: Any) -> SourceState:
        """The state after a 200 or 304, next due on its schedule and the publisher's hints."""
        not_modified = fetched.status == 304
        state = state_after_success(
            job.state,
            now,
            last_status=fetched.status,
            current_url=fetched.permanent_url or job.state.current_url,
            etag=fetched.etag or (job.state.etag if not_modified else None),
            last_modified=fetched.last_modified or (job.state.last_modified if not_modified else None),
            **changes,
        )
        max_age = max_age_seconds(fetched.headers.get("cache-control"))
        floors = [state.min_interval, publisher_floor(max_age=max_age)]
        next_due = next_refresh_after(
            now,
            interval=job.source.interval,
            cron=job.source.cron,
            floor=max((f for f in floors if f), default=None),
            skip_hours=state.skip_hours,
            skip_days=state.skip_days,
        )
        return replace(state, next_due=next_due)

    def _flush_states(self) -> None:
        states, self.pending_states = self.pending_states, []
        self.flushed = time.monotonic()
        self.store.save_source_states(states)

    @staticmethod
    def _took(done: _Done) -> float:
        return round(time.monotonic() - done.started, 3)
