"""Full-text search: the FTS5 index follows every write and deletion, and
`feeds search` finds seed and remote items by their words."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from feeds.model import ItemWrite, SourceState
from store import Store
from store.search import match_expression
from tests.cliutil import run_feeds
from tests.remote_helpers import config_with_sources, rss


def titles(result_stdout: str) -> list[str]:
    return [row["title"] for row in json.loads(result_stdout)]


def test_search_finds_seed_items_by_title_summary_and_body_words(project: Path) -> None:
    assert run_feeds("ingest", cwd=project).returncode == 0
    by_title = run_feeds("search", "--json", "Galatasaray", cwd=project)
    assert by_title.returncode == 0, by_title.stderr
    assert titles(by_title.stdout) == ["Galatasaray crowned winter champion in Süper Lig"]
    # "CECOT" is only in the body of the El Salvador article; accents and case do not matter.
    assert titles(run_feeds("search", "--json", "cecot", cwd=project).stdout) == [
        "El Salvador leader defends mega-prison"
    ]
    assert len(titles(run_feeds("search", "--json", "turkiye", cwd=project).stdout)) == 3
    # Every word is required.
    assert titles(run_feeds("search", "--json", "Türkiye", "Sudan", cwd=project).stdout) == [
        "Türkiye seeks ceasefire in Sudan, supports its territorial integrity: Erdoğan"
    ]


def test_search_prints_one_line_per_item_with_its_link(project: Path) -> None:
    assert run_feeds("ingest", cwd=project).returncode == 0
    result = run_feeds("search", "Galatasaray", cwd=project)
    assert result.returncode == 0
    [line] = result.stdout.splitlines()
    assert line.startswith("20")
    assert "  sports  Galatasaray crowned winter champion in Süper Lig  http://127.0.0.1:8080/items/" in line
    nothing = run_feeds("search", "nosuchword", cwd=project)
    assert nothing.returncode == 0
    assert nothing.stdout == ""
    assert "no stored item matches 'nosuchword'" in nothing.stderr


@pytest.mark.parametrize(
    "query",
    ['"', "NEAR(a b", "title:prison", "prison OR *", "(((", "-prison", "a AND", "^prison", "'"],
)
def test_search_syntax_in_a_query_is_read_as_words_never_an_error(project: Path, query: str) -> None:
    assert run_feeds("ingest", cwd=project).returncode == 0
    result = run_feeds("search", "--json", "--", query, cwd=project)
    assert result.returncode == 0, result.stderr
    assert "error" not in result.stderr
    json.loads(result.stdout)


def test_match_expression_quotes_every_word() -> None:
    assert match_expression('NEAR("a" b) OR title:c*') == '"NEAR" "a" "b" "OR" "title" "c"'
    assert match_expression(" ... ") is None


def test_search_finds_remote_items_and_follows_their_changes(httpserver: HTTPServer, project: Path) -> None:
    first = rss(
        "Wire",
        [
            {
                "guid": "w-1",
                "link": "http://127.0.0.1/a",
                "title": "Volcano erupts",
                "description": "Ash cloud.",
            }
        ],
    )
    httpserver.expect_ordered_request("/w.xml").respond_with_data(first, content_type="application/rss+xml")
    config_with_sources(project, [{"name": "wire", "url": httpserver.url_for("/w.xml"), "section": "world"}])
    assert run_feeds("refresh", "wire", cwd=project).returncode == 0
    found = json.loads(run_feeds("search", "--json", "ash", cwd=project).stdout)
    assert [(r["title"], r["url"], r["section"]) for r in found] == [
        ("Volcano erupts", "http://127.0.0.1/a", "world")
    ]
    # The entry is corrected upstream: the old words are forgotten, the new ones found.
    second = rss(
        "Wire",
        [
            {
                "guid": "w-1",
                "link": "http://127.0.0.1/a",
                "title": "Volcano erupts",
                "description": "Lava flow.",
            }
        ],
    )
    httpserver.expect_ordered_request("/w.xml").respond_with_data(second, content_type="application/rss+xml")
    assert run_feeds("refresh", "--all", cwd=project).returncode == 0
    assert titles(run_feeds("search", "--json", "ash", cwd=project).stdout) == []
    assert titles(run_feeds("search", "--json", "lava", cwd=project).stdout) == ["Volcano erupts"]


def test_the_index_forgets_deleted_items(project: Path, store: Store) -> None:
    assert run_feeds("ingest", cwd=project).returncode == 0
    [item] = store.search("Galatasaray", 5)
    with store.transaction() as db:
        db.execute("DELETE FROM origins WHERE item_id = ?", [item.id])
        db.execute("DELETE FROM items WHERE id = ?", [item.id])
    assert store.search("Galatasaray", 5) == []


def test_search_of_one_section_newest_first(project: Path, store: Store) -> None:
    assert run_feeds("ingest", cwd=project).returncode == 0
    assert [i.section_slug for i in store.search("Türkiye", 10, section_slug="economy")] == ["economy"]
    newest = store.search("Türkiye", 10, order="newest")
    assert [i.published for i in newest] == sorted((i.published for i in newest), reverse=True)


def test_search_help_exists(project: Path) -> None:
    result = run_feeds("search", "--help", cwd=project)
    assert result.returncode == 0
    assert "every one of WORDS" in result.stdout


def test_items_written_but_not_yet_indexed_are_found_changed_and_forgotten(
    project: Path, store: Store
) -> None:
    # A source's items wait for the writer's next flush to be indexed; a
    # search in between indexes them first. Changing or deleting a row that
    # waits, or one already indexed, leaves no stale words behind.
    assert run_feeds("ingest", cwd=project).returncode == 0
    [seed] = store.search("Galatasaray", 5)
    when = seed.published
    fresh = [
        replace(seed, id=f"remote-{n}", slug=f"remote-{n}", key=f"remote {n}", title=f"Zeppelin {word} lands")
        for n, word in enumerate(["quokka", "narwhal"])
    ]
    state = SourceState(name="wire", url="http://127.0.0.1/w.xml", last_attempt=when, last_success=when)
    store.write_source(state, [ItemWrite(item) for item in fresh])
    assert sorted(i.id for i in store.search("zeppelin", 10)) == ["remote-0", "remote-1"]
    store.write_source(state, [ItemWrite(replace(fresh[0], title="Zeppelin okapi lands"))])
    assert [i.id for i in store.search("okapi", 10)] == ["remote-0"]
    assert store.search("quokka", 10) == []
    with store.transaction() as db:
        db.execute("DELETE FROM origins WHERE item_id = ?", [seed.id])
        db.execute("DELETE FROM items WHERE id IN (?, ?)", ["remote-1", seed.id])
    assert store.search("narwhal", 10) == []
    # The copies share the seed's body; only the one left is found by it.
    assert [i.id for i in store.search("Galatasaray", 10)] == ["remote-0"]
    assert [i.id for i in store.search("zeppelin", 10)] == ["remote-0"]
