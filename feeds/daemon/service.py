"""The daemon's work: the jobs the scheduler runs, debounced publishing, health.

Jobs (seeds rescan, one refresh per remote source) write to the store and
report which sections changed; those are gathered and published once per
burst of changes: after ``quiet`` seconds without a new change, and never
later than ``max_delay`` after the first. Publishing re-renders only the
changed sections' feeds (plus index and OPML) and, with an export folder,
writes what changed there.

Every job run logs one line: what ran, its status, items changed, duration.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Literal, Protocol

from feeds.app import run_export, run_ingest
from feeds.clock import Clock
from feeds.config import Config
from feeds.daemon.health import FAILING, OK, failing_sources, service_status
from feeds.daemon.reload import ReloadPlan, plan_reload
from feeds.daemon.scheduler import JobSpec, seeds_job
from feeds.decide import wake_time
from feeds.errors import FeedsError
from feeds.model import ErrorEpisode, SourceState
from feeds.publish.cache import PublishedSite, PublishReport, sync_export
from feeds.publish.health_feed import HEALTH_SLUG
from feeds.publish.tree import Publisher
from feeds.publish.websub import Announcer, changed_feed_urls
from feeds.seeds.ingest import IngestReport
from store import Store

log = logging.getLogger("feeds.daemon.service")

DEFAULT_QUIET = 2.0  # seconds without a new change before publishing
DEFAULT_MAX_DELAY = 30.0  # never hold changes back longer than this
WATCH_INTERVAL = 1.0  # seconds between polls for writes by other processes
RECHECK_AFTER_RUN = 60.0  # seconds before a source still due after its run is looked at again


class SourceOutcome(Protocol):
    """One source's result, as the updater reports it."""

    @property
    def name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def items_changed(self) -> int: ...
    @property
    def error(self) -> object: ...
    @property
    def duration(self) -> float: ...


class RefreshOutcome(Protocol):
    @property
    def results(self) -> Sequence[SourceOutcome]: ...
    @property
    def changed_sections(self) -> frozenset[str]: ...


class Refresher(Protocol):
    """``Updater.refresh`` (``feeds.sources.update``): fetches the named sources."""

    def __call__(
        self,
        store: Store,
        config: Config,
        clock: Clock,
        names: Sequence[str] | None = None,
        *,
        mode: Literal["due", "all", "force"] | None = None,
    ) -> RefreshOutcome: ...


class Cluster(Protocol):
    """``feeds.cluster.dispatch.ClusterUpdates``: refreshes done by fetch workers."""

    def refresh(self, names: Sequence[str] | None, *, mode: Literal["due", "all", "force"] = ...) -> None: ...
    def health(self) -> dict[str, Any]: ...


class DaemonObserver(Protocol):
    """Told what the daemon did, as it happens (``feeds.daemon.metrics.Metrics``)."""

    def source_refreshed(self, name: str, outcome: str, items_changed: int, seconds: float) -> None: ...
    def published(self, seconds: float) -> None: ...


class _Unobserved:
    def source_refreshed(self, name: str, outcome: str, items_changed: int, seconds: float) -> None:
        """Nobody is counting."""

    def published(self, seconds: float) -> None:
        """Nobody is counting."""


class Timer(Protocol):
    """Runs a function once, later; a newer call with the same key replaces a pending one."""

    def call_later(self, key: str, delay: float, run: Callable[[], object]) -> None: ...
    def call_at(self, key: str, when: datetime, run: Callable[[], object]) -> None: ...


@dataclass(frozen=True, slots=True)
class Pending:
    """Sections changed since the last publish, and when (monotonic seconds)."""

    sections: frozenset[str]
    first: float
    last: float


def add_changes(pending: Pending | None, sections: frozenset[str], now: float) -> Pending:
    if pending is None:
        return Pending(sections, now, now)
    return Pending(pending.sections | sections, pending.first, now)


def publish_delay(pending: Pending, now: float, quiet: float, max_delay: float) -> float:
    """Seconds until pending changes are published (0 or less: now).

    A burst of changes is published once, ``quiet`` seconds after its last
    change, but a steady trickle cannot hold it back beyond ``max_delay``.
    """
    due = min(pending.last + quiet, pending.first + max_delay)
    return due - now


