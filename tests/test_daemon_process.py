"""`feeds serve` as a real process: --get, signals, and SIGKILL in the middle of a refresh."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import feedparser
import pytest
from pytest_httpserver import HTTPServer

from feeds.model import Item
from store import Store
from tests.cliutil import feeds_command, run_feeds
from tests.feedcheck import check_atom

PINNED = "1767614400"  # SOURCE_DATE_EPOCH: 2026-01-05T12:00:00Z, so reruns give the same times
SECTIONS = ["WORLD", "ECONOMY", "SPORTS", "SCIENCE", "ARTS & CULTURE", "TÜRKİYE"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "FEEDS_CONFIG"}
    env.update(extra)
    return env


class Daemon:
    """A `feeds serve` process and its log."""

    def __init__(self, project: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.log_path = project / f"daemon-{time.monotonic_ns()}.log"
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [*feeds_command(), "serve", *args],
            cwd=project,
            env=env or clean_env(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if match := re.search(pattern, self.text()):
                return match
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} in the log:\n{self.text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.log.close()


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.stop()


def test_get_answers_one_request_through_the_entry_point(project: Path) -> None:
    result = run_feeds("serve", "--get", "/feeds/all.atom", cwd=project)
    assert result.returncode == 0, result.stderr
    head, _, body = result.stdout.partition("\n\n")
    assert head.splitlines()[0] == "200 OK"
    assert "content-type: application/atom+xml; charset=utf-8" in head.splitlines()
    etag = re.search(r"^etag: (.+)$", head, re.M)
    assert etag is not None
    parsed = feedparser.parse(body.encode("utf-8"))
    assert not parsed.bozo and len(parsed.entries) == 14
    check_atom(body.encode("utf-8"))

    conditional = f"If-None-Match: {etag.group(1)}"
    again = run_feeds("serve", "--get", "/feeds/all.atom", "-H", conditional, cwd=project)
    assert again.returncode == 0 and again.stdout.startswith("304 Not Modified\n")
    missing = run_feeds("serve", "--get", "/feeds/nope.atom", cwd=project)
    assert missing.returncode == 1 and missing.stdout.startswith("404 Not Found\n")


def test_serve_help_says_config_changes_need_a_restart(project: Path) -> None:
    result = run_feeds("serve", "--help", cwd=project)
    assert result.returncode == 0
    assert "reload" in result.stdout and "--get" in result.stdout and "--no-http" in result.stdout


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_exits_0_within_5_seconds(project: Path, daemons: list[Daemon], signum: int) -> None:
    daemon = Daemon(project, "--port", "0")
    daemons.append(daemon)
    port = int(daemon.wait_for(r"serving http://127\.0\.0\.1:(\d+)/").group(1))
    daemon.wait_for("ready")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/feeds/all.rss", timeout=5) as response:
        assert response.status == 200
    started = time.monotonic()
    daemon.process.send_signal(signum)
    assert daemon.process.wait(5) == 0
    assert time.monotonic() - started < 5
    assert "stopped" in daemon.text()


def test_a_stop_signal_does_not_wait_for_a_hung_fetch(project: Path, daemons: list[Daemon]) -> None:
    # A socket that accepts connections (the kernel does) but never answers.
    silent = socket.create_server(("127.0.0.1", 0))
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/feed.xml"
        with (project / "config.toml").open("a", encoding="utf-8") as config:
            config.write(f'\n[fetch]\ntimeout = "60s"\n\n[[sources]]\nname = "silent"\nurl = "{url}"\n')
        daemon = Daemon(project, "--port", "0")
        daemons.append(daemon)
        daemon.wait_for("seeds scan")
        time.sleep(0.5)  # the start-up refresh is now waiting on the silent socket
        started = time.monotonic()
        daemon.process.send_signal(signal.SIGTERM)
        assert daemon.process.wait(5) == 0
        assert time.monotonic() - started < 5
    finally:
        silent.close()
    with Store(project / "data" / "feeds.db") as store:
        assert store.count_items() == 14


def write_many_seeds(folder: Path, files: int, stories: int) -> None:
    for f in range(files):
        parts = [f" date 2025-12-{1 + f % 28:02d} Front page {f}\n\nFront page {f}\n"]
        for i in range(stories):
            section = SECTIONS[(f + i) % len(SECTIONS)]
            title = f"Story {f}-{i} about {section.lower()} matters"
            parts.append(f"\n{section} {title}\n\n{title}\n\nSummary of story {f} number {i}.\n")
        (folder / f"{f:03d}.txt").write_text("".join(parts), encoding="utf-8")


def rss_feed(name: str, entries: int, offset: int) -> str:
    # Distinct times per feed: equal times get their millisecond slots in the
    # order sources finish, which differs between any two runs.
    start = datetime(2025, 12, 1, tzinfo=UTC) + timedelta(seconds=offset)
    items = "".join(
        f"<item><title>{name} entry {i}</title><link>https://{name}.example/{i}</link>"
        f"<guid>https://{name}.example/{i}</guid><description>Entry {i} of {name}.</description>"
        f"<pubDate>{format_datetime(start + timedelta(minutes=i), usegmt=True)}</pubDate></item>"
        for i in range(entries)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{name}</title>'
        f"<link>https://{name}.example/</link><description>{name}</description>{items}</channel></rss>"
    )


def stored_items(db: Path) -> list[Item]:
    with Store(db) as store:
        return list(store.iter_items())


def stored_count(db: Path) -> int:
    """Items committed so far, read beside a running writer (WAL readers never block it)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as connection:
            return int(connection.execute("SELECT count(*) FROM items").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet, or its schema not yet written
        return 0


def wait_until_stored(db: Path, count: int, daemon: Daemon, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and daemon.process.poll() is None:
        if stored_count(db) >= count or "ready" in daemon.text():
            return
        time.sleep(0.005)
    raise AssertionError(f"the store never held {count} items:\n{daemon.text()}")


def test_sigkill_during_a_refresh_then_restart_gives_the_same_items(
    project: Path, tmp_path: Path, httpserver: HTTPServer, daemons: list[Daemon]
) -> None:
    """Kill -9 at several moments of the start-up ingest and refresh; each restart
    recovers, and the last one ends with exactly the items of an uninterrupted run."""
    write_many_seeds(project / "seeds", files=150, stories=40)
    sources = ""
    for offset, name in enumerate(("alpha", "beta", "gamma")):
        httpserver.expect_request(f"/{name}.xml").respond_with_data(
            rss_feed(name, 400, offset), content_type="application/rss+xml"
        )
        sources += f'\n[[sources]]\nname = "{name}"\nurl = "{httpserver.url_for(f"/{name}.xml")}"\n'
        sources += 'section = "world"\ninterval = "1h"\n'
    with (project / "config.toml").open("a", encoding="utf-8") as config:
        config.write(sources)
    reference = tmp_path / "reference"
    reference.mkdir()
    shutil.copy(project / "config.toml", reference / "config.toml")  # its paths are relative to it
    os.symlink(project / "seeds", reference / "seeds")
    env = clean_env(SOURCE_DATE_EPOCH=PINNED)

    whole = Daemon(reference, "--no-http", env=env)
    daemons.append(whole)
    whole.wait_for("ready", timeout=60)
    whole.process.send_signal(signal.SIGTERM)
    assert whole.process.wait(5) == 0
    expected = stored_items(reference / "data" / "feeds.db")
    assert len(expected) > 150 * 40

    # Each victim is killed once the store holds a given share of the final
    # items: a point in the work read off the store itself, not a guess of
    # how long the work takes (which a loaded machine or a faster ingest moves).
    interrupted = 0
    for fraction in (0.35, 0.6, 0.8, 0.95):
        victim = Daemon(project, "--no-http", env=env)
        daemons.append(victim)
        wait_until_stored(project / "data" / "feeds.db", int(len(expected) * fraction), victim)
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait(5)
        interrupted += "ready" not in victim.text()
        with Store(project / "data" / "feeds.db") as store:  # opens, rolls back, still whole
            assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert interrupted >= 2  # most kills land mid-work, not after it
    final = Daemon(project, "--no-http", env=env)
    daemons.append(final)
    final.wait_for("ready", timeout=60)
    final.process.send_signal(signal.SIGTERM)
    assert final.process.wait(5) == 0
    assert stored_items(project / "data" / "feeds.db") == expected
