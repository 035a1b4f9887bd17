"""`feeds serve` against hostile and clumsy clients: a real process, raw sockets.

Absurd dates, repeated header lines, pipelining, idle and trickling
connections, more connections than descriptors, and a store damaged under the
running daemon: every answer is a proper HTTP answer, never a 500, and new
clients keep being served.
"""

from __future__ import annotations

import re
import resource
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cliutil import feeds_command, run_feeds
from tests.test_daemon_process import Daemon, clean_env

ABSURD_DATE = "Mon, 01 Jan 99999999999 00:00:00 GMT"


@pytest.fixture
def served(project: Path) -> Iterator[tuple[Daemon, int]]:
    with (project / "config.toml").open("a", encoding="utf-8") as config:
        config.write('\n[server]\nheader_timeout = "1s"\nkeep_alive = "1s"\n')
    daemon = Daemon(project, "--port", "0", env=clean_env())
    try:
        port = int(daemon.wait_for(r"serving http://127\.0\.0\.1:(\d+)/").group(1))
        yield daemon, port
    finally:
        daemon.stop()


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def read_responses(
    sock: socket.socket, count: int, heads: frozenset[int] = frozenset()
) -> list[tuple[int, dict[str, list[str]], bytes]]:
    """``count`` responses (status, headers, body) read off one connection;
    those numbered in ``heads`` answer HEAD, so carry no body."""
    buffer = b""
    answers = []
    while len(answers) < count:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                raise AssertionError(f"closed after {len(answers)} of {count} responses")
            buffer += chunk
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers: dict[str, list[str]] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        length = 0 if len(answers) in heads else int(headers.get("content-length", ["0"])[0])
        while len(buffer) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise AssertionError("closed in the middle of a body")
            buffer += chunk
        answers.append((int(lines[0].split()[1]), headers, buffer[:length]))
        buffer = buffer[length:]
    return answers


