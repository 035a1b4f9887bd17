"""`feeds backup` and `feeds check`: what an operator runs from cron or before an upgrade.

Both read the store through a read-only connection of their own
(``store.maintenance``), so they work while the daemon runs and change
nothing. `check` exits 1 when it finds a problem, so a monitoring job can
run it as it is.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from feeds.app import open_store
from feeds.cli.common import fail, get_config, say
from feeds.clock import system_clock
from feeds.config import Config, find_config_path, load_config
from feeds.errors import ConfigError, FeedsError, StoreError
from feeds.publish.tree import Publisher
from feeds.publish.validate import check_feed
from store.maintenance import backup_store, inspect_store


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.pass_context
def backup(ctx: click.Context, path: Path) -> None:
    """Copy the store to PATH (a file, or a folder for a dated file), consistently.

    Safe while the daemon runs: the copy holds every transaction committed
    before it began and none half, and it passes PRAGMA integrity_check.
    """
    config = get_config(ctx)
    if path.is_dir():
        path = path / f"feeds-{system_clock().strftime('%Y%m%dT%H%M%SZ')}.db"
    try:
        items = backup_store(config.store.path, path)
    except StoreError as e:
        fail(e)
    say(f"backup: {items} items, integrity ok -> {path}")


@click.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Check the config, the store (integrity, migrations) and every published feed; exit 1 on a problem."""
    problems = 0
    try:
        config = load_config(find_config_path(ctx.ensure_object(dict).get("config_path")))
    except ConfigError as e:
        click.echo(f"config: {e}", err=True)
        sys.exit(1)
    click.echo(f"config: ok, {len(config.sources)} sources ({config.path or 'built-in defaults'})")
    if not config.store.path.exists():
        click.echo(f"store: none yet at {config.store.path} (the first export or serve creates it)")
        return
    try:
        health = inspect_store(config.store.path)
    except StoreError as e:
        click.echo(f"store: {e}", err=True)
        sys.exit(1)
    for problem in health.problems:
        click.echo(f"store: {config.store.path}: {problem}", err=True)
    problems += len(health.problems)
    if health.problems:
        sys.exit(1)  # the feeds are built from the store: no point reading a damaged one
    click.echo(f"store: ok, {health.items} items, integrity ok, migrations current")
    problems += _check_feeds(config)
    sys.exit(1 if problems else 0)


def _check_feeds(config: Config) -> int:
    """Build every feed from the store as the daemon would and apply our rules to each."""
    try:
        with open_store(config) as store:
            publisher = Publisher(store, config)
            files = {path: r.body for path, r in publisher.feed_files(publisher.view()).items()}
    except FeedsError as e:
        click.echo(f"feeds: cannot build: {e}", err=True)
        return 1
    problems = 0
    feeds = sorted(path for path in files if path.startswith("feeds/"))
    for path in feeds:
        for problem in check_feed(path, files[path]):
            click.echo(f"feed {path}: {problem}", err=True)
            problems += 1
    click.echo(f"feeds: {len(feeds)} checked, {problems} problems")
    return problems
