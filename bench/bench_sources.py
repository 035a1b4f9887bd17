"""Benchmark: ten thousand sources, and a year of a newsroom's store.

Three parts, each printed as it finishes:

  refresh   10,000 local feeds x 20 items refreshed cold, warm (all 304) and
            with 10% changed, with times and peak memory: this runs
            ``bench_refresh.py --feeds 10000 --items 20 --skip-reader``.
  daemon    the daemon with 10,000 sources, none due (each fetched a moment
            ago): start-up time (ingest, the due check of every source, the
            site, one trigger per source) and the scheduler's CPU per minute
            while nothing is due, with its resident memory.
  store     a simulated year of daily seed ingests (about 200 stories a day):
            the store's size per item at days 30, 90, 180 and 365, and with
            ``[store] keep`` (when the config has it) that the size stays flat.

Run: ``python bench/bench_sources.py [--part refresh daemon store] [--sources 10000]
[--idle 30] [--days 365]``. Not a timed test: figures for the notes.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_seeds import make_document

from feeds.app import run_ingest
from feeds.clock import fixed_clock
from feeds.config import Config, SeedsConfig, SourceConfig, StoreConfig
from feeds.daemon.scheduler import Scheduler
from feeds.daemon.service import Daemon
from feeds.model import SourceState
from feeds.seeds.document import parse_seed
from store import Store

HERE = Path(__file__).resolve().parent
_DATE = re.compile(r"\b2026-\d\d-\d\d\b")


def part_refresh(sources: int) -> None:
    command = [sys.executable, str(HERE / "bench_refresh.py"), "--feeds", str(sources), "--items", "20"]
    print(
        "refresh:", " ".join(["python", "bench/bench_refresh.py", *command[2:], "--skip-reader"]), flush=True
    )
    subprocess.run([*command, "--skip-reader"], check=True)


def part_daemon(sources: int, idle: float) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "seeds").mkdir()
        config = Config(
            seeds=SeedsConfig(dir=folder / "seeds"),
            store=StoreConfig(path=folder / "feeds.db"),
            sources=tuple(
                SourceConfig(name=f"s{n:05d}", url=f"http://127.0.0.1:9/{n}.xml", interval=3600.0)
                for n in range(sources)
            ),
        )
        now = datetime.now(UTC).replace(microsecond=0)
        with Store(config.store.path) as store:
            store.save_source_states(
                [
                    SourceState(
                        s.name, s.url, last_success=now, next_due=now + timedelta(minutes=30 + n % 30)
                    )
                    for n, s in enumerate(config.sources)
                ]
            )
        scheduler = Scheduler(workers=config.fetch.workers + 2)
        started, cpu = time.perf_counter(), time.process_time()
        with Store(config.store.path) as store:
            daemon = Daemon(store, config, fixed_clock(now), timer=scheduler)
            daemon.start()
            for spec in daemon.job_specs():
                scheduler.add(spec)
            placed = daemon.schedule_sources()
            scheduler.start()
            up, up_cpu = time.perf_counter() - started, time.process_time() - cpu
            print(
                f"daemon: {sources} sources, {placed} triggers placed; start-up {up:.2f} s "
                f"({up_cpu:.2f} s CPU)",
                flush=True,
            )
            cpu = time.process_time()
            time.sleep(idle)  # nothing is due: what does waiting cost?
            idle_cpu = time.process_time() - cpu
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"daemon: idle {idle:.0f} s with nothing due: {idle_cpu * 1000:.1f} ms CPU "
                f"({idle_cpu / idle * 60 * 1000:.1f} ms per minute); peak RSS {rss:.0f} MB",
                flush=True,
            )
            scheduler.shutdown()
            daemon.stop_jobs(5)


def part_store(days: int, per_day: int) -> None:
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        seeds = folder / "seeds"
        seeds.mkdir()
        store_config = StoreConfig(path=folder / "feeds.db")
        keeps = "keep" in {f.name for f in dataclasses.fields(StoreConfig)}
        if keeps:
            store_config = dataclasses.replace(store_config, keep=180 * 86400.0)  # type: ignore[call-arg]
        config = Config(seeds=SeedsConfig(dir=seeds), store=store_config)
        kept = "180d" if keeps else "not available (not landed)"
        print(f"store: {days} days of ~{per_day} stories a day; [store] keep: {kept}", flush=True)
        start = datetime(2026, 1, 1, tzinfo=UTC)
        stories, took = 0, 0.0
        with Store(config.store.path) as store:
            for day in range(days):
                moment = start + timedelta(days=day)
                date = moment.date().isoformat()
                added = 0
                n = 0
                paths = []
                while added < per_day:
                    text = _DATE.sub(date, make_document(rng, rng.randint(4_000, 8_000)))
                    path = seeds / f"{date}-{n:02d}.txt"
                    path.write_text(text, encoding="utf-8")
                    paths.append(path)
                    added += len(parse_seed(text))
                    n += 1
                began = time.perf_counter()
                report = run_ingest(store, config, fixed_clock(moment + timedelta(hours=23)), paths)
                took += time.perf_counter() - began
                stories += report.written
                if day + 1 in (30, 90, 180, 365) or day + 1 == days:
                    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    size = config.store.path.stat().st_size
                    items = store.count_items()
                    print(
                        f"store: day {day + 1:>3}: {items:>6} items stored ({stories} written), "
                        f"{size / 1e6:7.1f} MB, {size / max(items, 1) / 1024:5.2f} KB per item; "
                        f"ingest {took / max(stories, 1) * 1e6:.0f} us per written item",
                        flush=True,
                    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--part", nargs="+", choices=("refresh", "daemon", "store"), default=["daemon", "store"]
    )
    parser.add_argument("--sources", type=int, default=10_000)
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of idle scheduler measured")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--per-day", type=int, default=200)
    args = parser.parse_args()
    if "refresh" in args.part:
        part_refresh(args.sources)
    if "daemon" in args.part:
        part_daemon(args.sources, args.idle)
    if "store" in args.part:
        part_store(args.days, args.per_day)


if __name__ == "__main__":
    main()
