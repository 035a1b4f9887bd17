"""Index, item pages and OPML: escaped, complete, discoverable."""

from __future__ import annotations

from lxml import etree

from feeds.config import Config
from feeds.model import ItemWrite
from feeds.publish.pages import Pages
from feeds.publish.site import all_specs, title_case
from feeds.publish.tree import Publisher
from store import Store
from tests.strategies import make_item


def test_index_lists_sections_with_counts_and_autodiscovery(config: Config, store: Store) -> None:
    store.write_batch(
        [ItemWrite(item=make_item(i)) for i in range(3)]
        + [ItemWrite(item=make_item(7, section="ARTS & CULTURE", section_slug="arts-culture"))]
    )
    publisher = Publisher(store, config)
    view = publisher.view()
    files = publisher.site_files(view)
    assert [s.slug for s in view.specs] == ["all", "arts-culture", "world"]
    page = files["index.html"].body.decode()
    sections = page.split("<h2>Sections</h2>", 1)[1]
    for name, slug, count in (
        ("All stories", "all", "4 stories"),
        ("Arts &amp; Culture", "arts-culture", "1 story"),
        ("World", "world", "3 stories"),
    ):
        assert (
            f'<a class="name" href="http://127.0.0.1:8080/sections/{slug}.html">{name}</a>'
            f' <span class="meta">{count}</span>'
        ) in sections
        assert f'<a href="http://127.0.0.1:8080/feeds/{slug}.html">preview</a>' in sections
    for slug in ("all", "arts-culture", "world"):
        for kind, ext in (("rss+xml", "rss"), ("atom+xml", "atom"), ("feed+json", "json")):
            assert f'type="application/{kind}"' in page
            assert f'href="http://127.0.0.1:8080/feeds/{slug}.{ext}"' in page
    opml = etree.fromstring(files["opml.xml"].body)
    assert [o.get("xmlUrl") for o in opml.iter("outline")] == [
        f"http://127.0.0.1:8080/feeds/{s}.rss" for s in ("all", "arts-culture", "world")
    ]


def test_item_page_escapes_everything(config: Config) -> None:
    item = make_item(
        1,
        title="<script>alert(1)</script> & co",
        body=("<img src=x onerror=alert(1)>",),
        dateline="İZMİR",
        kind="article",
    )
    page = Pages(config, all_specs(config, [])).item(item).decode()
    assert "<script>" not in page
    assert "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    assert "İZMİR" in page
    assert "24 December 2025" in page


def test_title_case_keeps_turkish_letters() -> None:
    assert title_case("TÜRKİYE") == "Türkiye"
    assert title_case("ARTS & CULTURE") == "Arts & Culture"
