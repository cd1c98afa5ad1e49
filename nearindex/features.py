"""Descriptors: blurred, normalised low-resolution grayscale vectors.

An image, without its uniform borders (letterbox, pillarbox or frame bars:
``borders``), becomes these (all pure functions of its grayscale pixels):

* a *thumbnail*: the image downscaled with ``INTER_AREA`` to ``thumb_side`` on
  its long side (aspect kept) and blurred there with a Gaussian whose sigma is
  ``blur_fraction`` of that side; the rescorer slides these over each other;
* a *descriptor*: the thumbnail resized to a ``grid`` x ``grid`` square, minus
  its mean, divided by its L2 norm, so that the inner product of two
  descriptors is the Pearson correlation of their grids;
* *window vectors*: the same for a few sub-windows of the thumbnail
  (``WINDOWS``), so a crop, a caption band or a letterbox of an image still
  finds the window of the original it shares (the whole-image descriptor
  is window 0). Measured on the public corpus's generated edits, eight
  vectors per image raised the share of originals among the first 30
  candidates from 0.94 to 0.985. Three centred strips across the long side
  (``STRIPS``) follow, for the picture cut to another screen shape.

Downscaling before blurring keeps the cost independent of the photo's size;
the blur's sigma is proportional to the size either way, so the result is the
same up to resampling error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np
import numpy.typing as npt

from .borders import NO_BORDERS, Borders, borders_in, search_image
from .colour import Colour
from .settings import DEFAULT_SETTINGS, STRIPS, WINDOWS, Settings

FloatArray = npt.NDArray[np.float32]
ByteArray = npt.NDArray[np.uint8]

#: Standard deviation (on a 0..1 scale) under which a thumbnail counts as flat.
FLAT_STD = 2e-3


@dataclass(frozen=True)
class Description:
    """What nearindex keeps of one image's pixels.

    Attributes:
        vectors: float32 (WINDOW_COUNT, grid**2) matrix: one zero-mean,
            unit-norm vector per window (row 0 is the whole image); a row is
            all zeros where the window is flat, every row for a flat image.
        thumbnail: uint8 blurred grayscale thumbnail, contrast-stretched to 0..255.
        flat: True when the image has no usable structure (a single colour).
        colour: Its colours (hues) when it has little detail (``colour.COLOUR_DETAIL``;
            ``intake`` adds it), else None.
        borders: The uniform bars at its edges (``borders``), left out of
            everything above.
    """

    vectors: FloatArray
    thumbnail: ByteArray
    flat: bool
    colour: Colour | None = None
    borders: Borders = NO_BORDERS

    @property
    def descriptor(self) -> FloatArray:
        """The whole-image descriptor (window 0)."""
        return np.asarray(self.vectors[0], np.float32)


def blur_thumbnail(
    gray: npt.NDArray[np.floating], *, settings: Settings = DEFAULT_SETTINGS, shape: tuple[int, int] | None = None
) -> FloatArray:
    """Downscale a grayscale image and blur it in proportion to its size.

    Args:
        gray: 2-D grayscale image, values 0..1.
        settings: Supplies ``thumb_side`` and ``blur_fraction``.
        shape: (height, width) of the image ``gray`` was shrunk from, if it
            was: the thumbnail takes that image's proportions, not the
            rounded ones of ``gray``.

    Returns:
        float32 image with long side ``thumb_side`` (never less than 1 px wide).

    Raises:
        ValueError: If ``gray`` is not a non-empty 2-D array.
    """
    if gray.ndim != 2 or gray.size == 0:
        raise ValueError(f"expected a non-empty 2-D grayscale image, got shape {gray.shape}")
    height, width = shape or gray.shape
    ratio = settings.thumb_side / max(height, width)
    size = (max(1, round(width * ratio)), max(1, round(height * ratio)))
    interpolation = cv2.INTER_AREA if size[0] < gray.shape[1] or size[1] < gray.shape[0] else cv2.INTER_LINEAR
    small = cv2.resize(gray.astype(np.float32, copy=False), size, interpolation=interpolation)
    sigma = settings.blur_fraction * settings.thumb_side
    return np.asarray(cv2.GaussianBlur(small, (0, 0), sigma, borderType=cv2.BORDER_REFLECT), np.float32)


def normalise(vector: npt.NDArray[np.floating]) -> FloatArray:
    """Subtract the mean and divide by the L2 norm; a constant vector becomes zeros.

    Args:
        vector: Any 1-D numeric array.

    Returns:
        float32 copy with mean 0 and norm 1, or all zeros when it has no spread.
    """
    return normalise_rows(np.asarray(vector)[None, :]).reshape(-1)


def normalise_rows(matrix: npt.NDArray[np.floating]) -> FloatArray:
    """``normalise`` applied to each row of a 2-D array at once."""
    return _unit_rows(np.asarray(matrix, np.float64) - np.mean(matrix, axis=1, dtype=np.float64, keepdims=True))


def _unit_rows(rows: npt.NDArray[np.float64]) -> FloatArray:
    """Each row divided by its L2 norm, as float32; rows without real spread become zeros."""
    norms = np.sqrt(np.einsum("ij,ij->i", rows, rows))[:, None]
    spread = norms >= 1e-9 * max(1.0, rows.shape[1])
    return np.where(spread, rows / np.where(spread, norms, 1.0), 0.0).astype(np.float32)


def descriptor_from_thumbnail(thumbnail: npt.NDArray[np.floating], *, grid: int, ranked: bool = False) -> FloatArray:
    """Resize a blurred thumbnail to a grid x grid square and normalise it.

    Args:
        thumbnail: 2-D blurred grayscale image.
        grid: Side of the square grid, in cells.
        ranked: Replace each cell by its rank among the cells first (see
            ``cell_ranks``), so inner products are Spearman correlations.

    Returns:
        float32 vector of length grid**2 (zeros for a flat thumbnail).
    """
    return _vectors_of_cells(_grid_cells(thumbnail, grid)[None, :], ranked=ranked).reshape(-1)


def _grid_cells(thumbnail: npt.NDArray[np.floating], grid: int) -> FloatArray:
    """A thumbnail resized to grid x grid cells, flattened."""
    thumb = thumbnail.astype(np.float32, copy=False)
    interpolation = cv2.INTER_AREA if min(thumb.shape) >= grid else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(thumb, (grid, grid), interpolation=interpolation), np.float32).ravel()


def _vectors_of_cells(cells: FloatArray, *, ranked: bool) -> FloatArray:
    return normalise_rows(cell_ranks(cells) if ranked else cells)


def cell_ranks(cells: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """Ranks of the values along the last axis, 0-based, tied values sharing their average rank.

    Ranks bound what any one region can weigh in a correlation: a pasted
    high-contrast patch over a soft image moves 15 % of the ranks, while in
    plain values it outweighs the rest of the picture. Ties must share a rank
    or the flat white of a figure would turn into noise.

    Args:
        cells: A 1-D array, or a 2-D one ranked row by row.

    Returns:
        float64 ranks of the same shape.
    """
    rows = np.atleast_2d(cells)
    order = np.argsort(rows, axis=1)  # any order within a run of ties: they all get its average
    ordered = np.take_along_axis(rows, order, axis=1)
    position = np.broadcast_to(np.arange(rows.shape[1]), rows.shape)
    opens = np.ones(rows.shape, bool)  # the first of a run of equal values
    opens[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    closes = np.ones(rows.shape, bool)  # the last of a run
    closes[:, :-1] = opens[:, 1:]
    first = np.maximum.accumulate(np.where(opens, position, 0), axis=1)
    last = np.minimum.accumulate(np.where(closes, position, rows.shape[1])[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty(rows.shape, np.float64)
    np.put_along_axis(ranks, order, (first + last) / 2.0, axis=1)
    return ranks.reshape(np.shape(cells))


def window_vectors(thumbnail: npt.NDArray[np.floating], *, grid: int, ranked: bool = False) -> FloatArray:
    """Descriptors of every window in ``WINDOWS`` and every strip in ``STRIPS`` of a blurred thumbnail.

    Args:
        thumbnail: 2-D blurred grayscale image.
        grid: Side of the square grid, in cells.
        ranked: Rank the cells first (``descriptor_from_thumbnail``).

    Returns:
        float32 (WINDOW_COUNT, grid**2) matrix, row 0 the whole image.
    """
    height, width = thumbnail.shape
    cells = []
    for top, bottom, left, right in window_rectangles(height, width):
        y0, x0 = round(top * height), round(left * width)
        window = thumbnail[y0 : max(round(bottom * height), y0 + 1), x0 : max(round(right * width), x0 + 1)]
        cells.append(_grid_cells(window, grid))
    return np.ascontiguousarray(_vectors_of_cells(np.stack(cells), ranked=ranked))


def window_rectangles(height: int, width: int) -> tuple[tuple[float, float, float, float], ...]:
    """(top, bottom, left, right) fractions of every window vector of an image of this shape, in order.

    ``WINDOWS``, then each of ``STRIPS`` centred across the long side (across
    the width of a square image).
    """
    strips = [((1 - fraction) / 2, (1 + fraction) / 2) for fraction in STRIPS]
    if height > width:
        return (*WINDOWS, *((start, end, 0.0, 1.0) for start, end in strips))
    return (*WINDOWS, *((0.0, 1.0, start, end) for start, end in strips))


def mirrored_vectors(thumbnail: npt.NDArray[np.uint8], *, grid: int, ranked: bool = False) -> FloatArray:
    """Window vectors of a thumbnail mirrored left to right (to find flipped copies)."""
    return window_vectors(thumbnail[:, ::-1].astype(np.float32), grid=grid, ranked=ranked)


#: Side of the corner squares ``corners_left_out`` leaves out, as a fraction of the grid's.
#: Four squares of 0.625 x 0.625 (39 % of the area each, overlapping): a patch of 0.375 of
#: each side (a 15 % paste) lies wholly inside one of them near any corner or edge, and at
#: least two thirds inside one in the middle of the picture.
LEFT_OUT_SIDE = 0.625


def corners_left_out(vector: npt.NDArray[np.floating], *, grid: int) -> FloatArray:
    """A whole-image vector four more times, each with one corner square of its grid left out.

    A pasted patch of high contrast over a soft picture (the "faked" case)
    can pull every window vector of the edit away from its original, which
    then falls behind unrelated images; with the patch's cells left out, the
    rest still correlates with the original as strongly as ever. The
    left-out cells (``LEFT_OUT_SIDE`` of each side, in the grid's four
    corners) are zeros and the kept ones are re-centred and scaled to unit
    norm, so a row's inner product with a stored vector is their correlation
    over the kept cells, weighted by the share of the stored vector's spread
    that lies there.

    Args:
        vector: A (ranked) grid x grid descriptor, flattened.
        grid: Side of the grid, in cells.

    Returns:
        float32 (4, grid**2) rows, all zeros when ``vector`` is or when the
        grid is too small to keep anything.
    """
    cells = np.asarray(vector, np.float64).reshape(grid, grid)
    side = int(LEFT_OUT_SIDE * grid + 0.5)
    if side >= grid:
        return np.zeros((4, grid * grid), np.float32)
    rows = []
    for top in (0, grid - side):
        for left in (0, grid - side):
            kept = np.ones((grid, grid), bool)
            kept[top : top + side, left : left + side] = False
            rows.append(np.where(kept, cells - cells[kept].mean(), 0.0).ravel())
    return _unit_rows(np.array(rows))


def detail_left_out(
    thumbnail: npt.NDArray[np.floating],
    region: tuple[float, float, float, float] | None,
    *,
    grid: int,
    ranked: bool = False,
) -> FloatArray:
    """A whole-image vector with the one region of an image's detail left out (``exclusion.detail_region``).

    ``corners_left_out`` for a patch anywhere: pasted over a smooth picture,
    it is nearly all of the edit's spread, wherever it lies. The grid cells
    the region touches are zeros; the rest are ranked among themselves (the
    patch's values would bend their ranks), re-centred and scaled to unit norm.

    Args:
        thumbnail: 2-D blurred grayscale image.
        region: (top, bottom, left, right) fractions of it, or None.
        grid: Side of the grid, in cells.
        ranked: Rank the cells first (``descriptor_from_thumbnail``).

    Returns:
        A float32 (1, grid**2) row; all zeros without a region.
    """
    if region is None:
        return np.zeros((1, grid * grid), np.float32)
    kept = cells_kept(region, grid=grid)
    cells = np.zeros(grid * grid)
    cells[kept] = _vectors_of_cells(_grid_cells(thumbnail, grid)[kept][None, :], ranked=ranked)[0]
    return _unit_rows(cells[None, :])


def cells_kept(region: tuple[float, float, float, float], *, grid: int) -> npt.NDArray[np.bool_]:
    """Which cells of a flattened grid x grid descriptor lie wholly outside ``region`` (top, bottom, left, right)."""
    top, bottom, left, right = region
    kept = np.ones((grid, grid), bool)
    kept[int(top * grid) : math.ceil(bottom * grid), int(left * grid) : math.ceil(right * grid)] = False
    return kept.ravel()


def quantise_thumbnail(thumbnail: FloatArray) -> ByteArray:
    """Stretch a thumbnail's range to 0..255 and store it as uint8.

    The rescorer's correlation ignores brightness and contrast, so stretching
    spends all 8 bits on the image's own range.
    """
    low, high = float(thumbnail.min()), float(thumbnail.max())
    if high - low < 1e-12:
        return np.zeros(thumbnail.shape, np.uint8)
    stretched = (thumbnail - low) * (255.0 / (high - low))
    return np.asarray(np.rint(stretched), np.uint8)


def describe(gray: npt.NDArray[np.floating], *, settings: Settings = DEFAULT_SETTINGS) -> Description:
    """Compute the descriptor and rescore thumbnail of a grayscale image.

    Args:
        gray: 2-D grayscale image, values 0..1 (any size >= 1x1).
        settings: Grid, thumbnail and blur parameters, and whether uniform
            borders are left out (``trim_borders``).

    Returns:
        The image's Description; ``flat`` is set when the blurred image has
        (almost) no variation, and then the descriptor is all zeros.
    """
    if gray.ndim == 2 and gray.size and not np.isfinite(gray).all():
        gray = np.nan_to_num(gray)  # decoders give none; an array from a caller might
    if not settings.trim_borders:
        return _describe_content(gray, settings=settings)
    small = search_image(gray)
    borders = borders_in(small)
    if not borders.found and max(small.shape) >= min(max(gray.shape), settings.thumb_side):
        # The thumbnail from the border search's shrink: INTER_AREA averages the same pixels
        # either way (to a pixel of rounding on the short side), and the full image, most of
        # describing's time, is read once instead of twice.
        return _describe_content(small, settings=settings, shape=gray.shape)
    description = _describe_content(borders.trim(gray), settings=settings)
    if description.flat and borders.found:
        # A blank slide in a letterbox: the bars are all there is to match it by.
        return _describe_content(gray, settings=settings)
    return replace(description, borders=borders)


def _describe_content(
    gray: npt.NDArray[np.floating], *, settings: Settings, shape: tuple[int, int] | None = None
) -> Description:
    thumb = blur_thumbnail(gray, settings=settings, shape=shape)
    flat = float(np.std(thumb)) < FLAT_STD
    vectors = window_vectors(thumb, grid=settings.grid, ranked=settings.ranked_cells)
    if flat or not vectors[0].any():
        # Stretching a flat thumbnail's range would turn float noise into structure.
        vectors[:] = 0
        return Description(vectors=vectors, thumbnail=np.zeros(thumb.shape, np.uint8), flat=True)
    return Description(vectors=vectors, thumbnail=quantise_thumbnail(thumb), flat=False)
