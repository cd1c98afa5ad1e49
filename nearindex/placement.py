"""Where one image lies in another: the best placement of one thumbnail's central part in the other.

The central part of one thumbnail (a *template*, ``TEMPLATE_FRACTION`` of each
side) is slid with ``cv2.matchTemplate`` (``TM_CCOEFF_NORMED``) over the
other's evened band-pass plane at a range of scales; scales cover "the same
framing" down to "the template image is a crop of about half the other's
width" (a moderate crop, a caption band or a letterbox). The best scale is
refined between steps and the peak placed between pixels. A ``Placement``
says where the template lies, in target pixels; a ``Frame`` where the whole
image lies, in fractions of each image's sides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import NamedTuple

import cv2
import numpy as np

from .planes import TEMPLATE_FRACTION, Image, Prepared, central_part, template_margin

#: Smallest template scale tried, relative to "same framing".
MIN_RELATIVE_SCALE = 0.55
#: Number of template scales tried per direction (geometric spacing).
SCALE_STEPS = 9
#: The best of those scales is refined by these fractions of a step on either side, in turn
#: (each around the best so far), when its correlation reaches ``REFINEMENT_FLOOR``: a crop's
#: scale falls between two steps, and up to 5 % off cost its aligned blocks enough to sink
#: strong crops below unrelated pairs. On the public corpus (the verification half of
#: ``scripts/evaluate.py``) true pairs above the top 0.1 % of unrelated pairs went from 0.961
#: to 0.987 (crop75 0.79 -> 0.98, crop60 0.80 -> 0.90, crop + caption + JPEG 0.75 -> 0.95).
SCALE_REFINEMENTS = (0.5, 0.25)
#: Refining every pair cost 24 % more time; from 0.5 it costs 3 % (1,029 corpus pairs) and
#: finds as many, from 0.65 a few fewer (measured on the band-pass planes' correlation; the
#: evened planes' (``planes.EVENING``) runs a little lower for true pairs, so refining happens a
#: little less often).
REFINEMENT_FLOOR = 0.5
#: Templates smaller than this (pixels, either side) are not trusted.
MIN_TEMPLATE_SIDE = 8

#: (source, target) parts of the band-pass planes, then of the plain ones (``Placement.overlap``).
Planes = tuple[tuple[Image, Image], tuple[Image, Image]]


@dataclass(frozen=True)
class Frame:
    """Where one image's frame lies in another's: ``other = scale * this + offset``.

    Coordinates are fractions of each image's width (x) and height (y), so
    ``(0, 0)``-``(1, 1)`` is a whole image whatever its size.

    Attributes:
        scale: (x, y) scale factors, > 0.
        offset: (x, y) offsets.
    """

    scale: tuple[float, float]
    offset: tuple[float, float]

    def inverse(self) -> Frame:
        """The frame of the other image in this one."""
        (sx, sy), (ox, oy) = self.scale, self.offset
        return Frame((1 / sx, 1 / sy), (-ox / sx, -oy / sy))

    def box(self) -> tuple[float, float, float, float]:
        """This image's extent in the other, clipped to it: (x, y, width, height) in fractions."""
        corners = [(self.scale[i] * edge + self.offset[i]) for i in (0, 1) for edge in (0.0, 1.0)]
        x0, x1, y0, y1 = (float(np.clip(c, 0.0, 1.0)) for c in corners)
        return x0, y0, x1 - x0, y1 - y0


class Span(NamedTuple):
    """Where a placed source lies along one axis of the target.

    Attributes:
        first: The first target pixel it covers whole (clipped to the target; never
            after the template's first) ...
        end: ... and one past the last (never before the template's end).
        edge: Where its leading edge lands, in target pixels (may lie outside).
        per_pixel: Target pixels per source pixel.
    """

    first: int
    end: int
    edge: float
    per_pixel: float


