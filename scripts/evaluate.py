#!/usr/bin/env python3
"""Accuracy of nearindex against its peers on generated edits of a collection.

Collection: the public corpus (photos are originals, figures distractors) or
any folder (a seeded sample of it are originals, the rest distractors). Each
original gets every edit of ``EDIT_NAMES`` (cached as PNG); then, per edit and
overall, for every method:

* retrieval: recall@1 and recall@10 of the original among all collection
  images when querying with the edit (ties count against the method);
* verification: ROC AUC and the share of true pairs (edit, original) above
  the score reached by 1 % and 0.1 % of false pairs (random pairs of
  different collection images).

Methods: nearindex (its real query path: a database, FAISS candidates,
rescoring), pHash and dHash (imagehash), PDQ (pdqhash), and the motivating
case's brute force: Gaussian blur 43x43/sigma 21 at full size, thumbnails
compared by ``cv2.matchTemplate`` (TM_CCOEFF_NORMED) for every pair.

Usage: python scripts/evaluate.py [--folder DIR [--distinct]] [--json OUT] [--originals N] [--workers N]
Peers need the bench extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

import nearindex
from nearindex import evaluation, synthetic
from nearindex.duplicates import _union_groups
from nearindex.intake import describe_file
from nearindex.search import Side, score_pair
from nearindex.settings import DEFAULT_SETTINGS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus_pairs import DEFAULT_CORPUS, ensure_corpus, read_pair_rows, read_pairs
from peers import PEERS

EDIT_NAMES = (
    "crop90", "crop75", "crop60", "half", "quarter", "jpeg30", "caption", "watermark", "rotate3", "rotate8",
    "flip", "gamma", "brighter", "contrast", "border", "grayscale", "screenshot", "paste", "crop75+caption+jpeg50",
)  # fmt: skip
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
SEED = 20261126
#: Pairs of the public corpus that show the same picture beyond plain copies, judged by eye.
RELATIVES = Path(__file__).resolve().parent / "corpus_relatives.tsv"


def load_colour(path: Path) -> np.ndarray | None:
    """An image as 8-bit BGR, or None when OpenCV cannot read it or it is tiny."""
    image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
    if image is None or min(image.shape[:2]) < 64:
        return None
    return image if image.dtype == np.uint8 else cv2.convertScaleAbs(image, alpha=255 / 65535)


def make_edits(originals: list[Path], cache: Path) -> list[tuple[str, Path, Path]]:
    """Write (or reuse) every edit of every original; returns (edit, edited path, original)."""
    cache.mkdir(parents=True, exist_ok=True)
    jobs = []
    for index, original in enumerate(originals):
        image = load_colour(original)
        if image is None:
            continue
        tag = hashlib.blake2b(str(original).encode(), digest_size=4).hexdigest()
        for name in EDIT_NAMES:
            target = cache / f"{original.stem}-{tag}__{name.replace('+', '-')}.png"
            if not target.exists():
                synthetic.write_image(target, edit(image, name, originals, index))
            jobs.append((name, target, original))
    return jobs


def edit(image: np.ndarray, name: str, originals: list[Path], index: int) -> np.ndarray:
    """Apply one named edit; ``paste`` takes its patch from the next original."""
    donor = None
    for step in range(1, len(originals)) if name == "paste" else ():
        donor = load_colour(originals[(index + step) % len(originals)])
        if donor is not None:
            break
    return synthetic.apply_edit(image, name, donor=donor if donor is not None else image[::-1], seed=index)


def choose_collection(args: argparse.Namespace) -> tuple[list[Path], list[Path]]:
    """(originals, distractors) from the corpus or from a user's folder."""
    if args.folder is None:
        ensure_corpus(args.corpus)
        return _images(args.corpus / "photos"), _images(args.corpus / "figures")
    everything = _images(args.folder)
    rng = np.random.default_rng(SEED)
    chosen = set(rng.choice(len(everything), size=min(args.originals, len(everything)), replace=False).tolist())
    return [p for i, p in enumerate(everything) if i in chosen], [
        p for i, p in enumerate(everything) if i not in chosen
    ]


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def copy_signature(path: Path) -> tuple[np.ndarray, float] | None:
    """An unblurred 64x64 normalised grid and the aspect ratio, to spot plain copies."""
    gray = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_GRAYSCALE)
    if gray is None:
        return None
    grid = cv2.resize(gray.astype(np.float32), (64, 64), interpolation=cv2.INTER_AREA).ravel()
    grid -= grid.mean()
    norm = float(np.linalg.norm(grid))
    return (grid / norm, gray.shape[1] / gray.shape[0]) if norm > 0 else None


