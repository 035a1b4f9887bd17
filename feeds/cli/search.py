"""`feeds search QUERY`: the store's full-text index on the command line."""

from __future__ import annotations

import json

import click

from feeds.app import open_store
from feeds.cli.common import fail, get_config
from feeds.errors import FeedsError
from feeds.publish.generate import item_url, rfc3339

MAX_RESULTS = 500


@click.command()
@click.argument("words", nargs=-1, required=True)
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(1, MAX_RESULTS),
    default=20,
    show_default=True,
    help="Most items to show.",
)
@click.option("--section", metavar="SLUG", help="Only items of this section.")
@click.option("--newest", is_flag=True, help="Newest first instead of best match first.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of lines.")
@click.pass_context
def search(
    ctx: click.Context, words: tuple[str, ...], limit: int, section: str | None, newest: bool, as_json: bool
) -> None:
    """Find stored items holding every one of WORDS (title, summary or text).

    Words are plain words: case and accents do not matter, and search
    operators are read as words. Prints date, section, title and link, one
    item a line; nothing found is not an error.
    """
    config = get_config(ctx)
    query = " ".join(words)
    try:
        with open_store(config) as store:
            items = store.search(query, limit, section_slug=section, order="newest" if newest else "rank")
    except FeedsError as e:
        fail(e)
    base_url = config.site.base_url
    if as_json:
        rows = [
            {
                "id": item.id,
                "title": item.title,
                "section": item.section_slug,
                "published": rfc3339(item.published),
                "url": item_url(item, base_url),
                "summary": item.summary,
            }
            for item in items
        ]
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for item in items:
        date = item.published.strftime("%Y-%m-%d")
        click.echo(f"{date}  {item.section_slug or '-'}  {item.title}  {item_url(item, base_url)}")
    if not items:
        click.echo(f"no stored item matches {query!r}", err=True)
