"""The site's pages: feed metadata, index page, OPML and item pages, rendered with jinja2.

``feeds.publish.tree`` decides which pages exist and when they are rendered;
this module only turns records into bytes. Pages list every feed format of
``feeds.publish.formats``. No clock is read here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.utils import format_datetime

from jinja2 import Environment, PackageLoader, select_autoescape

from feeds.config import Config
from feeds.model import Item, SectionInfo
from feeds.publish.generate import FeedSpec

ALL = "all"

# The site's templates, loaded once; autoescaped for HTML and XML.
TEMPLATES = Environment(
    loader=PackageLoader("feeds", "templates"),
    autoescape=select_autoescape(["html", "xml"]),
    keep_trailing_newline=True,
    trim_blocks=False,
)


def title_case(label: str) -> str:
    """A display title from an upper-case label (``ARTS & CULTURE`` -> ``Arts & Culture``).

    Dotted capital I is lowered by hand: Python lowers it to i + combining dot.
    """
    words = []
    for word in label.split(" "):
        head, rest = word[:1], word[1:].replace("İ", "i").lower()
        words.append(head + rest)
    return " ".join(words)


def feed_spec(config: Config, slug: str, label: str | None = None) -> FeedSpec:
    """The metadata of the ``all`` feed or of one section's feed."""
    site = config.site
    section = config.sections.get(slug)
    if slug == ALL:
        name, title, description = "All stories", site.title, site.description
    else:
        name = (section.title if section and section.title else None) or title_case(label or slug)
        title = f"{site.title}: {name}"
        description = (
            section.description if section and section.description else f"{name} stories from {site.title}."
        )
    return FeedSpec(
        slug=slug,
        title=title,
        description=description,
        base_url=site.base_url,
        language=site.language,
        authority=site.authority,
        author=site.author,
        section_label=label,
        name=name,
        hubs=config.websub.hubs,
    )


def all_specs(config: Config, sections: Sequence[SectionInfo]) -> list[FeedSpec]:
    """``all`` first, then every section that has items, by slug."""
    return [feed_spec(config, ALL)] + [feed_spec(config, s.slug, s.label) for s in sections]


def render_opml(config: Config, specs: Sequence[FeedSpec], newest: Item | None) -> bytes:
    updated = format_datetime(newest.updated, usegmt=True) if newest else None
    text = TEMPLATES.get_template("opml.xml").render(site=config.site, specs=specs, updated=updated)
    return text.encode("utf-8")


_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def human_date(moment: datetime) -> str:
    """ "24 December 2025", whatever the process locale."""
    return f"{moment.day} {_MONTHS[moment.month - 1]} {moment.year}"


def item_page_path(slug: str) -> str:
    """Where the permalink page of an item lives in the tree."""
    return f"items/{slug}.html"
