"""Benchmark: a cold refresh of 2,000 local feeds x 50 items by 1, 2 and 4
`feeds worker` processes through Redis, and by the daemon alone (the default).

The farm is bench_refresh's (distinct newspaper-like RSS feeds from one
127.0.0.1 process, with ETags). Each mode gets a fresh project (empty
store, no seeds), and the cluster modes a fresh redis-server on a free port
(no persistence); workers are started and ready before the daemon. The
time is from starting `feeds serve` to the moment every source is stored
(the store polled read-only every 0.2 s), so start-up costs are in every
mode alike. The writer's share is the time the daemon's single writer
spent storing results (`writer_seconds` in /healthz) over that time.

On this machine's two cores, workers compete with the daemon, the farm and
Redis for CPU: the figures say what one box gains, and what each worker
process costs, not what separate machines would give.

Run (about two minutes at the default size; --feeds 100 checks it works):

    python bench/bench_cluster.py [--feeds 2000] [--items 50] [--workers 1,2,4]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_refresh import start_farm

POLL = 0.2
TIMEOUT = 900.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def feeds(*args: str, cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "FEEDS_CONFIG"}
    return subprocess.Popen(
        [sys.executable, "-m", "feeds", *args],
        cwd=cwd,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def wait_for(log: Path, pattern: str, timeout: float = 60) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if match := re.search(pattern, log.read_text(errors="replace")):
            return match
        time.sleep(0.05)
    raise SystemExit(f"no {pattern!r} in {log}")


def stored(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return int(conn.execute("SELECT count(*) FROM sources WHERE last_status = 200").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def write_project(folder: Path, port: int, count: int, broker: str | None) -> None:
    (folder / "seeds").mkdir(parents=True)
    lines = [
        '[site]\nbase_url = "http://127.0.0.1:8080/"\nauthority = "bench.example.org,2026"',
        '[store]\npath = "feeds.db"',
        "[fetch]\nworkers = 8\nper_host = 16",  # the whole farm is one host
    ]
    if broker:
        lines.append(f'[cluster]\nbroker = "{broker}"')
    for n in range(count):
        lines.append(f'[[sources]]\nname = "feed{n}"\nurl = "http://127.0.0.1:{port}/feed/{n}.xml"')
    (folder / "config.toml").write_text("\n".join(lines) + "\n")


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.02)
    raise SystemExit("redis-server did not start")


def run(mode: int, port: int, count: int) -> dict[str, Any]:
    """One cold refresh: ``mode`` worker processes (0: the daemon alone)."""
    folder = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    children: list[subprocess.Popen[bytes]] = []
    try:
        broker = None
        if mode:
            redis, broker = start_redis(folder)
            children.append(redis)
        write_project(folder, port, count, broker)
        for i in range(mode):
            log = folder / f"worker{i}.log"
            children.append(feeds("worker", "--name", f"w{i}", cwd=folder, log=log))
            wait_for(log, "taking jobs from")
        log = folder / "daemon.log"
        started = time.perf_counter()
        children.append(feeds("serve", "--port", "0", cwd=folder, log=log))
        while stored(folder / "feeds.db") < count:
            if time.perf_counter() - started > TIMEOUT:
                raise SystemExit(f"mode {mode}: timed out; see {log}")
            time.sleep(POLL)
        took = time.perf_counter() - started
        result: dict[str, Any] = {"seconds": round(took, 2)}
        if mode:
            http = int(wait_for(log, r"serving http://127\.0\.0\.1:(\d+)/").group(1))
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/healthz", timeout=10) as response:
                cluster = json.loads(response.read())["cluster"]
            result["writer_seconds"] = cluster["writer_seconds"]
            result["writer_share"] = round(cluster["writer_seconds"] / took, 3)
            result["results"] = cluster["results_taken"]
        return result
    finally:
        for child in reversed(children):
            child.terminate()
        for child in children:
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--workers", default="1,2,4", help="worker process counts, comma-separated")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is needed (Debian: apt-get install redis-server)")
    farm, port, _ = start_farm(args.feeds, args.items)
    try:
        results = {"in-process": run(0, port, args.feeds)}
        for count in (int(n) for n in args.workers.split(",")):
            results[f"{count} workers"] = run(count, port, args.feeds)
    finally:
        farm.terminate()
    base = results["in-process"]["seconds"]
    print(f"{args.feeds} feeds x {args.items} items, cold, {os.cpu_count()} cores")
    print(f"{'mode':<12} {'seconds':>8} {'speed-up':>9} {'writer s':>9} {'writer share':>13}")
    for mode, r in results.items():
        writer = f"{r['writer_seconds']:9.2f} {r['writer_share']:13.1%}" if "writer_seconds" in r else ""
        print(f"{mode:<12} {r['seconds']:8.2f} {base / r['seconds']:8.2f}x {writer}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
