"""How a matched image relates to the query: same framing, a crop, a wider view, locally edited.

The rescorer's best placement says where one thumbnail lies in the other (a
``Frame``); ECC image alignment refines it. From it, the share of each image
the other covers tells the kind: both covered means the same framing (a
re-encoded or resized copy); the match covering only part of the query means
the match is a crop of it; the query lying inside the match means the match
contains it. Comparing the two images block by block over their overlap, at
that placement, tells whether a local region differs while the rest agrees
(a caption, a logo, a pasted patch: the "faked" case).

Measured on the 1,919 generated edits of the public corpus, each original
queried against its edits (``scripts/evaluate_relations.py``): ``edited`` is
set for 96 % of pastes, 96 % of captions, 10 % of small corner logos and at
most 4 % of global edits (JPEG, resizing, exposure, crops, borders, flips,
rotations); the kind is ``crop`` for 99-100 % of crops to 90, 75 and 60 % of
the area, ``resized`` for 98-100 % of resized, re-encoded, recoloured and
rotated copies, ``contains`` for 99-100 % of letterboxes and screenshots. A
caption or a paste pulls the placement enough to give ``crop``, ``contains``
or ``overlap`` for about one such copy in eight.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from .borders import NO_BORDERS, Borders
from .placement import Frame
from .planes import BANDPASS_FRACTION, Image, Prepared, band_pass
from .rescore import block_correlations
from .smooth import is_smooth, locally_edited

Matrix = npt.NDArray[np.float32]

#: Kinds of relation.
EXACT, RESIZED, CROP, CONTAINS, OVERLAP, SIMILAR = "exact", "resized", "crop", "contains", "overlap", "similar"
#: An image whose area is covered at least this much by the other counts as whole.
WHOLE_COVERAGE = 0.95
#: The overlap is compared in this many blocks per side ...
EDIT_BLOCKS = 6
#: ... and a block correlating below this (band-pass) makes the match "edited".
EDITED_BELOW = 0.5
#: Blocks much flatter than the typical block (both images) are not judged: see ``block_correlations``.
MIN_RELATIVE_SPREAD = 0.5
#: Pixels (at the rescoring size) left out where one image's edge lies inside the other.
SEAM_MARGIN = 2
#: Iterations of the ECC refinement of the placement.
ECC_ITERATIONS = 50
#: A refinement changing the scale by more than this (log ratio, either axis) or moving
#: the centre by more than this (fraction of the image) is not trusted.
MAX_REFINED_SCALE_CHANGE = 0.12
MAX_REFINED_SHIFT = 0.06
#: Overlaps smaller than this (pixels per side, at the rescoring size) are not judged for edits.
MIN_OVERLAP_SIDE = 24


@dataclass(frozen=True)
class Relation:
    """How a match relates to the query.

    Attributes:
        kind: ``exact`` (byte-identical file), ``resized`` (same framing:
            re-encoded, resized, recoloured), ``crop`` (the match shows part of
            the query), ``contains`` (the match shows the query and more),
            ``overlap`` (each shows part of the other) or ``similar`` (below
            the duplicate threshold: no claim).
        box: For ``crop``, the region of the query the match shows, in the
            query's pixels; for ``contains``, where the query lies in the
            match, in the match's pixels: (x, y, width, height). Else None.
        scale: Match pixels per query pixel (None for ``similar``), both
            inside their uniform borders (``borders``).
        edited: A local region differs although the rest matches.
    """

    kind: str
    box: tuple[int, int, int, int] | None = None
    scale: float | None = None
    edited: bool = False


def relate(
    query: Prepared,
    match: Prepared,
    frame: Frame,
    *,
    query_size: tuple[int, int],
    match_size: tuple[int, int],
    mirrored: bool = False,
    query_borders: Borders = NO_BORDERS,
    match_borders: Borders = NO_BORDERS,
) -> Relation:
    """The Relation of a confirmed match to the query.

    Args:
        query: The query's prepared thumbnail, in the orientation that matched.
        match: The match's prepared thumbnail.
        frame: Where the query lies in the match (from ``rescore``).
        query_size: (width, height) of the query image, in pixels.
        match_size: (width, height) of the match image, in pixels.
        mirrored: The query matched flipped left to right (boxes in the
            query are given in its own, unflipped, pixels).
        query_borders: The uniform borders left out of the query's thumbnail (``borders``).
        match_borders: Those left out of the match's.

    Returns:
        The kind, box, scale and edited flag. A smooth image (``smooth``) has
        no detail to place by: it relates as framed by the rescorer (the same
        framing, ``resized``, unless beside a band of detail: ``contains``),
        edited when the other has detail in its middle (``smooth.locally_edited``).
        Either way, when only one of the two has borders (a letterbox, a
        frame), the other is a ``crop`` of it or ``contains`` it, boxed by them.
    """
    query_content, match_content = query_borders.content_size(query_size), match_borders.content_size(match_size)
    framing = {"query_borders": query_borders, "match_borders": match_borders}
    if is_smooth(query) or is_smooth(match):
        # No detail to refine the placement by, or to compare block by block.
        edited = locally_edited(query, match)
    else:
        refined = refine(query, match, frame)
        if refined is not None:
            frame = refined.frame
        edited = refined is not None and lowest_block_correlation(query, match, refined) < EDITED_BELOW
    query_in_match, match_in_query = frame.box(), frame.inverse().box()
    scale = float(np.sqrt(frame.scale[0] * frame.scale[1] * _area(match_content) / _area(query_content)))
    covers_match = _area_of(query_in_match) >= WHOLE_COVERAGE
    covers_query = _area_of(match_in_query) >= WHOLE_COVERAGE
    if covers_match and covers_query:
        return _same_content(scale, edited, query_size=query_size, match_size=match_size, **framing)
    if covers_query:
        return Relation(CONTAINS, _pixels(_in_image(query_in_match, match_borders), match_size), scale, edited)
    if covers_match:
        x, y, width, height = match_in_query
        box = (1 - x - width, y, width, height) if mirrored else match_in_query
        return Relation(CROP, _pixels(_in_image(box, query_borders), query_size), scale, edited)
    return Relation(OVERLAP, None, scale, edited)


def _same_content(
    scale: float, edited: bool, *, query_size: tuple[int, int], match_size: tuple[int, int],
    query_borders: Borders, match_borders: Borders,
) -> Relation:  # fmt: skip
    """The Relation of two images showing the same content: ``resized``, unless only one has borders."""
    query_framed = _area_of(query_borders.box) < WHOLE_COVERAGE
    match_framed = _area_of(match_borders.box) < WHOLE_COVERAGE
    if match_framed and not query_framed:
        return Relation(CONTAINS, _pixels(match_borders.box, match_size), scale, edited)
    if query_framed and not match_framed:
        return Relation(CROP, _pixels(query_borders.box, query_size), scale, edited)
    return Relation(RESIZED, None, scale, edited)


def _in_image(box: tuple[float, float, float, float], borders: Borders) -> tuple[float, float, float, float]:
    """A box given in fractions of an image's content (inside ``borders``), in fractions of the whole image."""
    x, y, width, height = box
    left, top, content_width, content_height = borders.box
    return left + x * content_width, top + y * content_height, width * content_width, height * content_height