@dataclass(frozen=True)
class Placement:
    """Where a template (the central part of a source) fits in a target, in target pixels.

    Attributes:
        scale: The template's scale (``template_scales``).
        x: Column of the template's first pixel in the target ...
        y: ... and its row, whole pixels;
        width: The resized template's width ...
        height: ... and height, pixels.
        shift: (x, y) fractions of a pixel (-0.5..0.5) to add to ``x`` and ``y``:
            where ``matchTemplate``'s peak lies between pixels (``peak_shift``).
    """

    scale: float
    x: int
    y: int
    width: int
    height: int
    shift: tuple[float, float] = (0.0, 0.0)

    def window(self, plane: Image) -> Image:
        """The part of a target plane under the template (interpolated when shifted)."""
        if self.shift == (0.0, 0.0):
            return plane[self.y : self.y + self.height, self.x : self.x + self.width]
        centre = (self.x + self.shift[0] + (self.width - 1) / 2, self.y + self.shift[1] + (self.height - 1) / 2)
        return np.asarray(cv2.getRectSubPix(plane, (self.width, self.height), centre), np.float32)

    def frame(self, source: tuple[int, ...], target: tuple[int, ...]) -> Frame:
        """The whole source's Frame in the target, given both (height, width) shapes."""
        x, y = (self.span(axis, source, target) for axis in (1, 0))
        return Frame(
            (x.per_pixel * source[1] / target[1], y.per_pixel * source[0] / target[0]),
            (x.edge / target[1], y.edge / target[0]),
        )

    def overlap(self, source: Prepared, target: Prepared) -> Planes:
        """The whole ``source`` mapped into ``target`` as its central part is placed, and ``target``, where both are.

        Returns:
            The (source, target) pairs of the band-pass, then the plain
            planes: at least the template's placed area, more where the
            source's margins fall inside the target.
        """
        x, y = (self.span(axis, source.plain.shape, target.plain.shape) for axis in (1, 0))
        bandpass, plain = (
            (_mapped(getattr(source, plane), x, y), getattr(target, plane)[y.first : y.end, x.first : x.end])
            for plane in ("bandpass", "plain")
        )
        return bandpass, plain

    def span(self, axis: int, source: tuple[int, ...], target: tuple[int, ...]) -> Span:
        """The whole source along one axis of the target (1: x, 0: y), given both (height, width) shapes."""
        margin = template_margin(source[axis])
        per_pixel = (self.width if axis == 1 else self.height) / (source[axis] - 2 * margin)
        placed, shift, size = (self.x, self.shift[0], self.width) if axis == 1 else (self.y, self.shift[1], self.height)
        edge = placed + shift - margin * per_pixel
        # Never less than the template's whole pixels: a source without margins (4 px or less),
        # shifted, would otherwise cover one pixel fewer.
        first = min(max(math.ceil(edge - 1e-6), 0), placed)
        end = max(min(math.floor(edge + source[axis] * per_pixel + 1e-6), target[axis]), placed + size)
        return Span(first, end, edge, per_pixel)