def find_copies(collection: list[Path]) -> list[set[int]]:
    """For each collection image, the indices of its plain copies in the collection.

    Ground truth must not come from any method under test, so this is a strict,
    unblurred test: same aspect ratio within 3 % and a 64x64 grayscale
    correlation of at least 0.97 (re-encodings, re-sizes and copies of a photo
    inside a figure of the same framing). A query's original *or* one of its
    copies counts as found, and copy pairs are never used as negatives.
    """
    signatures = [copy_signature(p) for p in collection]
    copies: list[set[int]] = [set() for _ in collection]
    for i, first in enumerate(signatures):
        for j in range(i + 1, len(signatures)):
            second = signatures[j]
            if first and second and abs(second[1] / first[1] - 1) < 0.03 and float(first[0] @ second[0]) >= 0.97:
                copies[i].add(j)
                copies[j].add(i)
    return copies


def find_relatives(collection: list[Path], corpus: Path) -> list[set[int]]:
    """For each collection image, the indices of its relatives as people judged them.

    Those are the natural pairs of ``pairs.tsv`` (made by other people; files
    in ``photos/``) and the pairs of ``RELATIVES``: figures of the corpus
    showing one of its photos with keypoints drawn, in a window, cropped or
    undistorted, which the strict test of ``find_copies`` cannot tell from
    other images (files named by their path in the corpus).

    Raises:
        SystemExit: If a named file is not in the collection.
    """
    at = {path: index for index, path in enumerate(collection)}
    relatives: list[set[int]] = [set() for _ in collection]
    for source, folder in ((corpus / "pairs.tsv", corpus / "photos"), (RELATIVES, corpus)):
        for a, b, _relation in read_pair_rows(source):
            i, j = at.get(folder / a), at.get(folder / b)
            if i is None or j is None:
                raise SystemExit(f"{source}: {a if i is None else b} is not in the collection")
            relatives[i].add(j)
            relatives[j].add(i)
    return relatives


def same_picture(*links: list[set[int]]) -> list[int]:
    """A label per index, equal for indices joined through any chain of links (copies of relatives too).

    The components are ``duplicates``' own union-find over the links as pairs.
    """
    label = list(range(len(links[0])))
    pairs = {(min(i, j), max(i, j)): 1.0 for link in links for i, others in enumerate(link) for j in others}
    for members, _pairs in _union_groups(pairs):
        for member in members:
            label[member] = min(members)
    return label


def negative_pairs(count: int, size: int, copies: list[set[int]]) -> np.ndarray:
    """``count`` seeded random pairs of distinct, non-copy indices below ``size``."""
    rng = np.random.default_rng(SEED + 1)
    pairs = rng.integers(0, size, (count * 3, 2))
    pairs = np.unique(np.sort(pairs[pairs[:, 0] != pairs[:, 1]], axis=1), axis=0)
    keep = [pair for pair in pairs if pair[1] not in copies[pair[0]]]
    order = rng.permutation(len(keep))[:count]
    return np.asarray([keep[i] for i in sorted(order)])


def evaluate_nearindex(collection: list[Path], jobs, negatives, families, workers: int) -> dict:  # type: ignore[no-untyped-def]
    """Retrieval through a real database; verification with ``compare``'s scoring; ``workers`` processes."""
    queries = [(str(edited), sorted(str(collection[i]) for i in families[original])) for _, edited, original in jobs]
    pairs = [(str(e), str(o)) for _, e, o in jobs] + [(str(collection[a]), str(collection[b])) for a, b in negatives]
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch) / "db"
        with nearindex.open(directory) as db:
            db.add(*collection)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_open_reader, initargs=(directory,)) as pool:
            ranks = list(pool.map(_query_rank, queries, chunksize=8))
            scores = list(pool.map(_pair_score, pairs, chunksize=256))
    return {"ranks": ranks, "positives": scores[: len(jobs)], "negatives": scores[len(jobs) :]}


_reader: nearindex.NearIndex | None = None


def _open_reader(directory: Path) -> None:
    """Worker start: open the evaluation's database for queries (read-only, so workers never wait)."""
    global _reader
    _reader = nearindex.open(directory, read_only=True)