@dataclass(frozen=True)
class Refined:
    """A placement refined by ECC.

    Attributes:
        frame: Where the first image lies in the second (the affine warp's scale and shift).
        window: (x0, y0, x1, y1) of the overlap in the second image's pixels (rescoring size).
        warp: 2x3 affine matrix from window pixels to the first image's pixels.
    """

    frame: Frame
    window: tuple[int, int, int, int]
    warp: Matrix


def refine(first: Prepared, second: Prepared, frame: Frame) -> Refined | None:
    """Refine the rescorer's placement of ``first`` in ``second`` by ECC image alignment.

    The rescorer's placement is coarse (a few scales, whole pixels at 64 px):
    good enough to score, not to tell a crop of 90 % from a resized copy or to
    compare block by block. ``cv2.findTransformECC`` (affine, which also takes
    out a small rotation) refines it over the overlap of the two images.

    Returns:
        The Refined placement, or None when the overlap is too small to refine.
    """
    x, y, width, height = frame.box()
    rows, cols = second.plain.shape
    window = round(x * cols), round(y * rows), round((x + width) * cols), round((y + height) * rows)
    if min(window[2] - window[0], window[3] - window[1]) < MIN_OVERLAP_SIDE:
        return None
    coarse = _window_to_first(frame, window[:2], first.plain.shape, (rows, cols))
    warp = _refined(second.plain[window[1] : window[3], window[0] : window[2]], first.plain, coarse)
    refined = _frame_of(warp, window[:2], first.plain.shape, (rows, cols))
    if not _close(refined, frame):
        # ECC pulled by a large local edit (a pasted patch, a sticker): the coarse placement is safer.
        return Refined(frame, window, coarse)
    return Refined(refined, window, warp)