def request(port: int, path: str, *header_lines: str) -> tuple[int, dict[str, list[str]], bytes]:
    with connect(port) as sock:
        extra = "".join(f"{line}\r\n" for line in header_lines)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n".encode())
        return read_responses(sock, 1)[0]


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes ``sock`` within ``seconds`` (reading any answer first)."""
    sock.settimeout(seconds)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return False


def test_an_absurd_if_modified_since_is_ignored_not_a_500(served: tuple[Daemon, int], project: Path) -> None:
    daemon, port = served
    for date in (ABSURD_DATE, "Mon, 01 Jan 0000 00:00:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT", "soon"):
        status, _, body = request(port, "/feeds/all.atom", f"If-Modified-Since: {date}")
        assert status == 200 and body.startswith(b"<?xml"), date
    result = run_feeds(
        "serve", "--get", "/feeds/all.atom", "-H", f"If-Modified-Since: {ABSURD_DATE}", cwd=project
    )
    assert result.returncode == 0 and result.stdout.startswith("200 OK\n"), result.stderr
    assert "Traceback" not in result.stderr + daemon.text()


def test_a_last_modified_date_echoed_back_still_gives_304(served: tuple[Daemon, int]) -> None:
    _, port = served
    _, headers, _ = request(port, "/feeds/all.atom")
    status, _, body = request(port, "/feeds/all.atom", f"If-Modified-Since: {headers['last-modified'][0]}")
    assert (status, body) == (304, b"")


def test_several_if_none_match_lines_are_one_list(served: tuple[Daemon, int]) -> None:
    _, port = served
    _, headers, _ = request(port, "/feeds/all.atom")
    etag = headers["etag"][0]
    status, _, _ = request(port, "/feeds/all.atom", f"If-None-Match: {etag}", 'If-None-Match: "other"')
    assert status == 304
    status, _, _ = request(port, "/feeds/all.atom", 'If-None-Match: "other"', f"If-None-Match: {etag}")
    assert status == 304


@pytest.mark.parametrize("first", ["GET /healthz", "HEAD /healthz", "GET /feeds/all.atom", "GET /nope"])
def test_a_request_pipelined_after_another_is_answered(served: tuple[Daemon, int], first: str) -> None:
    _, port = served
    with connect(port) as sock:
        sock.sendall(
            f"{first} HTTP/1.1\r\nHost: x\r\n\r\n"
            "GET /feeds/all.rss HTTP/1.1\r\nHost: x\r\n\r\n"
            "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        )
        answers = read_responses(sock, 3, frozenset({0}) if first.startswith("HEAD") else frozenset())
    assert [status for status, _, _ in answers[1:]] == [200, 200]
    assert answers[1][2].startswith(b"<?xml")


def test_idle_and_trickling_connections_are_closed(served: tuple[Daemon, int]) -> None:
    _, port = served
    idle = connect(port)
    half = connect(port)
    half.sendall(b"GET /feeds/all.atom HTTP/1.1\r\nHost: x\r\n")
    kept = connect(port)
    kept.sendall(b"GET /feeds/all.atom HTTP/1.1\r\nHost: x\r\n\r\n")
    read_responses(kept, 1)
    trickle = connect(port)
    started = time.monotonic()
    closed_early = False
    for byte in b"GET /feeds/all.atom HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200:
        try:
            trickle.sendall(bytes([byte]))
        except OSError:
            closed_early = True
            break
        if closed_within(trickle, 0.2):
            closed_early = True
            break
    assert closed_early and time.monotonic() - started < 10
    for sock in (idle, half, kept):
        assert closed_within(sock, 10)
        sock.close()
    trickle.close()


def test_a_damaged_store_answers_503_on_pages_and_health(served: tuple[Daemon, int], project: Path) -> None:
    daemon, port = served
    daemon.wait_for("ready")
    status, _, feed = request(port, "/feeds/all.atom")
    assert status == 200
    pages = re.findall(rb'href="http://127\.0\.0\.1:8080/(items/[^"]+\.html)"', feed)
    assert pages
    db = project / "data" / "feeds.db"
    damage_table(db, "items")
    status, headers, body = request(port, "/" + pages[0].decode())
    assert status == 503, body
    assert len(body) < 200 and b"Traceback" not in body
    assert headers["cache-control"] == ["no-store"]
    status, _, body = request(port, "/healthz")
    assert status == 503 and b'"ok": false' in body
    status, _, _ = request(port, "/feeds/all.atom")
    assert status == 200  # what was built is still served from memory
    assert "Traceback" not in daemon.text()


def damage_table(db: Path, table: str) -> None:
    """Overwrite the first page of ``table`` and its indexes, as a bad disk would,
    then commit an unrelated change so the daemon's connection drops its cache."""
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        roots = [
            r
            for (r,) in conn.execute(
                "SELECT rootpage FROM sqlite_master WHERE tbl_name = ? AND rootpage > 0", [table]
            )
        ]
    with db.open("r+b") as handle:
        for root in roots:
            handle.seek((root - 1) * page_size)
            handle.write(b"\xff" * page_size)
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS poke (x)")


def test_new_clients_are_served_while_more_idle_connections_are_held_than_descriptors(
    project: Path, tmp_path: Path
) -> None:
    """The bounded form of bench/hostile_connections.py: a 256-descriptor daemon, 600 idle sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 900
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"this test needs {wanted} descriptors, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    log_path = tmp_path / "daemon.log"
    with log_path.open("wb") as log:
        daemon = subprocess.Popen(
            ["sh", "-c", 'ulimit -n 256 && exec "$@"', "sh", *feeds_command(), "serve", "--port", "0"],
            cwd=project,
            env=clean_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    held: list[socket.socket] = []
    try:
        port = int(wait_for_log(log_path, r"serving http://127\.0\.0\.1:(\d+)/"))
        for _ in range(600):
            held.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        for _ in range(20):
            status, _, body = request(port, "/feeds/all.atom")
            assert status == 200 and body.startswith(b"<?xml")
        assert daemon.poll() is None
        assert "Too many open files" not in log_path.read_text(encoding="utf-8", errors="replace")
    finally:
        for sock in held:
            sock.close()
        daemon.kill()
        daemon.wait(10)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def wait_for_log(path: Path, pattern: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if match := re.search(pattern, path.read_text(encoding="utf-8", errors="replace")):
            return match.group(1)
        time.sleep(0.05)
    raise AssertionError(f"no {pattern!r} in {path.read_text(encoding='utf-8', errors='replace')}")
