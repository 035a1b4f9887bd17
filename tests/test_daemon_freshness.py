"""A running daemon publishes what other processes write, and its validators move with its bytes."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from feeds.config import Config
from feeds.daemon.service import Daemon as InProcessDaemon
from store import Store
from tests.cliutil import run_feeds
from tests.conftest import NOW
from tests.test_daemon_process import Daemon

# Dated years before the public seed's stories: it sorts below them, so the
# newest item (and so an item-date Last-Modified) does not move.
OLD_STORY = """ date 2020-03-02 Archive

ECONOMY Archive shows wheat record from 2020

Archive shows wheat record from 2020

The harvest was the largest in a decade.
"""


@pytest.fixture
def served(project: Path) -> Iterator[tuple[Daemon, str]]:
    daemon = Daemon(project, "--port", "0")
    try:
        port = int(daemon.wait_for(r"serving http://127\.0\.0\.1:(\d+)/").group(1))
        daemon.wait_for("ready")
        yield daemon, f"http://127.0.0.1:{port}"
    finally:
        daemon.stop()


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def ingest_elsewhere(project: Path, tmp_path: Path) -> None:
    """Another process writes the store: `feeds ingest` of a file outside the seeds dir."""
    story = tmp_path / "old-story.txt"
    story.write_text(OLD_STORY, encoding="utf-8")
    result = run_feeds("ingest", str(story), cwd=project)
    assert result.returncode == 0, result.stderr


def wait_for_change(url: str, etag: str, timeout: float = 10) -> tuple[dict[str, str], bytes]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, headers, body = get(url)
        if status == 200 and headers["etag"] != etag:
            return headers, body
        time.sleep(0.1)
    raise AssertionError(f"{url} still has ETag {etag} after {timeout} s")


def test_a_write_by_another_process_is_published_within_seconds(
    served: tuple[Daemon, str], project: Path, tmp_path: Path
) -> None:
    _, base = served
    status, headers, body = get(f"{base}/feeds/economy.atom")
    assert status == 200 and b"Archive shows wheat record" not in body
    started = time.monotonic()
    ingest_elsewhere(project, tmp_path)
    _, body = wait_for_change(f"{base}/feeds/economy.atom", headers["etag"])
    assert b"Archive shows wheat record from 2020" in body
    assert time.monotonic() - started < 10
    _, _, all_feed = get(f"{base}/feeds/all.atom")
    assert b"Archive shows wheat record from 2020" in all_feed


def test_if_modified_since_never_hides_a_changed_feed(
    served: tuple[Daemon, str], project: Path, tmp_path: Path
) -> None:
    _, base = served
    url = f"{base}/feeds/all.rss"
    _, first, _ = get(url)
    since = first["last-modified"]
    assert get(url, {"If-Modified-Since": since})[0] == 304
    ingest_elsewhere(project, tmp_path)  # an older item: the newest item's date stays
    changed, body = wait_for_change(url, first["etag"])
    assert parsedate_to_datetime(changed["last-modified"]) > parsedate_to_datetime(since)
    status, _, again = get(url, {"If-Modified-Since": since})
    assert status == 200 and again == body
    assert get(url, {"If-Modified-Since": changed["last-modified"]})[0] == 304


def test_a_restart_keeps_the_dates_of_unchanged_files(store: Store, config: Config) -> None:
    first = InProcessDaemon(store, config, lambda: NOW)
    first.start(sources=False)
    before = first.site.resource("feeds/all.atom")
    later = InProcessDaemon(store, config, lambda: NOW.replace(year=2027))
    later.start(sources=False)
    after = later.site.resource("feeds/all.atom")
    assert before is not None and after is not None
    assert after.etag == before.etag and after.last_modified == before.last_modified == NOW
