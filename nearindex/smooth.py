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
as the same framing (``SAME_FRAMING``).
"""

from __future__ import annotations

import cv2
import numpy as np

from .exclusion import plain_correlation_outside_region
from .placement import Frame
from .planes import Image, Prepared

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


def is_smooth(image: Prepared) -> bool:
    """True when the thumbnail has less band-pass detail than ``LOW_DETAIL``."""
    return image.detail < LOW_DETAIL


def smooth_score(
    first: Prepared, second: Prepared, *, coarse: float, turns: tuple[float, ...], penalty: float
) -> float:
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
        The margin above ``NEAR_IDENTICAL`` of the best of ``coarse`` and both
        directions' ``whole_correlation``, stretched to 0..1; when the other
        image has detail in its middle half (``Prepared.central_detail``), that
        of ``correlation_outside_edit`` less ``penalty``. Not clipped.
    """
    if locally_edited(first, second):
        smooth, other = sorted((first, second), key=lambda image: image.detail)
        return _stretched(correlation_outside_edit(smooth, other)) - penalty
    return _stretched(max(coarse, whole_correlation(first, second, turns), whole_correlation(second, first, turns)))


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


def _stretched(correlation: float) -> float:
    return (correlation - NEAR_IDENTICAL) / (1 - NEAR_IDENTICAL)


def _resized_onto(plane: Image, reference: Image) -> Image:
    height, width = reference.shape
    return np.asarray(cv2.resize(plane, (width, height), interpolation=cv2.INTER_AREA), np.float32)
