"""/feeds/_sources.atom: the aggregator's own health, as a feed to subscribe to.

One entry per error episode of a source (each unbroken run of failures,
``store.episodes``): it appears when the source starts failing, is updated
as failures go on, and says when it recovered. An operator's feed reader
then shows what a Miniflux user sees on its "feeds with errors" page,
without a dashboard. The entries are ordinary items rendered by the one
Atom generator, so the feed passes the same validation as every other;
like them, it is a function of the store and the config alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from feeds.config import Config
from feeds.model import ErrorEpisode, Item
from feeds.publish.generate import EMPTY_FEED_UPDATED, FeedSpec, render_atom

HEALTH_SLUG = "_sources"
HEALTH_PATH = f"feeds/{HEALTH_SLUG}.atom"
HEALTH_EPISODES = 50  # the newest episodes the feed carries


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def health_spec(config: Config) -> FeedSpec:
    site = config.site
    return FeedSpec(
        slug=HEALTH_SLUG,
        title=f"{site.title}: source health",
        description="One entry per run of failures of a remote source: when it began, its last error, "
        "and when the source recovered.",
        base_url=site.base_url,
        language="en",
        authority=site.authority,
        author=site.author,
        name="Source health",
    )


def episode_item(episode: ErrorEpisode, source_url: str | None, authority: str) -> Item:
    """An error episode as a feed entry: titled by its state, linked to the failing feed."""
    since = _stamp(episode.started)
    if episode.ended is None:
        title = f"{episode.source}: failing since {since}"
        last = _stamp(episode.last_failure)
        state = f"Still failing after {episode.failures} failed attempts (the last at {last})."
    else:
        title = f"{episode.source}: failed from {since}, recovered {_stamp(episode.ended)}"
        state = f"Recovered at {_stamp(episode.ended)} after {episode.failures} failed attempts."
    key = f"{episode.source}/{since}"
    return Item(
        id=f"tag:{authority}:source-error/{key}",
        key=key,
        slug=f"source-error-{episode.source}-{episode.started.strftime('%Y%m%dT%H%M%SZ')}",
        title=title,
        kind="entry",
        published=episode.started,
        updated=episode.ended or episode.last_failure,
        link=source_url,
        summary=f"Last error: {episode.last_error}",
        body=(state, f"Last error: {episode.last_error}"),
    )


def render_health_feed(config: Config, episodes: Sequence[ErrorEpisode]) -> tuple[bytes, datetime]:
    """The Atom bytes of the health feed and the newest time they show."""
    urls = {s.name: s.url for s in config.sources}
    items = [episode_item(e, urls.get(e.source), config.site.authority) for e in episodes]
    modified = max((i.updated for i in items), default=EMPTY_FEED_UPDATED)
    return render_atom(health_spec(config), items), modified
