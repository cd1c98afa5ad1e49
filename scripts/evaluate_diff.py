#!/usr/bin/env python3
"""Accuracy and speed of ``nearindex.difference.diff_images`` on generated local edits.

Originals: a seeded sample of the corpus photos (long side capped at 1024 px) and generated
scenes. Each original A gets, as B, every edited kind -- a 15 % patch pasted from another
original, a caption band, a corner watermark, an object removed by ``cv2.inpaint`` of a random
blob on the most textured spot -- re-encoded at JPEG 90, every other one also cropped to about 90 %
and scaled by 0.8; and every negative kind: JPEG 30, half size, 90 % crop. The true box is the
bounding box of the pixels the edit changed by more than 20 grey levels (in any channel), within
B's frame. Per kind: the share of edits whose best region has IoU >= 0.5 with the true box, the
mean of that best IoU, the share of negatives with no region, and the time per diff. Then the
public pair ``ela_original.jpg`` / ``ela_modified.jpg`` (a pasted sticker, boxed by hand in B).

Usage: python scripts/evaluate_diff.py [--corpus DIR] [--originals N] [--scenes N] [--json OUT]
(the public corpus is fetched into ``--corpus`` when missing, as by ``scripts/evaluate.py``)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from nearindex import synthetic
from nearindex.difference import Difference, diff_images

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus_pairs import DEFAULT_CORPUS, ensure_corpus

Image = np.ndarray
Box = tuple[int, int, int, int]
#: The sticker in ela_modified.jpg, drawn by hand: (x, y, width, height) in its pixels.
ELA_STICKER_B: Box = (290, 140, 232, 232)
EDITED = ("paste", "caption", "watermark", "inpaint")
NEGATIVES = ("jpeg30", "half", "crop90")
MAX_SIDE = 1024


def read_photo(path: Path) -> Image | None:
    """A corpus photo as BGR, long side at most MAX_SIDE (None if undecodable)."""
    image = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return None
    factor = MAX_SIDE / max(image.shape[:2])
    return synthetic.scale(image, factor=factor) if factor < 1 else image


def originals(photos: Path, count: int, scenes: int, rng: np.random.Generator) -> list[tuple[str, Image]]:
    """A seeded sample of corpus photos (not the ela pair) and generated scenes."""
    paths = sorted(p for p in photos.glob("*") if p.suffix.lower() in {".jpg", ".png"} and "ela_" not in p.name)
    chosen = [paths[i] for i in sorted(rng.choice(len(paths), min(count, len(paths)), replace=False))]
    found = [(p.name, read_photo(p)) for p in chosen]
    found = [(name, image) for name, image in found if image is not None and min(image.shape[:2]) >= 64]
    return found + [(f"scene{seed}", synthetic.make_scene(1000 + seed)) for seed in range(scenes)]


def inpaint_blob(image: Image, rng: np.random.Generator) -> Image:
    """The image with a random blob around its most textured spot removed by inpainting."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    height, width = gray.shape
    energy = cv2.GaussianBlur(np.abs(cv2.Laplacian(gray, cv2.CV_32F)), (0, 0), max(height, width) / 25)
    margin = max(height, width) // 8
    inner = energy[margin : height - margin, margin : width - margin]
    y, x = np.unravel_index(int(np.argmax(inner)), inner.shape)
    mask = np.zeros((height, width), np.uint8)
    for _ in range(3):
        centre = (
            int(x + margin + rng.integers(-margin // 3, margin // 3 + 1)),
            int(y + margin + rng.integers(-margin // 3, margin // 3 + 1)),
        )
        axes = (int(rng.integers(margin // 3, margin)), int(rng.integers(margin // 3, margin)))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
    return np.asarray(cv2.inpaint(image, mask, 5, cv2.INPAINT_TELEA), np.uint8)


def edit(kind: str, image: Image, donor: Image, rng: np.random.Generator) -> Image:
    """The edited kind of ``image`` (before any re-encoding or cropping)."""
    seed = int(rng.integers(1 << 30))
    makers: dict[str, Callable[[], Image]] = {
        "paste": lambda: synthetic.paste_patch(image, donor, area=0.15, seed=seed),
        "caption": lambda: synthetic.add_caption(image),
        "watermark": lambda: synthetic.add_watermark(image, corner=("tl", "tr", "bl", "br")[seed % 4]),
        "inpaint": lambda: inpaint_blob(image, rng),
    }
    return makers[kind]()


def true_box(original: Image, edited: Image, window: Box) -> Box | None:
    """Bounding box of the pixels changed by more than 20 levels, within ``window``; None if none."""
    changed = (np.abs(original.astype(np.int16) - edited.astype(np.int16)).max(axis=2) > 20).astype(np.uint8)
    changed = cv2.morphologyEx(changed, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    x, y, w, h = window
    inside = np.zeros_like(changed)
    inside[y : y + h, x : x + w] = changed[y : y + h, x : x + w]
    if inside.sum() < 0.001 * changed.size:
        return None
    bx, by, bw, bh = cv2.boundingRect(inside)
    return int(bx), int(by), int(bw), int(bh)


def degrade(edited: Image, geometric: bool, rng: np.random.Generator) -> tuple[Image, Box]:
    """B: the edited image re-encoded, maybe cropped to ~90 % and scaled by 0.8; and its window in A."""
    height, width = edited.shape[:2]
    window = (0, 0, width, height)
    if geometric:
        w, h = round(width * 0.95), round(height * 0.95)
        x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        edited, window = synthetic.scale(edited[y : y + h, x : x + w], factor=0.8), (x, y, w, h)
    return synthetic.jpeg_reencode(edited, quality=90), window


def iou(first: Box, second: Box) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    x0, y0 = max(first[0], second[0]), max(first[1], second[1])
    x1, y1 = min(first[0] + first[2], second[0] + second[2]), min(first[1] + first[3], second[1] + second[3])
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    union = first[2] * first[3] + second[2] * second[3] - inter
    return inter / union if union > 0 else 0.0


def timed_diff(first: Image, second: Image) -> tuple[Difference, float]:
    """``diff_images`` and its wall-clock seconds."""
    start = time.perf_counter()
    found = diff_images(first, second)
    return found, time.perf_counter() - start


def evaluate_edits(images: list[tuple[str, Image]], rng: np.random.Generator) -> dict[str, list[dict[str, object]]]:
    """Per edited kind, one record per case: name, true box, best IoU, regions, seconds."""
    results: dict[str, list[dict[str, object]]] = {kind: [] for kind in EDITED}
    for index, (name, image) in enumerate(images):
        donor = images[(index + 1) % len(images)][1]
        for kind in EDITED:
            edited = edit(kind, image, donor, rng)
            second, window = degrade(edited, index % 2 == 1, rng)
            truth = true_box(image, edited, window)
            if truth is None:
                continue  # the edit changed nothing visible (e.g. inpainting a flat area)
            found, seconds = timed_diff(image, second)
            best = max((iou(r.box_a, truth) for r in found.regions), default=0.0)
            record = {"image": name, "truth": truth, "iou": best, "regions": len(found.regions), "seconds": seconds}
            results[kind].append(record)
    return results


def evaluate_negatives(images: list[tuple[str, Image]]) -> dict[str, list[dict[str, object]]]:
    """Per negative kind, one record per case: name, number of regions, seconds."""
    results: dict[str, list[dict[str, object]]] = {kind: [] for kind in NEGATIVES}
    for name, image in images:
        for kind in NEGATIVES:
            found, seconds = timed_diff(image, synthetic.EDITS[kind](image))
            results[kind].append({"image": name, "regions": len(found.regions), "seconds": seconds})
    return results


def evaluate_ela(photos: Path) -> dict[str, object] | None:
    """The public sticker pair: regions found and the best IoU with the hand-drawn box in B."""
    first, second = read_photo(photos / "ela_original.jpg"), read_photo(photos / "ela_modified.jpg")
    if first is None or second is None:
        return None
    found, seconds = timed_diff(first, second)
    best = max((iou(r.box_b, ELA_STICKER_B) for r in found.regions), default=0.0)
    boxes = [{"box_a": r.box_a, "box_b": r.box_b, "score": round(r.score, 3)} for r in found.regions]
    return {"iou": best, "regions": boxes, "aligned_by": found.aligned_by, "seconds": seconds}


def summarise(
    edits: dict[str, list[dict[str, object]]], negatives: dict[str, list[dict[str, object]]]
) -> list[dict[str, object]]:
    """One row per kind: cases, the success rate, mean IoU (edits), mean seconds."""
    rows: list[dict[str, object]] = []
    for kind, records in edits.items():
        ious = np.array([float(r["iou"]) for r in records])  # type: ignore[arg-type]
        rate, mean_iou = (float((ious >= 0.5).mean()), float(ious.mean())) if len(ious) else (0.0, 0.0)
        rows.append({"kind": kind, "cases": len(records), "rate": rate, "mean_iou": mean_iou,
                     "seconds": _mean_seconds(records)})  # fmt: skip
    for kind, records in negatives.items():
        clean = np.array([r["regions"] == 0 for r in records])
        rows.append({"kind": kind, "cases": len(records), "rate": float(clean.mean()), "mean_iou": None,
                     "seconds": _mean_seconds(records)})  # fmt: skip
    return rows


def _mean_seconds(records: list[dict[str, object]]) -> float:
    return float(np.mean([float(r["seconds"]) for r in records])) if records else 0.0  # type: ignore[arg-type]


def print_table(rows: list[dict[str, object]], ela: dict[str, object] | None) -> None:
    """Print one line per kind, then the ela pair."""
    print(f"{'kind':<10} {'cases':>5} {'rate':>6} {'meanIoU':>8} {'ms/diff':>8}")
    for row in rows:
        mean_iou = "" if row["mean_iou"] is None else f"{row['mean_iou']:.3f}"
        milliseconds = 1000 * float(row["seconds"])  # type: ignore[arg-type]
        print(f"{row['kind']:<10} {row['cases']:>5} {row['rate']:>6.3f} {mean_iou:>8} {milliseconds:>8.0f}")
    print("rate: share with IoU >= 0.5 (edited kinds), share with no region (negatives)")
    if ela is not None:
        regions = ela["regions"]
        print(
            f"ela pair: best IoU {ela['iou']:.3f} with the sticker, aligned by {ela['aligned_by']}, regions {regions}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--originals", type=int, default=40, help="corpus photos sampled")
    parser.add_argument("--scenes", type=int, default=10, help="generated scenes added")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=Path("evaluate_diff.json"))
    args = parser.parse_args(argv)
    ensure_corpus(args.corpus)
    args.photos = args.corpus / "photos"
    rng = np.random.default_rng(args.seed)
    images = originals(args.photos, args.originals, args.scenes, rng) if args.photos.is_dir() else [
        (f"scene{seed}", synthetic.make_scene(1000 + seed)) for seed in range(args.scenes)]  # fmt: skip
    edits, negatives = evaluate_edits(images, rng), evaluate_negatives(images)
    ela = evaluate_ela(args.photos) if (args.photos / "ela_original.jpg").exists() else None
    rows = summarise(edits, negatives)
    print_table(rows, ela)
    args.json.write_text(json.dumps({"summary": rows, "ela": ela, "edits": edits, "negatives": negatives}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
