"""The human site as `feeds export` writes it: stories on the index, section
pages with autodiscovery and paging, story pages that lead somewhere, feed
previews linked from the index; everything escaped."""

from __future__ import annotations

import re
from pathlib import Path

from lxml import html

from feeds.config import Config
from feeds.model import ItemWrite
from store import Store
from tests.cliutil import run_feeds
from tests.strategies import make_item

BASE = "http://127.0.0.1:8080/"


def page(public: Path, path: str) -> html.HtmlElement:
    return html.fromstring((public / path).read_bytes())


def alternates(doc: html.HtmlElement) -> list[tuple[str, str]]:
    return [(e.get("type"), e.get("href")) for e in doc.xpath("//head/link[@rel='alternate']")]


def hrefs(doc: html.HtmlElement) -> list[str]:
    return [a.get("href") for a in doc.xpath("//a[@href]")]


def test_the_index_shows_the_newest_stories_then_the_sections(project: Path) -> None:
    assert run_feeds("export", cwd=project).returncode == 0
    public = project / "public"
    index = page(public, "index.html")
    stories = index.xpath("//ul[@class='stories']/li")
    assert len(stories) == 14
    first = next(s for s in stories if "El Salvador" in s.xpath("string(.//h3)"))
    assert first.xpath(".//h3/a/@href")[0].startswith(f"{BASE}items/")
    assert first.xpath("string(.//p[not(@class)])").startswith("El Salvador's leader Nayib Bukele")
    assert first.xpath(".//time/@datetime") == ["2025-12-24T00:00:00Z"]
    sports = next(s for s in stories if "Galatasaray" in s.xpath("string(.//h3)"))
    assert sports.xpath(".//p[@class='meta']/a/@href") == [f"{BASE}sections/sports.html"]
    sections = index.xpath("//ul[@class='sections-list']/li")
    assert [s.xpath("string(.//a[@class='name'])") for s in sections] == [
        "All stories",
        "Economy",
        "Sports",
        "World",
    ]
    for slug in ("all", "economy", "sports", "world"):
        for target in ("sections/{}.html", "feeds/{}.html", "feeds/{}.rss", "feeds/{}.atom", "feeds/{}.json"):
            url = BASE + target.format(slug)
            assert url in hrefs(index), url
            assert (public / target.format(slug)).is_file()


def test_section_pages_offer_their_feeds_and_page_through_every_story(project: Path, config: Config) -> None:
    with Store(config.store.path) as store:
        store.write_batch([ItemWrite(item=make_item(i)) for i in range(30)])
    assert run_feeds("export", cwd=project).returncode == 0
    public = project / "public"
    world = page(public, "sections/world.html")
    assert alternates(world) == [
        (kind, f"{BASE}feeds/{slug}.{ext}")
        for slug in ("all", "world")
        for kind, ext in (
            ("application/rss+xml", "rss"),
            ("application/atom+xml", "atom"),
            ("application/feed+json", "json"),
        )
    ]
    howto = world.xpath("string(//section[@class='howto'])")
    assert "feed reader" in howto and f"{BASE}feeds/world.atom" in howto
    first = world.xpath("//ul[@class='stories']//h3/a/text()")
    second_page = page(public, "sections/world-2.html")
    second = second_page.xpath("//ul[@class='stories']//h3/a/text()")
    assert len(first) == 25 and len(second) == 6  # 30 made here and the seed's one
    assert not (public / "sections" / "world-3.html").exists()
    assert f"{BASE}sections/world-2.html" in hrefs(world)
    assert f"{BASE}sections/world.html" in hrefs(second_page)
    numbers = [int(t.rsplit(" ", 1)[1]) for t in first + second if t.startswith("Story number")]
    assert numbers == sorted(numbers, reverse=True)  # newest first


def test_story_pages_lead_back_and_a_headline_page_is_never_empty(project: Path) -> None:
    assert run_feeds("export", cwd=project).returncode == 0
    public = project / "public"
    pages = {page(public, f"items/{p.name}").xpath("string(//h1)"): p for p in (public / "items").iterdir()}
    teaser = page(public, f"items/{pages['Galatasaray crowned winter champion in Süper Lig'].name}")
    assert f"{BASE}sections/sports.html" in hrefs(teaser)
    assert "Galatasaray finished the first half" in teaser.xpath("string(//article)")
    kim = pages["North Korea's Kim visits nuclear subs"].name
    headline = page(public, f"items/{kim}")
    text = headline.xpath("string(//article)")
    assert "Only the headline of this story reached us." in text
    assert f"{BASE}sections/all.html" in headline.xpath("//article//a/@href")
    article = page(public, f"items/{pages['El Salvador leader defends mega-prison'].name}")
    assert len(article.xpath("//article/p[not(@class)]")) > 3
    assert not article.xpath("//p[@class='note']")


def test_feed_previews_show_title_addresses_and_items(project: Path) -> None:
    assert run_feeds("export", cwd=project).returncode == 0
    preview = page(project / "public", "feeds/sports.html")
    assert preview.xpath("string(//h1)") == "Test feeds: Sports"
    assert preview.xpath("//p[@class='copy']/code/text()") == [
        f"{BASE}feeds/sports.{ext}" for ext in ("rss", "atom", "json")
    ]
    assert preview.xpath("//ul[@class='stories']//h3/a/text()") == [
        "Galatasaray crowned winter champion in Süper Lig"
    ]


def test_pages_escape_what_they_show_and_carry_no_script(project: Path, config: Config) -> None:
    hostile = make_item(
        1, title="<script>alert(1)</script>", summary="<img src=x onerror=alert(1)>", section="WORLD"
    )
    with Store(config.store.path) as store:
        store.write_batch([ItemWrite(item=hostile)])
    assert run_feeds("export", cwd=project).returncode == 0
    public = project / "public"
    for path in ["index.html", "sections/world.html", "sections/all.html", "feeds/world.html"]:
        text = (public / path).read_text(encoding="utf-8")
        assert "<script" not in text and "<img" not in text, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text, path
        assert re.search(r'<meta name="viewport" content="width=device-width, initial-scale=1">', text)
