"""`feeds sources ...` and the operator-facing exit codes and logs, through the real CLI."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from feeds.config import load_config
from tests.cliutil import run_feeds
from tests.conftest import REPO
from tests.remote_helpers import REMOTE, config_with_sources

OPML = Path(__file__).resolve().parent / "data" / "opml" / "subscriptions.opml"
RSS = "application/rss+xml"


@pytest.fixture
def commented(project: Path) -> Path:
    """The project with the repository's own, fully commented config.toml."""
    shutil.copy(REPO / "config.toml", project / "config.toml")
    return project


def comments(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if "#" in line]


def test_an_opml_of_twenty_feeds_imports_keeping_every_comment(commented: Path) -> None:
    before = (commented / "config.toml").read_text(encoding="utf-8")
    out = run_feeds("sources", "import", str(OPML), cwd=commented)
    assert out.returncode == 0, out.stderr
    assert "imported 20 sources" in out.stdout
    after = (commented / "config.toml").read_text(encoding="utf-8")
    assert comments(after) == comments(before)
    assert after.startswith(before.rstrip("\n"))  # appended; nothing above was rewritten
    config = load_config(commented / "config.toml")
    assert len(config.sources) == 20
    by_name = {s.name: s for s in config.sources}
    assert by_name["harbour-times"].section == "world"  # the OPML folder is the section
    assert by_name["ledger-co"].section == "economy"
    assert by_name["harbour-times-2"].section is None  # same title again, outside a folder
    assert "cafe-noticias" in by_name
    again = run_feeds("sources", "import", str(OPML), cwd=commented)
    assert "imported 0 sources, skipped 20" in again.stdout
    assert (commented / "config.toml").read_text(encoding="utf-8") == after


def test_import_section_option_files_every_feed_there(commented: Path) -> None:
    out = run_feeds("sources", "import", str(OPML), "--section", "World News", cwd=commented)
    assert out.returncode == 0, out.stderr
    assert {s.section for s in load_config(commented / "config.toml").sources} == {"world-news"}


