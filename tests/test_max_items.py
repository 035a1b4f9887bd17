"""[[sources]] max_items: one prolific source cannot crowd the others out of
a combined feed (all, a section). Through the CLI against real feeds on 127.0.0.1."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path

import feedparser
from pytest_httpserver import HTTPServer

from tests.cliutil import run_feeds
from tests.conftest import NOW
from tests.remote_helpers import config_with_sources


def feed(name: str, count: int, start: timedelta) -> bytes:
    parts = [f'<?xml version="1.0"?><rss version="2.0"><channel><title>{name}</title>']
    parts.append("<link>http://127.0.0.1/</link><description>d</description>")
    for n in range(count):
        date = format_datetime(NOW - start - timedelta(minutes=n), usegmt=True)
        parts.append(
            f"<item><title>{name} story {n}</title><link>http://127.0.0.1/{name}/{n}</link>"
            f"<guid>http://127.0.0.1/{name}/{n}</guid><pubDate>{date}</pubDate></item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts).encode()


def test_a_capped_source_gives_only_its_newest_items_to_combined_feeds(
    httpserver: HTTPServer, project: Path
) -> None:
    httpserver.expect_request("/flood.xml").respond_with_data(feed("Flood", 60, timedelta(0)))
    httpserver.expect_request("/calm.xml").respond_with_data(feed("Calm", 5, timedelta(days=1)))
    sources = [
        {"name": "flood", "url": httpserver.url_for("/flood.xml"), "section": "world", "max_items": 3},
        {"name": "calm", "url": httpserver.url_for("/calm.xml"), "section": "world"},
    ]
    config_with_sources(project, sources)
    env = {"SOURCE_DATE_EPOCH": str(int(NOW.timestamp()))}
    assert run_feeds("refresh", "--all", cwd=project, env=env).returncode == 0
    export = run_feeds("export", cwd=project, env=env)
    assert export.returncode == 0, export.stderr
    for slug in ("all", "world"):
        titles = [e.title for e in feedparser.parse(project / "public" / "feeds" / f"{slug}.atom").entries]
        # The seed's older stories follow; the flood's fourth story is nowhere.
        assert titles[:8] == [f"Flood story {n}" for n in range(3)] + [f"Calm story {n}" for n in range(5)]
        assert "Flood story 3" not in titles


def test_max_items_must_be_a_positive_integer(project: Path) -> None:
    config_with_sources(project, [{"name": "flood", "url": "http://127.0.0.1:9/f.xml", "max_items": 1}])
    config = project / "config.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("max_items = 1", "max_items = 0"), "utf-8")
    result = run_feeds("export", cwd=project)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "sources[0].max_items: must be positive, got 0" in line
