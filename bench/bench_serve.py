"""Benchmark `feeds serve` against nginx serving the exported file, and measure its memory.

What it does, all on 127.0.0.1 and in a temporary folder:
1. Generates seed files for ``--items`` stories (50,000 by default) and ingests them.
2. Chooses ``items_per_feed`` so that ``/feeds/all.rss`` is about 100 KB.
3. Starts ``feeds serve --export DIR`` and measures with wrk, for ``/feeds/all.rss``:
   requests/s answered 200 and answered 304 (If-None-Match).
4. Starts nginx on the exported folder (one worker, and Debian's default of
   one per core) and measures the same two numbers, in turns with the daemon.
5. Reports the daemon's resident memory (VmRSS, and its peak VmHWM) after the
   load and after rendering a few thousand item pages.

Needs wrk and nginx on PATH. On Debian or Ubuntu:

    sudo apt-get install wrk nginx

Without nginx the nginx column is skipped with a message; without wrk only the
memory figures are taken.

    python bench/bench_serve.py [--items 50000] [--duration 10] [--connections 50]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

SECTIONS = ["WORLD", "ECONOMY", "SPORTS", "SCIENCE", "ARTS & CULTURE", "TÜRKİYE", "HEALTH", "OPINION"]
PARAGRAPH = (
    "Officials said on Tuesday that the talks would continue next week, and that both sides had "
    "agreed to keep the details private until a final text was ready for signature. "
)
TARGET_FEED_BYTES = 100_000
STORIES_PER_FILE = 100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_seeds(folder: Path, items: int) -> None:
    """Seed files of article pages: a date page, then labelled articles with bodies."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in range((items + STORIES_PER_FILE - 1) // STORIES_PER_FILE):
        day = 1 + f % 28
        parts = [f" date 2025-{1 + f // 28 % 12:02d}-{day:02d} Front page {f}\n\nFront page {f}\n\n\u00a0\n"]
        count = min(STORIES_PER_FILE, items - f * STORIES_PER_FILE) - 1  # the front page is a story too
        for i in range(count):
            label = SECTIONS[(f + i) % len(SECTIONS)]
            title = f"Story {f}-{i}: council approves plan for {label.lower()} desk"
            body = "\n\n".join(f"{PARAGRAPH}Paragraph {p} of story {f}-{i}." for p in range(3))
            parts.append(f"\n{label} {title}\n\n{title}\n\nANKARA\n{title}\n\n{body}\n\n\u00a0\n")
        (folder / f"{f:05d}.txt").write_text("".join(parts), encoding="utf-8")


def write_config(root: Path, port: int, per_feed: int) -> Path:
    config = root / "config.toml"
    config.write_text(
        f'[site]\nbase_url = "http://127.0.0.1:{port}/"\nauthority = "bench.example.org,2026"\n'
        f'[output]\nitems_per_feed = {per_feed}\n[seeds]\ninterval = "1h"\n[server]\nport = {port}\n',
        encoding="utf-8",
    )
    return config


def feeds(config: Path, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "feeds", "--config", str(config), *args],
        capture_output=True,
        text=True,
        check=True,
        **kwargs,  # type: ignore[call-overload]
    )


def feed_size(config: Path) -> int:
    out = subprocess.run(
        [sys.executable, "-m", "feeds", "--config", str(config), "serve", "--get", "/feeds/all.rss"],
        capture_output=True,
        check=True,
    ).stdout
    return len(out.partition(b"\n\n")[2])


def choose_items_per_feed(root: Path, port: int) -> int:
    """The number of items that makes all.rss about 100 KB."""
    per_feed = 50
    for _ in range(3):
        size = feed_size(write_config(root, port, per_feed))
        if abs(size - TARGET_FEED_BYTES) < 5_000:
            break
        per_feed = max(1, round(per_feed * TARGET_FEED_BYTES / size))
    return per_feed


def start_daemon(config: Path, export: Path, log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "feeds", "--config", str(config), "serve", "--export", str(export)],
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 600
    while "ready" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the daemon did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.2)
    return process


def start_nginx(root: Path, export: Path, port: int, workers: str) -> subprocess.Popen[bytes] | None:
    nginx = shutil.which("nginx")
    if nginx is None:
        print("nginx: not installed, skipped (sudo apt-get install nginx)")
        return None
    root.mkdir()
    conf = root / "nginx.conf"
    # As root, nginx workers drop to nobody: let them read the exported tree.
    for folder in (root.parent, root, export, *[p for p in export.rglob("*") if p.is_dir()]):
        folder.chmod(0o755)
    conf.write_text(
        f"""daemon off;
worker_processes {workers};
pid {root}/nginx.pid;
error_log {root}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    types {{ application/rss+xml rss; application/atom+xml atom; application/feed+json json; }}
    client_body_temp_path {root}/nginx-tmp;
    proxy_temp_path {root}/nginx-tmp;
    fastcgi_temp_path {root}/nginx-tmp;
    uwsgi_temp_path {root}/nginx-tmp;
    scgi_temp_path {root}/nginx-tmp;
    server {{
        listen 127.0.0.1:{port};
        root {export};
    }}
}}
""",
        encoding="utf-8",
    )
    process = subprocess.Popen([nginx, "-c", str(conf), "-p", str(root)], stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return process


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port}")


