"""Benchmark `feeds serve` on a large store: start-up, memory, one section's rebuild, story pages.

Run: ``python bench/bench_daemon_scale.py [--items 1000000] [--seconds 10]``.
The store is filled as ``bench_export.py`` fills it. Then a real daemon
starts; printed: seconds until it is ready, its resident memory, how long
its publish of a one-item change written by another process takes (from its
own log line), and story pages per second, each a different page rendered
on demand, fetched by ``--clients`` keep-alive connections from this
process (a Python client: a lower bound on what the daemon serves).
Targets (issue 14) at 1,000,000 items: ready < 30 s, < 300 MB, rebuild
< 0.5 s, > 2,000 story pages/s.
"""

from __future__ import annotations

import argparse
import http.client
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from bench_export import CONFIG, fill_store

from feeds.model import ItemWrite
from feeds.publish.site import item_page_path
from store import Store


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(log: Path, pattern: str, timeout: float, after: int = 0) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, log.read_text(encoding="utf-8", errors="replace")[after:])
        if found:
            return found
        time.sleep(0.05)
    raise SystemExit(f"no {pattern!r} in the daemon's log within {timeout} s")


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(found.group(1)) / 1024 if found else float("nan")


def story_rate(port: int, paths: list[str], clients: int, seconds: float) -> float:
    """Pages per second answered 200, each path asked once, over keep-alive connections."""
    done = [0] * clients
    stop = time.monotonic() + seconds

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for path in paths[n::clients]:
            if time.monotonic() > stop:
                break
            conn.request("GET", "/" + path)
            response = conn.getresponse()
            response.read()
            done[n] += response.status == 200
        conn.close()

    began = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.monotonic() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-daemon-") as tmp:
        project = Path(tmp)
        (project / "seeds").mkdir()
        (project / "config.toml").write_text(CONFIG, encoding="utf-8")
        db = project / "data" / "feeds.db"
        print(f"store: {args.items:,} items written in {fill_store(db, args.items):.1f} s")
        with Store(db) as store:
            sample = random.Random(3).sample(range(args.items), min(args.items, 200_000))
            slugs = [item.slug for item in store.iter_items() if item.link is None]
        paths = [item_page_path(slugs[i % len(slugs)]) for i in sample]
        port = free_port()
        log = project / "daemon.log"
        began = time.monotonic()
        with log.open("wb") as out:
            daemon = subprocess.Popen(
                [str(Path(sys.executable).parent / "feeds"), "serve", "--port", str(port)],
                cwd=project,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for(log, r"ready", timeout=600)
            print(
                f"start-up: ready in {time.monotonic() - began:.1f} s, {rss_mb(daemon.pid):.0f} MB resident"
            )
            mark = len(log.read_text(encoding="utf-8", errors="replace"))
            with Store(db) as store:  # another process's write: one changed story in one section
                item = next(store.iter_items())
                store.write_batch([ItemWrite(item=replace(item, title=item.title + " (corrected)"))])
            found = wait_for(log, r"publish: ([^;]*);.*?([\d.]+)s\n", timeout=60, after=mark)
            print(f"rebuild after one change ({found.group(1)}): {float(found.group(2)):.2f} s")
            rate = story_rate(port, paths, args.clients, args.seconds)
            print(f"story pages rendered on demand: {rate:,.0f}/s ({args.clients} Python clients)")
            print(f"after the load: {rss_mb(daemon.pid):.0f} MB resident")
        finally:
            daemon.terminate()
            daemon.wait(10)


if __name__ == "__main__":
    main()
