#!/usr/bin/env python3
"""Write a generated collection of smooth images (wallpaper-like) for ``evaluate.py --folder``.

The public corpus holds one smooth image (``gradient.png``), yet smooth
gradients and soft abstract wallpapers are where correlation is weakest:
unrelated ones correlate highly, and an edit changes little that could tell
a copy from another wallpaper. This writes ``--count`` two-colour gradients
(linear or radial, ``synthetic.make_gradient``) and as many soft colour
fields (``synthetic.make_soft``), as PNG, with fixed seeds, so that the
evaluation can measure every method on them::

    python scripts/smooth_collection.py /tmp/smooth
    python scripts/evaluate.py --folder /tmp/smooth --distinct --json smooth.json

(``--distinct``: every file is another picture; the suite's own test for
plain copies is a grey correlation, which calls two ramps of other colours
copies.)

``--shapes`` draws each image's shape from common screen and photo shapes
(``SHAPES``, long side ``--width``) instead of one ``--width`` x ``--height``:
unrelated pictures of other shapes, and copies in another shape (borders,
screenshots), are what a real wallpaper folder holds.

Usage: python scripts/smooth_collection.py DIR [--count N] [--width W] [--height H] [--shapes]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from nearindex import synthetic

#: Seeds of the soft fields start here, so that no gradient and field share one.
SOFT_SEEDS = 100_000
#: (width, height) proportions ``--shapes`` draws from: screens, photos, phones, squares.
SHAPES = ((4, 3), (3, 2), (16, 10), (16, 9), (21, 9), (1, 1), (3, 4), (2, 3), (9, 16))


def shape_of(seed: int, long_side: int) -> dict[str, int]:
    """The width and height of image ``seed`` under ``--shapes``: one of ``SHAPES``, its long side ``long_side``."""
    width, height = SHAPES[int(np.random.default_rng(seed).integers(len(SHAPES)))]
    ratio = long_side / max(width, height)
    return {"width": max(8, round(width * ratio)), "height": max(8, round(height * ratio))}


def main() -> None:
    """Write the collection and say where."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--count", type=int, default=250, help="gradients, and as many soft fields")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument(
        "--shapes",
        action="store_true",
        help="draw each image's shape from SHAPES, long side --width (--height is then unused)",
    )
    args = parser.parse_args()
    if args.count < 1:
        parser.error("--count must be at least 1")
    if min(args.width, args.height) < 8:
        parser.error("--width and --height must be at least 8")
    args.folder.mkdir(parents=True, exist_ok=True)
    for seed in range(args.count):
        for name, make, image_seed in (
            ("gradient", synthetic.make_gradient, seed),
            ("soft", synthetic.make_soft, SOFT_SEEDS + seed),
        ):
            size = shape_of(image_seed, args.width) if args.shapes else {"width": args.width, "height": args.height}
            synthetic.write_image(args.folder / f"{name}-{seed:04d}.png", make(image_seed, **size))
    print(f"{2 * args.count} smooth images in {args.folder}")


if __name__ == "__main__":
    main()