def etag_of(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        response.read()
        return str(response.headers["ETag"])


def wrk(url: str, args: argparse.Namespace, header: str | None = None) -> float:
    """Requests per second; fails if any answer was not 2xx/3xx or a socket errored."""
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--latency", url]
    if header:
        command[1:1] = ["-H", header]
    if args.wrk_cpu is not None and shutil.which("taskset"):
        # The load generator keeps to one core, so it does not take turns with
        # the server on both: every server gets the other core to itself.
        command[:0] = ["taskset", "-c", str(args.wrk_cpu)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Non-2xx or 3xx" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise SystemExit(f"cannot read wrk's output:\n{out}")
    return float(match.group(1))


def memory(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    values = {k: int(re.search(rf"{k}:\s+(\d+) kB", status).group(1)) / 1024 for k in ("VmRSS", "VmHWM")}  # type: ignore[union-attr]
    return values["VmRSS"], values["VmHWM"]


def touch_item_pages(port: int, export: Path, count: int) -> None:
    # Only the pages: the .gz beside each is for nginx's gzip_static, not a route of ours.
    for page in sorted((export / "items").glob("*.html"))[:count]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/items/{page.name}", timeout=10) as response:
            response.read()


def measure(urls: list[str], args: argparse.Namespace) -> list[tuple[float, float]]:
    """(200 req/s, 304 req/s) per URL: the median of ``--rounds`` runs, taken in
    turns so that other load on the machine hits every server alike."""
    tags = [etag_of(url) for url in urls]
    runs: list[list[tuple[float, float]]] = [[] for _ in urls]
    for _ in range(args.rounds):
        for index, url in enumerate(urls):
            full = wrk(url, args)
            runs[index].append((full, wrk(url, args, f"If-None-Match: {tags[index]}")))
    return [(statistics.median(r[0] for r in done), statistics.median(r[1] for r in done)) for done in runs]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (the machine has 2 cores)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per figure; the median is reported")
    parser.add_argument(
        "--nginx-workers", default="1,auto", help="nginx worker_processes to compare with, comma-separated"
    )
    parser.add_argument(
        "--wrk-cpu",
        type=int,
        default=0 if (os.cpu_count() or 1) > 1 else None,
        help="pin wrk to this CPU with taskset (default: 0 on a multi-core machine)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    return parser.parse_args()


def main() -> None:
    args = parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        port = free_port()
        config = prepare(root, port, args.items)
        export = root / "public"
        daemon = start_daemon(config, export, root / "daemon.log")
        processes.append(daemon)
        rss_idle = memory(daemon.pid)
        print(f"daemon: pid {daemon.pid}, one process, one uvicorn event loop, scheduler threads beside it")
        print(f"memory after start-up: VmRSS {rss_idle[0]:.1f} MB (peak {rss_idle[1]:.1f} MB)")
        if shutil.which("wrk") is None:
            print("wrk: not installed, no throughput figures (sudo apt-get install wrk)")
        else:
            servers = {"feeds serve": f"http://127.0.0.1:{port}/feeds/all.rss"}
            for workers in args.nginx_workers.split(","):
                nginx_port = free_port()
                nginx = start_nginx(root / f"nginx-{workers}", export, nginx_port, workers)
                if nginx is None:
                    break
                processes.append(nginx)
                servers[f"nginx {workers}"] = f"http://127.0.0.1:{nginx_port}/feeds/all.rss"
            report(args, dict(zip(servers, measure(list(servers.values()), args), strict=True)))
        touch_item_pages(port, export, 3000)
        rss = memory(daemon.pid)
        print(
            f"\ndaemon memory with {args.items} stories, after the load and 3000 item pages: "
            f"VmRSS {rss[0]:.1f} MB, peak {rss[1]:.1f} MB (target < 150 MB)"
        )
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(10)
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def prepare(root: Path, port: int, items: int) -> Path:
    """A project with ``items`` stories stored and a config making all.rss ~100 KB."""
    started = time.monotonic()
    write_seeds(root / "seeds", items)
    feeds(write_config(root, port, 50), "ingest")
    per_feed = choose_items_per_feed(root, port)
    config = write_config(root, port, per_feed)
    print(
        f"store: {items} stories ingested, all.rss has {per_feed} items, "
        f"{feed_size(config)} bytes ({time.monotonic() - started:.0f}s to prepare)"
    )
    return config


def report(args: argparse.Namespace, results: dict[str, tuple[float, float]]) -> None:
    """One row per server; ratios are feeds serve over each nginx."""
    print(
        f"\nwrk -t{args.threads} -c{args.connections} -d{args.duration}s, GET /feeds/all.rss on 127.0.0.1, "
        f"median of {args.rounds} interleaved runs; nginx N = worker_processes N, sendfile on; "
        f"wrk on CPU {args.wrk_cpu}"
    )
    ours = results["feeds serve"]
    print(f"{'':14}{'200 req/s':>12}{'304 req/s':>12}{'200 ratio':>12}{'304 ratio':>12}")
    for name, (full, revalidated) in results.items():
        ratios = (
            ("", "") if name == "feeds serve" else (f"{ours[0] / full:.2f}", f"{ours[1] / revalidated:.2f}")
        )
        print(f"{name:14}{full:>12.0f}{revalidated:>12.0f}{ratios[0]:>12}{ratios[1]:>12}")
    print("targets: 200 ratio >= 0.5, 304 ratio >= 0.35")


if __name__ == "__main__":
    os.environ.pop("FEEDS_CONFIG", None)
    main()
