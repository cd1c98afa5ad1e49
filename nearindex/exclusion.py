"""Correlation of two aligned images outside the one region where they disagree most.

A pasted patch, a sticker or a removed object changes one compact region of a
copy. Where it falls across the middle of the rescorer's 4x4 blocks, it spoils
up to nine of them and the blocks' median sinks with it. Leaving out one
rectangle of cells instead (the rectangle whose absence correlates the rest
best) recovers the copy, and a single compact rectangle is too little freedom
to make unrelated images agree. The rescorer passes the whole area where the
two images overlap, not only its template (the central 80 %): there a patch
is a smaller share of the cells.

Both planes the rescorer compares are scored together, outside the same
rectangle: the plain blurred images, and the band-pass ones with the rectangle
grown by one cell, since the band-pass spreads a patch's edge by its blur
width. A smooth image's band-pass is noise: it is scored on its plain plane
alone (``plain_correlation_outside_region``). Sums over cells (with 2-D prefix
sums) give every rectangle's correlation in one vectorised step, so trying all
of them costs about as much as one block correlation.

One image alone has such a region when all its detail lies in one rectangle
(``detail_region``): a patch pasted over a smooth picture, which a query
leaves out of its vector to find the picture (``features.detail_left_out``).
"""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np
import numpy.typing as npt

#: The images are cut into CELLS x CELLS cells; excluded rectangles are made of cells.
CELLS = 8
#: Largest excluded rectangle, as a share of the cells: 5x5 of 8x8 is 39 %. A 15 % patch is 3.1
#: cells a side of a whole image, 3.9 of a template that is its central 80 %, before the blur
#: spreads it.
MAX_EXCLUDED_SHARE = 0.4
#: Cells the band-pass plane's rectangle is grown by on every side.
BANDPASS_GROWTH = 1

Image = npt.NDArray[np.float32]
Rectangles = npt.NDArray[np.int64]


def correlation_outside_region(bandpass: tuple[Image, Image], plain: tuple[Image, Image]) -> float:
    """Best mean correlation of both planes outside one rectangle of cells.

    Args:
        bandpass: The two images' band-pass planes where they overlap, equally shaped.
        plain: Their plain planes there (same shape as ``bandpass``).

    Returns:
        Over every rectangle of at most ``MAX_EXCLUDED_SHARE`` of the cells,
        the mean of the two planes' Pearson correlations outside it (the
        band-pass one outside the rectangle grown by ``BANDPASS_GROWTH``),
        at best; -1 when the images are smaller than the grid of cells.
    """
    if _too_small(plain[0]):
        return -1.0
    sums = np.concatenate([_cell_sums(*bandpass), _cell_sums(*plain)])
    return float(np.max(_correlations_outside(sums).mean(axis=0)))


def plain_correlation_outside_region(plain: tuple[Image, Image]) -> float:
    """Best correlation of the plain planes alone outside one rectangle of cells.

    For a smooth image, whose band-pass plane is rounding noise. ``plain``
    is the two equally shaped planes; -1 when they are smaller than the grid
    of cells.
    """
    if _too_small(plain[0]):
        return -1.0
    sums = _cell_sums(*plain)
    # The band-pass slot of the prefix sums holds the plain ones too; only the plain row is kept.
    return float(np.max(_correlations_outside(np.concatenate([sums, sums]))[1]))


def _too_small(image: Image) -> bool:
    height, width = image.shape[:2]
    return bool(height < CELLS or width < CELLS)


def detail_region(bandpass: Image, *, below: float) -> tuple[float, float, float, float] | None:
    """The rectangle of cells outside which a band-pass image is smooth, if one is.

    Of the rectangles that may be left out (``rectangles``), the one leaving
    the least band-pass energy outside it.

    Args:
        bandpass: An image's band-pass plane (grey levels).
        below: Root mean square of the band-pass under which the rest counts as smooth.

    Returns:
        (top, bottom, left, right) fractions of the image, or None when even
        that rectangle leaves as much detail outside, when the whole image is
        smooth already, or when it is smaller than the cells.
    """
    if _too_small(bandpass) or float(np.sqrt(np.mean(np.square(bandpass, dtype=np.float64)))) < below:
        return None
    # Mean squares per cell over the whole plane (its side need not be a multiple of CELLS).
    energy = np.square(np.asarray(bandpass, np.float32))
    per_cell = cv2.resize(energy, (CELLS, CELLS), interpolation=cv2.INTER_AREA).astype(np.float64)
    prefix_sums = np.zeros((CELLS + 1, CELLS + 1))
    prefix_sums[1:, 1:] = per_cell.cumsum(axis=0).cumsum(axis=1)
    top, bottom, left, right = rectangles().T
    inside = prefix_sums[bottom, right] - prefix_sums[top, right] - prefix_sums[bottom, left] + prefix_sums[top, left]
    outside_cells = CELLS * CELLS - (bottom - top) * (right - left)
    outside = (prefix_sums[-1, -1] - inside) / outside_cells
    best = int(np.argmin(outside))
    if outside[best] >= below**2:
        return None
    return top[best] / CELLS, bottom[best] / CELLS, left[best] / CELLS, right[best] / CELLS


