"""Time of finding a commune by its typed name or a shared location, at the size of Vietnam.

    .venv/bin/python -m bench.commune_search [--queries 2000]

Over all 3,321 communes and wards of the official 2025 list (from `vietnam-provinces` when
it is installed, otherwise as many made-up names of the same shape), times
`commune_search.find` for what citizens type: the name without marks, with marks, with
"xã" in front, with one typo, and garbage; and, for the choice of library, one pass of
difflib's `get_close_matches` (what find would cost with the standard library alone)
beside one of rapidfuzz. Then `nearest` with 10 villages per commune. Goal: find well under
10 ms. Exits non-zero if a name typed without marks is not among its own results.
"""

from __future__ import annotations

import argparse
import difflib
import os
import random
import sys
import time
from collections.abc import Callable, Sequence

from rapidfuzz import process
from rapidfuzz.distance import OSA

from bench.common import percentile
from bot.domain import commune_search
from bot.domain.commune_search import CommuneIndex, Place
from bot.domain.folding import without_marks

SYLLABLES = ("Vĩnh", "Thủy", "Tân", "An", "Hòa", "Hóa", "Bình", "Phú", "Đông", "Sơn", "Lâm",
             "Thạnh", "Thành", "Xuân", "Hương", "Quảng", "Trị", "Mỹ", "Lộc", "Cẩm", "Ea")


def official() -> list[tuple[str, str]]:
    try:
        from vietnam_provinces import Ward
    except ImportError:
        return []
    return [(f"{int(w.code):05d}", w.name) for w in Ward.iter_all()]


def made_up(count: int, rng: random.Random) -> list[tuple[str, str]]:
    kinds = ("Xã", "Xã", "Xã", "Phường")
    return [(f"{i:05d}", f"{rng.choice(kinds)} {rng.choice(SYLLABLES)} {rng.choice(SYLLABLES)}")
            for i in range(count)]


def typo(text: str, rng: random.Random) -> str:
    i = rng.randrange(len(text))
    return text[:i] + rng.choice("abcdeghiklmnopqrstuvxy") + text[i + 1:]


def timed(run: Callable[[], object], times: int) -> list[float]:
    spent = []
    for _ in range(times):
        start = time.perf_counter()
        run()
        spent.append((time.perf_counter() - start) * 1000)
    return spent


def line(label: str, ms: Sequence[float]) -> str:
    values = list(ms)
    return (f"  {label:<28} p50 {percentile(values, 0.5):6.2f} ms   p99 "
            f"{percentile(values, 0.99):6.2f} ms   max {max(values):6.2f} ms")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=2000)
    args = parser.parse_args()
    rng = random.Random(14)
    names = official()
    source = "official 2025 list (vietnam-provinces)"
    if not names:
        names, source = made_up(3321, rng), "made-up names (vietnam-provinces not installed)"
    start = time.perf_counter()
    made = [Place(code, name, tuple((10 + rng.random() * 13, 102 + rng.random() * 7)
                                    for _ in range(10)))
            for code, name in names]
    places = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    communes = CommuneIndex(made)
    built = (time.perf_counter() - start) * 1000
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start "
          "(p99 and max move with what else runs)")
    print(f"{len(communes)} communes, {source}; places made in {places:.0f} ms, index (names "
          f"folded, villages sorted) built in {built:.0f} ms, once per configuration load")

    picked = [rng.choice(made) for _ in range(args.queries)]
    kinds: dict[str, list[str]] = {
        "without marks": [without_marks(c.name) for c in picked],
        "with marks, as written": [c.name for c in picked],
        "without marks or 'xã'": [without_marks(c.name).split(" ", 1)[-1] for c in picked],
        "one typo": [typo(without_marks(c.name), rng) for c in picked],
        "garbage": ["".join(rng.choice("qwzjfk ") for _ in range(12)) for _ in picked],
    }
    missed = [c.name for c, typed in zip(picked, kinds["without marks"], strict=True)
              if c not in commune_search.find(typed, communes, limit=len(communes))]
    print(f"find, {args.queries} queries of each kind:")
    everything: list[float] = []
    for label, queries in kinds.items():
        ms = [t for q in queries for t in timed(lambda q=q: commune_search.find(q, communes), 1)]
        everything += ms
        print(line(label, ms))
    print(line("all", everything))

    plains = communes.plains
    sample = kinds["one typo"][:200]
    diff = [t for q in sample for t in timed(
        lambda q=q: difflib.get_close_matches(q, plains, n=5, cutoff=0.75), 1)]
    fuzzy = [t for q in sample for t in timed(
        lambda q=q: process.extract(q, plains, scorer=OSA.distance, score_cutoff=2,
                                    limit=None), 1)]
    print("one fuzzy pass over all names (find makes up to two):")
    print(line("difflib get_close_matches", diff))
    print(line("rapidfuzz OSA distance", fuzzy))

    points = [(10 + rng.random() * 13, 102 + rng.random() * 7) for _ in range(200)]
    near = [t for lat, lon in points for t in timed(
        lambda lat=lat, lon=lon: commune_search.nearest(lat, lon, communes), 1)]
    print(f"nearest, {len(communes.villages)} villages:")
    print(line("nearest (20 km)", near))
    if missed:
        print(f"NOT FOUND by their own name without marks: {missed[:10]}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
