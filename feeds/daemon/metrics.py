"""/metrics in the Prometheus text format: the only prometheus_client user.

One ``Metrics`` per daemon, with its own ``CollectorRegistry`` (never the
library's global default one, so two daemons in one test process, or a
test and the daemon, never share counters). Events are counted as they
happen, through the ``DaemonObserver`` calls the daemon makes (a source
refreshed, a publish done) and the HTTP wrapper in ``feeds.daemon.access``;
what the store knows (items, last success per source, its size on disk) is
read when Prometheus scrapes, so it is never stale.

Fetch durations are one histogram for all sources: a histogram per source
would be a dozen series per source, too many for a thousand sources.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from feeds.config import SourceConfig
from feeds.errors import FeedsError
from store import Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_FETCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_PUBLISH_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _StoreCollector(Collector):
    """Gauges read from the store at scrape time."""

    def __init__(self, store: Store, sources: Callable[[], Sequence[SourceConfig]]) -> None:
        self.store = store
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        items = GaugeMetricFamily("feeds_items", "Items in the store.")
        last_success = GaugeMetricFamily(
            "feeds_source_last_success_timestamp_seconds",
            "When each source was last fetched successfully (Unix time).",
            labels=["source"],
        )
        size = GaugeMetricFamily("feeds_store_size_bytes", "Size of the SQLite store on disk, WAL included.")
        try:
            items.add_metric([], self.store.count_items())
            configured = {s.name for s in self.sources()}
            for state in self.store.source_states():
                if state.name in configured and state.last_success is not None:
                    last_success.add_metric([state.name], state.last_success.timestamp())
        except FeedsError:
            return  # an unreadable store: /healthz says so; the event counters still scrape
        size.add_metric([], float(_size_on_disk(self.store.path)))
        yield from (items, last_success, size)


def _size_on_disk(path: Path) -> int:
    total = 0
    for suffix in ("", "-wal", "-shm"):
        try:
            total += path.with_name(path.name + suffix).stat().st_size
        except OSError:
            continue
    return total


class Metrics:
    """The counters and histograms of one daemon, and their exposition."""

    def __init__(self, store: Store, sources: Callable[[], Sequence[SourceConfig]]) -> None:
        self.registry = CollectorRegistry()
        self.fetches = Counter(
            "feeds_source_fetches",
            "Source refreshes, by source and outcome (updated, unchanged, not-modified, skipped, error ...).",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.fetch_seconds = Histogram(
            "feeds_source_fetch_duration_seconds",
            "Time from fetch to stored, per source refresh that fetched.",
            buckets=_FETCH_BUCKETS,
            registry=self.registry,
        )
        self.items_changed = Counter(
            "feeds_items_changed",
            "Items stored new or changed, by source.",
            ["source"],
            registry=self.registry,
        )
        self.publish_seconds = Histogram(
            "feeds_publish_duration_seconds",
            "Time to rebuild the published tree after a change.",
            buckets=_PUBLISH_BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "feeds_http_requests",
            "HTTP requests, by route and status.",
            ["route", "status"],
            registry=self.registry,
        )
        self.registry.register(_StoreCollector(store, sources))

    # -- DaemonObserver -------------------------------------------------------

    def source_refreshed(self, name: str, outcome: str, items_changed: int, seconds: float) -> None:
        """One source's refresh ended with ``outcome``."""
        self.fetches.labels(name, outcome).inc()
        if outcome not in ("skipped", "disabled"):  # nothing was fetched
            self.fetch_seconds.observe(seconds)
        if items_changed:
            self.items_changed.labels(name).inc(items_changed)

    def published(self, seconds: float) -> None:
        """A rebuild of the published tree took ``seconds``."""
        self.publish_seconds.observe(seconds)

    # -- HTTP -----------------------------------------------------------------

    def request_served(self, route: str, status: int) -> None:
        self.requests.labels(route, str(status)).inc()

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format."""
        return generate_latest(self.registry)
