#!/usr/bin/env python3
"""Versions of the public corpus's photos cut to other screen shapes: is the original found first?

A wallpaper or a photo often exists in several shapes: the desktop's 16:9, a 4:3 print,
a square post, a phone's 3:4 or 9:16 portrait. Each is the middle of the picture, its
short side whole, resized. Every photo of the corpus is cut to each shape it does not
already have (the middle of its width or of its height, whichever keeps the shape),
resized to at most 800 px and saved as JPEG 90, then queried against a database of the
whole corpus; a relative of the photo judged by eye counts as found, as in
``scripts/evaluate.py``. Prints, per shape, recall@1 and @10 and the share scoring at
least the default threshold, and each miss.

Usage: python scripts/evaluate_shapes.py [--corpus DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

import nearindex
from nearindex.settings import DEFAULT_SETTINGS

sys.path.insert(0, str(Path(__file__).resolve().parent))
import evaluate
from corpus_pairs import DEFAULT_CORPUS, ensure_corpus

#: Shapes (width / height) every photo is cut to.
SHAPES = {"16:9": 16 / 9, "4:3": 4 / 3, "1:1": 1.0, "3:4": 3 / 4, "9:16": 9 / 16}
#: Longest side of a cut version, pixels.
LONG_SIDE = 800


def centre_cut(image: np.ndarray, aspect: float) -> np.ndarray:
    """The middle of ``image`` with width / height ``aspect``, its other side whole, at most ``LONG_SIDE``."""
    height, width = image.shape[:2]
    if width / height > aspect:
        new_width, new_height = round(height * aspect), height
    else:
        new_width, new_height = width, round(width / aspect)
    top, left = (height - new_height) // 2, (width - new_width) // 2
    cut = image[top : top + new_height, left : left + new_width]
    ratio = min(1.0, LONG_SIDE / max(new_width, new_height))
    size = (max(1, round(new_width * ratio)), max(1, round(new_height * ratio)))
    return np.asarray(cv2.resize(cut, size, interpolation=cv2.INTER_AREA))


def main() -> None:
    """Cut, query and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--json", type=Path, default=Path("shapes.json"))
    args = parser.parse_args()
    ensure_corpus(args.corpus)
    chosen = argparse.Namespace(folder=None, originals=100, corpus=args.corpus)
    originals, distractors = evaluate.choose_collection(chosen)
    collection = originals + distractors
    picture = evaluate.same_picture(evaluate.find_copies(collection), evaluate.find_relatives(collection, args.corpus))
    family = {
        str(path): {str(collection[j]) for j, other in enumerate(picture) if other == picture[i]}
        for i, path in enumerate(collection)
    }
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        with nearindex.open(Path(scratch) / "db") as db:
            db.add(*collection)
        db = nearindex.open(Path(scratch) / "db", read_only=True)
        for name, aspect in SHAPES.items():
            ranks, scores = [], []
            for number, original in enumerate(originals):
                image = cv2.imread(str(original), cv2.IMREAD_COLOR)
                if abs(image.shape[1] / image.shape[0] - aspect) < 0.05:
                    continue  # already that shape
                probe = Path(scratch) / f"{number:03d}-{name.replace(':', 'x')}.jpg"
                cv2.imwrite(str(probe), centre_cut(image, aspect), [cv2.IMWRITE_JPEG_QUALITY, 90])
                matches = db.query(str(probe), k=10)
                rank = evaluate.rank_in_results(matches, family[str(original)])
                ranks.append(rank)
                scores.append(max((m.score for m in matches if m.path in family[str(original)]), default=0.0))
                if rank > 1:
                    print(f"  {name} {original.name}: rank {rank if rank <= 10 else '>10'}, score {scores[-1]:.3f}")
            found = np.array(ranks)
            results[name] = {
                "versions": len(found),
                "recall@1": float(np.mean(found == 1)),
                "recall@10": float(np.mean(found <= 10)),
                "at_threshold": float(np.mean(np.array(scores) >= DEFAULT_SETTINGS.duplicate_threshold)),
            }
    threshold = f">= {DEFAULT_SETTINGS.duplicate_threshold}"
    print(f"{'shape':<6} {'versions':>8} {'recall@1':>9} {'recall@10':>10} {threshold:>8}")
    for name, row in results.items():
        cells = f"{row['recall@1']:>9.3f} {row['recall@10']:>10.3f} {row['at_threshold']:>8.3f}"
        print(f"{name:<6} {row['versions']:>8} {cells}")
    args.json.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
