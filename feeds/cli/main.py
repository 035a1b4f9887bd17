"""The `feeds` command line (click).

Errors the user can fix end in one line on stderr, never a traceback:
exit 2 for a bad configuration or usage, 1 for anything else that stopped
the command. Partial failures (one bad seed file) are reported and the rest
of the work still happens, with exit 0.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import click

from feeds import __version__
from feeds.app import open_store, run_export, run_ingest
from feeds.cli.common import fail, get_config, say
from feeds.cli.control import reload
from feeds.cli.maintain import backup, check
from feeds.cli.manage import sources
from feeds.cli.search import search
from feeds.cli.serve import serve, websub_notifier
from feeds.cli.sources import refresh, run_refresh, status
from feeds.cli.worker import worker
from feeds.clock import system_clock
from feeds.config import Config, config_from_dict
from feeds.errors import ConfigError, FeedsError
from feeds.logsetup import configure_logging
from feeds.publish.websub import changed_feed_urls
from feeds.seeds.document import decode_seed, parse_seed
from feeds.seeds.ingest import IngestReport

HUB_WAIT = 10.0  # seconds an export waits for its WebSub pings before exiting


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Config file (default: $FEEDS_CONFIG, else ./config.toml, else built-in defaults).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log debug details to stderr.")
@click.option("-q", "--quiet", is_flag=True, help="Print and log only warnings and errors.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines as text, or as one JSON object a line for log shippers.",
)
@click.version_option(__version__, prog_name="feeds")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: bool, quiet: bool, log_format: str) -> None:
    """Publish seed documents and remote feeds as per-section RSS, Atom and JSON feeds."""
    obj = ctx.ensure_object(dict)
    obj["config_path"] = config_path
    obj["quiet"] = quiet and not verbose
    configure_logging(verbose=verbose, quiet=quiet, fmt=log_format)


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def parse(file: Path) -> None:
    """Print the items of one seed FILE as a JSON list."""
    try:
        data = file.read_bytes()
    except OSError as e:
        click.echo(f"feeds: error: {file}: cannot read: {e.strerror or e}", err=True)
        sys.exit(1)
    try:
        items = parse_seed(decode_seed(data, str(file)))
    except FeedsError as e:
        fail(e)
    click.echo(json.dumps([i.as_json() for i in items], ensure_ascii=False, indent=2))


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def ingest(ctx: click.Context, paths: tuple[Path, ...]) -> None:
    """Store the items of seed files (default: every *.txt in the seeds dir).

    Files that are not seed documents (an OPML list, a feed) are refused, by
    name. Exits 1 when none of the files named could be stored.
    """
    config = get_config(ctx)
    try:
        with open_store(config) as store:
            report = run_ingest(store, config, system_clock, list(paths) or None)
    except FeedsError as e:
        fail(e)
    _print_ingest(report)
    if paths and len(report.errors) == len(report.files):
        sys.exit(1)  # nothing the user named could be stored


def _print_ingest(report: IngestReport) -> None:
    for f in report.files:
        if f.status == "error":
            click.echo(f"seed {f.name}: skipped: {f.error}", err=True)
            continue
        if f.warning:
            click.echo(f"seed {f.name}: warning: {f.warning}", err=True)
        say(f"seed {f.name}: {f.status}, {f.items} items")
    say(f"seeds: {len(report.files)} files, {report.written} items stored or changed")


@cli.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (default: [output] dir of the config).",
)
@click.option("--offline", is_flag=True, help="Publish from seeds and the store only; fetch nothing.")
@click.option(
    "--base-url",
    metavar="URL",
    help="Where this copy will be served, for its links (default: [site] base_url).",
)
@click.pass_context
def export(ctx: click.Context, out_dir: Path | None, offline: bool, base_url: str | None) -> None:
    """Ingest seeds, refresh due sources, and write every feed and page (each with a .gz) to a folder."""
    config = get_config(ctx)
    if base_url is not None:
        config = with_base_url(config, base_url)
    target = out_dir or config.output.dir
    try:
        with open_store(config) as store:
            report = run_ingest(store, config, system_clock)
            _print_ingest(report)
            if not offline and config.sources:
                run_refresh(store, config, None, mode="due")
            exported = run_export(store, config, target)
    except FeedsError as e:
        fail(e)
    for s in exported.sections:
        say(f"{s.slug}: {s.items} items, {s.written} files written")
    result = exported.result
    say(
        f"total: {len(result.written)} files written, {len(result.unchanged)} unchanged, "
        f"{len(result.deleted)} removed, {exported.pages} item pages -> {target}"
    )
    announce(config, result.written)


def announce(config: Config, written: list[str]) -> None:
    """Tell the [websub] hubs which feeds an export changed, waiting a little for them.

    The files are already in place: a slow hub only delays the exit, by at
    most ``HUB_WAIT`` seconds, and a failed ping is one line on stderr.
    """
    notifier = websub_notifier(config)
    if notifier is None:
        return
    topics = changed_feed_urls(config.site.base_url, written)
    if notifier.notify(topics) and not notifier.wait_idle(HUB_WAIT):
        click.echo(f"feeds: warning: WebSub hubs did not answer within {HUB_WAIT:.0f}s", err=True)
    notifier.close(timeout=1.0)
    if topics:
        say(f"websub: {len(topics)} changed feeds announced to {len(config.websub.hubs)} hubs")


def with_base_url(config: Config, base_url: str) -> Config:
    """``config`` publishing under ``base_url``, checked as the config's own key is."""
    try:
        site = config_from_dict({"site": {"base_url": base_url}}, "--base-url").site
    except ConfigError as e:
        fail(e)
    return replace(config, site=replace(config.site, base_url=site.base_url))


# Commands of other parts of the product register here, one line each, so
# that the modules stay small and the import graph stays one-way.
cli.add_command(serve)
cli.add_command(refresh)
cli.add_command(status)
cli.add_command(sources)
cli.add_command(backup)
cli.add_command(check)
cli.add_command(reload)
cli.add_command(search)
cli.add_command(worker)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    try:
        cli.main(args=argv, prog_name="feeds", standalone_mode=True)
    except SystemExit as e:
        return int(e.code or 0) if not isinstance(e.code, str) else 1
    return 0