def _close(refined: Frame, coarse: Frame) -> bool:
    """The refinement stayed within what the coarse placement leaves uncertain (one scale step, a few pixels)."""
    scales = np.abs(np.log(np.array(refined.scale) / np.array(coarse.scale)))
    centres = (
        np.array(refined.offset) + np.array(refined.scale) / 2 - np.array(coarse.offset) - np.array(coarse.scale) / 2
    )
    return bool(scales.max() <= MAX_REFINED_SCALE_CHANGE and np.abs(centres).max() <= MAX_REFINED_SHIFT)


def lowest_block_correlation(first: Prepared, second: Prepared, placement: Refined) -> float:
    """Lowest band-pass block correlation over the overlap of two placed images.

    ``first`` is warped onto the overlap, and both are band-passed there with
    the same filter (an image's own edge must not look different from the
    same place inside a wider image) and compared in ``EDIT_BLOCKS`` x
    ``EDIT_BLOCKS`` blocks, leaving out near-flat ones.

    Args:
        first: One prepared image.
        second: The other.
        placement: Where ``first`` lies in ``second``, from ``refine``.

    Returns:
        -1..1; 1.0 when nothing of the overlap can be compared.
    """
    x0, y0, x1, y1 = placement.window
    rows, cols = second.plain.shape
    window = second.plain[y0:y1, x0:x1]
    size, flags = (window.shape[1], window.shape[0]), cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpAffine(first.plain, placement.warp, size, flags=flags)
    inside = cv2.warpAffine(np.ones_like(first.plain), placement.warp, size, flags=flags) > 0.999
    _trim_seams(inside, placement.frame, (rows, cols))
    if not inside.any():
        return 1.0
    # Where ``first`` does not reach (a turned copy's corners) or is trimmed, both show
    # ``second``, brought to ``first``'s brightness and contrast (thumbnails are stretched each on its own).
    gain = warped[inside].std() / max(float(window[inside].std()), 1e-6)
    matched = (window - window[inside].mean()) * gain + warped[inside].mean()
    placed = np.asarray(np.where(inside, warped, matched), np.float32)
    sigma = BANDPASS_FRACTION * max(rows, cols)
    correlations = block_correlations(
        band_pass(placed, sigma), band_pass(window, sigma), blocks=EDIT_BLOCKS, min_relative_spread=MIN_RELATIVE_SPREAD
    )
    return float(correlations.min())


