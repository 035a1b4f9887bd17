"""`feeds backup` and `feeds check` through the real CLI, on real store files."""

from __future__ import annotations

import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from feeds.publish.validate import check_atom, check_json_feed, check_rss
from tests.cliutil import feeds_command, run_feeds
from tests.remote_helpers import config_with_sources, rss

RSS = "application/rss+xml"


def item_ids(db: Path) -> set[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'items'").fetchone():
            return set()  # the file exists; its first migration is not committed yet
        return {row[0] for row in conn.execute("SELECT id FROM items")}


def committed_so_far(db: Path) -> set[str]:
    """Item ids while the refresh may still be creating the store (file there, tables not yet)."""
    try:
        return item_ids(db)
    except sqlite3.OperationalError:
        return set()


def integrity(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("PRAGMA integrity_check")]


def wire(n: int) -> bytes:
    stories = [
        {
            "guid": f"wire{n}-{k}",
            "link": f"http://127.0.0.1/wire{n}/{k}",
            "title": f"Wire {n} story {k}",
            "date": "Mon, 05 Jan 2026 08:00:00 GMT",
            "description": f"Story {k} of wire {n}.",
        }
        for k in range(3)
    ]
    return rss(f"Wire {n}", stories)


def test_a_backup_taken_during_a_refresh_holds_every_item_committed_before_it(
    httpserver: HTTPServer, project: Path, tmp_path: Path
) -> None:
    for n in range(4):
        httpserver.expect_request(f"/wire{n}.xml").respond_with_data(wire(n), content_type=RSS)
    release = threading.Event()

    def slow(request: Request) -> Response:
        release.wait(timeout=60)  # holds the refresh open until the backup is done
        return Response(wire(9), content_type=RSS)

    httpserver.expect_request("/slow.xml").respond_with_handler(slow)
    sources: list[dict[str, object]] = [
        {"name": f"wire{n}", "url": httpserver.url_for(f"/wire{n}.xml")} for n in range(4)
    ]
    sources.append({"name": "slow", "url": httpserver.url_for("/slow.xml")})
    # One fetch at a time, in config order: the four wires are stored while "slow" hangs.
    config_with_sources(project, sources, fetch='workers = 1\ntimeout = "60s"\ndeadline = "90s"')
    db = project / "data" / "feeds.db"
    refresh = subprocess.Popen(
        [*feeds_command(), "refresh", "--all"], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while len(committed_so_far(db)) < 12:
            assert refresh.poll() is None and time.monotonic() < deadline, refresh.communicate()
            time.sleep(0.05)
        committed = item_ids(db)
        out = run_feeds("backup", str(tmp_path / "copy.db"), cwd=project)
        assert refresh.poll() is None  # the refresh was still running throughout
    finally:
        release.set()
    assert refresh.wait(timeout=60) == 0
    assert out.returncode == 0, out.stderr
    assert "integrity ok" in out.stdout
    copy = tmp_path / "copy.db"
    assert integrity(copy) == ["ok"]
    assert item_ids(copy) >= committed and len(committed) == 12
    assert len(item_ids(db)) == 15  # the refresh went on to store "slow" after the backup
    assert not list(tmp_path.glob(".backup-*"))


def test_backup_into_a_folder_names_the_copy_and_refuses_the_store_itself(project: Path) -> None:
    assert run_feeds("export", "--offline", cwd=project).returncode == 0
    (project / "backups").mkdir()
    out = run_feeds("backup", "backups", cwd=project)
    assert out.returncode == 0, out.stderr
    (copy,) = (project / "backups").glob("feeds-*.db")
    assert item_ids(copy) == item_ids(project / "data" / "feeds.db")
    itself = run_feeds("backup", "data/feeds.db", cwd=project)
    assert itself.returncode == 1 and "over itself" in itself.stderr


def test_check_passes_a_healthy_project(project: Path) -> None:
    assert run_feeds("export", "--offline", cwd=project).returncode == 0
    out = run_feeds("check", cwd=project)
    assert out.returncode == 0, out.stderr
    assert "config: ok" in out.stdout and "integrity ok, migrations current" in out.stdout
    assert "0 problems" in out.stdout


FORGET_LAST = "DELETE FROM _sqlite_migrations WHERE rowid = (SELECT max(rowid) FROM _sqlite_migrations)"
FROM_THE_FUTURE = (
    "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
    "VALUES ('feeds.store', '9999_from_the_future', '2030-01-01')"
)


@pytest.mark.parametrize(
    ("damage", "message"),
    [(FORGET_LAST, "migrations not applied yet"), (FROM_THE_FUTURE, "newer version")],
)
def test_check_fails_on_migrations_out_of_step(project: Path, damage: str, message: str) -> None:
    assert run_feeds("export", "--offline", cwd=project).returncode == 0
    with sqlite3.connect(project / "data" / "feeds.db") as conn:
        conn.execute(damage)
    out = run_feeds("check", cwd=project)
    assert out.returncode == 1 and message in out.stderr, out.stderr


def test_check_fails_on_a_damaged_store_and_a_broken_config(project: Path) -> None:
    assert run_feeds("export", "--offline", cwd=project).returncode == 0
    db = project / "data" / "feeds.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(db.read_bytes())
    for page in range(1, len(data) // 4096):  # every page but the header's, torn at its start
        data[page * 4096 : page * 4096 + 64] = b"\xff" * 64
    db.write_bytes(bytes(data))
    out = run_feeds("check", cwd=project)
    assert out.returncode == 1 and "store" in out.stderr and "Traceback" not in out.stderr
    (project / "config.toml").write_text("[site]\nbase_url = 5\n", encoding="utf-8")
    broken = run_feeds("check", cwd=project)
    assert broken.returncode == 1 and "config: " in broken.stderr and "site.base_url" in broken.stderr


def test_feed_rules_name_what_is_wrong() -> None:
    atom = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:x</id>'
        b"<updated>2026-01-05T00:00:00Z</updated>"
        b"<entry><title>a</title><id>urn:a</id><updated>2026-01-05T00:00:00Z</updated>"
        b'<link href="http://x/a"/></entry>'
        b"<entry><title>b</title><id>urn:a</id><updated>2026-01-05T00:00:00Z</updated>"
        b'<link href="http://x/b"/></entry></feed>'
    )
    problems = check_atom(atom)
    assert "no atom:link rel=self" in problems and "two entries share an atom:id" in problems
    assert any("author" in p for p in problems)
    assert check_rss(b"<rss version='2.0'><channel><title>t</title><item><title>x</title></item>") != []
    assert check_rss(b"<html/>") == ["not an RSS 2.0 document"]
    assert check_json_feed(b'{"version": "https://jsonfeed.org/version/1"}')[0].startswith("not a JSON Feed")
    assert check_json_feed(b'{"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": [{}]}')
