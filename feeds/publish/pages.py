"""The human site's pages: index, section pages, story pages, feed previews and search.

Records in, bytes out (jinja2, autoescaped). ``feeds.publish.tree`` decides
which pages exist and when they are rendered; the same call gives the same
bytes to ``feeds export`` and ``feeds serve``. No clock is read here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from feeds.config import Config
from feeds.model import Item
from feeds.publish.formats import FEED_FORMATS
from feeds.publish.generate import FeedSpec, item_url
from feeds.publish.site import ALL, TEMPLATES, human_date

INDEX_STORIES = 20  # newest stories on the index
SECTION_PAGE_STORIES = 25
# Section pages stop here (250 stories): older stories are in the feed archives (RFC 5005).
MAX_SECTION_PAGES = 10


@dataclass(frozen=True, slots=True)
class NavLink:
    name: str
    url: str


@dataclass(frozen=True, slots=True)
class StoryLink:
    """One story as a list on a page shows it."""

    title: str
    url: str
    section_name: str | None
    section_url: str | None
    date_iso: str
    date_text: str
    summary: str | None


@dataclass(frozen=True, slots=True)
class SectionRow:
    spec: FeedSpec
    items: int
    page_url: str
    preview_url: str


def section_page_path(slug: str, page: int = 1) -> str:
    """Page 1 is ``sections/<slug>.html``; later pages are numbered files."""
    return f"sections/{slug}.html" if page == 1 else f"sections/{slug}-{page}.html"


def preview_path(slug: str) -> str:
    """The HTML preview of a feed, beside the feed files."""
    return f"feeds/{slug}.html"


def section_pages(total: int) -> int:
    """How many pages a section of ``total`` stories has (at least one, at most the cap)."""
    return max(1, min(MAX_SECTION_PAGES, -(-total // SECTION_PAGE_STORIES)))


class Pages:
    """Renders every page of one build; built from the build's specs."""

    def __init__(self, config: Config, specs: Sequence[FeedSpec]) -> None:
        self.config = config
        self.site = config.site
        self.specs = tuple(specs)
        self._by_slug = {spec.slug: spec for spec in specs}
        # The same on every page: a page lists no other section, so a new
        # section changes the index, not every page of the site.
        self.nav = (NavLink("All stories", self.url(section_page_path(ALL))),)

    def url(self, path: str) -> str:
        return f"{self.site.base_url}{path}"

    def _render(self, template: str, feeds: Sequence[FeedSpec], **context: object) -> bytes:
        text = TEMPLATES.get_template(template).render(
            site=self.site, feeds=feeds, formats=FEED_FORMATS, nav=self.nav, **context
        )
        return text.encode("utf-8")

    def _feeds_of(self, slug: str | None) -> list[FeedSpec]:
        """The feeds a page offers for autodiscovery: ``all`` and its section's."""
        found = [self._by_slug[ALL]] if ALL in self._by_slug else []
        if slug and slug != ALL and slug in self._by_slug:
            found.append(self._by_slug[slug])
        return found

    def story(self, item: Item) -> StoryLink:
        spec = self._by_slug.get(item.section_slug) if item.section_slug else None
        return StoryLink(
            title=item.title,
            url=item_url(item, self.site.base_url),
            section_name=spec.name if spec else None,
            section_url=self.url(section_page_path(spec.slug)) if spec else None,
            date_iso=item.published.strftime("%Y-%m-%dT%H:%M:%SZ"),
            date_text=human_date(item.published),
            summary=item.summary,
        )

    def index(self, newest: Sequence[Item], counts: Mapping[str, int]) -> bytes:
        rows = [
            SectionRow(
                spec,
                counts.get(spec.slug, 0),
                self.url(section_page_path(spec.slug)),
                self.url(preview_path(spec.slug)),
            )
            for spec in self.specs
        ]
        return self._render(
            "index.html",
            self.specs,
            stories=[self.story(i) for i in newest],
            rows=rows,
            all_url=self.url(section_page_path(ALL)),
        )

    def section(self, spec: FeedSpec, items: Sequence[Item], page: int, total: int) -> bytes:
        """One page of a section (or ``all``), newest first."""
        pages = section_pages(total)
        return self._render(
            "section.html",
            self._feeds_of(spec.slug),
            spec=spec,
            stories=[self.story(i) for i in items],
            page=page,
            pages=pages,
            total=total,
            preview_url=self.url(preview_path(spec.slug)),
            newer_url=self.url(section_page_path(spec.slug, page - 1)) if page > 1 else None,
            older_url=self.url(section_page_path(spec.slug, page + 1)) if page < pages else None,
        )

    def preview(self, spec: FeedSpec, items: Sequence[Item]) -> bytes:
        """What a browser shows for a feed: its title, its addresses, its items."""
        return self._render(
            "feed.html",
            self._feeds_of(spec.slug),
            spec=spec,
            stories=[self.story(i) for i in items],
            page_url=self.url(section_page_path(spec.slug)),
        )

    def item(self, item: Item) -> bytes:
        """A story's own page; it links back to its section's page."""
        slug = item.section_slug if item.section_slug in self._by_slug else ALL
        spec = self._by_slug.get(slug or ALL)
        return self._render(
            "item.html",
            self._feeds_of(slug),
            item=item,
            section_name=spec.name if spec else "All stories",
            section_url=self.url(section_page_path(slug or ALL)),
            in_section=slug != ALL,
            published_iso=item.published.strftime("%Y-%m-%dT%H:%M:%SZ"),
            published_text=human_date(item.published),
        )

    def search(self, query: str, items: Sequence[Item], feed_urls: Mapping[str, str]) -> bytes:
        """The search page: a form, and the stories holding every word of ``query``."""
        return self._render(
            "search.html",
            self._feeds_of(None),
            query=query,
            stories=[self.story(i) for i in items],
            search_feeds=feed_urls,
        )