def _frame_of(
    warp: Matrix, origin: tuple[int, int], first_shape: tuple[int, ...], second_shape: tuple[int, ...]
) -> Frame:
    """The Frame of ``first`` in ``second`` from a window-to-first warp.

    A Frame has no rotation: it keeps the warp's scale along each axis and
    puts ``first``'s centre where the warp puts it.
    """
    matrix, shift = warp[:, :2].astype(np.float64), warp[:, 2].astype(np.float64)
    centre = np.array([first_shape[1] / 2, first_shape[0] / 2]) - 0.5  # as a pixel index (``_window_to_first``)
    centre_in_second = np.linalg.solve(matrix, centre - shift) + np.array(origin) + 0.5
    steps = np.hypot(matrix[0], matrix[1])  # first pixels per second pixel, along x and along y
    sizes = np.array([second_shape[1], second_shape[0]], np.float64)
    scale = np.array([first_shape[1], first_shape[0]]) / (steps * sizes)
    offset = centre_in_second / sizes - scale / 2
    return Frame((float(scale[0]), float(scale[1])), (float(offset[0]), float(offset[1])))


def _trim_seams(inside: npt.NDArray[np.bool_], frame: Frame, shape: tuple[int, int]) -> None:
    """Leave out ``SEAM_MARGIN`` pixels along each side of the overlap where one image ends inside the other.

    There the thumbnail of the wider image is blurred across its content's
    edge (into a border, a caption bar, the rest of the scene) while the
    other image's is not. Where both images end together nothing is trimmed,
    so a caption at the bottom of both still shows.
    """
    rows, cols = shape
    (sx, sy), (ox, oy) = frame.scale, frame.offset
    ends = {"left": ox * cols, "right": (1 - sx - ox) * cols, "top": oy * rows, "bottom": (1 - sy - oy) * rows}
    margin = SEAM_MARGIN
    if abs(ends["left"]) > 1:
        inside[:, :margin] = False
    if abs(ends["right"]) > 1:
        inside[:, -margin:] = False
    if abs(ends["top"]) > 1:
        inside[:margin] = False
    if abs(ends["bottom"]) > 1:
        inside[-margin:] = False


def _window_to_first(
    frame: Frame, origin: tuple[int, int], first_shape: tuple[int, ...], second_shape: tuple[int, ...]
) -> Matrix:
    """2x3 affine matrix from pixels of a window of ``second`` (at ``origin``) to pixels of ``first``.

    Pixel indices are pixel centres (as ECC and ``warpAffine`` take them): window pixel i
    lies at i + origin + 0.5 along ``second``'s side, a Frame's fractions measure edges.
    """
    matrix = np.zeros((2, 3), np.float32)
    for row, axis in ((0, 1), (1, 0)):
        ratio = first_shape[axis] / (second_shape[axis] * frame.scale[row])
        edge = first_shape[axis] * frame.offset[row] / frame.scale[row]
        matrix[row, row] = ratio
        matrix[row, 2] = ratio * (origin[row] + 0.5) - edge - 0.5
    return matrix


def _refined(window: Image, image: Image, warp: Matrix) -> Matrix:
    """``warp`` (window pixels to ``image`` pixels) refined by ECC; unchanged if ECC does not converge."""
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, ECC_ITERATIONS, 1e-4)
    try:
        everywhere = np.ones(image.shape, np.uint8)
        _, refined = cv2.findTransformECC(window, image, warp.copy(), cv2.MOTION_AFFINE, criteria, everywhere, 1)
    except cv2.error:
        return warp
    return np.asarray(refined, np.float32)


def _area_of(box: tuple[float, float, float, float]) -> float:
    return box[2] * box[3]


def _area(size: tuple[int, int]) -> float:
    return float(max(size[0], 1) * max(size[1], 1))


def _pixels(box: tuple[float, float, float, float], size: tuple[int, int]) -> tuple[int, int, int, int]:
    x, y, width, height = box
    return round(x * size[0]), round(y * size[1]), round(width * size[0]), round(height * size[1])


#: The relation of a result below the duplicate threshold.
UNCLAIMED = Relation(SIMILAR)
