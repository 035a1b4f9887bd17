"""What every command shares: loading the config once, failing with one line."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from feeds.config import Config, find_config_path, load_config
from feeds.errors import ConfigError, FeedsError


def fail(error: FeedsError) -> NoReturn:
    """One line on stderr and the exit status the kind of error deserves."""
    click.echo(f"feeds: error: {error}", err=True)
    sys.exit(2 if isinstance(error, ConfigError) else 1)


def get_config(ctx: click.Context) -> Config:
    obj = ctx.ensure_object(dict)
    if "config" not in obj:
        try:
            obj["config"] = load_config(find_config_path(obj.get("config_path")))
        except ConfigError as e:
            fail(e)
    config: Config = obj["config"]
    return config


def say(message: str) -> None:
    """A progress or summary line on stdout, unless ``--quiet`` asked for problems only."""
    ctx = click.get_current_context(silent=True)
    if ctx is None or not ctx.find_root().ensure_object(dict).get("quiet"):
        click.echo(message)
