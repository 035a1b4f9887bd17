"""Hostile remote feeds through the CLI: a bad field costs that field or that
entry, never the feed, and what we republish stays valid.

Each feed is served by a real server on 127.0.0.1, refreshed and exported
with `feeds`; the published Atom is checked against the RELAX NG schema (and
the W3C validator where $FEEDS_W3C_VALIDATOR names one)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from feeds.normalise import valid_atom_id
from tests.cliutil import run_feeds
from tests.feedcheck import check_atom, check_rss
from tests.remote_helpers import config_with_sources

VALIDATOR = os.environ.get("FEEDS_W3C_VALIDATOR")
GOOD = (
    "<item><title>Good sibling</title><link>http://example.org/good</link><guid>http://example.org/good</guid>"
    "<pubDate>Mon, 05 Jan 2026 10:00:00 GMT</pubDate></item>"
)


def rss(*items: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        "<channel><title>Hostile</title><link>http://example.org/</link><description>d</description>"
        + "".join(items)
        + "</channel></rss>"
    )


def refresh_and_export(httpserver: HTTPServer, project: Path, body: str) -> tuple[str, str, bytes]:
    """(refresh stdout, status stdout, published world.atom) after one refresh and export."""
    httpserver.expect_request("/feed.xml").respond_with_data(body, content_type="application/rss+xml")
    config_with_sources(
        project, [{"name": "hostile", "url": httpserver.url_for("/feed.xml"), "section": "world"}]
    )
    refresh = run_feeds("refresh", "--all", cwd=project)
    assert refresh.returncode == 0, refresh.stdout + refresh.stderr
    assert "Traceback" not in refresh.stderr
    export = run_feeds("export", "--offline", cwd=project)
    assert export.returncode == 0, export.stderr
    atom = (project / "public" / "feeds" / "world.atom").read_bytes()
    check_atom(atom)
    check_rss((project / "public" / "feeds" / "world.rss").read_bytes())
    if VALIDATOR:
        feeds = project / "public" / "feeds"
        out = subprocess.run(
            [VALIDATOR, str(feeds / "world.atom"), str(feeds / "world.rss")],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert out.returncode == 0, out.stdout
    return refresh.stdout, run_feeds("status", cwd=project).stdout, atom


@pytest.mark.parametrize(
    "bad_date",
    [
        "<pubDate>Mon, 01 Jan 99999999999 00:00:00 GMT</pubDate>",
        "<pubDate>Mon, 01 Jan 2024 99:99:99 +9999</pubDate>",
        "<dc:date>99999-01-01T00:00:00Z</dc:date>",
        "<pubDate>Mon, 01 Jan 0000 00:00:00 GMT</pubDate>",
    ],
)
def test_one_bad_date_costs_that_date_not_the_feed(
    httpserver: HTTPServer, project: Path, bad_date: str
) -> None:
    bad = f"<item><title>Badly dated</title><link>http://example.org/bad</link>{bad_date}</item>"
    out, _, atom = refresh_and_export(httpserver, project, rss(GOOD, bad))
    assert "2 items changed" in out, out
    assert b"Good sibling" in atom and b"Badly dated" in atom
    assert b"<published>2026-01-05T10:00:00" in atom  # the good date is kept


@pytest.mark.parametrize(
    "guid",
    ["urn:uuid:not-a-uuid", "urn:x:foo", "tag:nonsense", "urn:isbn:", "1234", "http:///nohost", "a b:c"],
)
def test_an_id_that_is_no_valid_uri_becomes_a_stable_tag_scoped_by_the_source(
    httpserver: HTTPServer, project: Path, guid: str
) -> None:
    entry = (
        "<item><title>Odd id</title><link>http://example.org/odd</link>"
        f"<guid isPermaLink='false'>{guid}</guid></item>"
    )
    _, _, atom = refresh_and_export(httpserver, project, rss(GOOD, entry))
    ids = re.findall(rb"<id>([^<]+)</id>", atom)
    assert guid.encode() not in ids
    assert any(i.startswith(b"tag:test.example.org,2026:source/hostile/") for i in ids)
    again = run_feeds("refresh", "--all", "--force", cwd=project)
    assert again.returncode == 0 and "0 items changed" in again.stdout  # the same tag: the same item


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        ("urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a", True),
        ("urn:isbn:0451450523", True),
        ("tag:example.org,2026:story/1", True),
        ("http://example.org/1", True),
        ("mailto:desk@example.org", True),
        ("urn:uuid:not-a-uuid", False),
        ("urn:x:foo", False),
        ("tag:example.org:1", False),
        ("http://", False),
        ("http://example.org/%zz", False),
        ("http://example.org/a b", False),
        ("1234", False),
    ],
)
def test_valid_atom_ids(key: str, valid: bool) -> None:
    assert valid_atom_id(key) is valid


def test_a_huge_link_is_dropped_with_a_warning(httpserver: HTTPServer, project: Path) -> None:
    huge = "http://example.org/" + "a" * 1_000_000
    entry = f"<item><title>Huge link</title><link>{huge}</link><guid isPermaLink='false'>huge-1</guid></item>"
    _, status, atom = refresh_and_export(httpserver, project, rss(GOOD, entry))
    assert b"Huge link" in atom and b"aaaaaaaaaa" not in atom
    assert len(atom) < 20_000
    assert "warning: 1 link over 2048 characters dropped" in status