def _query_rank(query: tuple[str, list[str]]) -> int:
    """Rank of the edit's family in its query's results (worker)."""
    assert _reader is not None
    edited, family = query
    return rank_in_results(_reader.query(edited, k=10), set(family))


def _pair_score(pair: tuple[str, str]) -> float:
    """``compare``'s score of two files (worker; each file described once per worker)."""
    return score_pair(_side(pair[0]), _side(pair[1])).score


def rank_in_results(matches: list[nearindex.Match], family: set[str]) -> int:
    """Rank of the best family member, ties counted against it as for the peers (11: not in the top 10)."""
    scores = [m.score for m in matches if m.path in family]
    if not scores:
        return 11
    return 1 + sum(1 for m in matches if m.path not in family and m.score >= max(scores))


@functools.cache
def _side(path: str | Path) -> Side:
    """What ``compare`` scores an image with (kept: a file meets many others)."""
    return Side.of(describe_file(str(path)), DEFAULT_SETTINGS)


def evaluate_peer(similarity: Callable, features: dict, collection, jobs, negatives, families) -> dict:  # type: ignore[no-untyped-def]
    """Retrieval by exhaustive similarity; verification on the same pairs."""
    library = [features[p] for p in collection]
    ranks = []
    for _name, edited, original in jobs:
        scores = np.array([similarity(features[edited], item) for item in library])
        ranks.append(evaluation.rank_of_any(scores, families[original]))
    positives = [similarity(features[e], features[o]) for _, e, o in jobs]
    negative_scores = [similarity(library[a], library[b]) for a, b in negatives]
    return {"ranks": ranks, "positives": positives, "negatives": negative_scores}


def summarise(raw: dict, jobs) -> dict:  # type: ignore[no-untyped-def]
    """Per-edit and overall metrics of one method."""
    names = [name for name, _, _ in jobs]
    negatives = np.array(raw["negatives"])
    rows = {}
    for name in [*EDIT_NAMES, "overall"]:
        keep = [i for i, n in enumerate(names) if name in ("overall", n)]
        ranks = [raw["ranks"][i] for i in keep]
        check = evaluation.verify(np.array([raw["positives"][i] for i in keep]), negatives)
        rows[name] = {"recall@1": evaluation.recall_at(ranks, 1), "recall@10": evaluation.recall_at(ranks, 10),
                      "auc": check.auc, "tpr@1%": check.tpr_at_1, "tpr@0.1%": check.tpr_at_01,
                      "positive_median": check.positive_median, "negative_p99.9": check.negative_p999}  # fmt: skip
    return rows


def calibrate(negatives: np.ndarray, positives: np.ndarray) -> dict:  # type: ignore[type-arg]
    """nearindex's default threshold against these negatives, and the threshold at 0.1 % of them."""
    default = DEFAULT_SETTINGS.duplicate_threshold
    return {
        "default_threshold": default,
        "false_match_rate_at_default": float(np.mean(negatives >= default)),
        "true_match_rate_at_default": float(np.mean(positives >= default)),
        "threshold_at_0.1%": evaluation.threshold_at_fpr(negatives, 0.001),
    }


def print_table(results: dict, metric: str) -> None:
    """Rows = edits, columns = methods, for one metric."""
    methods = list(results)
    print(f"\n{metric}")
    print(f"{'edit':<24}" + "".join(f"{m:>11}" for m in methods))
    for name in [*EDIT_NAMES, "overall"]:
        values = [results[m][name][metric] for m in methods]
        best = max(values)
        cells = "".join(f"{v:>10.3f}{'*' if v == best else ' '}" for v in values)
        print(f"{name:<24}{cells}")


def natural_pairs(corpus: Path) -> dict:
    """nearindex on pairs.tsv: each partner's rank and duplicates' pairwise F1."""
    photos = corpus / "photos"
    pairs = read_pairs(corpus)
    with tempfile.TemporaryDirectory() as scratch, nearindex.open(Path(scratch) / "db") as db:
        db.add(photos, corpus / "figures")
        found = [g.paths for g in db.duplicates()]
        ranks = {}
        for a, b, _relation in pairs:
            results = [m.path for m in db.query(photos / a, k=10) if m.path != str(photos / a)]
            ranks[f"{a} ~ {b}"] = results.index(str(photos / b)) + 1 if str(photos / b) in results else None
    truth = [{str(photos / a), str(photos / b)} for a, b, _ in pairs]
    precision, recall, f1 = evaluation.pairwise_f1(found, truth)
    return {"ranks": ranks, "precision": precision, "recall": recall, "f1": f1}


