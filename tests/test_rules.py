"""Per-source include/exclude rules, through the `feeds` command against a
real server on 127.0.0.1 and a real store file."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from feeds.errors import ConfigError
from store import Store
from tests.cliutil import run_feeds
from tests.remote_helpers import config_with_sources, rss

RSS = "application/rss+xml"
DAY = "Mon, 05 Jan 2026 08:00:00 GMT"


def story(n: int, title: str, text: str = "Plain text.", category: str = "") -> dict[str, str]:
    extra = f"</description><category>{category}</category><description>" if category else ""
    return {
        "guid": f"s-{n}",
        "link": f"http://127.0.0.1/s/{n}",
        "title": title,
        "date": DAY,
        "description": f"{text}{extra}",
    }


STORIES = [
    story(1, "Harbour cranes return"),
    story(2, "SPONSORED: the best mattress", "Buy now."),
    story(3, "A party in the old town"),
    story(4, "Council meets", "The ferry timetable changes in March."),
    story(5, "Weekly notes", category="Sponsored"),
]


def titles(project: Path) -> list[str]:
    with Store(project / "data" / "feeds.db") as store:
        return sorted(i.title for i in store.iter_items())


def test_include_and_exclude_decide_what_is_stored_and_a_change_applies_next_fetch(
    httpserver: HTTPServer, project: Path
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(rss("Wire", STORIES), content_type=RSS)
    url = httpserver.url_for("/feed.xml")
    rules = {"include": ["harbour", "Ferry Timetable", "party", "notes"], "exclude": ["sponsored", "art"]}
    config_with_sources(project, [{"name": "wire", "url": url, **rules}])
    out = run_feeds("refresh", "--all", cwd=project)
    assert out.returncode == 0, out.stderr
    # Whole words in any case, over title, summary and categories: "art" is not in "party".
    assert titles(project) == ["A party in the old town", "Council meets", "Harbour cranes return"]

    config_with_sources(project, [{"name": "wire", "url": url, "exclude": ["harbour"]}])
    out = run_feeds("refresh", "--all", cwd=project)
    assert out.returncode == 0, out.stderr
    # The same body, read again under the new rules; what is stored stays.
    assert titles(project) == [
        "A party in the old town",
        "Council meets",
        "Harbour cranes return",
        "SPONSORED: the best mattress",
        "Weekly notes",
    ]


def test_a_rule_that_is_not_a_list_of_phrases_is_one_error_line(project: Path) -> None:
    cases = {("include", "sport"): "expected a list of strings", ("exclude", ("+++",)): "a letter or digit"}
    for (key, value), problem in cases.items():
        rule = list(value) if isinstance(value, tuple) else value
        with pytest.raises(ConfigError):  # the helper checks the file it writes, as the CLI will
            config_with_sources(project, [{"name": "wire", "url": "http://127.0.0.1:9/f", key: rule}])
        out = run_feeds("refresh", "--all", cwd=project)
        assert out.returncode == 2
        (line,) = out.stderr.strip().splitlines()
        assert f"sources[0].{key}" in line and problem in line
