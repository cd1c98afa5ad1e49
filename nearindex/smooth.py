"""Scoring a smooth image: one with no detail to align (a gradient, a sky, a soft wallpaper).

The rescorer places band-pass thumbnails and correlates them in blocks. A
smooth image's band-pass is rounding noise, so its placement and its blocks
are chance: it matches only what correlates with it as a whole at
``NEAR_IDENTICAL`` or more, that margin stretched to 0..1. The whole is
taken unturned or turned back by one of the rescorer's turns (and half of them)
(``whole_correlation``), and, against an image with detail in its middle
(which only a local edit, such as a pasted patch, puts in a smooth picture),
outside the one region where the two differ most (``correlation_outside_edit``).
Where it lies in the other image cannot be told either: its frame is taken
as the same framing (``SAME_FRAMING``), unless the other holds all its detail
in a band along one edge, such as a screenshot's title bar: then it is also
compared with the rest of the other (``correlation_beside_band``), and lies there.
"""

from __future__ import annotations

import cv2
import numpy as np

from .borders import Borders
from .exclusion import plain_correlation_outside_region
from .placement import Frame
from .planes import Band, Image, Prepared

#: A thumbnail whose band-pass varies less than this (grey levels) has no detail to
#: align: on the public corpus only ``gradient.png`` (2.4) is below it, the next image is
#: at 9.7, the median 27. An unrelated smooth diagram scored 0.95 against the gradient by
#: blocks, 0.983 as a whole, while its re-encoded, resized, recoloured and cropped copies
#: correlate 0.994-1.0, its turned ones 0.999-1.0 when turned back, and a copy with a
#: pasted patch 0.999 outside it (no corpus image correlates 0.92 with it that way).
LOW_DETAIL = 6.0
#: The whole correlation from which a smooth image starts to match (score 0) ...
NEAR_IDENTICAL = 0.98
#: ... and its frame in the other image: the whole of one on the whole of the other.
SAME_FRAMING = Frame((1.0, 1.0), (0.0, 0.0))
#: A band of detail along one edge of an image otherwise smooth (``Prepared.bands``) is at most
#: this share of the side deep: a screenshot's title bar is 12 %, a caption 15 % ...
DEEPEST_BAND = 0.3
#: ... and the rest is taken from this share of the long side beyond it, where the band's edge,
#: blurred with the thumbnail (``Settings.blur_fraction``: 0.02 by default), no longer reaches.
BAND_SEAM = 0.06
#: Steps (rows of the rescoring plane) at which the row where the smooth picture begins is tried.
BAND_STEP = 0.5


def is_smooth(image: Prepared) -> bool:
    """True when the thumbnail has less band-pass detail than ``LOW_DETAIL``."""
    return image.detail < LOW_DETAIL


def smooth_score(
    first: Prepared, second: Prepared, *, coarse: float, turns: tuple[float, ...], penalty: float
) -> tuple[float, Frame]:
    """Score a pair of which at least one image is smooth (``is_smooth``).

    Args:
        first: One image.
        second: The other.
        coarse: Correlation of the two images' vectors (-1..1).
        turns: Degrees the images are turned by besides not at all (``whole_correlation``).
        penalty: Taken off the score when the other image has detail in its
            middle too (``correlation_outside_edit``): leaving a region out
            lifts unrelated pairs a little; such a score is at most 1 - penalty.

    Returns:
        The margin above ``NEAR_IDENTICAL`` of the best of ``coarse``, both
        directions' ``whole_correlation`` and, when the other image has detail
        at its edges only, ``correlation_beside_band``, stretched to 0..1; when
        the other image has detail in its middle half (``Prepared.central_detail``),
        that of ``correlation_outside_edit`` less ``penalty``. Not clipped. And
        where ``first`` lies in ``second``: ``SAME_FRAMING``, unless the smooth
        one matches beside the other's band (from ``NEAR_IDENTICAL`` on).
    """
    smooth, other = sorted((first, second), key=lambda image: image.detail)
    if locally_edited(first, second):
        return _stretched(correlation_outside_edit(smooth, other)) - penalty, SAME_FRAMING
    whole = max(coarse, whole_correlation(first, second, turns), whole_correlation(second, first, turns))
    if not is_smooth(other):
        beside, frame = correlation_beside_band(smooth, other)
        if beside >= NEAR_IDENTICAL:
            # The band is none of the smooth picture: when the rest matches it, that is where it lies.
            return _stretched(max(beside, whole)), frame if smooth is first else frame.inverse()
    return _stretched(whole), SAME_FRAMING


def locally_edited(first: Prepared, second: Prepared) -> bool:
    """True when one image is smooth and the other has detail in its middle half, where only a local edit puts it.

    The other must have a band-pass detail of at least ``LOW_DETAIL`` both
    over its whole and in its middle half (``Prepared.central_detail``): a
    caption, a border or a frame adds detail at the edges only.
    """
    smooth, other = sorted((first, second), key=lambda image: image.detail)
    return is_smooth(smooth) and not is_smooth(other) and other.central_detail >= LOW_DETAIL


def whole_correlation(first: Prepared, second: Prepared, turns: tuple[float, ...]) -> float:
    """Pearson correlation (-1..1) of the whole plain planes, ``second`` resized onto ``first`` turned at best.

    ``first`` is tried unturned and turned by each of ``turns`` (degrees).
    This is how a smooth image meets a turned copy: the vectors' correlation
    loses as much to a turn as an unrelated smooth image does. On
    ``gradient.png`` turned 3 and 8 degrees the vectors correlate 0.992 and
    0.984; the whole planes, turned back, 0.999 and 1.000. Among 120
    generated gradients and soft colour fields, 8-degree turns scoring the
    default threshold or more went from 0.54 to 0.98 (3-degree ones, 0.825
    -> 0.833), and unrelated pairs doing so from 118 to 121 of 7,140 (already
    many: two smooth images that differ only in colour are one picture to a
    grey correlation).
    """
    target = _resized_onto(second.plain, first.plain)
    sources = [first.plain] + [first.turned(degrees).plain for degrees in turns]
    return max(float(cv2.matchTemplate(source, target, cv2.TM_CCOEFF_NORMED)[0, 0]) for source in sources)