def _mapped(plane: Image, x: Span, y: Span) -> Image:
    """A whole source plane resampled onto the target pixels ``x.first:x.end``, ``y.first:y.end`` it spans."""
    rows, cols = plane.shape
    shrunk = (max(1, round(cols * min(x.per_pixel, 1.0))), max(1, round(rows * min(y.per_pixel, 1.0))))
    if shrunk != (cols, rows):  # averaged first, as the template was (INTER_AREA), then placed between pixels
        plane = np.asarray(cv2.resize(plane, shrunk, interpolation=cv2.INTER_AREA), np.float32)
    step_x, step_y = x.per_pixel * cols / shrunk[0], y.per_pixel * rows / shrunk[1]
    # Pixel centres: pixel u lands on target pixel edge + (u + 0.5) * step - 0.5.
    mapping = np.array([
        [step_x, 0.0, x.edge + 0.5 * step_x - 0.5 - x.first],
        [0.0, step_y, y.edge + 0.5 * step_y - 0.5 - y.first],
    ])  # fmt: skip
    size = (x.end - x.first, y.end - y.first)
    mapped = cv2.warpAffine(plane, mapping, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(mapped, np.float32)


@lru_cache(maxsize=4096)
def template_scales(source: tuple[int, ...], target: tuple[int, ...]) -> tuple[float, ...]:
    """Scales at which the central part of ``source`` is resized to search ``target``.

    Args:
        source: (height, width) of the image the template is cut from.
        target: (height, width) of the image searched.

    Returns:
        Scale factors from the largest that still fits down to
        ``MIN_RELATIVE_SCALE`` of "same framing", largest first (cached:
        thumbnails come in few shapes).
    """
    fit = min(target[0] / (TEMPLATE_FRACTION * source[0]), target[1] / (TEMPLATE_FRACTION * source[1]))
    same_framing = min(target[0] / source[0], target[1] / source[1])
    low = min(fit, same_framing * MIN_RELATIVE_SCALE)
    scales = {float(s) for s in np.geomspace(fit, low, SCALE_STEPS)}
    if low <= same_framing <= fit:
        scales.add(same_framing)  # an uncropped copy aligns exactly
    return tuple(sorted(scales, reverse=True))


def best_placement(source: Prepared, target: Prepared, *, near: float | None = None) -> Placement | None:
    """Where ``source``'s central part fits best in ``target`` (correlation of the evened band-pass planes).

    Every scale of ``template_scales`` is tried (only those within a step of
    ``near`` when given), then the best one is refined by
    ``SCALE_REFINEMENTS`` of a step on either side, and its place between
    pixels found (``peak_shift``).

    Returns:
        The best Placement, or None when no scale gives a usable template.
    """
    template_part = central_part(source.evened)
    scales = template_scales(source.plain.shape, target.plain.shape)
    step = (scales[0] / scales[-1]) ** (1 / (SCALE_STEPS - 1))
    searched = scales if near is None else [s for s in scales if max(s / near, near / s) <= step * 1.001]
    tried = [_placed(source, target, template_part, scale) for scale in searched]
    best = max((found for found in tried if found is not None), default=None, key=lambda found: found[0])
    if best is None:
        return None
    for fraction in SCALE_REFINEMENTS if step > 1 and best[0] >= REFINEMENT_FLOOR else ():
        centre = best[1].scale
        for scale in (centre * step**fraction, centre / step**fraction):
            found = _placed(source, target, template_part, scale) if scales[-1] <= scale <= scales[0] else None
            if found is not None and found[0] > best[0]:
                best = found
    _, placement, response = best
    return replace(placement, shift=peak_shift(response, placement.x, placement.y))


def _placed(
    source: Prepared, target: Prepared, template_part: Image, scale: float
) -> tuple[float, Placement, Image] | None:
    """``matchTemplate``'s best value, whole-pixel placement and values of the evened template at one scale.

    None when the template is unusable at that scale.
    """
    size = (round(template_part.shape[1] * scale), round(template_part.shape[0] * scale))
    if min(size) < MIN_TEMPLATE_SIDE or size[0] > target.plain.shape[1] or size[1] > target.plain.shape[0]:
        return None
    template, spread = source.central_resized("evened", size=size, scale=scale)
    if spread < 1e-6:
        return None
    response = np.asarray(cv2.matchTemplate(target.evened, template, cv2.TM_CCOEFF_NORMED), np.float32)
    _, value, _, (x, y) = cv2.minMaxLoc(response)
    return float(value), Placement(scale, int(x), int(y), *size), response


def peak_shift(response: Image, x: int, y: int) -> tuple[float, float]:
    """Where a peak of ``response`` at (x, y) lies between pixels: a parabola through it and its neighbours, per axis.

    Returns:
        (x, y) fractions of a pixel, each within -0.5..0.5 (0 at an edge of
        ``response``, where the values do not curve down, or are not finite).
    """
    rows, cols = response.shape

    def vertex(before: float, at: float, after: float) -> float:
        curvature = float(before - 2 * at + after)
        offset = 0.5 * float(before - after) / curvature if curvature < 0 else 0.0
        return min(max(offset, -0.5), 0.5) if math.isfinite(offset) else 0.0

    along_x = vertex(response[y, x - 1], response[y, x], response[y, x + 1]) if 0 < x < cols - 1 else 0.0
    along_y = vertex(response[y - 1, x], response[y, x], response[y + 1, x]) if 0 < y < rows - 1 else 0.0
    return along_x, along_y


def same_framing(source: Prepared, target: Prepared) -> Placement | None:
    """The placement of ``source``'s central part as if ``target`` were a resized copy (centred)."""
    band = central_part(source.bandpass)
    scale = min(target.plain.shape[0] / source.plain.shape[0], target.plain.shape[1] / source.plain.shape[1])
    width, height = round(band.shape[1] * scale), round(band.shape[0] * scale)
    rows, cols = target.plain.shape
    if min(width, height) < MIN_TEMPLATE_SIDE or width > cols or height > rows:
        return None
    return Placement(scale, (cols - width) // 2, (rows - height) // 2, width, height)
