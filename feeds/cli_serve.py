"""`feeds serve`: the daemon (scheduler and HTTP server in one process), and `--get`.

Start-up ingests the seeds, refreshes due sources, builds every feed, then
schedules the jobs and serves. SIGTERM or SIGINT stops it: no new job starts,
in-flight requests finish, running jobs get a few seconds, and the store is
closed only after the transaction in progress commits. A job still waiting
on the network after that is abandoned: its writes are whole transactions,
so the store stays consistent either way.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import click

from feeds.app import open_store
from feeds.clock import system_clock
from feeds.config import Config
from feeds.daemon import Daemon
from feeds.errors import FeedsError
from feeds.scheduler import Scheduler
from feeds.serve import HttpServer, bind_socket, call_app, create_app, format_head, mount_of
from store import Store

log = logging.getLogger("feeds.daemon")

STOP_GRACE = 2.0  # seconds requests in flight, then running jobs, get after a stop signal


@click.command()
@click.option("--host", help="Address to listen on (default: [server] host).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port to listen on (default: [server] port).")
@click.option("--export", "export_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also keep a static copy of the tree in DIR, written as `feeds export` writes.")
@click.option("--no-http", is_flag=True, help="Run the scheduler only; serve nothing.")
@click.option("--get", "get_path", metavar="PATH",
              help="Answer one request for PATH in-process, print status, headers and body, exit.")
@click.option("-H", "--header", "headers", multiple=True, metavar="'NAME: VALUE'",
              help="A request header for --get (repeatable).")
@click.pass_context
def serve(
    ctx: click.Context, host: str | None, port: int | None, export_dir: Path | None,
    no_http: bool, get_path: str | None, headers: tuple[str, ...],
) -> None:
    """Run the daemon: refresh seeds and sources on schedule and serve the feeds over HTTP.

    Config changes need a restart. With --get, exits 1 unless the answer is 2xx or 3xx.
    """
    # feeds.cli imports this module to register the command, so import it late.
    from feeds.cli import fail, get_config

    config = get_config(ctx)
    try:
        if get_path is not None:
            sys.exit(get_once(config, get_path, headers))
        run_daemon(
            config, host or config.server.host, config.server.port if port is None else port,
            export_dir, http=not no_http,
        )
    except FeedsError as e:
        fail(e)


def get_once(config: Config, path: str, headers: tuple[str, ...]) -> int:
    """Ingest the seeds, build, answer one request and print it; fetches nothing."""
    if logging.getLogger().level > logging.DEBUG:
        log.setLevel(logging.WARNING)  # a script wants the answer, not the start-up log
    request_headers = []
    for header in headers:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected 'NAME: VALUE', got {header!r}", param_hint="--header")
        request_headers.append((name.strip(), value.strip()))
    with open_store(config) as store:
        daemon = Daemon(store, config, system_clock)
        daemon.start(sources=False)
        app = create_app(daemon.site, daemon.health, mount=mount_of(config.site.base_url))
        reply = call_app(app, path if path.startswith("/") else "/" + path, headers=request_headers)
    sys.stdout.flush()
    out = sys.stdout.buffer  # the body is bytes (gzip when asked for)
    out.write(format_head(reply).encode("latin-1"))
    out.write(reply.body)
    out.flush()
    return 0 if 200 <= reply.status < 400 else 1


def run_daemon(config: Config, host: str, port: int, export_dir: Path | None, *, http: bool) -> None:
    """Run until SIGTERM or SIGINT; raise FeedsError if start-up fails."""
    stop = threading.Event()
    signalled: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        signalled.append(signum)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    store = open_store(config)
    sock = bind_socket(host, port) if http else None
    scheduler = Scheduler(workers=min(len(config.sources), config.fetch.workers) + 2)
    daemon = Daemon(store, config, system_clock, export_dir=export_dir, timer=scheduler)
    state: dict[str, Any] = {}
    # Held while the scheduler and server start, so a stop never meets them half started.
    starting = threading.Lock()

    def boot() -> None:
        try:
            daemon.start()
            with starting:
                if stop.is_set():
                    return
                for spec in daemon.job_specs():
                    scheduler.add(spec)
                scheduler.start()
                if sock is not None:
                    app = create_app(daemon.site, daemon.health, mount=mount_of(config.site.base_url))
                    state["server"] = server = HttpServer(app, sock)
                    server.start()
                    log.info("serving http://%s:%d/ (config changes need a restart)", host, server.port)
            log.info("ready: %d jobs scheduled", len(daemon.job_specs()))
        except BaseException as e:
            state["error"] = e
            stop.set()

    # Start-up runs beside the main thread, which only waits for a signal, so
    # a stop during a long first refresh is still answered within seconds.
    threading.Thread(target=boot, name="boot", daemon=True).start()
    while not stop.wait(0.5):
        pass
    with starting:
        shut_down(daemon, scheduler, store, state.get("server"), signalled)
    error = state.get("error")
    if error is not None and not signalled:
        raise error if isinstance(error, FeedsError) else FeedsError(f"start-up failed: {error!r}")


def shut_down(
    daemon: Daemon, scheduler: Scheduler, store: Store, server: HttpServer | None, signalled: list[int]
) -> None:
    """Stop jobs and the server; close the store after its current transaction."""
    if signalled:
        log.info("stopping (%s)", signal.Signals(signalled[0]).name)
    scheduler.shutdown()
    if server is not None:
        server.stop(timeout=STOP_GRACE)
    idle = daemon.stop_jobs(STOP_GRACE)
    store.close()  # takes the store's lock: waits for a transaction in progress
    if not idle:
        # Python would wait at exit for the job threads still on the network.
        log.warning("stopped; abandoned a job still fetching (no transaction was open)")
        logging.shutdown()
        os._exit(0)
    log.info("stopped")
