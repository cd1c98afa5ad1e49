#!/usr/bin/env python3
"""First accuracy check on the public corpus: rank of each natural pair's partner.

Adds every photo and figure of the corpus (``shared/corpus/fetch.sh``) to a
fresh database, then for each pair (a, b) in ``pairs.tsv`` queries with a and
reports the rank of b among all other images (byte-identical copies of the
query do not count), both directions, and whether ``duplicates`` puts the two
in one group. Also prints ingest speed and query latency.

Usage: python scripts/corpus_pairs.py [CORPUS_DIR | --corpus CORPUS_DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nearindex

REPO = Path(__file__).resolve().parent.parent
FETCH = REPO.parent / "shared" / "corpus" / "fetch.sh"
DEFAULT_CORPUS = Path.home() / ".cache" / "nearindex-corpus"
DEPTH = 50


def ensure_corpus(corpus: Path) -> None:
    """Fetch the corpus with the shared script when it is not there yet.

    Exits with a one-line message when it is missing and cannot be fetched
    (a clone outside the project's folder has no ``../shared``).
    """
    if (corpus / "pairs.tsv").exists():
        return
    if not FETCH.exists():
        sys.exit(f"error: no corpus at {corpus} and no {FETCH} to fetch it: fetch it elsewhere and pass --corpus DIR")
    if subprocess.run(["bash", str(FETCH), str(corpus)]).returncode != 0 or not (corpus / "pairs.tsv").exists():
        sys.exit(f"error: {FETCH} could not fetch the corpus into {corpus}")


def read_pairs(corpus: Path) -> list[tuple[str, str, str]]:
    """(a, b, relation) rows of pairs.tsv."""
    return read_pair_rows(corpus / "pairs.tsv")


def read_pair_rows(path: Path) -> list[tuple[str, str, str]]:
    """(a, b, relation) rows of a tab-separated file of file-name pairs (``#`` starts a comment line)."""
    rows = []
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            a, b, relation = line.split("\t")
            rows.append((a, b, relation))
    return rows


def rank_of(database: nearindex.NearIndex, query: Path, partner: Path) -> tuple[int | None, float | None]:
    """1-based rank and score of ``partner`` in ``query``'s results, copies of the query excluded."""
    query_bytes = query.read_bytes()
    results = [m for m in database.query(query, k=DEPTH) if Path(m.path).read_bytes() != query_bytes]
    for rank, match in enumerate(results, 1):
        if match.path == str(partner):
            return rank, match.score
    return None, None


def main() -> None:
    """Run the check and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--corpus", dest="corpus_option", type=Path, help="the corpus folder (as elsewhere)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.corpus_option and args.corpus != DEFAULT_CORPUS:
        parser.error("give the corpus folder once: as an argument or with --corpus")
    args.corpus = args.corpus_option or args.corpus
    ensure_corpus(args.corpus)
    photos = args.corpus / "photos"
    with tempfile.TemporaryDirectory() as scratch, nearindex.open(Path(scratch) / "db") as database:
        started = time.perf_counter()
        report = database.add(photos, args.corpus / "figures")
        ingest_seconds = time.perf_counter() - started
        groups = [set(g.paths) for g in database.duplicates()]
        rows = []
        for a, b, relation in read_pairs(args.corpus):
            rank_ab, score_ab = rank_of(database, photos / a, photos / b)
            rank_ba, _ = rank_of(database, photos / b, photos / a)
            grouped = any({str(photos / a), str(photos / b)} <= g for g in groups)
            rows.append({"a": a, "b": b, "relation": relation, "rank_a_to_b": rank_ab, "rank_b_to_a": rank_ba,
                         "score": score_ab, "grouped": grouped})  # fmt: skip
        latencies = []
        for image in sorted(photos.iterdir())[:40]:
            started = time.perf_counter()
            database.query(image, k=10)
            latencies.append(time.perf_counter() - started)
        images = database.info().images
    print(f"corpus: {images} images ({len(report.failed)} failed) from {args.corpus}")
    print(f"ingest: {images / ingest_seconds:.1f} images/s ({ingest_seconds:.1f} s, {report.counts()})")
    print(f"query latency (k=10, 40 queries): median {statistics.median(latencies) * 1000:.0f} ms, "
          f"max {max(latencies) * 1000:.0f} ms")  # fmt: skip
    print()
    print(f"{'pair':<36} {'rank a->b':>9} {'rank b->a':>9} {'score':>6}  grouped  relation")
    for row in rows:
        pair = f"{row['a']} ~ {row['b']}"
        score = f"{row['score']:.3f}" if row["score"] is not None else "-"
        print(f"{pair:<36} {row['rank_a_to_b'] or '>' + str(DEPTH):>9} {row['rank_b_to_a'] or '>' + str(DEPTH):>9} "
              f"{score:>6}  {'yes' if row['grouped'] else 'no':<7}  {row['relation']}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"images": images, "ingest_seconds": ingest_seconds, "pairs": rows}, indent=2))
    for failure in report.failed:
        print(f"nearindex: {failure}", file=sys.stderr)


if __name__ == "__main__":
    main()
