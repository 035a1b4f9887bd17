"""What `feeds status` and /healthz say about the cluster: workers seen, queue depths."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from feeds.clock import Clock
from feeds.cluster.queue import QueueStats, RedisQueue
from feeds.config import Config
from feeds.errors import BrokerError

WORKERS_RECENT = 60.0  # a worker that reported within this many seconds is "seen"


def cluster_status(config: Config, clock: Clock) -> dict[str, Any]:
    """The broker's figures as plain data; ``ok`` False (and why) when it cannot be reached."""
    assert config.cluster.broker is not None
    queue = RedisQueue(config.cluster.broker, redeliver_after=config.cluster.redeliver_after)
    try:
        stats: QueueStats | None = queue.stats(clock(), WORKERS_RECENT)
        error = None
    except BrokerError as e:
        stats, error = None, str(e)
    finally:
        queue.close()
    return {"broker": queue.url, "ok": error is None, "error": error, **stats_json(stats)}


def describe_cluster(data: dict[str, Any]) -> str:
    """One line for `feeds status`."""
    if not data["ok"]:
        return f"cluster: {data['broker']}: UNREACHABLE: {data['error']}"
    names = ", ".join(w["name"] for w in data["workers"]) or "none"
    return (
        f"cluster: {data['broker']}: {data['workers_seen']} workers seen in the last {WORKERS_RECENT:g}s: "
        f"{names}; {data['jobs_queued']} jobs queued, {data['jobs_in_flight']} in flight, "
        f"{data['results_waiting']} results waiting to be stored"
    )


def stats_json(stats: QueueStats | None) -> dict[str, Any]:
    """Queue figures and the workers seen recently, as plain data."""
    if stats is None:
        return {"workers_seen": 0, "workers": [], "jobs_queued": None, "jobs_in_flight": None}
    workers = [
        {
            "name": w.name,
            "host": w.host,
            "pid": w.pid,
            "threads": w.threads,
            "jobs_done": w.jobs_done,
            "started": w.started.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "seen": w.seen.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        for w in stats.workers
    ]
    return {
        "workers_seen": len(workers),
        "workers": workers,
        "jobs_queued": stats.jobs_queued,
        "jobs_in_flight": stats.jobs_in_flight,
        "results_waiting": stats.results_waiting,
    }
