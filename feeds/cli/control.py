"""`feeds reload`: tell the running daemon to re-read its config.

The daemon of a config is found through the pid file beside its store
(``feeds.daemon.pidfile``) and sent SIGHUP, as `systemctl reload` does with
the unit's ExecReload. The daemon checks the new file as start-up would;
a bad one is one line in its log and it keeps running on the old one.
"""

from __future__ import annotations

import os
import signal
import sys

import click

from feeds.cli.common import get_config, say
from feeds.daemon.pidfile import is_running, pid_path, read_pid


@click.command()
@click.pass_context
def reload(ctx: click.Context) -> None:
    """Make the running daemon re-read the config (SIGHUP to the pid in <store>.pid).

    Exits 1 when no daemon of this config is running.
    """
    config = get_config(ctx)
    path = pid_path(config)
    pid = read_pid(path)
    if pid is None:
        click.echo(
            f"feeds: error: {path}: no running daemon (no pid file); start one with `feeds serve`", err=True
        )
        sys.exit(1)
    if not is_running(pid):
        click.echo(f"feeds: error: {path}: no running daemon (pid {pid} has exited)", err=True)
        sys.exit(1)
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError as e:
        click.echo(f"feeds: error: cannot signal pid {pid}: {e.strerror or e}", err=True)
        sys.exit(1)
    say(f"reload: sent SIGHUP to the daemon (pid {pid}); its log says what changed")
