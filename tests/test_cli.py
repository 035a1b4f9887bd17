"""The `feeds` command end to end, through its entry point, on real files."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

import click
import feedparser
import pytest

from feeds.cli.main import cli
from tests.cliutil import run_feeds
from tests.feedcheck import check_atom, check_json, check_rss

REPO = Path(__file__).resolve().parent.parent


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_export_publishes_every_section_and_page(project: Path) -> None:
    result = run_feeds("export", cwd=project)
    assert result.returncode == 0, result.stderr
    public = project / "public"
    for slug in ("all", "world", "economy", "sports"):
        for ext in ("rss", "atom", "json"):
            assert (public / "feeds" / f"{slug}.{ext}").is_file()
    assert (public / "index.html").is_file()
    assert (public / "opml.xml").is_file()
    counts = {
        slug: len(feedparser.parse((public / "feeds" / f"{slug}.atom").read_bytes()).entries)
        for slug in ("all", "world", "economy", "sports")
    }
    assert counts == {"all": 14, "world": 1, "economy": 1, "sports": 1}
    assert len(list((public / "items").glob("*.html"))) == 14
    assert re.search(r"^all: 14 items, 3 files written$", result.stdout, re.M)
    for slug in ("all", "world", "economy", "sports"):
        assert (public / "feeds" / f"{slug}.html").is_file()  # the feed's preview page
        assert (public / "sections" / f"{slug}.html").is_file()
        assert (public / "archive" / f"{slug}-1.atom").is_file()
        assert (public / "archive" / f"{slug}-1.rss").is_file()
    # 4 feeds of 3 files, their 4 previews, 4 section pages and 8 archive pages; index,
    # OPML, the source-health feed and 14 story pages.
    assert "total: 45 files written" in result.stdout


def test_every_feed_is_valid(project: Path) -> None:
    assert run_feeds("export", cwd=project).returncode == 0
    feeds_dir = project / "public" / "feeds"
    for path in sorted(p for p in feeds_dir.iterdir() if p.suffix not in (".gz", ".html")):
        data = path.read_bytes()
        {"rss": check_rss, "atom": check_atom, "json": check_json}[path.suffix[1:]](data)
        assert gzip.decompress(path.with_name(path.name + ".gz").read_bytes()) == data


def test_second_run_rewrites_nothing_and_a_rebuilt_store_gives_the_same_bytes(project: Path) -> None:
    assert run_feeds("export", cwd=project).returncode == 0
    first = snapshot(project / "public")
    again = run_feeds("export", cwd=project)
    assert "total: 0 files written" in again.stdout
    assert snapshot(project / "public") == first  # bytes and mtimes
    shutil.rmtree(project / "data")
    assert run_feeds("export", cwd=project).returncode == 0
    assert {k: v[0] for k, v in snapshot(project / "public").items()} == {k: v[0] for k, v in first.items()}


def test_a_bad_seed_is_reported_by_name_and_the_others_published(project: Path) -> None:
    (project / "seeds" / "broken.txt").write_bytes(b"\x00\x01\x02\xff\xfe binary \x00\x03" * 20)
    (project / "seeds" / "legacy.txt").write_bytes(
        "date 2025-12-25 \u0130zmir'de yeni liman a\u00e7\u0131ld\u0131\n\n"
        "\u0130zmir'de yeni liman a\u00e7\u0131ld\u0131\n\n"
        "\u0130ZM\u0130R\n\nLiman bug\u00fcn a\u00e7\u0131ld\u0131.\n".encode("cp1254")
    )
    result = run_feeds("export", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "broken.txt: skipped" in result.stderr
    assert "legacy.txt: warning: not valid UTF-8" in result.stderr
    atom = feedparser.parse((project / "public" / "feeds" / "all.atom").read_bytes())
    titles = {e.title for e in atom.entries}
    assert "El Salvador leader defends mega-prison" in titles
    assert "\u0130zmir'de yeni liman a\u00e7\u0131ld\u0131" in titles


def test_ingest_then_status_json(project: Path) -> None:
    first = run_feeds("ingest", cwd=project)
    assert "ingested, 14 items" in first.stdout
    second = run_feeds("ingest", cwd=project)
    assert "unchanged" in second.stdout
    assert "0 items stored or changed" in second.stdout
    status = json.loads(run_feeds("status", "--json", cwd=project).stdout)
    assert status["items"] == 14


def test_parse_prints_items_and_fails_clearly_on_a_missing_file(tmp_path: Path) -> None:
    seed = REPO / "seeds" / "000_1e8f96a0d2ae3308.txt"
    out = run_feeds("parse", str(seed), cwd=tmp_path)
    assert out.returncode == 0
    items = json.loads(out.stdout)
    assert len(items) == 14
    assert {"title", "kind", "section", "date", "dateline", "summary", "body", "paragraphs"} <= set(items[0])
    (tmp_path / "empty.txt").write_text("")
    assert json.loads(run_feeds("parse", str(tmp_path / "empty.txt"), cwd=tmp_path).stdout) == []
    missing = run_feeds("parse", str(tmp_path / "nope.txt"), cwd=tmp_path)
    assert missing.returncode == 1
    assert "nope.txt" in missing.stderr
    assert "Traceback" not in missing.stderr


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        found.append((f"{prefix}{name}", command))
        if isinstance(command, click.Group):
            found.extend(_commands(command, f"{prefix}{name} "))
    return found


@pytest.mark.parametrize(("name", "command"), _commands(cli))
def test_every_command_has_help(name: str, command: click.Command, tmp_path: Path) -> None:
    assert command.help, f"feeds {name} has no help text"
    result = run_feeds(*name.split(), "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "Usage:" in result.stdout


def test_python_dash_m_works(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "feeds", "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert "feeds" in result.stdout