@cache
def rectangles() -> Rectangles:
    """(top, bottom, left, right) cell bounds, end exclusive, of every rectangle that may be left out."""
    limit = MAX_EXCLUDED_SHARE * CELLS * CELLS
    spans = [(start, end) for start in range(CELLS) for end in range(start + 1, CELLS + 1)]
    found = [
        (top, bottom, left, right)
        for top, bottom in spans
        for left, right in spans
        if (bottom - top) * (right - left) <= limit
    ]
    return np.array(found, np.int64)


@cache
def corner_indices() -> npt.NDArray[np.int64]:
    """Where each rectangle's four corners lie in the raveled (2 planes, 6 sums, CELLS + 1, CELLS + 1) prefix sums.

    Shape (4, 2, 6, rectangles): the corners (bottom, right), (top, right),
    (bottom, left), (top, left); the band-pass plane's rectangles grown by
    ``BANDPASS_GROWTH``.
    """
    top, bottom, left, right = rectangles().T
    grown = (
        np.maximum(top - BANDPASS_GROWTH, 0), np.minimum(bottom + BANDPASS_GROWTH, CELLS),
        np.maximum(left - BANDPASS_GROWTH, 0), np.minimum(right + BANDPASS_GROWTH, CELLS),
    )  # fmt: skip
    side = CELLS + 1
    corners = []
    for rows, cols in ((1, 3), (0, 3), (1, 2), (0, 2)):
        per_plane = [bounds[rows] * side + bounds[cols] for bounds in (grown, (top, bottom, left, right))]
        corners.append(
            [[(plane * 6 + kind) * side * side + cells for kind in range(6)] for plane, cells in enumerate(per_plane)]
        )
    return np.array(corners, np.int64)


def _cell_sums(first: Image, second: Image) -> npt.NDArray[np.float64]:
    """(6, CELLS + 1, CELLS + 1) 2-D prefix sums over cells of 1, a, b, a², b² and ab.

    a and b are the images cropped to whole cells and centred (which keeps
    the sums well conditioned). ``cv2.resize`` with ``INTER_AREA`` to the
    grid of cells averages each cell exactly when the cells are whole.
    """
    rows, cols = first.shape[0] // CELLS, first.shape[1] // CELLS
    a, b = (np.asarray(image[: rows * CELLS, : cols * CELLS], np.float32) for image in (first, second))
    a, b = a - a.mean(), b - b.mean()
    stacked = np.ascontiguousarray(np.stack([np.ones_like(a), a, b, a * a, b * b, a * b], axis=2))
    means = cv2.resize(stacked, (CELLS, CELLS), interpolation=cv2.INTER_AREA)
    per_cell = np.moveaxis(means, 2, 0).astype(np.float64) * (rows * cols)
    prefix_sums = np.zeros((6, CELLS + 1, CELLS + 1))
    prefix_sums[:, 1:, 1:] = per_cell.cumsum(axis=1).cumsum(axis=2)
    return prefix_sums


def _correlations_outside(prefix_sums: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """(2, rectangles) Pearson correlations of each plane outside each rectangle (0 where either side is flat).

    ``prefix_sums`` is (12, CELLS + 1, CELLS + 1): band-pass plane's six, then the plain one's.
    """
    corners = prefix_sums.ravel()[corner_indices()]
    inside = corners[0] - corners[1] - corners[2] + corners[3]
    totals = prefix_sums[:, -1, -1].reshape(2, 6)[:, :, None]
    count, sum_a, sum_b, sum_aa, sum_bb, sum_ab = (totals - inside).transpose(1, 0, 2)
    count = np.maximum(count, 1.0)
    spread_a, spread_b = sum_aa - sum_a * sum_a / count, sum_bb - sum_b * sum_b / count
    product = spread_a * spread_b
    covariance = sum_ab - sum_a * sum_b / count
    return np.where(product > 1e-18, covariance / np.sqrt(np.maximum(product, 1e-18)), 0.0)
