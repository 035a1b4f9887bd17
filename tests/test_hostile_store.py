"""The store, the disk and the seeds against a clumsy operator, through the CLI:
a read-only store, seed files over the size cap, a file where the output
needs a folder. A read-only disk is a real tmpfs (as root; skipped elsewhere)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.cliutil import run_feeds
from tests.conftest import PUBLIC_SEED
from tests.remote_helpers import config_with_sources


def test_a_seed_file_over_the_size_cap_is_refused_by_name(project: Path) -> None:
    config = project / "config.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[seeds]\n", f"[seeds]\nmax_bytes = {PUBLIC_SEED.stat().st_size + 100}\n"))
    big = project / "seeds" / "001_huge.txt"
    big.write_bytes(PUBLIC_SEED.read_bytes() * 2)
    result = run_feeds("ingest", cwd=project)
    assert "Traceback" not in result.stderr
    output = result.stdout + result.stderr
    assert f"{big}: {big.stat().st_size} bytes is over the" in output
    assert "([seeds] max_bytes)" in output
    assert f"seed {PUBLIC_SEED.name}: ingested, 14 items" in output  # the other file is stored


def test_a_file_where_the_output_needs_a_folder_is_named(project: Path) -> None:
    out = project / "out"
    out.mkdir()
    (out / "feeds").write_text("not a folder", encoding="utf-8")
    result = run_feeds("export", "--offline", "--out", str(out), cwd=project)
    assert result.returncode == 1
    assert (
        result.stderr.strip().splitlines()[-1]
        == f"feeds: error: {out / 'feeds'}: is a file, where a folder is needed"
    )


@contextmanager
def small_disk(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``folder`` (root only; skips elsewhere)."""
    folder.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small disk needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_read_only_store_can_still_be_read(project: Path) -> None:
    with small_disk(project / "disk", "8m") as disk:
        config = project / "config.toml"
        config.write_text(config.read_text(encoding="utf-8").replace('"data/feeds.db"', f'"{disk}/feeds.db"'))
        assert run_feeds("ingest", cwd=project).returncode == 0
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        status = run_feeds("status", cwd=project)
        assert status.returncode == 0, status.stderr
        assert "items: 14" in status.stdout
        page = run_feeds("serve", "--get", "/feeds/all.atom", cwd=project)
        assert page.returncode == 0, page.stderr
        assert page.stdout.startswith("200 OK\n") and page.stdout.count("<entry>") == 14
        write = run_feeds("ingest", cwd=project)
        assert write.returncode != 0
        assert "read-only" in write.stderr and "Traceback" not in write.stderr
        assert len(write.stderr.strip().splitlines()) == 1


def test_a_full_disk_fails_the_refresh_and_nothing_unstored_looks_fresh(
    project: Path, httpserver: HTTPServer
) -> None:
    sources = []
    for n in range(40):
        body = rss_feed(n, entries=150)
        httpserver.expect_request(f"/{n}.xml").respond_with_data(body, content_type="application/rss+xml")
        sources.append({"name": f"s{n}", "url": httpserver.url_for(f"/{n}.xml")})
    with small_disk(project / "disk", "1m") as disk:
        config_with_sources(project, sources)
        config = project / "config.toml"
        config.write_text(config.read_text(encoding="utf-8").replace('"data/feeds.db"', f'"{disk}/feeds.db"'))
        result = run_feeds("refresh", "--all", cwd=project)
        assert result.returncode == 1, result.stdout + result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("feeds: error:")]
        assert len(errors) == 1 and "disk is full" in errors[0], result.stderr
        assert "Traceback" not in result.stderr
        assert result.stdout.count("disk is full") == 0  # not one error per source
        status = run_feeds("status", "--json", cwd=project)
        assert status.returncode == 0, status.stderr
        shown_fresh = {s["name"] for s in json.loads(status.stdout)["sources"] if s.get("last_success")}
        with sqlite3.connect(disk / "feeds.db") as conn:
            stored = {
                row[0] for row in conn.execute("SELECT DISTINCT name FROM origins WHERE kind = 'source'")
            }
        assert shown_fresh <= stored
        assert len(stored) < 40  # the disk did fill up


def rss_feed(n: int, entries: int) -> str:
    words = " ".join(f"word{i}" for i in range(150))
    items = "".join(
        f"<item><title>Source {n} story {i}</title><link>http://example.org/{n}/{i}</link>"
        f"<description>{words}</description></item>"
        for i in range(entries)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>S</title>'
        f"<link>http://example.org/</link><description>d</description>{items}</channel></rss>"
    )