def main() -> None:
    """Run every method, print the tables, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--folder", type=Path, help="evaluate on this folder instead of the corpus")
    parser.add_argument("--originals", type=int, default=100, help="originals sampled from --folder")
    parser.add_argument("--negatives", type=int, default=20_000)
    parser.add_argument(
        "--distinct", action="store_true",
        help="every file of --folder is another picture (a generated one): no search for plain copies",
    )  # fmt: skip
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "nearindex-eval")
    parser.add_argument("--json", type=Path, default=Path("evaluation.json"))
    parser.add_argument("--no-peers", action="store_true", help="evaluate nearindex alone (faster, for development)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="nearindex processes (default: cores)")
    args = parser.parse_args()
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.distinct and args.folder is None:
        parser.error("--distinct needs --folder (the corpus has copies)")
    originals, distractors = choose_collection(args)
    collection = originals + distractors
    jobs = make_edits(originals, args.cache / "edits")
    copies = [set() for _ in collection] if args.distinct else find_copies(collection)
    relatives = find_relatives(collection, args.corpus) if args.folder is None else [set() for _ in collection]
    picture = same_picture(copies, relatives)
    families = {p: {j for j, q in enumerate(picture) if q == picture[i]} for i, p in enumerate(collection)
                if p in set(originals)}  # fmt: skip
    sampled = negative_pairs(args.negatives, len(collection), copies)
    negatives = np.asarray([pair for pair in sampled if picture[pair[0]] != picture[pair[1]]])
    with_copies = sum(bool(copies[i]) for i, p in enumerate(collection) if p in families)
    with_relatives = sum(len(families[p]) > 1 + len(copies[i]) for i, p in enumerate(collection) if p in families)
    print(f"collection: {len(originals)} originals + {len(distractors)} distractors; {len(jobs)} edits; "
          f"{len(negatives)} negative pairs; {with_copies} originals have plain copies in the collection"
          + ("" if args.folder else f", {with_relatives} relatives judged by eye ({RELATIVES.name}, pairs.tsv)")
          + "; any counts as found")  # fmt: skip
    results, timings = {}, {}
    started = time.perf_counter()
    raw = evaluate_nearindex(collection, jobs, negatives, families, args.workers)
    results["nearindex"] = summarise(raw, jobs)
    calibration = calibrate(np.array(raw["negatives"]), np.array(raw["positives"]))
    timings["nearindex"] = time.perf_counter() - started
    for name, (extract, similarity) in ({} if args.no_peers else PEERS).items():
        started = time.perf_counter()
        features = {p: extract(p) for p in {*collection, *(e for _, e, _ in jobs)}}
        results[name] = summarise(evaluate_peer(similarity, features, collection, jobs, negatives, families), jobs)
        timings[name] = time.perf_counter() - started
    for metric in ("recall@1", "recall@10", "tpr@0.1%", "tpr@1%", "auc"):
        print_table(results, metric)
    print(f"\nseconds (nearindex on {args.workers} processes, the peers on one): "
          + ", ".join(f"{m} {t:.0f}" for m, t in timings.items()))  # fmt: skip
    rates = f"false matches {calibration['false_match_rate_at_default']:.4%}, true matches " + (
        f"{calibration['true_match_rate_at_default']:.3f}"
    )
    print(f"nearindex threshold {calibration['default_threshold']}: {rates}; "
          f"score at 0.1 % false matches {calibration['threshold_at_0.1%']:.3f}")  # fmt: skip
    document = {"collection": {"originals": len(originals), "distractors": len(distractors), "edits": len(jobs),
                               "negatives": len(negatives), "originals_with_copies": with_copies,
                               "originals_with_relatives": with_relatives}, "results": results, "seconds": timings,
                "calibration": calibration, "nearindex_workers": args.workers}  # fmt: skip
    if args.folder is None:
        document["natural_pairs"] = natural = natural_pairs(args.corpus)
        quality = f"precision {natural['precision']:.2f} recall {natural['recall']:.2f} F1 {natural['f1']:.2f}"
        print(f"\nnatural pairs (nearindex): rank of the partner; duplicates pairwise {quality}")
        for pair, rank in natural["ranks"].items():
            print(f"  {pair:<40} {rank if rank else '>10'}")
    args.json.write_text(json.dumps(document, indent=2))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