def correlation_outside_edit(smooth: Prepared, other: Prepared) -> float:
    """Correlation (-1..1) of the plain planes, ``other`` resized onto ``smooth``, outside the region differing most.

    The one rectangle of ``exclusion`` cells where they disagree most is left
    out (``exclusion.plain_correlation_outside_region``); -1 when the
    thumbnail is smaller than that grid.
    """
    return plain_correlation_outside_region((smooth.plain, _resized_onto(other.plain, smooth.plain)))


def correlation_beside_band(smooth: Prepared, other: Prepared) -> tuple[float, Frame]:
    """Best correlation (-1..1) of a smooth picture with the rest of ``other`` beside a band of detail at one edge.

    A screenshot's title bar, or a caption strip, puts detail along one edge of
    a smooth picture, which may lie under the band (partly hidden) or beside it
    (the whole picture squeezed into the rest): the rest of ``other``, from
    ``BAND_SEAM`` beyond each band (``Prepared.bands``), is correlated with the
    smooth plane's matching part for each row where the picture may begin, from
    the edge (under the band) to the rest (beside it), in ``BAND_STEP`` rows.
    The rest has no detail to place by, so the band alone frames it: an
    unrelated smooth picture correlates with it as with a whole. On the generated smooth collection
    (``scripts/smooth_collection.py``, ``scripts/evaluate.py --distinct``),
    screenshots found first went from 0.39 to 0.70, and verified at 0.1 % false
    matches from 0.39 to 0.72 (the bar had shifted the whole correlation off the
    picture); unrelated pairs scored as before. Of 8,220 pairs of a smooth
    picture and a screenshot of another, 0.2 % reach the default threshold
    this way, while 1.9 % of the pictures themselves, so paired, correlate that
    much as a whole in grey.

    Returns:
        The best correlation (-1 when ``other`` has no such band), and where
        ``smooth`` lies in ``other`` for it.
    """
    best = (-1.0, SAME_FRAMING)
    for band in other.bands(below=LOW_DETAIL, deepest=DEEPEST_BAND):
        rest_start = _rest_start(band, other.plain.shape)
        rest, picture = band.oriented(other.plain)[rest_start:], band.oriented(smooth.plain)
        rows = len(rest) + rest_start
        for picture_top in np.arange(0.0, rest_start + BAND_STEP / 2, BAND_STEP):
            shown = rows - picture_top
            correlation = _correlation_from(picture, rest, start=(rest_start - picture_top) / shown)
            if correlation > best[0]:
                best = (correlation, _frame_beside(band, shown / rows))
    return best


def beside_band(image: Prepared, *, below: float) -> Borders | None:
    """What to cut off ``image`` to leave out its shallowest band of detail (``Prepared.bands``) and ``BAND_SEAM``.

    Returns:
        The cut, as Borders (fractions of the image the plane shows), or None
        when ``image`` has no band along an edge beyond which its detail is under ``below``.
    """
    bands = image.bands(below=below, deepest=DEEPEST_BAND)
    if not bands:
        return None
    band = min(bands, key=lambda band: band.depth / image.plain.shape[band.axis])
    share = _rest_start(band, image.plain.shape) / image.plain.shape[band.axis]
    edge = ("right" if band.at_end else "left") if band.axis else ("bottom" if band.at_end else "top")
    return Borders(**{edge: share})


def _rest_start(band: Band, shape: tuple[int, ...]) -> int:
    """Rows (or columns) of a plane of ``shape`` from its band's edge to where the rest is taken from."""
    return min(band.depth + round(BAND_SEAM * max(shape)), shape[band.axis] // 2)


def _frame_beside(band: Band, shown: float) -> Frame:
    """Where a picture lies in an image when it fills the ``shown`` share of its side away from ``band``'s edge."""
    offset = 0.0 if band.at_end else 1 - shown
    if band.axis:
        return Frame((shown, 1.0), (offset, 0.0))
    return Frame((1.0, shown), (0.0, offset))


def _correlation_from(picture: Image, rest: Image, *, start: float) -> float:
    """Pearson correlation of ``rest`` with ``picture`` from ``start`` (a share of its rows) on, resized onto it."""
    rows, cols = picture.shape
    top = start * rows
    x_scale, y_scale = cols / rest.shape[1], (rows - top) / rest.shape[0]
    # Pixel centres onto pixel centres; the rest's pixels are the destination.
    onto_picture = np.array([[x_scale, 0, x_scale / 2 - 0.5], [0, y_scale, top + y_scale / 2 - 0.5]], np.float32)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    part = cv2.warpAffine(picture, onto_picture, rest.shape[::-1], flags=flags, borderMode=cv2.BORDER_REPLICATE)
    return float(cv2.matchTemplate(np.ascontiguousarray(rest), part, cv2.TM_CCOEFF_NORMED)[0, 0])


def _stretched(correlation: float) -> float:
    return (correlation - NEAR_IDENTICAL) / (1 - NEAR_IDENTICAL)


def _resized_onto(plane: Image, reference: Image) -> Image:
    height, width = reference.shape
    return np.asarray(cv2.resize(plane, (width, height), interpolation=cv2.INTER_AREA), np.float32)
