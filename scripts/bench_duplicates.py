#!/usr/bin/env python3
"""Benchmark ``duplicates`` on the public corpus: rescoring in one process vs one per core.

Usage::

    python scripts/bench_duplicates.py [--corpus DIR] [--workers 0,2] [--rounds 1] [--json FILE]

The corpus (fetched if missing) is added to a scratch database, then
``duplicates`` runs once per worker count and round, alternating, and the
stages are timed through its progress reports: the vector stage (searching
images) and the rescoring of the pairs it brings close. Every run must give
the same groups. The motivating case's brute force (blur at full size,
``matchTemplate`` for every pair of images) is timed on a few photos and
extrapolated to the same collection, for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nearindex

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import brute_force, corpus_files
from corpus_pairs import DEFAULT_CORPUS, ensure_corpus


class StageClock:
    """A Progress that times each stage and keeps its size."""

    def __init__(self) -> None:
        self.stages: dict[str, dict[str, float]] = {}
        self._current = ""

    def start(self, total: int, description: str) -> None:
        """A stage begins."""
        self._current = description
        self.stages[description] = {"total": total, "started": time.perf_counter(), "seconds": 0.0}

    def advance(self, steps: int = 1) -> None:
        """Steps are not timed one by one."""

    def finish(self) -> None:
        """The stage ends."""
        stage = self.stages[self._current]
        stage["seconds"] = time.perf_counter() - stage["started"]


def run(database: nearindex.NearIndex, workers: int) -> tuple[dict[str, Any], list[Any]]:
    """One ``duplicates`` run: wall seconds, stage seconds and sizes, and the groups."""
    clock = StageClock()
    started = time.perf_counter()
    groups = database.duplicates(workers=workers, progress=clock)
    wall = time.perf_counter() - started
    search, rescore = clock.stages["searching images"], clock.stages["rescoring pairs"]
    return {
        "workers": workers, "wall_s": wall, "images": int(search["total"]), "vector_s": search["seconds"],
        "pairs": int(rescore["total"]), "rescore_s": rescore["seconds"], "groups": len(groups),
    }, groups  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="public corpus (fetched if missing)")
    cores = len(os.sched_getaffinity(0))
    parser.add_argument("--workers", default=f"0,{cores}", help="comma-separated worker counts to compare")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each worker count (alternated)")
    parser.add_argument("--brute-images", type=int, default=12, help="corpus photos timed for the brute force")
    parser.add_argument("--json", type=Path, help="also write all numbers here")
    args = parser.parse_args()
    ensure_corpus(args.corpus)
    counts = [int(w) for w in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-duplicates-") as scratch:
        database = nearindex.open(Path(scratch) / "db")
        files = corpus_files(args.corpus)
        report = database.add(*files)
        print(f"{report.added} corpus images added; {cores} cores", file=sys.stderr)
        runs, reference = [], None
        for round_number in range(args.rounds):
            for workers in counts if round_number % 2 == 0 else counts[::-1]:
                numbers, groups = run(database, workers)
                print(f"  workers {workers}: {numbers['wall_s']:.1f} s", file=sys.stderr)
                runs.append(numbers)
                if reference is None:
                    reference = groups
                elif groups != reference:
                    raise SystemExit(f"workers {workers} gave other groups than the first run")
        database.close()
    brute = brute_force(args.corpus, args.brute_images, size=runs[0]["images"])
    best = {w: min((r for r in runs if r["workers"] == w), key=lambda r: r["wall_s"]) for w in counts}
    baseline = best[counts[0]]["wall_s"]
    print(f"\nduplicates on {runs[0]['images']} corpus images, {runs[0]['pairs']:,} candidate pairs, "
          f"{runs[0]['groups']} groups (best of {args.rounds})")  # fmt: skip
    print(f"{'method':<34}{'wall s':>9}{'vector s':>10}{'rescore s':>11}{'pairs/s':>9}{'ratio':>7}")
    for workers, r in best.items():
        name = "one process (--workers 0)" if workers == 0 else f"{workers} rescoring processes"
        print(f"{name:<34}{r['wall_s']:>9.1f}{r['vector_s']:>10.1f}{r['rescore_s']:>11.1f}"
              f"{r['pairs'] / r['rescore_s']:>9.0f}{baseline / r['wall_s']:>7.2f}")  # fmt: skip
    print(f"{'brute force, every pair (estimated)':<34}{brute['all_groups_s']:>9.0f}{'':>10}{'':>11}"
          f"{1000 / brute['pair_ms']:>9.0f}{baseline / brute['all_groups_s']:>7.2f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "brute_force": brute}, indent=2))


if __name__ == "__main__":
    main()
