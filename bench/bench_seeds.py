"""Benchmark: parse 10,000 generated seed documents on one core.

Run: ``python bench/bench_seeds.py [--docs N] [--seed S] [--repeat R]``. The documents are
built in memory from the shapes of the scraped pages (article pages with
datelines or bylines, LATEST NEWS rows, Recommended pairs, teasers, image
gaps, U+00A0 lines, CRLF), 4-8 KB each like the public seed. Target: parsing
all of them in under 5 s.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import unicodedata

from feeds.seeds.document import parse_seed

NBSP = "\u00a0"
_TEXT = (
    "Türkiye Ankara İzmir minister talks economy exports record ceasefire summit court ruling "
    "parliament election league champion museum festival harbor drought wheat bridge tunnel "
    "central bank inflation lira tourism visitors earthquake drill students rescue migrants "
    "Erdoğan Şanlıurfa Göbeklitepe Kasımpaşa Gaziantep ferry storm snow wildfire forest"
)
_WORDS = _TEXT.split(" ")
_SECTIONS = ("WORLD", "ECONOMY", "SPORTS", "TÜRKİYE", "ARTS & CULTURE", "OPINION", "SCIENCE & TECHNOLOGY")
_DATELINES = ("ANKARA", "İSTANBUL", "GAZİ MAĞUSA", "SAN SALVADOR", "İZMİR", "BRUSSELS", "NEW YORK")
_AUTHORS = ("Nilüfer Aksoy", "Mehmet Ali Kaya", "Barış Demir", "Jane van der Berg")
_DEBRIS = "Quark.Models.Entities.Ancestor?.Title?.ToUpperInvariant()"


def _title(rng: random.Random) -> str:
    words = rng.sample(_WORDS, rng.randint(5, 11))
    words[0] = words[0].capitalize()
    if rng.random() < 0.2:
        words[1] += "’s"
    return " ".join(words)


def _paragraph(rng: random.Random) -> str:
    return " ".join(rng.choices(_WORDS, k=rng.randint(20, 45))).capitalize() + "."


def _article(rng: random.Random, date: str) -> list[str]:
    title = _title(rng)
    prefix = rng.choice((f"date {date}", f"date {date}", rng.choice(_SECTIONS), _DEBRIS))
    lines = [f"{' ' if rng.random() < 0.1 else ''}{prefix} {title}", "", title, ""]
    if rng.random() < 0.15:
        lines += [rng.choice(_AUTHORS), title, ""]
    elif rng.random() < 0.8:
        lines += [rng.choice(_DATELINES), title, ""]
    for _ in range(rng.choice((1, 2, 3, 5, 8, 12, 32))):
        lines += [_paragraph(rng) + (f" {NBSP}" if rng.random() < 0.05 else ""), ""]
        if rng.random() < 0.1:
            lines += ["", "", ""]  # an image gap
    return [*lines, NBSP, ""]


def _listings(rng: random.Random) -> list[str]:
    lines = ["LATEST NEWS", ""]
    for n in range(1, 6):
        title = _title(rng)
        lines += [f"  {n}. {title}", ""]
        if rng.random() < 0.8:
            lines += [f"    {title}", ""]
    lines.append("Recommended")
    for _ in range(rng.randint(3, 7)):
        title = _title(rng)
        alt = unicodedata.normalize("NFD", title) if rng.random() < 0.1 else title.replace("’", "")
        lines += [alt, "", title]
    return lines


def _teasers(rng: random.Random) -> list[str]:
    lines: list[str] = []
    for _ in range(rng.randint(2, 5)):
        title = _title(rng)
        lines += [f"{rng.choice(_SECTIONS)} {title}", "", title, ""]
        if rng.random() < 0.8:
            lines += [_paragraph(rng), ""]
    return lines


def make_document(rng: random.Random, size: int) -> str:
    """One seed document of about ``size`` characters."""
    lines: list[str] = []
    length = 0
    day = rng.randint(1, 28)
    while length < size:
        date = f"2026-{rng.randint(1, 12):02d}-{day:02d}"
        page = _article(rng, date)
        if rng.random() < 0.7:
            page += _listings(rng)
        if rng.random() < 0.7:
            page += _teasers(rng)
        page_length = sum(len(line) + 1 for line in page)
        if lines and length + page_length > size * 1.25:
            break  # keep documents near the requested size
        lines += page
        length += page_length
    text = "\n".join(lines)
    return text.replace("\n", "\r\n") if rng.random() < 0.1 else text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="timed passes; best and median are shown")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    docs = [make_document(rng, rng.randint(4_000, 8_000)) for _ in range(args.docs)]
    size = sum(len(d) for d in docs)
    walls, cpus = [], []
    for _ in range(args.repeat):
        # On a shared virtual machine the wall clock also counts time another
        # tenant had the core; process CPU time is shown beside it.
        start, cpu = time.perf_counter(), time.process_time()
        items = sum(len(parse_seed(doc)) for doc in docs)
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    print(f"{len(docs)} documents, {size / 1e6:.1f} M characters, {items} items, {args.repeat} passes")
    print(
        f"wall: best {min(walls):.2f} s, median {statistics.median(walls):.2f} s "
        f"({len(docs) / min(walls):,.0f} documents/s); "
        f"CPU: best {min(cpus):.2f} s, median {statistics.median(cpus):.2f} s"
    )


if __name__ == "__main__":
    main()
