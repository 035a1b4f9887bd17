"""`feeds refresh` and `feeds status`: remote sources on the command line.

A source that fails is logged as a WARNING with its reason and the run goes
on: `refresh` exits 0 when the run completed, whatever the sources did, so
cron mails only when the program itself could not run (bad config or an
unknown source name: 2, store unusable: 1); `--strict` exits 1 when any
source failed.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

from feeds.app import open_store, run_export
from feeds.cli.common import fail, get_config, say
from feeds.clock import system_clock
from feeds.config import Config
from feeds.errors import ConfigError, FeedsError
from feeds.model import SourceState
from feeds.sources.step import RefreshMode
from feeds.sources.update import RefreshReport, SourceResult, refresh_sources
from store import Store

log = logging.getLogger("feeds.sources")


@click.command()
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Fetch every enabled source now, due or not; a publisher's Retry-After and a failing "
    "source's backoff are still honoured.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Fetch now even sources backing off or asked to wait by Retry-After (loudly; sources "
    "gone with 410 stay off).",
)
@click.option("--strict", is_flag=True, help="Exit 1 if any source failed.")
@click.argument("names", nargs=-1)
@click.pass_context
def refresh(ctx: click.Context, everything: bool, force: bool, strict: bool, names: tuple[str, ...]) -> None:
    """Fetch the due remote sources (or the NAMEs given) and regenerate the feeds that changed.

    NAMEs given are fetched due or not, as with --all, unless backing off.
    Shows a progress bar on a terminal and one line per source otherwise.
    Exits 0 when the run completed, even if some sources failed (with
    --strict: 1 if any failed); 2 for a NAME that is not configured.
    """

    config = get_config(ctx)
    mode: RefreshMode = "force" if force else "all" if everything or names else "due"
    if force:
        # Overriding a publisher's explicit wait is rude to it: say so every time.
        log.warning("refresh --force: ignoring Retry-After and backoff; publishers may block us for it")
    unknown = [n for n in names if n not in {s.name for s in config.sources}]
    if unknown:
        known = ", ".join(s.name for s in config.sources) or "none configured"
        fail(ConfigError(f"no such source: {', '.join(unknown)} (sources: {known})", subject=_origin(config)))
    try:
        with open_store(config) as store:
            report = run_refresh(store, config, list(names) or None, mode=mode)
            if report.changed_sections:
                exported = run_export(store, config, config.output.dir)
                written = len(exported.result.written)
                say(f"regenerated: {written} files written -> {config.output.dir}")
    except FeedsError as e:
        fail(e)
    if strict and report.errors:
        sys.exit(1)


def _origin(config: Config) -> str:
    return str(config.path) if config.path else "built-in config"


def run_refresh(store: Store, config: Config, names: list[str] | None, *, mode: RefreshMode) -> RefreshReport:
    """Refresh with a progress bar on a terminal, else a line per source; print a summary."""
    total = len(names) if names else len(config.sources)
    if sys.stdout.isatty() and total > 1:
        with click.progressbar(length=total, label="refreshing", show_pos=True) as bar:
            report = refresh_sources(
                store, config, system_clock, names, mode=mode, progress=lambda result: bar.update(1)
            )
        for result in report.results:
            if result.status == "error":
                log.warning("%s", describe_result(result))
    else:
        report = refresh_sources(store, config, system_clock, names, mode=mode, progress=echo_result)
    print_refresh_summary(report)
    return report


def echo_result(result: SourceResult) -> None:
    """A failure is a WARNING log line (a cron mail, a log shipper's alert); the rest is progress."""
    if result.status == "error":
        log.warning("%s", describe_result(result))
    else:
        say(describe_result(result))


def describe_result(result: SourceResult) -> str:
    """One line about one source in one refresh."""
    parts = [f"source {result.name}: {result.status}"]
    if result.http_status:
        parts.append(f"HTTP {result.http_status}")
    if result.items_changed:
        parts.append(f"{result.items_changed} items changed")
    if result.detail:
        parts.append(result.detail)
    if result.error:
        parts.append(result.error)
    if result.warning:
        parts.append(f"warning: {result.warning}")
    if result.duration:
        parts.append(f"{result.duration:.2f}s")
    return ", ".join(parts)


def print_refresh_summary(report: RefreshReport) -> None:
    counts: dict[str, int] = {}
    for result in report.results:
        counts[result.status] = counts.get(result.status, 0) + 1
    tally = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no sources"
    say(f"sources: {tally}; {report.items_changed} items changed")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show every source (URL, last success, errors, backoff) and every section."""

    config = get_config(ctx)
    try:
        with open_store(config, read_only=True) as store:
            data = status_data(store, config)
    except FeedsError as e:
        fail(e)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    click.echo(f"items: {data['items']}")
    if "cluster" in data:
        from feeds.cluster.status import describe_cluster

        click.echo(describe_cluster(data["cluster"]))
    for row in data["sections"]:
        click.echo(f"section {row['slug']}: {row['items']} items, newest {row['newest']}")
    for row in data["sources"]:
        click.echo(_source_line(row))


def status_data(store: Store, config: Config) -> dict[str, Any]:
    """Sections and sources as plain data (what `status --json` prints)."""
    states = {s.name: s for s in store.source_states()}
    episodes = store.open_episodes()
    sources = []
    for source in config.sources:
        state = states.get(source.name) or SourceState(source.name, source.url)
        if state.url != source.url:  # the config moved it; the old record no longer applies
            state = SourceState(source.name, source.url)
        row = _source_row(state, source.enabled, source.section)
        episode = episodes.get(source.name) if state.last_attempt else None
        row["failing_since"] = _time(episode.started) if episode else None
        row["state"] = _state_word(state, source.enabled, episode is not None)
        sources.append(row)
    sections = [
        {"slug": s.slug, "label": s.label, "items": s.items, "newest": _time(s.newest)}
        for s in store.sections()
    ]
    data = {"items": store.count_items(), "sections": sections, "sources": sources}
    if config.cluster.broker is not None:
        from feeds.cluster.status import cluster_status

        data["cluster"] = cluster_status(config, system_clock)
    return data


def _source_row(state: SourceState, enabled: bool, section: str | None) -> dict[str, Any]:
    return {
        "name": state.name,
        "url": state.current_url or state.url,
        "configured_url": state.url,
        "section": section,
        "enabled": enabled,
        "disabled": state.disabled,
        "title": state.title,
        "items": state.items,
        "last_attempt": _time(state.last_attempt),
        "last_success": _time(state.last_success),
        "last_status": state.last_status,
        "errors": state.error_count,
        "last_error": state.last_error,
        "warning": state.warning,
        "backoff_until": _time(state.backoff_until),
        "next_due": _time(state.next_due),
    }


def _state_word(state: SourceState, enabled: bool, failing: bool) -> str:
    """off, gone, pending (never fetched), failing or ok: what an operator asks first."""
    if not enabled:
        return "off"
    if state.disabled:
        return "gone"
    if state.last_attempt is None:
        return "pending"
    return "failing" if failing or state.error_count else "ok"


def _source_line(row: dict[str, Any]) -> str:
    word = row["state"]
    if word == "off":
        health = "switched off"
    elif word == "gone":
        health = "DISABLED (gone)"
    elif word == "pending":
        health = "pending (never fetched)"
    elif word == "failing":
        since = f" since {row['failing_since']}" if row["failing_since"] else ""
        health = f"failing{since} ({row['errors']} errors), backing off until {row['backoff_until']}"
    else:
        health = "ok"
    fields: list[tuple[str, Callable[[Any], str]]] = [
        ("last_success", lambda v: f"last success {v}"),
        ("last_status", lambda v: f"HTTP {v}"),
        ("next_due", lambda v: f"next due {v}"),
        ("last_error", lambda v: f"error: {v}"),
        ("warning", lambda v: f"warning: {v}"),
    ]
    details = [show(row[key]) for key, show in fields if row[key]]
    return f"source {row['name']}: {health}, {row['items']} items, {row['url']}" + "".join(
        f"; {d}" for d in details
    )


def _time(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None
