"""`feeds sources ...`: list, add, remove, switch and move remote sources.

Every change edits config.toml in place (``feeds.configfile``): the
operator's comments and layout stay, and the edited file is checked as
start-up checks it before it replaces the old one. A running daemon picks
the change up on `feeds reload` (or SIGHUP).

Exit status: 0 done, 1 the URL could not be read as a feed, 2 a bad config,
an unknown source name or a duplicate.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path

import click

from feeds.cli.common import fail, get_config
from feeds.config import Config, SourceConfig, find_config_path
from feeds.configfile import ConfigFile
from feeds.errors import ConfigError, FeedsError
from feeds.normalise import section_slug, slugify
from feeds.sources.opml import Subscription, read_opml, write_opml


@click.group()
def sources() -> None:
    """Edit the [[sources]] of the config file in place, keeping its comments."""


def _config_file(ctx: click.Context) -> ConfigFile:
    path = find_config_path(ctx.ensure_object(dict).get("config_path"))
    try:
        if path is None:
            raise ConfigError(
                "no config file to edit: pass --config PATH, set FEEDS_CONFIG or create config.toml"
            )
        get_config(ctx)  # the file as it is must load, or the edit would hide the old mistake
        return ConfigFile.open(path)
    except ConfigError as e:
        fail(e)


def _save(file: ConfigFile) -> Config:
    try:
        return file.save()
    except ConfigError as e:
        fail(e)


def _require(config: Config, name: str) -> None:
    """Exit 2 naming the configured sources unless ``name`` is one of them."""
    if any(source.name == name for source in config.sources):
        return
    known = ", ".join(s.name for s in config.sources) or "none configured"
    fail(ConfigError(f"no such source {name!r} (sources: {known})", subject=str(config.path)))


def _schedule(source: SourceConfig) -> str:
    if source.cron:
        return f"cron {source.cron}"
    return f"every {source.interval:g}s" if source.interval else "unscheduled"


@sources.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def list_sources(ctx: click.Context, as_json: bool) -> None:
    """Print every configured source: name, on/off, section, schedule, URL."""
    config = get_config(ctx)
    if as_json:
        rows = [
            {
                "name": s.name,
                "url": s.url,
                "section": s.section,
                "enabled": s.enabled,
                "interval": s.interval,
                "cron": s.cron,
            }
            for s in config.sources
        ]
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for s in config.sources:
        state = "on" if s.enabled else "off"
        click.echo(f"{s.name}\t{state}\t{s.section or '-'}\t{_schedule(s)}\t{s.url}")


@sources.command()
@click.argument("url")
@click.option("--name", help="Source name (default: from the feed's title, else its host).")
@click.option("--section", help="Section slug its items go to (default: the entries' own categories).")
@click.option("--interval", help='How often to fetch: 90, "15m", "2h" (default: 1h).')
@click.option("--no-check", is_flag=True, help="Do not fetch the URL once to see that it is a feed.")
@click.pass_context
def add(
    ctx: click.Context,
    url: str,
    name: str | None,
    section: str | None,
    interval: str | None,
    no_check: bool,
) -> None:
    """Add the feed at URL as a source; fetches it once and says what it found."""
    file = _config_file(ctx)
    config = get_config(ctx)
    _refuse_duplicate(config, url, name)
    title = None
    if not no_check:
        title = _check_feed(config, name or "new source", url)
    name = name or unique_name(title or url, {s.name for s in config.sources})
    fields: dict[str, object] = {"name": name, "url": url}
    if section:
        fields["section"] = section
    if interval:
        fields["interval"] = interval
    file.add_source(fields)
    _save(file)
    click.echo(f"added source {name}: {url}")


def _refuse_duplicate(config: Config, url: str, name: str | None) -> None:
    for source in config.sources:
        if name is not None and source.name == name:
            problem = f"a source named {name!r} already exists ({source.url})"
            fail(ConfigError(problem, subject=str(config.path)))
        if source.url == url:
            fail(ConfigError(f"{url} is already source {source.name!r}", subject=str(config.path)))


def _check_feed(config: Config, name: str, url: str) -> str | None:
    from feeds.sources.probe import probe_feed  # the fetch stack, only when a URL is checked

    try:
        probe = probe_feed(name, url, config.fetch)
    except FeedsError as e:
        click.echo(f"feeds: error: {url}: not added: {e.message} (--no-check adds it anyway)", err=True)
        sys.exit(1)
    click.echo(f"found: {probe.title or '(untitled)'}, {probe.format}, {probe.entries} items")
    return probe.title


def unique_name(label: str, taken: set[str]) -> str:
    """A source name from a title or URL, not among ``taken`` (``-2``, ``-3`` ... added)."""
    base = slugify(label.split("://", 1)[-1], max_length=40) or "source"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    return name


@sources.command()
@click.argument("name")
@click.pass_context
def remove(ctx: click.Context, name: str) -> None:
    """Remove source NAME from the config (its stored items stay in the store)."""
    file = _config_file(ctx)
    _require(get_config(ctx), name)
    file.remove_source(name)
    _save(file)
    click.echo(f"removed source {name}")


@sources.command()
@click.argument("name")
@click.pass_context
def enable(ctx: click.Context, name: str) -> None:
    """Switch source NAME on."""
    _switch(ctx, name, True)


@sources.command()
@click.argument("name")
@click.pass_context
def disable(ctx: click.Context, name: str) -> None:
    """Switch source NAME off (kept in the config, not fetched)."""
    _switch(ctx, name, False)


def _switch(ctx: click.Context, name: str, enabled: bool) -> None:
    file = _config_file(ctx)
    _require(get_config(ctx), name)
    word = "enabled" if enabled else "disabled"
    if not file.set_enabled(name, enabled):
        click.echo(f"source {name}: already {word}")
        return
    _save(file)
    click.echo(f"source {name}: {word}")


@sources.command("import")
@click.argument("opml_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--section", help="Section slug for every imported source (default: its OPML folder).")
@click.pass_context
def import_opml(ctx: click.Context, opml_file: Path, section: str | None) -> None:
    """Add every feed of an OPML subscription list; feeds already configured are skipped."""
    file = _config_file(ctx)
    config = get_config(ctx)
    try:
        subscriptions = read_opml(_read(opml_file), str(opml_file))
    except ConfigError as e:
        fail(e)
    taken = {s.name for s in config.sources}
    known_urls = {s.url for s in config.sources}
    added = skipped = 0
    for sub in subscriptions:
        if sub.url in known_urls:
            click.echo(f"skipped {sub.url}: already configured")
            skipped += 1
            continue
        name = unique_name(sub.title or sub.url, taken)
        taken.add(name)
        known_urls.add(sub.url)
        fields: dict[str, object] = {"name": name, "url": sub.url}
        target = section or (section_slug(sub.folder) if sub.folder else None)
        if target:
            fields["section"] = target
        file.add_source(fields)
        added += 1
    if added:
        _save(file)
    click.echo(f"imported {added} sources, skipped {skipped} already configured -> {file.path}")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        fail(ConfigError(f"cannot read: {e.strerror or e}", subject=str(path)))


@sources.command("export")
@click.argument("opml_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def export_opml(ctx: click.Context, opml_file: Path | None) -> None:
    """Write the configured sources as an OPML list to OPML_FILE (default: standard output)."""
    config = get_config(ctx)
    data = write_opml(f"{config.site.title}: sources", _subscriptions(config.sources))
    if opml_file is None:
        sys.stdout.buffer.write(data)
        return
    try:
        opml_file.write_bytes(data)
    except OSError as e:
        fail(FeedsError(f"cannot write: {e.strerror or e}", subject=str(opml_file)))
    click.echo(f"exported {len(config.sources)} sources -> {opml_file}")


def _subscriptions(configured: Iterable[SourceConfig]) -> Iterable[Subscription]:
    for source in configured:
        yield Subscription(url=source.url, title=source.name, folder=source.section)
