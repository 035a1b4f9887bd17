"""[store] keep: ingest and refresh delete items older than `keep`, except
those their source's current feed document still carries; each deletion
leaves a tombstone and leaves search and archive numbering consistent.
Through the CLI, against a real feed on 127.0.0.1, with the clock pinned."""

from __future__ import annotations

import json
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path

from lxml import etree
from pytest_httpserver import HTTPServer

from feeds.publish.generate import AT_NS as AT
from store import Store
from tests.cliutil import run_feeds
from tests.conftest import NOW
from tests.feedcheck import check_atom
from tests.remote_helpers import config_with_sources

DAYS = 400


def daily_feed(days: range) -> bytes:
    """An RSS 2.0 feed with one entry a day back from NOW, for each day in ``days``."""
    parts = ['<?xml version="1.0"?><rss version="2.0"><channel><title>Daily</title>']
    parts.append("<link>http://127.0.0.1/</link><description>d</description>")
    for n in days:
        date = format_datetime(NOW - timedelta(days=n, hours=1), usegmt=True)
        parts.append(
            f"<item><title>Harbour report {n}</title><link>http://127.0.0.1/{n}</link>"
            f"<guid>http://127.0.0.1/{n}</guid><pubDate>{date}</pubDate>"
            f"<description>tide marker{n}</description></item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts).encode()


def with_keep(project: Path, settings: str) -> None:
    config = project / "config.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace('path = "data/feeds.db"\n', f'path = "data/feeds.db"\n{settings}\n'), "utf-8"
    )


def found(project: Path, word: str) -> list[str]:
    result = run_feeds("search", "--json", word, cwd=project)
    assert result.returncode == 0, result.stderr
    return [row["title"] for row in json.loads(result.stdout)]


def test_refresh_keeps_only_the_last_keep_and_what_the_feed_still_carries(
    httpserver: HTTPServer, project: Path
) -> None:
    config_with_sources(
        project, [{"name": "daily", "url": httpserver.url_for("/feed.xml"), "section": "world"}]
    )
    with_keep(project, 'keep = "180d"')
    env = {"SOURCE_DATE_EPOCH": str(int(NOW.timestamp()))}
    httpserver.expect_request("/feed.xml").respond_with_data(
        daily_feed(range(DAYS)), content_type="application/rss+xml"
    )
    first = run_feeds("refresh", "--all", cwd=project, env=env)
    assert first.returncode == 0, first.stderr
    # The feed still carries all 400 entries: none goes, however old.
    with Store(project / "data" / "feeds.db") as store:
        assert store.count_items() == DAYS
    assert found(project, "marker399") == ["Harbour report 399"]

    httpserver.clear()
    httpserver.expect_request("/feed.xml").respond_with_data(
        daily_feed(range(10)), content_type="application/rss+xml"
    )
    second = run_feeds("refresh", "--all", cwd=project, env=env)
    assert second.returncode == 0, second.stderr
    with Store(project / "data" / "feeds.db") as store:
        assert store.count_items() == 180  # days 0 to 179: younger than keep
        [oldest] = store.tombstones("all")[-1:]
        assert len(store.tombstones("all")) == DAYS - 180
        assert oldest.deleted == NOW
    assert found(project, "marker399") == []
    assert found(project, "marker180") == []
    assert found(project, "marker179") == ["Harbour report 179"]
    export = run_feeds("export", cwd=project, env=env)
    assert export.returncode == 0, export.stderr
    # The feed tells subscribers what went (RFC 6721), in a fixed order.
    atom = (project / "public" / "feeds" / "all.atom").read_bytes()
    check_atom(atom)
    gone = etree.fromstring(atom).findall(f"{{{AT}}}deleted-entry")
    assert len(gone) == DAYS - 180
    refs = [g.get("ref") for g in gone]
    assert refs == sorted(refs)
    assert {g.get("when") for g in gone} == {"2026-01-05T12:00:00Z"}
    assert b"Harbour report 399" not in atom
    assert b"deleted-entry" not in (project / "public" / "feeds" / "all.rss").read_bytes()
    world = (project / "public" / "feeds" / "world.atom").read_bytes()
    check_atom(world)
    assert [g.get("ref") for g in etree.fromstring(world).findall(f"{{{AT}}}deleted-entry")] == refs


def test_ingest_deletes_old_seed_items_and_tombstones_expire(project: Path) -> None:
    with_keep(project, 'keep = "180d"\nkeep_tombstones = "10d"')
    pinned = {"SOURCE_DATE_EPOCH": str(int(NOW.timestamp()))}
    assert run_feeds("ingest", cwd=project, env=pinned).returncode == 0
    assert found(project, "Galatasaray") != []
    with Store(project / "data" / "feeds.db") as store:
        count = store.count_items()
        newest = store.newest_item()
        all_ids = {item.id for item in store.feed_items(None, 1000)}
    assert newest is not None
    later = int((newest.published + timedelta(days=DAYS)).timestamp())
    again = run_feeds("ingest", cwd=project, env={"SOURCE_DATE_EPOCH": str(later)})
    assert again.returncode == 0, again.stderr
    assert found(project, "Galatasaray") == []
    with Store(project / "data" / "feeds.db") as store:
        assert store.count_items() == 0
        assert len(store.tombstones("all")) == count
    # Ten days and a second later the tombstones are purged too.
    purge = str(later + 10 * 86400 + 1)
    assert run_feeds("export", cwd=project, env={"SOURCE_DATE_EPOCH": str(later)}).returncode == 0
    # A section left with no items has no feed; "all" still announces them.
    every = (project / "public" / "feeds" / "all.atom").read_bytes()
    check_atom(every)
    announced = etree.fromstring(every).findall(f"{{{AT}}}deleted-entry")
    assert {g.get("ref") for g in announced} == all_ids
    assert run_feeds("ingest", cwd=project, env={"SOURCE_DATE_EPOCH": purge}).returncode == 0
    with Store(project / "data" / "feeds.db") as store:
        assert store.tombstones("all") == []
    assert run_feeds("export", cwd=project, env={"SOURCE_DATE_EPOCH": purge}).returncode == 0
    assert b"deleted-entry" not in (project / "public" / "feeds" / "all.atom").read_bytes()


def test_bad_keep_is_one_line_naming_the_key(project: Path) -> None:
    with_keep(project, 'keep = "400d"')
    result = run_feeds("ingest", cwd=project)
    assert result.returncode != 0
    [line] = result.stderr.strip().splitlines()
    assert "store.keep" in line
    assert "366 days" in line
