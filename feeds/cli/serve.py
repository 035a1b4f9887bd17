"""`feeds serve`: the daemon (scheduler and HTTP server in one process), and `--get`.

Start-up ingests the seeds, builds every feed and serves, then refreshes
the due sources (the port never waits for a fetch) and schedules the jobs.
SIGTERM or SIGINT stops it: no new job starts, in-flight requests finish,
running jobs get a few seconds, and the store is closed only after the
transaction in progress commits. A job still waiting on the network after
that is abandoned: its writes are whole transactions, so the store stays
consistent either way.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from feeds.app import open_store, store_is_read_only
from feeds.cli.common import fail, get_config
from feeds.clock import system_clock
from feeds.config import Config, load_config
from feeds.daemon.access import instrument
from feeds.daemon.baseurl import base_url_mismatch
from feeds.daemon.connections import ConnectionLimits, connection_cap
from feeds.daemon.metrics import Metrics
from feeds.daemon.pidfile import pid_path, remove_pid, write_pid
from feeds.daemon.scheduler import Scheduler
from feeds.daemon.service import Daemon
from feeds.daemon.web import HttpServer, bind_socket, call_app, create_app, format_head, mount_of
from feeds.errors import ConfigError, FeedsError
from feeds.publish.websub import WebSubNotifier
from feeds.sources.fetch import FormPoster
from store import Store

if TYPE_CHECKING:
    from feeds.cluster.dispatch import ClusterUpdates

log = logging.getLogger("feeds.daemon.service")

STOP_GRACE = 2.0  # seconds requests in flight, then running jobs, get after a stop signal


@click.command()
@click.option("--host", help="Address to listen on (default: [server] host).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port to listen on (default: [server] port).")
@click.option(
    "--export",
    "export_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also keep a static copy of the tree in DIR, written as `feeds export` writes.",
)
@click.option("--no-http", is_flag=True, help="Run the scheduler only; serve nothing.")
@click.option(
    "--access-log",
    is_flag=True,
    help="Log every request: client, method, path, status, bytes, duration, user agent.",
)
@click.option(
    "--get",
    "get_path",
    metavar="PATH",
    help="Answer one request for PATH in-process, print status, headers and body, exit.",
)
@click.option(
    "-H",
    "--header",
    "headers",
    multiple=True,
    metavar="'NAME: VALUE'",
    help="A request header for --get (repeatable).",
)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    export_dir: Path | None,
    no_http: bool,
    access_log: bool,
    get_path: str | None,
    headers: tuple[str, ...],
) -> None:
    """Run the daemon: refresh seeds and sources on schedule and serve the feeds over HTTP.

    SIGHUP or `feeds reload` re-reads the config without a restart.
    With --get, exits 1 unless the answer is 2xx or 3xx.
    """

    config = get_config(ctx)
    try:
        if get_path is not None:
            sys.exit(get_once(config, get_path, headers))
        run_daemon(
            config,
            host or config.server.host,
            config.server.port if port is None else port,
            export_dir,
            http=not no_http,
            access_log=access_log,
        )
    except FeedsError as e:
        fail(e)


def get_once(config: Config, path: str, headers: tuple[str, ...]) -> int:
    """Ingest the seeds, build, answer one request and print it; fetches nothing.

    A read-only store is read as it is: nothing is ingested.
    """
    if logging.getLogger().level > logging.DEBUG:
        log.setLevel(logging.WARNING)  # a script wants the answer, not the start-up log
    request_headers = []
    for header in headers:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected 'NAME: VALUE', got {header!r}", param_hint="--header")
        request_headers.append((name.strip(), value.strip()))
    read_only = store_is_read_only(config)  # then serve what is stored, ingesting nothing
    with open_store(config, read_only=read_only) as store:
        metrics = Metrics(store, lambda: config.sources)
        daemon = Daemon(store, config, system_clock, observer=metrics)
        daemon.start(sources=False, seeds=not read_only)
        mount = mount_of(config.site.base_url)
        app = instrument(create_app(daemon.site, daemon.health, mount=mount), metrics, mount=mount)
        reply = call_app(app, path if path.startswith("/") else "/" + path, headers=request_headers)
    sys.stdout.flush()
    out = sys.stdout.buffer  # the body is bytes (gzip when asked for)
    out.write(format_head(reply).encode("latin-1"))
    out.write(reply.body)
    out.flush()
    return 0 if 200 <= reply.status < 400 else 1


def run_daemon(
    config: Config, host: str, port: int, export_dir: Path | None, *, http: bool, access_log: bool = False
) -> None:
    """Run until SIGTERM or SIGINT; raise FeedsError if start-up fails."""
    process = DaemonProcess(config, host, port, export_dir, http=http, access_log=access_log)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, process.on_signal)
    signal.signal(signal.SIGHUP, process.on_reload)
    process.run()


def connect_cluster(store: Store, config: Config, daemon: Daemon) -> ClusterUpdates:
    """The daemon's side of the cluster: its source refreshes go to fetch workers."""
    from feeds.cluster.dispatch import ClusterUpdates
    from feeds.cluster.queue import RedisQueue

    assert config.cluster.broker is not None
    queue = RedisQueue(config.cluster.broker, redeliver_after=config.cluster.redeliver_after)
    cluster = ClusterUpdates(store, config, system_clock, queue, daemon.note_changes)
    daemon.use_cluster(cluster)
    log.info("cluster: sources are fetched by workers through %s; results are stored here", queue.url)
    return cluster


def websub_notifier(config: Config) -> WebSubNotifier | None:
    """The process's WebSub pinger, when [websub] hubs are configured."""
    if not config.websub.hubs:
        return None
    return WebSubNotifier(config.websub.hubs, FormPoster(timeout=config.fetch.timeout))


