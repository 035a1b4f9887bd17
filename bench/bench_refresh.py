"""Benchmark: refresh 1,000 local feeds x 50 items, ours beside lemon24's reader.

A farm of distinct RSS feeds is served from 127.0.0.1 by a threaded server in
its own process (HTTP/1.1 keep-alive, ETag and Last-Modified, 304s). Each
tool runs in a fresh process of its own against the same farm and does three
timed refreshes of every feed:

  cold      empty store, every feed answers 200
  warm      nothing changed, every feed answers 304
  changed   10% of the feeds gained one entry (and dropped their oldest)

Peak memory is the largest resident set of the tool's whole process tree
(our parser process and multiprocessing's resource tracker included),
read every 20 ms (the tree itself is looked up every 200 ms: that walks all
of /proc): the sum of every process's RSS, which counts pages
they share once per process. That sum is what the target is judged on;
the sum of PSS (shared pages split between their sharers) is shown beside it.

The farm makes every body either tool will ask for before the first one
runs, so neither pays for (nor profits from) the farm's first rendering.

reader is a benchmark-only dependency, not one of the product's:

    pip install reader sgmllib3k

Run (about four minutes on two cores, most of it reader's cold refresh):

    python bench/bench_refresh.py [--feeds 1000] [--items 50] [--skip-reader]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from email.utils import format_datetime
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing import Array, Process, Value
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datetime import UTC, datetime, timedelta

BASE_TIME = datetime(2025, 6, 1, tzinfo=UTC)
WORDS = [
    "harbour",
    "council",
    "budget",
    "bridge",
    "festival",
    "ferry",
    "election",
    "market",
    "storm",
    "school",
    "hospital",
    "railway",
    "museum",
    "court",
    "river",
    "energy",
    "housing",
    "police",
    "harvest",
    "stadium",
]


def _words(seed: int, count: int) -> str:
    return " ".join(WORDS[(seed * 7 + k * 13) % len(WORDS)] for k in range(count))


def feed_body(n: int, version: int, items: int = 50, port: int = 8000) -> bytes:
    """Feed ``n`` at ``version``: entries version .. version+items-1, newest first.

    Entries look like a newspaper's: a title, an HTML description, a few
    paragraphs of content:encoded with links and an image, categories.
    """
    site = f"http://127.0.0.1:{port}/site/{n}"
    out = [
        (
            '<?xml version="1.0" encoding="utf-8"?>\n'
            '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
            f"<title>Local paper {n}</title><link>{site}/</link>"
            f"<description>News from town {n}</description><language>en</language>"
        )
    ]
    for i in range(version + items - 1, version - 1, -1):
        date = BASE_TIME + timedelta(hours=i, seconds=n)
        story = f"{site}/story/{i}"
        paragraphs = "".join(
            f'<p>{_words(n + i + p, 24).capitalize()}, said officials on <a href="/site/{n}/tag/{p}">'
            f"{_words(p, 2)}</a>. {_words(i * p + 3, 30).capitalize()}.</p>"
            for p in range(4)
        )
        out.append(
            f"<item><title>Paper {n} story {i}: {_words(n * 31 + i, 6)}</title>"
            f"<link>{story}</link><guid>{story}</guid>"
            f"<pubDate>{format_datetime(date, usegmt=True)}</pubDate>"
            f"<dc:creator>Reporter {i % 17}</dc:creator>"
            f"<category>{WORDS[i % len(WORDS)]}</category><category>town {n}</category>"
            f"<description>&lt;p&gt;{_words(n + i, 30)} &lt;b&gt;{_words(i, 3)}&lt;/b&gt;&lt;/p&gt;"
            "</description>"
            f'<content:encoded><![CDATA[<img src="/site/{n}/img/{i}.jpg" alt="{_words(i, 3)}">'
            f"{paragraphs}<blockquote>{_words(i + 5, 20)}</blockquote>]]></content:encoded></item>"
        )
    out.append("</channel></rss>")
    return "".join(out).encode("utf-8")


# -- the farm -------------------------------------------------------------------


def bumped(feeds: int, count: int) -> range:
    """The feeds a bump of ``count`` changes: every (feeds/count)-th one."""
    step = max(feeds // max(count, 1), 1)
    return range(0, feeds, step)[:count]


def serve_farm(port_box: Any, versions: Any, items: int) -> None:
    """The farm's process: GET /feed/N.xml with conditional GET; POST /_bump?k bumps k feeds."""
    port = 0  # set once bound; the bodies link to it

    @lru_cache(maxsize=4096)
    def body(n: int, version: int) -> bytes:
        return feed_body(n, version, items, port)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            try:
                n = int(self.path.removeprefix("/feed/").removesuffix(".xml"))
                version = versions[n]
            except (ValueError, IndexError):
                self._reply(404, b"")
                return
            etag = f'"{n}-{version}"'
            modified = format_datetime(BASE_TIME + timedelta(hours=version), usegmt=True)
            headers = {"ETag": etag, "Last-Modified": modified}
            if self.headers.get("If-None-Match") == etag:
                self._reply(304, b"", headers)
                return
            self._reply(200, body(n, version), {**headers, "Content-Type": "application/rss+xml"})

        def do_POST(self) -> None:
            count = int(self.path.partition("?")[2] or "0")
            for n in bumped(len(versions), count):
                versions[n] += 1
            self._reply(200, b"ok")

        def _reply(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.request_queue_size = 256
    port = server.server_address[1]
    prerender(body, len(versions))
    port_box.value = port
    server.serve_forever()


def prerender(body: Callable[[int, int], bytes], feeds: int) -> None:
    """Render every body either tool will ask for, the changed ones too."""
    for n in range(feeds):
        body(n, 0)
    for n in bumped(feeds, feeds // 10):
        body(n, 1)


def start_farm(feeds: int, items: int) -> tuple[Process, int, Any]:
    port_box = Value("i", 0)
    versions = Array("i", feeds, lock=False)
    process = Process(target=serve_farm, args=(port_box, versions, items), daemon=True)
    process.start()
    while port_box.value == 0:
        time.sleep(0.01)
    return process, port_box.value, versions


def reset_farm(versions: Any) -> None:
    for n in range(len(versions)):
        versions[n] = 0


# -- the tools, each in a process of its own ---------------------------------------


def run_ours(port: int, feeds: int, workers: int, folder: Path) -> dict[str, Any]:
    from feeds.clock import system_clock
    from feeds.config import Config, FetchConfig, SourceConfig, StoreConfig
    from feeds.sources.update import refresh_sources
    from store import Store

    sources = tuple(
        SourceConfig(name=f"feed{n}", url=f"http://127.0.0.1:{port}/feed/{n}.xml", section="news")
        for n in range(feeds)
    )
    config = Config(
        store=StoreConfig(path=folder / "ours.db"),
        sources=sources,
        fetch=FetchConfig(workers=workers, per_host=workers),  # the whole farm is one host
    )
    times: dict[str, Any] = {}
    with Store(config.store.path) as store:
        for phase in ("cold", "warm", "changed"):
            if phase == "changed":
                _bump(port, feeds // 10)
            started = time.perf_counter()
            report = refresh_sources(store, config, system_clock, mode="force")
            times[phase] = time.perf_counter() - started
            times[f"{phase}_items_changed"] = report.items_changed
            times[f"{phase}_errors"] = len(report.errors)
        times["stored"] = store.count_items()
    return times


def run_reader(port: int, feeds: int, workers: int, folder: Path) -> dict[str, Any]:
    from reader import make_reader

    reader = make_reader(str(folder / "reader.sqlite"))
    for n in range(feeds):
        reader.add_feed(f"http://127.0.0.1:{port}/feed/{n}.xml")
    times: dict[str, Any] = {}
    for phase in ("cold", "warm", "changed"):
        if phase == "changed":
            _bump(port, feeds // 10)
        started = time.perf_counter()
        reader.update_feeds(scheduled=False, workers=workers)
        times[phase] = time.perf_counter() - started
    times["stored"] = reader.get_entry_counts().total
    reader.close()
    return times


def _bump(port: int, count: int) -> None:
    import urllib.request

    urllib.request.urlopen(  # the farm on 127.0.0.1
        urllib.request.Request(f"http://127.0.0.1:{port}/_bump?{count}", method="POST"), timeout=30
    ).read()


def measure(tool: str, port: int, feeds: int, workers: int) -> dict[str, Any]:
    """Run one tool in a child process; sample its tree's memory while it runs."""
    with tempfile.TemporaryDirectory() as folder:
        command = [
            sys.executable,
            __file__,
            "--child",
            tool,
            "--port",
            str(port),
            "--feeds",
            str(feeds),
            "--workers",
            str(workers),
            "--folder",
            folder,
        ]
        child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        peak_rss = peak_pss = processes = 0
        for sample in itertools.count():
            if child.poll() is not None:
                break
            if sample % 10 == 0:  # finding the tree reads all of /proc: a few ms, not every 20
                pids = tree(child.pid)
            processes = max(processes, len(pids))
            peak_rss = max(peak_rss, sum(memory_kb(p, "status", "VmRSS:") for p in pids))
            peak_pss = max(peak_pss, sum(memory_kb(p, "smaps_rollup", "Pss:") for p in pids))
            time.sleep(0.02)
        out = child.stdout.read() if child.stdout else ""
    if child.returncode:
        raise SystemExit(f"{tool} failed with status {child.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    result.update(peak_mb=peak_rss / 1024, peak_pss_mb=peak_pss / 1024, processes=processes)
    return result


def memory_kb(pid: int, table: str, field: str) -> int:
    """One kB figure from /proc/PID/status or smaps_rollup (0 once the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/{table}").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in text.splitlines() if line.startswith(field)), 0)


def tree(pid: int) -> list[int]:
    """A process and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--skip-reader", action="store_true")
    parser.add_argument("--child", choices=("ours", "reader"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run = run_ours if args.child == "ours" else run_reader
        print(json.dumps(run(args.port, args.feeds, args.workers, args.folder)))
        return
    farm, port, versions = start_farm(args.feeds, args.items)
    try:
        results = {}
        for tool in ("ours", "reader")[: 1 if args.skip_reader else 2]:
            reset_farm(versions)
            results[tool] = measure(tool, port, args.feeds, args.workers)
            print(f"{tool}: {json.dumps(results[tool])}", flush=True)
    finally:
        farm.terminate()
    report(results, args.feeds, args.items)


def report(results: dict[str, dict[str, Any]], feeds: int, items: int) -> None:
    print(f"\n{feeds} feeds x {items} items from 127.0.0.1, {os.cpu_count()} cores")
    print(f"{'':12}{'ours':>9}{'reader':>10}{'ratio':>8}{'target':>8}")
    targets = {"cold": 0.25, "warm": 0.5, "changed": 0.25, "peak_mb": 3.0, "peak_pss_mb": None}
    for key, target in targets.items():
        ours = results["ours"][key]
        theirs = results.get("reader", {}).get(key)
        ratio = f"{ours / theirs:.2f}" if theirs else "-"
        unit = "M" if key.startswith("peak") else "s"
        goal = f"{target:>7}x" if target else "   (info)"
        print(f"{key:12}{ours:>8.2f}{unit}{(theirs or 0):>9.2f}{unit}{ratio:>8}{goal}")
    reader = results.get("reader", {})
    print(f"stored items: ours {results['ours']['stored']}, reader {reader.get('stored')}")
    print(f"processes at most: ours {results['ours']['processes']}, reader {reader.get('processes')}")
    print("peak_mb is the sum of RSS over each tool's process tree (what the target is judged on)")


if __name__ == "__main__":
    main()
