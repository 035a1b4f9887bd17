"""`feeds worker`: fetch and prepare sources for the daemon, through the cluster's broker.

Any number of workers, on any machine with the package and a config whose
``[cluster] broker`` names the daemon's Redis (the jobs carry everything
else). SIGTERM or SIGINT stops it: jobs it took but did not start go back on
the queue, running ones get a few seconds. Exit 2 without a broker in the
config, 1 when the broker cannot be reached at the start or stays
unreachable for longer than ``--patience``.
"""

from __future__ import annotations

import signal
from types import FrameType

import click

from feeds.cli.common import fail, get_config
from feeds.clock import system_clock
from feeds.errors import ConfigError, FeedsError


@click.command()
@click.option(
    "--threads",
    type=click.IntRange(1, 256),
    help="Sources fetched at once by this worker (default: [fetch] workers).",
)
@click.option(
    "--patience",
    type=click.FloatRange(min=1),
    default=300.0,
    show_default=True,
    help="Seconds to wait for a lost broker before exiting with status 1.",
)
@click.option("--name", help="How `feeds status` and /healthz name this worker (default: host:pid).")
@click.pass_context
def worker(ctx: click.Context, threads: int | None, patience: float, name: str | None) -> None:
    """Take fetch jobs from the [cluster] broker and send back prepared results.

    The daemon (`feeds serve` with the same broker) sends the jobs and stores
    the results; run one worker per core on as many machines as you like.
    """
    config = get_config(ctx)
    broker = config.cluster.broker
    if broker is None:
        where = str(config.path) if config.path else None
        fail(ConfigError("cluster.broker: not set; `feeds worker` needs the daemon's broker", subject=where))
        return
    from feeds.cluster.queue import RedisQueue
    from feeds.cluster.worker import FetchWorker

    queue = RedisQueue(broker, redeliver_after=config.cluster.redeliver_after)
    fetch_worker = FetchWorker(
        queue, system_clock, threads=threads or config.fetch.workers, patience=patience, name=name
    )

    def on_signal(signum: int, frame: FrameType | None) -> None:
        fetch_worker.stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    try:
        status = fetch_worker.run()
    except FeedsError as e:
        fail(FeedsError(f"cannot reach the broker: {e.message}", subject=e.subject))
        return
    finally:
        queue.close()
    ctx.exit(status)