class DaemonProcess:
    """The parts of one `feeds serve` process, started and stopped in order."""

    def __init__(
        self,
        config: Config,
        host: str,
        port: int,
        export_dir: Path | None,
        *,
        http: bool,
        access_log: bool = False,
    ) -> None:
        self.config = config
        self.host = host
        self.access_log = access_log
        self.stop = threading.Event()
        self.signalled: list[int] = []
        self.store = open_store(config)
        self.socket = bind_socket(host, port) if http else None
        self.scheduler = Scheduler(workers=min(len(config.sources), config.fetch.workers) + 2)
        self.websub = websub_notifier(config)
        self.metrics = Metrics(self.store, lambda: self.daemon.config.sources)
        self.daemon = Daemon(
            self.store,
            config,
            system_clock,
            export_dir=export_dir,
            timer=self.scheduler,
            websub=self.websub,
            observer=self.metrics,
        )
        self.cluster = connect_cluster(self.store, config, self.daemon) if config.cluster.broker else None
        self.server: HttpServer | None = None
        self.error: BaseException | None = None
        # Held while the scheduler and server start, so a stop never meets them half started.
        self.starting = threading.Lock()
        self.reload_requested = threading.Event()
        self.ready = threading.Event()
        self.pid_file = pid_path(config)

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signalled.append(signum)
        self.stop.set()

    def on_reload(self, signum: int, frame: FrameType | None) -> None:
        self.reload_requested.set()  # handled by the main loop, outside the signal handler

    def reload(self) -> None:
        """Re-read the config file and run on it; a bad one is one log line and changes nothing."""
        path = self.daemon.config.path
        if path is None:
            log.warning("reload: running on built-in defaults, no config file to re-read")
            return
        try:
            config = load_config(path)
            plan = self.daemon.reconfigure(config)
            if plan.seeds_changed:
                for spec in self.daemon.job_specs():
                    self.scheduler.add(spec)
        except ConfigError as e:
            log.error("reload: %s; still running on the previous config", e)
            return
        except FeedsError as e:
            log.error("reload: %s", e)
            return
        log.info("reload: %s; sections re-titled, feeds rebuilt", plan.summary())
        if plan.needs_restart:
            log.warning("reload: %s changed; only a restart applies that", ", ".join(plan.needs_restart))

    def run(self) -> None:
        # Start-up runs beside the main thread, which only waits for a signal, so
        # a stop during a long first refresh is still answered within seconds.
        threading.Thread(target=self.boot, name="boot", daemon=True).start()
        while not self.stop.wait(0.5):
            if self.ready.is_set() and self.reload_requested.is_set():
                self.reload_requested.clear()
                self.reload()
        with self.starting:
            self.shut_down()
        if self.error is not None and not self.signalled:
            error = self.error
            raise error if isinstance(error, FeedsError) else FeedsError(f"start-up failed: {error!r}")

    def boot(self) -> None:
        """Ingest and build, serve; then refresh the due sources and schedule the jobs.

        The port opens before any fetch: a remote server, however slow, never
        keeps the feeds we already have from being served.
        """
        try:
            if self.cluster is not None:
                self.cluster.start()
            self.daemon.start(sources=False)
            with self.starting:
                if self.stop.is_set():
                    return
                if self.socket is not None:
                    self.serve(self.socket)
            self.daemon.refresh_due_sources()
            # What start-up built lives as long as the process: move it out of
            # the cyclic GC's reach, so collections triggered by per-request
            # garbage stop walking tens of thousands of long-lived objects.
            gc.collect()
            gc.freeze()
            with self.starting:
                if self.stop.is_set():
                    return
                for spec in self.daemon.job_specs():
                    self.scheduler.add(spec)
                sources = self.daemon.schedule_sources()
                self.scheduler.start()
            write_pid(self.pid_file, os.getpid())
            self.ready.set()
            log.info("ready: %d jobs scheduled, %d sources", len(self.daemon.job_specs()), sources)
        except BaseException as e:
            self.error = e
            self.stop.set()

    def serve(self, sock: socket.socket) -> None:
        mount = mount_of(self.config.site.base_url)
        app = create_app(self.daemon.site, self.daemon.health, mount=mount)
        app = instrument(app, self.metrics, mount=mount, access_log=self.access_log)
        limits = ConnectionLimits(
            header_timeout=self.config.server.header_timeout,
            keep_alive=self.config.server.keep_alive,
            max_connections=connection_cap(),
        )
        self.server = HttpServer(app, sock, limits)
        self.server.start()
        log.info(
            "serving http://%s:%d/ (SIGHUP or `feeds reload` re-reads the config; at most %d connections)",
            self.host,
            self.server.port,
            limits.max_connections,
        )
        mismatch = base_url_mismatch(self.config.site.base_url, self.host, self.server.port)
        if mismatch:
            log.warning("%s", mismatch)

    def shut_down(self) -> None:
        """Stop jobs and the server; close the store after its current transaction."""
        if self.signalled:
            log.info("stopping (%s)", signal.Signals(self.signalled[0]).name)
        self.scheduler.shutdown()
        if self.server is not None:
            self.server.stop(timeout=STOP_GRACE)
        idle = self.daemon.stop_jobs(STOP_GRACE)
        if self.cluster is not None:
            self.cluster.close()  # after the result being stored, if any

        if self.websub is not None:
            self.websub.close(timeout=1.0)
        self.store.close()  # takes the store's lock: waits for a transaction in progress
        remove_pid(self.pid_file, os.getpid())
        if not idle:
            # Python would wait at exit for the job threads still on the network.
            log.warning("stopped; abandoned a job still fetching (no transaction was open)")
            logging.shutdown()
            os._exit(0)
        log.info("stopped")