def test_add_disable_enable_remove_round_trip(commented: Path) -> None:
    path = commented / "config.toml"
    original = path.read_text(encoding="utf-8")
    url = "https://wire.example.org/feed.xml"
    added = run_feeds(
        "sources", "add", url, "--name", "wire", "--section", "world", "--interval", "30m", "--no-check",
        cwd=commented,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    with_wire = path.read_text(encoding="utf-8")
    (source,) = load_config(path).sources
    assert (source.name, source.url, source.section, source.interval) == ("wire", url, "world", 1800.0)

    assert run_feeds("sources", "disable", "wire", cwd=commented).returncode == 0
    assert load_config(path).sources[0].enabled is False
    assert "wire\toff\tworld\tevery 1800s\t" + url in run_feeds("sources", "list", cwd=commented).stdout
    assert "already disabled" in run_feeds("sources", "disable", "wire", cwd=commented).stdout
    assert run_feeds("sources", "enable", "wire", cwd=commented).returncode == 0
    assert path.read_text(encoding="utf-8") == with_wire  # disable + enable changes nothing

    assert run_feeds("sources", "remove", "wire", cwd=commented).returncode == 0
    assert load_config(path).sources == ()
    assert path.read_text(encoding="utf-8").rstrip("\n") == original.rstrip("\n")


def test_duplicates_unknown_names_and_invalid_edits_exit_2_and_change_nothing(commented: Path) -> None:
    path = commented / "config.toml"
    url = "https://wire.example.org/feed.xml"
    assert run_feeds("sources", "add", url, "--name", "wire", "--no-check", cwd=commented).returncode == 0
    before = path.read_text(encoding="utf-8")
    cases = {
        ("sources", "add", url, "--name", "other", "--no-check"): "is already source 'wire'",
        ("sources", "add", "https://else.example.org/", "--name", "wire", "--no-check"): "already exists",
        ("sources", "add", "https://x.example.org/", "--interval", "soon", "--no-check"): "interval",
        ("sources", "add", "ftp://x.example.org/", "--no-check"): "expected an http(s) URL",
        ("sources", "remove", "nosuch"): "no such source 'nosuch' (sources: wire)",
        ("sources", "enable", "nosuch"): "no such source",
        ("refresh", "nosuch"): "no such source: nosuch",
    }
    for args, message in cases.items():
        out = run_feeds(*args, cwd=commented)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert message in out.stderr and "Traceback" not in out.stderr, (args, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert path.read_text(encoding="utf-8") == before


def test_add_checks_the_feed_once_and_names_the_source_from_its_title(
    httpserver: HTTPServer, project: Path
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(
        (REMOTE / "rss20.xml").read_bytes(), content_type=RSS
    )
    httpserver.expect_request("/page.html").respond_with_data("<html><body>hi</body></html>")
    out = run_feeds("sources", "add", httpserver.url_for("/feed.xml"), cwd=project)
    assert out.returncode == 0, out.stderr
    assert re.search(r"found: .+, rss20, 2 items", out.stdout), out.stdout
    (source,) = load_config(project / "config.toml").sources
    assert source.url == httpserver.url_for("/feed.xml") and source.name != "new-source"
    bad = run_feeds("sources", "add", httpserver.url_for("/page.html"), cwd=project)
    assert bad.returncode == 1 and "not added" in bad.stderr and "--no-check" in bad.stderr
    assert len(load_config(project / "config.toml").sources) == 1


def test_sources_export_writes_opml_that_imports_back(commented: Path, tmp_path: Path) -> None:
    run_feeds("sources", "import", str(OPML), cwd=commented)
    out = run_feeds("sources", "export", str(tmp_path / "out.opml"), cwd=commented)
    assert out.returncode == 0, out.stderr
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "config.toml").write_text('[site]\ntitle = "Fresh"\n', encoding="utf-8")
    assert run_feeds("sources", "import", str(tmp_path / "out.opml"), cwd=fresh).returncode == 0
    original = {(s.url, s.section) for s in load_config(commented / "config.toml").sources}
    assert {(s.url, s.section) for s in load_config(fresh / "config.toml").sources} == original
    stdout = run_feeds("sources", "export", cwd=commented).stdout
    assert stdout.startswith("<?xml") and stdout.count("xmlUrl=") == 20


def test_ingest_refuses_an_opml_file_and_a_feed(project: Path) -> None:
    shutil.copy(OPML, project / "subs.opml")
    shutil.copy(REMOTE / "atom10.xml", project / "feed.xml")
    out = run_feeds("ingest", "subs.opml", "feed.xml", cwd=project)
    assert out.returncode == 1
    assert "not a seed document: an OPML subscription list" in out.stderr
    assert "feeds sources import" in out.stderr
    assert "not a seed document: an Atom feed" in out.stderr
    assert "Traceback" not in out.stderr
    status = json.loads(run_feeds("status", "--json", cwd=project).stdout)
    assert status["items"] == 0


def test_strict_refresh_exits_1_and_failures_are_warnings(httpserver: HTTPServer, project: Path) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(
        (REMOTE / "rss20.xml").read_bytes(), content_type=RSS
    )
    httpserver.expect_request("/broken.xml").respond_with_data("oops", status=500)
    config_with_sources(
        project,
        [
            {"name": "good", "url": httpserver.url_for("/feed.xml")},
            {"name": "broken", "url": httpserver.url_for("/broken.xml")},
        ],
    )
    lenient = run_feeds("refresh", "--all", cwd=project)
    assert lenient.returncode == 0
    assert re.search(r"WARNING \S+: source broken: error, HTTP 500", lenient.stderr), lenient.stderr
    # "broken" now backs off, which --all honours: --force fetches it again.
    strict = run_feeds("refresh", "--force", "--strict", cwd=project)
    assert strict.returncode == 1
    quiet = run_feeds("--quiet", "refresh", "--force", cwd=project)
    assert quiet.stdout == "" and "source broken: error" in quiet.stderr
    as_json = run_feeds("--log-format", "json", "refresh", "--force", cwd=project)
    records = [json.loads(line) for line in as_json.stderr.splitlines()]
    assert any(r["level"] == "WARNING" and "source broken" in r["message"] for r in records)


def test_export_base_url_overrides_the_links_of_one_export(project: Path, tmp_path: Path) -> None:
    out = run_feeds(
        "export", "--offline", "--out", str(tmp_path / "cdn"), "--base-url", "https://cdn.example.org/news",
        cwd=project,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    atom = (tmp_path / "cdn" / "feeds" / "all.atom").read_text(encoding="utf-8")
    assert 'href="https://cdn.example.org/news/feeds/all.atom"' in atom
    assert "127.0.0.1:8080" not in atom
    assert run_feeds("export", "--offline", cwd=project).returncode == 0
    assert "127.0.0.1:8080" in (project / "public" / "feeds" / "all.atom").read_text(encoding="utf-8")
    bad = run_feeds("export", "--offline", "--base-url", "cdn.example.org", cwd=project)
    assert bad.returncode == 2 and "--base-url" in bad.stderr and "http(s) URL" in bad.stderr
