"""Benchmark `feeds export` on a large store: first, unchanged, and one more seed document.

Run: ``python bench/bench_export.py [--items 160000]``. Seed-shaped items (the
sections, titles and paragraph counts of ``bench_seeds.py``) are written
straight into a store through its write API (ingest has its own benchmark),
then ``feeds export --offline`` runs as a user runs it, three times: on the
full store, again with nothing changed, and after one more seed document.
Printed: wall time and peak memory of each, and the largest folder of the
output. Targets (issue 14): unchanged < 1 s and one more document < 1.5 s at
160,000 items; no folder over ~5,000 entries.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench_seeds import _SECTIONS, _paragraph, _title, make_document

from feeds.model import Item, ItemWrite, Origin
from feeds.normalise import fold_title, item_slug, section_slug, seed_item_id
from store import Store

AUTHORITY = "bench.example.org,2026"
CONFIG = f"""
[site]
title = "Bench"
base_url = "http://127.0.0.1:8080/"
authority = "{AUTHORITY}"

[store]
path = "data/feeds.db"

[seeds]
dir = "seeds"

[output]
dir = "public"
"""


def seed_item(rng: random.Random, index: int, start: datetime) -> Item:
    """One stored seed story, dated within a year of ``start``."""
    title = f"{_title(rng)} {index}"
    key = fold_title(title)
    label = rng.choice(_SECTIONS)
    moment = start + timedelta(minutes=index * 3)  # 480 a day: a busy year in 160,000
    return Item(
        id=seed_item_id(AUTHORITY, key),
        key=key,
        slug=item_slug(title, key),
        title=title,
        kind=rng.choice(("article", "teaser", "headline")),
        published=moment,
        updated=moment,
        section=label,
        section_slug=section_slug(label),
        summary=_paragraph(rng),
        body=tuple(_paragraph(rng) for _ in range(rng.choice((0, 1, 2, 3, 5, 8)))),
    )


def fill_store(path: Path, items: int, seed: int = 1, batch: int = 5000) -> float:
    """Write ``items`` seed stories into the store at ``path``; seconds taken."""
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    began = time.perf_counter()
    with Store(path) as store:
        for first in range(0, items, batch):
            writes = []
            for index in range(first, min(items, first + batch)):
                item = seed_item(rng, index, start)
                origin = Origin(kind="seed", name=f"{index // 16:05d}.txt", first_seen=item.published)
                writes.append(ItemWrite(item=item, origins=(origin,)))
            store.write_batch(writes)
    return time.perf_counter() - began


def feeds(project: Path, *args: str) -> tuple[float, str]:
    """Run the CLI in ``project``; (seconds, stdout)."""
    command = [str(Path(sys.executable).parent / "feeds"), *args]
    began = time.perf_counter()
    done = subprocess.run(command, cwd=project, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr}")
    return time.perf_counter() - began, done.stdout


def peak_child_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def largest_folder(root: Path) -> tuple[str, int]:
    sizes = {folder: len(names) + len(subs) for folder, subs, names in os.walk(root)}
    folder = max(sizes, key=lambda f: sizes[f])
    return os.path.relpath(folder, root), sizes[folder]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=160_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        project = Path(tmp)
        (project / "seeds").mkdir()
        (project / "config.toml").write_text(CONFIG, encoding="utf-8")
        filled = fill_store(project / "data" / "feeds.db", args.items)
        print(f"store: {args.items:,} items written in {filled:.1f} s")
        for name, prepare in (
            ("first export", None),
            ("unchanged export", None),
            (
                "one more document",
                lambda: (project / "seeds" / "extra.txt").write_text(
                    make_document(random.Random(9), 6000), encoding="utf-8"
                ),
            ),
        ):
            if prepare is not None:
                prepare()
            seconds, out = feeds(project, "export", "--offline")
            total = out.strip().splitlines()[-1]
            print(f"{name}: {seconds:.2f} s, peak {peak_child_mb():.0f} MB (so far) | {total}")
        folder, entries = largest_folder(project / "public")
        print(f"largest folder: {folder} with {entries:,} entries")


if __name__ == "__main__":
    main()
