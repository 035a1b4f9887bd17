"""The cluster as a user runs it: a real redis-server, `feeds serve` and `feeds worker`
processes, and a farm of feeds on 127.0.0.1 that counts the requests it is sent."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.cliutil import feeds_command, run_feeds
from tests.conftest import CONFIG_TEXT
from tests.redisutil import RedisServer

BASE = datetime(2026, 1, 1, tzinfo=UTC)
REDELIVER = "3s"  # a killed worker's jobs go to another this soon


class Farm:
    """Feeds /feed/N.xml of ``items`` entries each, with ETags (304s); counts
    every request and the most that were ever in progress at once."""

    def __init__(self, items: int = 50, delay: float = 0.0) -> None:
        self.items, self.delay = items, delay
        self.lock = threading.Lock()
        self.active = self.most_active = 0
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        farm = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with farm.lock:
                    farm.active += 1
                    farm.most_active = max(farm.most_active, farm.active)
                    farm.requests[self.path] += 1
                try:
                    if farm.delay:
                        time.sleep(farm.delay)  # a slow server, so fetches overlap
                    self.answer()
                finally:
                    with farm.lock:
                        farm.active -= 1

            def answer(self) -> None:
                match = re.fullmatch(r"/feed/(\d+)\.xml", self.path)
                if match is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                n = int(match.group(1))
                etag = f'"feed-{n}"'
                status = 304 if self.headers.get("If-None-Match") == etag else 200
                body = farm.body(n) if status == 200 else b""
                with farm.lock:
                    farm.statuses[status] += 1
                self.send_response(status)
                self.send_header("ETag", etag)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def body(self, n: int) -> bytes:
        parts = [
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>',
            f"<title>Paper {n}</title><link>http://127.0.0.1/{n}/</link><description>d</description>",
        ]
        for i in range(self.items):
            date = format_datetime(BASE + timedelta(hours=i, seconds=n), usegmt=True)
            link = f"http://127.0.0.1/{n}/story/{i}"
            parts.append(
                f"<item><title>Paper {n} story {i}</title><link>{link}</link><guid>{link}</guid>"
                f"<pubDate>{date}</pubDate><description>&lt;p&gt;Story {i} of paper {n}.&lt;/p&gt;"
                "</description></item>"
            )
        parts.append("</channel></rss>")
        return "".join(parts).encode()

    def url(self, n: int) -> str:
        return f"http://127.0.0.1:{self.port}/feed/{n}.xml"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Process:
    """A `feeds` process with its log in a file."""

    def __init__(self, project: Path, *args: str) -> None:
        self.log_path = project / f"{args[0]}-{time.monotonic_ns()}.log"
        self.log = self.log_path.open("wb")
        env = {k: v for k, v in os.environ.items() if k != "FEEDS_CONFIG"}
        self.process = subprocess.Popen(
            [*feeds_command(), *args], cwd=project, env=env, stdout=self.log, stderr=subprocess.STDOUT
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
        raise AssertionError(f"no {pattern!r} in the log:\n{self.text()[-5000:]}")

    def stop(self, signum: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)
            self.process.wait(15)
        self.log.close()


@pytest.fixture
def farm() -> Iterator[Farm]:
    made = Farm()
    yield made
    made.close()


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.stop()


def write_config(project: Path, farm: Farm, feeds: int, broker: str, *, per_host: int, interval: str) -> None:
    lines = [
        CONFIG_TEXT,
        "[fetch]",
        f"per_host = {per_host}",
        'timeout = "5s"',
        "[cluster]",
        f'broker = "{broker}"',
        f'redeliver_after = "{REDELIVER}"',
    ]
    for n in range(feeds):
        lines += ["[[sources]]", f'name = "feed-{n}"', f'url = "{farm.url(n)}"', f'interval = "{interval}"']
    (project / "config.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def store_rows(project: Path, sql: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(f"file:{project / 'data' / 'feeds.db'}?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def count(project: Path, sql: str) -> int:
    """A count from the store; 0 while the daemon has not made it yet."""
    try:
        return int(store_rows(project, sql)[0][0])
    except sqlite3.OperationalError:
        return 0


def remote_items(project: Path) -> int:
    return count(project, "SELECT count(*) FROM items WHERE link IS NOT NULL")


def sources_with_status(project: Path, status: int) -> int:
    return count(project, f"SELECT count(*) FROM sources WHERE last_status = {status}")


def wait_until(check: Callable[[], bool], timeout: float, what: str, *logs: Process) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            tails = "\n".join(p.text()[-3000:] for p in logs)
            raise AssertionError(f"timed out waiting for {what}\n{tails}")
        time.sleep(0.1)


def assert_stored_once(project: Path, feeds: int, items: int) -> None:
    assert remote_items(project) == feeds * items
    origins = store_rows(
        project, "SELECT item_id, count(*) FROM origins WHERE kind = 'source' GROUP BY item_id"
    )
    assert len(origins) == feeds * items and {count for _, count in origins} == {1}


def start_workers(project: Path, processes: list[Process], count: int) -> list[Process]:
    workers = [Process(project, "worker", "--threads", "4", "--name", f"w{i}") for i in range(count)]
    processes.extend(workers)
    for worker in workers:
        worker.wait_for("taking jobs from")
    return workers


def test_three_workers_store_every_item_once_through_a_sigkill_then_a_pass_of_304s(
    project: Path, farm: Farm, redis_server: RedisServer, processes: list[Process]
) -> None:
    write_config(project, farm, 200, redis_server.url, per_host=6, interval="6s")
    workers = start_workers(project, processes, 3)
    daemon = Process(project, "serve", "--port", "0")
    processes.append(daemon)
    port = int(daemon.wait_for(r"serving http://127\.0\.0\.1:(\d+)/").group(1))

    # Kill one worker while the first pass is under way.
    wait_until(lambda: sum(farm.statuses.values()) >= 40, 60, "40 fetches", daemon)
    workers[0].stop(signal.SIGKILL)
    wait_until(lambda: sources_with_status(project, 200) == 200, 90, "every source stored", daemon)
    assert_stored_once(project, 200, 50)
    assert farm.most_active <= 6  # [fetch] per_host, across every worker

    # The next pass (the sources are due every 6s) is all 304 and writes no item.
    before = store_rows(project, "SELECT id, updated, content_hash FROM items ORDER BY id")
    wait_until(lambda: sources_with_status(project, 304) == 200, 60, "a pass of 304s", daemon)
    assert store_rows(project, "SELECT id, updated, content_hash FROM items ORDER BY id") == before
    results = re.findall(r"source (feed-\d+): (\w[\w-]*), (\d+) items changed", daemon.text())
    assert {name for name, status, _ in results if status == "not-modified"} == {
        f"feed-{n}" for n in range(200)
    }
    assert sum(int(changed) for _, _, changed in results) == 200 * 50

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        cluster = json.loads(response.read())["cluster"]
    assert cluster["ok"] and cluster["broker"] == redis_server.url
    assert {w["name"] for w in cluster["workers"]} >= {"w1", "w2"}
    assert cluster["jobs_in_flight"] is not None and cluster["jobs_queued"] is not None

    status = run_feeds("status", cwd=project)
    assert status.returncode == 0, status.stderr
    assert re.search(r"^cluster: .*workers seen in the last 60s: .*w1", status.stdout, re.M), status.stdout


def test_a_redis_restart_mid_run_loses_no_source(
    project: Path, redis_server: RedisServer, processes: list[Process]
) -> None:
    farm = Farm(items=20, delay=0.05)
    try:
        write_config(project, farm, 60, redis_server.url, per_host=2, interval="1h")
        start_workers(project, processes, 2)
        daemon = Process(project, "serve", "--no-http")
        processes.append(daemon)
        wait_until(lambda: sources_with_status(project, 200) >= 10, 60, "10 sources stored", daemon)
        redis_server.stop()  # without persistence: every queued job and result is gone
        daemon.wait_for("broker unreachable")
        redis_server.start()
        daemon.wait_for("broker back after")
        wait_until(lambda: sources_with_status(project, 200) == 60, 90, "every source stored", daemon)
        assert_stored_once(project, 60, 20)
        assert len(re.findall("broker unreachable", daemon.text())) == 1  # one line per outage
    finally:
        farm.close()


def test_per_host_limits_hold_across_workers(
    project: Path, redis_server: RedisServer, processes: list[Process]
) -> None:
    farm = Farm(items=5, delay=0.15)
    try:
        write_config(project, farm, 24, redis_server.url, per_host=2, interval="1h")
        workers = start_workers(project, processes, 3)  # 12 threads that would fetch at once
        daemon = Process(project, "serve", "--no-http")
        processes.append(daemon)
        wait_until(lambda: sources_with_status(project, 200) == 24, 60, "every source stored", daemon)
        assert farm.most_active == 2
        # SIGTERM stops a worker cleanly, and the daemon too.
        for process in (workers[0], daemon):
            process.process.send_signal(signal.SIGTERM)
            assert process.process.wait(10) == 0
        assert re.search(r"worker w0: stopped after \d+ jobs", workers[0].text())
    finally:
        farm.close()


def test_results_wait_in_redis_for_a_daemon_that_was_stopped(
    project: Path, farm: Farm, redis_server: RedisServer, processes: list[Process]
) -> None:
    write_config(project, farm, 20, redis_server.url, per_host=4, interval="1h")
    first = Process(project, "serve", "--no-http")
    processes.append(first)
    first.wait_for("20 jobs sent")
    first.stop(signal.SIGTERM)
    start_workers(project, processes, 1)
    client = redis_server.client()
    wait_until(lambda: client.hlen("feeds:feeds-results.msgs") == 20, 60, "20 results waiting")
    assert remote_items(project) == 0  # nobody stored them yet
    second = Process(project, "serve", "--no-http")
    processes.append(second)
    wait_until(lambda: sources_with_status(project, 200) == 20, 60, "every source stored", second)
    assert_stored_once(project, 20, 50)


def test_a_worker_that_cannot_reach_the_broker_exits_1_with_one_line(project: Path, farm: Farm) -> None:
    write_config(project, farm, 1, "redis://127.0.0.1:9/0", per_host=1, interval="1h")
    result = run_feeds("worker", cwd=project, timeout=60)
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("feeds: error: redis://127.0.0.1:9/0: cannot reach the broker: ping: ConnectionError")
    )
    assert "Traceback" not in result.stderr


def test_a_worker_needs_a_broker_in_the_config(project: Path) -> None:
    result = run_feeds("worker", cwd=project)
    assert result.returncode == 2
    assert "cluster.broker: not set" in result.stderr


def test_a_worker_gives_up_on_a_broker_lost_for_longer_than_its_patience(
    project: Path, farm: Farm, redis_server: RedisServer
) -> None:
    write_config(project, farm, 1, redis_server.url, per_host=1, interval="1h")
    worker = Process(project, "worker", "--patience", "1")
    try:
        worker.wait_for("taking jobs from")
        redis_server.stop()
        assert worker.process.wait(30) == 1
        assert "lost the broker" in worker.text()
        assert "the broker stayed unreachable for over 1s; exiting" in worker.text()
    finally:
        worker.stop()


def test_a_daemon_started_before_its_broker_waits_for_it_then_sends_every_job(
    project: Path, farm: Farm, redis_server: RedisServer, processes: list[Process]
) -> None:
    write_config(project, farm, 10, redis_server.url, per_host=4, interval="1h")
    redis_server.stop()
    daemon = Process(project, "serve", "--no-http")
    processes.append(daemon)
    daemon.wait_for("0 jobs sent to .*, 10 waiting for the broker")
    daemon.wait_for("broker unreachable")
    redis_server.start()
    daemon.wait_for(r"broker back after [\d.]+s; sending 10 waiting jobs")
    start_workers(project, processes, 1)
    wait_until(lambda: sources_with_status(project, 200) == 10, 60, "every source stored", daemon)
    assert_stored_once(project, 10, 50)
    assert len(re.findall("broker unreachable", daemon.text())) == 1
