"""Benchmark: ingest cost per item, at two sizes, against parsing alone.

Run: ``python bench/bench_ingest.py [--docs 1000 10000] [--seed S]``. For
each size, generated seed documents (the shapes of ``bench_seeds.py``,
4-8 KB each) are written to a temporary seeds folder, then timed twice:
reading and parsing them alone, and ``feeds ingest``'s work into a fresh
store on a real file (read, parse, merge, plan, write in one transaction).
Times are process CPU time (this machine is shared; wall time is shown
beside ingest). Targets: the cost per item of the largest size within 30% of the smallest's,
and ingest within 3x of parsing alone.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_seeds import make_document

from feeds.config import Config, SeedsConfig, StoreConfig
from feeds.seeds.document import decode_seed, parse_seed
from feeds.seeds.ingest import ingest_seeds, list_seed_files
from store import Store

NOW = datetime(2026, 12, 31, tzinfo=UTC)


def write_documents(folder: Path, count: int, seed: int) -> list[Path]:
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    for n in range(count):
        (folder / f"{n:06d}.txt").write_text(make_document(rng, rng.randint(4_000, 8_000)), encoding="utf-8")
    return list_seed_files(folder)


def time_parse(paths: list[Path]) -> tuple[float, int]:
    start = time.process_time()
    items = sum(len(parse_seed(decode_seed(p.read_bytes(), str(p)))) for p in paths)
    return time.process_time() - start, items


def time_ingest(paths: list[Path], db: Path) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, items stored) of one ingest into a fresh store."""
    config = Config(seeds=SeedsConfig(dir=paths[0].parent), store=StoreConfig(path=db))
    start, wall = time.process_time(), time.perf_counter()
    with Store(db) as store:
        report = ingest_seeds(
            store,
            paths,
            authority=config.site.authority,
            section_for_label=config.section_for_label,
            now=NOW,
        )
        assert report.written == store.count_items()
    return time.process_time() - start, time.perf_counter() - wall, report.written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    per_item: list[float] = []
    with tempfile.TemporaryDirectory() as scratch:
        for count in args.docs:
            paths = write_documents(Path(scratch) / f"seeds-{count}", count, args.seed)
            parse_seconds, parsed = time_parse(paths)
            ingest_seconds, wall, stored = time_ingest(paths, Path(scratch) / f"store-{count}.db")
            per_item.append(ingest_seconds / stored)
            print(
                f"{count:>6} documents, {parsed:>7} parsed mentions, {stored:>7} items stored: "
                f"parse {parse_seconds:6.2f} s, ingest {ingest_seconds:6.2f} s "
                f"({ingest_seconds / parse_seconds:.2f}x parse; wall {wall:.2f} s), "
                f"{per_item[-1] * 1e6:6.1f} us/item"
            )
    if len(per_item) > 1:
        print(f"cost per item, largest vs smallest: {per_item[-1] / per_item[0]:.2f}x (target <= 1.30x)")


if __name__ == "__main__":
    main()