@dataclass(frozen=True, slots=True)
class ScanStatus:
    """The last seeds rescan, for /healthz."""

    at: datetime
    ok: bool
    files: int
    ingested: int
    errors: int
    items_changed: int
    error: str | None = None


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


class Updates(Protocol):
    """The process's updater: its ``refresh``, and ``close`` at the end."""

    @property
    def refresh(self) -> Refresher: ...

    def close(self) -> None: ...


def load_updater(config: Config) -> Updates:
    """The process's remote-sources updater (imported only when sources are configured)."""
    from feeds.sources.update import Updater

    return Updater(config.fetch)


class Daemon:
    """Seeds, sources and the published site of one ``feeds serve`` process."""

    def __init__(
        self,
        store: Store,
        config: Config,
        clock: Clock,
        *,
        refresh: Refresher | None = None,
        export_dir: Path | None = None,
        timer: Timer | None = None,
        quiet: float = DEFAULT_QUIET,
        max_delay: float = DEFAULT_MAX_DELAY,
        monotonic: Callable[[], float] = time.monotonic,
        websub: Announcer | None = None,
        observer: DaemonObserver | None = None,
    ) -> None:
        self.store = store
        self.websub = websub
        self.observer: DaemonObserver = observer or _Unobserved()
        self.config = config
        self.clock = clock
        self.site = PublishedSite(Publisher(store, config), clock)
        self._data_version: int | None = None
        self.export_dir = export_dir
        self.timer = timer
        self.quiet = quiet
        self.max_delay = max_delay
        self._refresh = refresh
        self._cluster: Cluster | None = None
        self._updater: Updates | None = None  # built by the first refresh, closed by stop_jobs
        self._updater_lock = threading.Lock()
        self._monotonic = monotonic
        self._pending: Pending | None = None
        self._pending_lock = threading.Lock()
        self._publish_lock = threading.Lock()
        self._busy = 0
        self._idle = threading.Condition()
        self._closing = False
        self._export_stale = False  # a write to the export folder failed: rewrite it all
        self.last_scan: ScanStatus | None = None
        self.last_publish: datetime | None = None

    # -- start-up -------------------------------------------------------------

    def start(self, *, sources: bool = True, seeds: bool = True) -> None:
        """Ingest seeds, refresh due sources, build everything, write the export."""
        with self._counted():
            if seeds:
                self.scan_seeds(publish=False)
            if sources and self.config.sources:
                self.refresh_sources(None, publish=False)
            started = time.monotonic()
            report = self.site.rebuild()
            self.observer.published(time.monotonic() - started)
            self.last_publish = self.clock()
            log.info(
                "publish: %d feeds, %d item pages, %.2fs",
                len(report.sections),
                len(report.pages_changed),
                time.monotonic() - started,
            )
            if self.export_dir is not None:
                exported = run_export(self.store, self.config, self.export_dir)
                log.info(
                    "export: %d files written, %d unchanged -> %s",
                    len(exported.result.written),
                    len(exported.result.unchanged),
                    self.export_dir,
                )

    def refresh_due_sources(self) -> None:
        """The start-up refresh, after the port opened: counted as a job, so a stop waits for it."""
        with self._counted() as go:
            if go and self.config.sources:
                self.refresh_sources(None)

    def job_specs(self) -> list[JobSpec]:
        """The recurring jobs: the seeds rescan and the store watch. (Each source
        has a one-off trigger of its own, placed by ``schedule_sources``.)"""
        watch = JobSpec(
            id="watch", run=self.run_watch_job, every=WATCH_INTERVAL, misfire_grace=WATCH_INTERVAL
        )
        return [seeds_job(self.config, self.run_seeds_job), watch]

    def schedule_sources(self) -> int:
        """Place each enabled source's trigger at its wake time; the number placed."""
        states = {s.name: s for s in self.store.source_states()}
        return sum(self._schedule_source(name, states.get(name)) for name in self._enabled_sources())

    def _enabled_sources(self) -> list[str]:
        return [s.name for s in self.config.sources if s.enabled]

    def _schedule_source(self, name: str, state: SourceState | None, *, after_run: bool = False) -> bool:
        """Place one source's trigger where ``decide.wake_time`` says (none for a gone source)."""
        source = next((s for s in self.config.sources if s.name == name), None)
        if self.timer is None or source is None:
            return False
        now = self.clock()
        when = wake_time(source, state, now)
        if when is None:
            return False
        if after_run:
            # A source still due right after its run is being fetched elsewhere
            # (a fetch worker, another process): look again in a while, not now.
            when = max(when, now + timedelta(seconds=RECHECK_AFTER_RUN))
        self.timer.call_at(f"source:{name}", when, partial(self.run_source_job, name))
        return True

    def reconfigure(self, config: Config) -> ReloadPlan:
        """Run on a re-read ``config`` from now on (SIGHUP, `feeds reload`).

        Everything published is rebuilt (section titles, descriptions, links),
        the export folder rewritten, and added or changed sources get their
        trigger placed now; a removed or switched-off source's pending trigger
        finds it gone and does nothing. The caller re-adds the seeds job.
        """
        plan = plan_reload(self.config, config)
        with self._publish_lock:
            self.config = config
            started = time.monotonic()
            report = self.site.reconfigure(config)
            self.observer.published(time.monotonic() - started)
            if self.export_dir is not None:
                run_export(self.store, config, self.export_dir)
            self.last_publish = self.clock()
        log.info("reload: republished %d feeds, %.2fs", len(report.sections), time.monotonic() - started)
        for name in (*plan.added, *plan.changed):
            self._schedule_source(name, self.store.source_state(name))
        return plan

    # -- jobs ---------------------------------------------------------------

    def run_seeds_job(self) -> None:
        self._run_job(self.scan_seeds)

    def run_watch_job(self) -> None:
        self._run_job(self.watch_store)

    def watch_store(self) -> bool:
        """Publish what another process wrote to the store (``feeds refresh`` beside us).

        SQLite's data_version moves only on other connections' commits, so
        the poll costs one pragma while nothing happens; our own writes are
        announced by the jobs that make them. True if changes were found.
        """
        version = self.store.data_version()
        if version == self._data_version:
            return False
        self._data_version = version
        if self.store.last_change() <= self.site.seq:
            return False
        self.note_changes(frozenset({"all"}))
        return True

    def run_source_job(self, name: str) -> None:
        self._run_job(partial(self.refresh_due_source, name))

    def refresh_due_source(self, name: str) -> None:
        """A source's trigger fired: refresh it if due (another process may
        have fetched it meanwhile), then place its next trigger."""
        if name not in self._enabled_sources():
            return  # removed or switched off by a reload since its trigger was placed
        try:
            self.refresh_sources([name], mode="due")
        finally:
            self._schedule_source(name, self.store.source_state(name), after_run=True)

    def scan_seeds(self, *, publish: bool = True) -> IngestReport | None:
        """Ingest new or changed seed files (by content hash); one log line."""
        started = time.monotonic()
        try:
            report = run_ingest(self.store, self.config, self.clock)
        except FeedsError as e:
            self.last_scan = ScanStatus(self.clock(), False, 0, 0, 0, 0, str(e))
            log.error("seeds scan: error, 0 items changed, %.2fs: %s", time.monotonic() - started, e)
            return None
        ingested = sum(f.status == "ingested" for f in report.files)
        status = "ok" if not report.errors else f"{len(report.errors)} files failed"
        self.last_scan = ScanStatus(
            self.clock(), True, len(report.files), ingested, len(report.errors), report.written
        )
        log.info(
            "seeds scan: %s, %d items changed, %.2fs (%d files, %d ingested)",
            status,
            report.written,
            time.monotonic() - started,
            len(report.files),
            ingested,
        )
        for failed in report.errors:
            log.warning("seed %s: skipped: %s", failed.name, failed.error)
        if publish:
            self.note_changes(report.changed_sections)
        return report

    def refresh_sources(
        self,
        names: Sequence[str] | None,
        *,
        publish: bool = True,
        mode: Literal["due", "all", "force"] = "due",
    ) -> None:
        """Refresh the named sources (None: all) that are due (``mode``: see ``decide.refresh_action``)."""
        if self._cluster is not None:  # workers fetch; their results are stored as they come
            self._cluster.refresh(names, mode=mode)
            return
        started = time.monotonic()
        refresh = self._refresh or self._own_updater().refresh
        episodes_before = self._episode_marks()
        what = f"source {names[0]}" if names and len(names) == 1 else "sources"
        try:
            report = refresh(self.store, self.config, self.clock, names, mode=mode)
        except FeedsError as e:
            log.error("%s: error, 0 items changed, %.2fs: %s", what, time.monotonic() - started, e)
            return
        for result in report.results:
            detail = f": {result.error}" if result.error else ""
            # A failure is a WARNING, so `journalctl -p warning` and log alerts see it.
            log.log(
                logging.WARNING if result.status == "error" else logging.INFO,
                "source %s: %s, %d items changed, %.2fs%s",
                result.name,
                result.status,
                result.items_changed,
                result.duration,
                detail,
            )
            self.observer.source_refreshed(result.name, result.status, result.items_changed, result.duration)
        changed = report.changed_sections
        if self._episode_marks() != episodes_before:  # a source began failing, failed again or recovered
            changed = changed | {HEALTH_SLUG}
        if publish:
            self.note_changes(changed)

    def _episode_marks(self) -> dict[str, tuple[datetime, int]]:
        """What the source-health feed shows of the open error episodes."""
        try:
            return {name: (e.started, e.failures) for name, e in self.store.open_episodes().items()}
        except FeedsError:
            return {}  # the refresh reports the store's trouble itself

    def use_cluster(self, cluster: Cluster) -> None:
        """Hand source refreshes to fetch workers ([cluster] broker) from now on."""
        self._cluster = cluster

    def _own_updater(self) -> Updates:
        """The updater every source job shares: one fetch pool, one set of
        Sessions, parser processes and host limits for the process."""
        with self._updater_lock:
            if self._updater is None:
                self._updater = load_updater(self.config)
            return self._updater

    # -- debounced publishing ----------------------------------------------

    def note_changes(self, sections: frozenset[str]) -> None:
        """Remember changed sections and (re)schedule the publish of this burst."""
        if not sections:
            return
        now = self._monotonic()
        with self._pending_lock:
            self._pending = add_changes(self._pending, sections, now)
            delay = publish_delay(self._pending, now, self.quiet, self.max_delay)
        if self.timer is not None:
            self.timer.call_later("publish", delay, self.run_publish_job)

    def run_publish_job(self) -> None:
        self._run_job(self.publish_pending)

    def publish_pending(self, *, force: bool = False) -> PublishReport | None:
        """Publish the pending changes if their burst is over (or ``force``)."""
        with self._publish_lock:
            with self._pending_lock:
                pending = self._pending
                if pending is None:
                    return None
                if not force and publish_delay(pending, self._monotonic(), self.quiet, self.max_delay) > 0:
                    return None  # a later change moved the publish; its call will come
                self._pending = None
            return self._publish(pending.sections)

    def _publish(self, sections: frozenset[str]) -> PublishReport | None:
        started = time.monotonic()
        try:
            report = self.site.rebuild(sections)
        except Exception as e:
            self._retry_later(sections)
            if not isinstance(e, FeedsError):
                raise
            log.error("publish: error, %.2fs: %s", time.monotonic() - started, e)
            return None
        self.observer.published(time.monotonic() - started)
        written = self._export(report)
        self.last_publish = self.clock()
        if self.websub is not None:
            # Queued for the hubs' own thread: a slow or failing hub never holds a publish.
            self.websub.notify(changed_feed_urls(self.config.site.base_url, report.changed))
        log.info(
            "publish: %s; %d files changed, %d removed, %d item pages changed%s, %.2fs",
            ", ".join(sorted(report.sections)) or "nothing",
            len(report.changed),
            len(report.removed),
            len(report.pages_changed),
            f", {written} files written to {self.export_dir}" if written is not None else "",
            time.monotonic() - started,
        )
        return report

    def _export(self, report: PublishReport) -> int | None:
        """Write what changed to the export folder; after a failed write, everything."""
        if self.export_dir is None:
            return None
        try:
            if self._export_stale:
                result = run_export(self.store, self.config, self.export_dir).result
            else:
                result = sync_export(self.export_dir, self.site, report)
        except FeedsError as e:
            log.error("export: error: %s", e)
            self._export_stale = True
            self._retry_later(frozenset())
            return None
        self._export_stale = False
        return len(result.written)

    def _retry_later(self, sections: frozenset[str]) -> None:
        """Publish again after ``max_delay``, even if nothing else changes."""
        with self._pending_lock:
            now = self._monotonic()
            pending = self._pending or Pending(frozenset(), now, now)
            self._pending = Pending(pending.sections | sections, now, now)
        if self.timer is not None:
            self.timer.call_later("publish", self.max_delay, self.run_publish_job)

    # -- health ---------------------------------------------------------------

    def health(self) -> tuple[int, bytes]:
        """(status, JSON) for /healthz: ``ok``, ``degraded`` (sources failing for
        longer than their schedule, named) or ``failing`` (503: the store cannot be read)."""
        try:
            items = self.store.count_items()
            episodes = self.store.open_episodes()
            sources = [_source_health(s, episodes.get(s.name)) for s in self.store.source_states()]
        except FeedsError as e:
            body: dict[str, Any] = {"status": FAILING, "ok": False, "error": str(e)}
            return 503, json.dumps(body).encode("utf-8")
        if self.store.damage is not None:
            body = {"status": FAILING, "ok": False, "error": f"{self.store.path}: {self.store.damage}"}
            return 503, json.dumps(body).encode("utf-8")
        overdue = failing_sources(self.config.sources, episodes, self.clock())
        status = service_status(True, overdue)
        scan = self.last_scan
        body = {
            "status": status,
            "ok": status == OK,
            "degraded": [
                {"name": f.name, "since": iso(f.since), "failures": f.failures, "last_error": f.last_error}
                for f in overdue
            ],
            "items": items,
            "seeds": {
                "last_scan": iso(scan.at) if scan else None,
                "ok": scan.ok if scan else None,
                "files": scan.files if scan else 0,
                "errors": scan.errors if scan else 0,
                "error": scan.error if scan else None,
            },
            "last_publish": iso(self.last_publish),
            "sources": sources,
        }
        if self._cluster is not None:
            body["cluster"] = self._cluster.health()
        return 200, json.dumps(body, ensure_ascii=False, indent=1).encode("utf-8")

    # -- stopping -------------------------------------------------------------

    def _run_job(self, work: Callable[[], object]) -> None:
        """Run one scheduled job, unless the daemon is stopping."""
        with self._counted() as go:
            if not go:
                return
            try:
                work()
            except Exception:
                # A job must never take the scheduler down: log it, the next run tries again.
                log.exception("job failed")

    @contextmanager
    def _counted(self) -> Iterator[bool]:
        """Count work in progress, so a stop can wait for it; False once stopping."""
        with self._idle:
            go = not self._closing
            if go:
                self._busy += 1
        try:
            yield go
        finally:
            if go:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()

    def stop_jobs(self, timeout: float) -> bool:
        """Refuse new job runs and wait up to ``timeout`` for running ones; True if none remain."""
        deadline = time.monotonic() + timeout
        with self._idle:
            self._closing = True
            while self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        with self._updater_lock:
            if self._updater is not None:
                self._updater.close()
                self._updater = None
        return True


def _source_health(state: SourceState, episode: ErrorEpisode | None) -> dict[str, Any]:
    return {
        "name": state.name,
        "failing_since": iso(episode.started) if episode else None,
        "url": state.url,
        "last_success": iso(state.last_success),
        "last_error": state.last_error,
        "last_status": state.last_status,
        "disabled": state.disabled,
        "backoff_until": iso(state.backoff_until),
        "next_due": iso(state.next_due),
    }
