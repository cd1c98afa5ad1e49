"""Rescoring: align one blurred thumbnail on the other, then correlate robustly.

The vector index compares images cell by cell, so a crop, a shift or a
caption costs it correlation. The rescorer recovers it. The central part of
one thumbnail (a *template*) is slid with ``cv2.matchTemplate``
(``TM_CCOEFF_NORMED``) over the other at a range of scales, in both
directions; scales cover "the same framing" down to "the template image is a
crop of about half the other's width" (a moderate crop, a caption band or a
letterbox).

Alignment uses *band-pass* thumbnails (the blurred image minus a much more
blurred one): smooth, unrelated images (gradients, skies) correlate highly in
plain blurred form, and the best of many placements makes that worse. Their
values are evened out first (``EVENING``), so that one strong edge, such as
a caption band's, cannot pull the template onto a lookalike edge. At the
best placement the template and the window are cut into a 4x4 grid of blocks
and the score is the median (``BLOCK_QUANTILE``) of the block correlations,
band-pass and plain averaged, so a caption, a watermark or a pasted patch
that spoils a few blocks does not sink a true copy. A patch across the
middle spoils more than half of them, so the planes' correlation where the
two images overlap (the whole source, not just its central part), outside
the one region where they disagree most (``exclusion``), stands in when it
is higher, less ``EXCLUSION_PENALTY``. The "same framing"
placement is scored as well, since a large pasted patch can pull the
template's best match elsewhere. The final score mixes the aligned score
with the vectors' coarse correlation, lightly: a crop's coarse correlation is
low whatever the rescorer finds.

Measured on the public corpus (``scripts/evaluate.py``: 1,919 generated edits
of 101 photos against 20,000 unrelated pairs), the share of true pairs above
the score of the top 0.1 % of unrelated pairs: 0.895 with the 75th
percentile of blocks and coarse weight 0.2; 0.923 with the median, coarse
weight 0.35 and rotation retries gated at 0.45; 0.960 with coarse weight
0.15, the gate at 0.30 and the same-framing placement (recall@1 0.955 ->
0.968; crop60 0.63 -> 0.83, rotate8 0.90 -> 0.99; about 1.8 times the
rescoring time). Scoring the whole window at 128 px instead of blocks at
64 px did worse on retrieval (recall@1 0.904 vs 0.943); a 0.625 or 0.75
block quantile let more unrelated pairs through (0.882, 0.798).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Literal, NamedTuple

import cv2
import numpy as np
import numpy.typing as npt

from .exclusion import correlation_outside_region

#: Fraction of each side kept for the template (the rest is slack for shifts).
TEMPLATE_FRACTION = 0.8
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
#: evened planes' (``EVENING``) runs a little lower for true pairs, so refining happens a
#: little less often).
REFINEMENT_FLOOR = 0.5
#: Templates smaller than this (pixels, either side) are not trusted.
MIN_TEMPLATE_SIDE = 8
#: Sigma of the blur subtracted for the band-pass image, as a fraction of the long side.
BANDPASS_FRACTION = 0.06
#: The aligned template and window are compared in BLOCKS x BLOCKS blocks ...
BLOCKS = 4
#: ... and this quantile of the block correlations is the aligned score.
BLOCK_QUANTILE = 0.5
#: Subtracted from the correlation outside the most disagreeing region (``exclusion``)
#: before it may replace the blocks' median: leaving a region out lifts unrelated pairs a
#: little too. On the public corpus, 0.05 let more of them through, 0.15 found fewer pastes.
EXCLUSION_PENALTY = 0.1
#: Weight of the vectors' coarse correlation in the final score.
COARSE_WEIGHT = 0.15
#: Template rotations (degrees) tried when the unrotated alignment is ambiguous ...
ROTATIONS = (-7.0, 7.0)
#: ... that is, when its score falls inside this range (a clear match or a clear
#: miss is not worth the extra matches). On the public corpus a gate of (0.45, 0.92)
#: found 0.90 instead of 0.39 of 8-degree rotations at 0.1 % false matches, for
#: 18 % more time; (0.30, 0.92) found 0.99 (with the lighter coarse weight).
ROTATION_GATE = (0.30, 0.92)

#: A thumbnail whose band-pass varies less than this (grey levels) has no detail to
#: align (a smooth gradient, a sky): on the public corpus only ``gradient.png`` (2.4)
#: is below it, the next image is at 9.7, the median 27. Such an image matches only
#: what correlates with it at NEAR_IDENTICAL or more (its score is that margin stretched
#: to 0..1): an unrelated smooth diagram scored 0.95 against it by blocks, 0.983 as a whole,
#: while its re-encoded, resized, recoloured and cropped copies correlate 0.994-1.0.
LOW_DETAIL = 6.0
NEAR_IDENTICAL = 0.98
#: No edit of such an image puts detail in its middle half, so against an image with detail
#: (``detail`` >= LOW_DETAIL) whose middle half has it too (``central_detail``) it scores 0.
#: A tall class diagram (middle half 34.6), squashed to the vectors' square grid, is a ramp
#: that correlated 0.996 with ``gradient.png`` turned 3 degrees (0.992 with the original);
#: the gradient's captioned, bordered, screenshot and framed copies keep a middle half
#: under 1 (their detail is at the edges: a median over 4x4 blocks, tried first, zeroed a
#: gradient in a 1 px frame). A patch pasted in its middle (13.8) is lost, as it was:
#: its whole correlates under NEAR_IDENTICAL.
CENTRAL_FRACTION = 0.5
#: ``matchTemplate`` places the template on the band-pass planes evened out: each value v
#: becomes s * tanh(v / s), with s this share of the plane's median absolute value, so
#: nearly its sign. A correlation is weighted by energy, and a caption band's edge
#: outweighed a soft page of text or a pale diagram: the template's best place was
#: where that edge met a line of the original (a captioned crop of a blurred page
#: scored 0.47; placed on its evened planes, 0.89). Blocks are still correlated on the
#: planes themselves. On the public corpus (``scripts/evaluate.py``) crops with a caption
#: and JPEG found first went from 0.970 to 0.990 and verified at 0.1 % false matches from
#: 0.950 to 0.990, crops to 60 % found first from 0.980 to 0.990 but verified 0.931 ->
#: 0.901 (crops of chessboards, whose periodic squares place a little differently), all
#: edits verified 0.989 -> 0.991; unrelated pairs at 0.87 or more 0.070 -> 0.085 %, with no
#: measurable extra time. A share of 2 left the page at 0.47, as without evening; 0.5 did
#: less than 0.25 overall.
EVENING = 0.25
#: ... but never less than this (grey levels): where most of a thumbnail is flat, its median
#: is rounding noise, and a sign map of that noise placed a lone object's crop anywhere.
MIN_EVENING_SCALE = 0.5

Image = npt.NDArray[np.float32]
#: Which plane of a Prepared thumbnail: the blurred one, its band-pass, or the band-pass evened out.
Plane = Literal["plain", "bandpass", "evened"]
#: (source, target) parts of the band-pass planes, then of the plain ones (``Placement.overlap``).
Planes = tuple[tuple[Image, Image], tuple[Image, Image]]


@dataclass(frozen=True)
class Prepared:
    """A thumbnail ready for rescoring: plain and band-pass float versions (and, derived, the evened band-pass).

    Its resized central parts are cached: in a query or ``duplicates`` one
    image meets many others of the same shape. On 800 candidate pairs of the
    public corpus this took rescoring from 8.05 to 7.3 ms per pair, with the
    same scores.
    """

    plain: Image
    bandpass: Image
    _resized: dict[tuple[Plane, int, int, bool], tuple[Image, float]] = field(
        default_factory=dict, compare=False, repr=False
    )
    _turned: dict[float, Prepared] = field(default_factory=dict, compare=False, repr=False)

    def central_resized(self, plane: Plane, *, size: tuple[int, int], scale: float) -> tuple[Image, float]:
        """The central part of one plane resized to ``size`` (width, height), and its spread."""
        key = (plane, size[0], size[1], scale < 1)
        if key not in self._resized:
            resized = _resize(central_part(getattr(self, plane)), size, scale)
            self._resized[key] = (resized, _spread(resized))
        return self._resized[key]

    @cached_property
    def evened(self) -> Image:
        """The band-pass plane evened out for placing a template (``EVENING``): -s..s grey levels."""
        scale = max(EVENING * float(np.median(np.abs(self.bandpass))), MIN_EVENING_SCALE)
        return np.asarray(scale * np.tanh(self.bandpass / scale), np.float32)

    def turned(self, degrees: float) -> Prepared:
        """This thumbnail turned by ``degrees`` about its centre (``rotate``), kept with its resized parts.

        One image meets many others in a query or ``duplicates`` and is turned
        for most of them (``align_allowing_rotation``).
        """
        if degrees not in self._turned:
            self._turned[degrees] = rotate(self, degrees)
        return self._turned[degrees]

    @cached_property
    def detail(self) -> float:
        """Standard deviation of the band-pass image (thumbnail grey levels, 0..255 scale)."""
        return float(self.bandpass.std())

    @cached_property
    def central_detail(self) -> float:
        """Standard deviation of the band-pass image's middle ``CENTRAL_FRACTION`` of each side (grey levels)."""
        height, width = self.bandpass.shape
        dy, dx = round(height * (1 - CENTRAL_FRACTION) / 2), round(width * (1 - CENTRAL_FRACTION) / 2)
        middle = self.bandpass[dy : height - dy, dx : width - dx]
        return float(middle.std()) if middle.size else self.detail

    @cached_property
    def usable(self) -> bool:
        """False for a flat thumbnail (nothing to align)."""
        return self.detail > 1e-6 and float(self.plain.std()) > 1e-6


def prepare(thumbnail: npt.NDArray[np.uint8] | Image, *, side: int = 64, mirrored: bool = False) -> Prepared:
    """Downscale a thumbnail to the rescoring size and compute its band-pass once.

    Args:
        thumbnail: 2-D blurred grayscale thumbnail (uint8 or float).
        side: Long side to work at, in pixels (never upscaled).
        mirrored: Flip it horizontally first (to match a mirrored copy).

    Returns:
        The Prepared pair, reusable against many other thumbnails.
    """
    plain = np.ascontiguousarray(thumbnail[:, ::-1] if mirrored else thumbnail, np.float32)
    ratio = side / max(plain.shape)
    if ratio < 1:
        size = (max(1, round(plain.shape[1] * ratio)), max(1, round(plain.shape[0] * ratio)))
        plain = np.asarray(cv2.resize(plain, size, interpolation=cv2.INTER_AREA), np.float32)
    return Prepared(plain=plain, bandpass=band_pass(plain, BANDPASS_FRACTION * max(plain.shape)))


def band_pass(image: Image, sigma: float) -> Image:
    """``image`` minus its Gaussian blur of ``sigma`` pixels (borders reflected)."""
    return image - cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


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


@dataclass(frozen=True)
class Rescored:
    """A rescored pair.

    Attributes:
        score: 0..1, see ``rescore``.
        frame: Where the first image lies in the second at the best
            placement, or None when no placement was usable.
    """

    score: float
    frame: Frame | None


def rescore(first: Prepared, second: Prepared, *, coarse: float = 0.0) -> Rescored:
    """Score how well two prepared thumbnails match, allowing shift, crop and scale.

    Args:
        first: One image, from ``prepare``.
        second: The other image.
        coarse: Correlation of the two images' vectors (-1..1).

    Returns:
        The score, in 0..1: ``(1 - COARSE_WEIGHT) * aligned + COARSE_WEIGHT *
        max(coarse, 0)``, where ``aligned`` is the better of the two
        directions' robust block correlation at the best placement (0 when
        either image is flat; when either has less than ``LOW_DETAIL``, the
        stretched margin of ``coarse`` above ``NEAR_IDENTICAL``, or 0 if the
        other has detail, in its middle too); and that placement.
    """
    if not (first.usable and second.usable):
        return Rescored(0.0, None)
    forward, (backward, frame) = align_allowing_rotation(first, second), align_allowing_rotation(second, first)
    if forward[0] >= backward:
        aligned, frame = forward
    else:
        aligned, frame = backward, None if frame is None else frame.inverse()
    smooth, other = sorted((first, second), key=lambda image: image.detail)
    if smooth.detail < LOW_DETAIL:
        # Without detail, blocks correlate by chance: only a near-identical whole counts.
        if other.detail >= LOW_DETAIL and other.central_detail >= LOW_DETAIL:
            score = 0.0
        else:
            score = (coarse - NEAR_IDENTICAL) / (1 - NEAR_IDENTICAL)
    else:
        score = (1 - COARSE_WEIGHT) * aligned + COARSE_WEIGHT * max(coarse, 0.0)
    return Rescored(float(np.clip(score, 0.0, 1.0)), frame)


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


def central_part(image: Image) -> Image:
    """The central ``TEMPLATE_FRACTION`` of an image (both sides)."""
    height, width = image.shape
    dy = round(height * (1 - TEMPLATE_FRACTION) / 2)
    dx = round(width * (1 - TEMPLATE_FRACTION) / 2)
    return image[dy : height - dy, dx : width - dx]


class Span(NamedTuple):
    """Where a placed source lies along one axis of the target.

    Attributes:
        first: The first target pixel it covers whole (clipped to the target) ...
        end: ... and one past the last.
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
        # Pixel centres: source pixel u lands on target pixel edge + (u + 0.5) * per_pixel - 0.5.
        mapping = np.array([
            [x.per_pixel, 0.0, x.edge + 0.5 * x.per_pixel - 0.5 - x.first],
            [0.0, y.per_pixel, y.edge + 0.5 * y.per_pixel - 0.5 - y.first],
        ])  # fmt: skip
        size = (x.end - x.first, y.end - y.first)
        bandpass, plain = (
            (
                np.asarray(
                    cv2.warpAffine(
                        getattr(source, plane), mapping, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
                    ),
                    np.float32,
                ),
                getattr(target, plane)[y.first : y.end, x.first : x.end],
            )
            for plane in ("bandpass", "plain")
        )
        return bandpass, plain

    def span(self, axis: int, source: tuple[int, ...], target: tuple[int, ...]) -> Span:
        """The whole source along one axis of the target (1: x, 0: y), given both (height, width) shapes."""
        margin = round(source[axis] * (1 - TEMPLATE_FRACTION) / 2)
        per_pixel = (self.width if axis == 1 else self.height) / (source[axis] - 2 * margin)
        start = (self.x + self.shift[0]) if axis == 1 else (self.y + self.shift[1])
        edge = start - margin * per_pixel
        first = max(math.ceil(edge - 1e-6), 0)
        end = min(math.floor(edge + source[axis] * per_pixel + 1e-6), target[axis])
        return Span(first, end, edge, per_pixel)


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
        ``response`` or where the values do not curve down).
    """
    rows, cols = response.shape

    def vertex(before: float, at: float, after: float) -> float:
        curvature = before - 2 * at + after
        return 0.0 if curvature >= 0 else min(max(0.5 * float(before - after) / float(curvature), -0.5), 0.5)

    along_x = vertex(response[y, x - 1], response[y, x], response[y, x + 1]) if 0 < x < cols - 1 else 0.0
    along_y = vertex(response[y - 1, x], response[y, x], response[y + 1, x]) if 0 < y < rows - 1 else 0.0
    return along_x, along_y


@dataclass(frozen=True)
class Alignment:
    """The best placement of one image's central part in another.

    Attributes:
        score: Mean of the band-pass and plain ``BLOCK_QUANTILE`` block correlations there (-1..1).
        frame: The source's Frame in the target (None when no placement was usable).
        placement: That placement, in target pixels (None when none was usable).
    """

    score: float
    frame: Frame | None
    placement: Placement | None

    @property
    def scale(self) -> float | None:
        """The placement's template scale (None when none was usable)."""
        return None if self.placement is None else self.placement.scale


def align_into(source: Prepared, target: Prepared, *, near: float | None = None) -> Alignment:
    """Robust correlation of ``source``'s central part at its best placement in ``target``.

    Besides the placement ``matchTemplate`` prefers, the same framing
    (centred, same relative size) is scored too and the better kept: a
    pasted patch or a caption can pull the template's best match away from
    where a resized copy really lies.

    Returns:
        The better placement's Alignment; score 0 and no frame when no
        placement is usable.
    """
    best = Alignment(0.0, None, None)
    for placement in {best_placement(source, target, near=near), same_framing(source, target)} - {None}:
        assert placement is not None
        score = block_score(source, target, placement)
        if best.frame is None or score > best.score:
            best = Alignment(score, placement.frame(source.plain.shape, target.plain.shape), placement)
    return best


def same_framing(source: Prepared, target: Prepared) -> Placement | None:
    """The placement of ``source``'s central part as if ``target`` were a resized copy (centred)."""
    band = central_part(source.bandpass)
    scale = min(target.plain.shape[0] / source.plain.shape[0], target.plain.shape[1] / source.plain.shape[1])
    width, height = round(band.shape[1] * scale), round(band.shape[0] * scale)
    rows, cols = target.plain.shape
    if min(width, height) < MIN_TEMPLATE_SIDE or width > cols or height > rows:
        return None
    return Placement(scale, (cols - width) // 2, (rows - height) // 2, width, height)


def block_score(source: Prepared, target: Prepared, placement: Placement) -> float:
    """Mean of the band-pass and plain ``BLOCK_QUANTILE`` block correlations at a placement (-1..1)."""
    p, scores = placement, []
    compared: tuple[Plane, ...] = ("bandpass", "plain")
    for plane in compared:
        resized, _ = source.central_resized(plane, size=(p.width, p.height), scale=p.scale)
        window = p.window(getattr(target, plane))
        scores.append(_quantile(block_correlations(resized, window), BLOCK_QUANTILE))
    return (scores[0] + scores[1]) / 2


def align_allowing_rotation(source: Prepared, target: Prepared) -> tuple[float, Frame | None]:
    """``align_into``, retried with ``source`` turned when ambiguous, and scored outside a local edit.

    When the unturned score falls inside ``ROTATION_GATE``, ``source`` is
    turned by each of ``ROTATIONS`` and the best kept; a turned source is
    searched for only at the scales within a step of the unturned placement's
    (a small turn does not change the scale; on the public corpus's edits
    every score stayed the same, and unrelated candidate pairs rescored about
    1.2 times faster, two of them no longer reaching 0.87). Then, unless the
    blocks already score ``1 - EXCLUSION_PENALTY`` or more, the images are
    scored where they overlap at the unturned placement (``Placement.overlap``),
    outside the one region where they disagree most (``exclusion``); less
    ``EXCLUSION_PENALTY``, that stands in when higher. The gate sees the
    blocks' score alone: lifted by the exclusion, many unrelated pairs would
    be turned too, for nothing.

    Returns:
        The score (-1..1) and the source's Frame in the target, which
        ignores a rotation (it is small); None when nothing was placed.
    """
    unturned = best = align_into(source, target)
    if ROTATION_GATE[0] < best.score < ROTATION_GATE[1]:
        for degrees in ROTATIONS:
            turned = align_into(source.turned(degrees), target, near=unturned.scale)
            best = max(best, turned, key=lambda found: found.score)
    score, frame = best.score, best.frame
    if unturned.placement is not None and score < 1 - EXCLUSION_PENALTY:
        outside = correlation_outside_region(*unturned.placement.overlap(source, target)) - EXCLUSION_PENALTY
        if outside > score:
            score, frame = outside, unturned.frame
    return score, frame


def rotate(image: Prepared, degrees: float) -> Prepared:
    """Both versions of a prepared thumbnail turned about their centre (borders reflected)."""
    height, width = image.plain.shape
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)

    def turn(plane: Image) -> Image:
        warped = cv2.warpAffine(plane, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        return np.asarray(warped, np.float32)

    return Prepared(plain=turn(image.plain), bandpass=turn(image.bandpass))


def block_correlations(
    first: Image, second: Image, *, blocks: int = BLOCKS, min_relative_spread: float = 0.0
) -> npt.NDArray[np.float64]:
    """Pearson correlations of corresponding blocks of two equally shaped images.

    Args:
        first: One image.
        second: The other, same shape.
        blocks: The images are cut into ``blocks`` x ``blocks`` blocks, row-major.
        min_relative_spread: Leave out blocks whose larger standard deviation
            (of the two images) is below this times the median of that over all
            blocks: near-flat blocks correlate by chance.

    Returns:
        The correlations of the blocks kept (flat blocks are always left
        out); with none kept, or images smaller than the grid, the whole
        images' correlation is the only value.
    """
    rows, cols = first.shape[0] // blocks, first.shape[1] // blocks
    if rows == 0 or cols == 0:
        return np.array([correlation(first, second)])
    a, b = (_blocks(image[: rows * blocks, : cols * blocks], blocks, rows, cols) for image in (first, second))
    a -= a.mean(axis=1, keepdims=True)
    b -= b.mean(axis=1, keepdims=True)
    energy_a, energy_b = (a * a).sum(axis=1), (b * b).sum(axis=1)
    usable = energy_a * energy_b > 1e-18
    if min_relative_spread > 0:
        spread = np.maximum(energy_a, energy_b)
        usable &= spread >= min_relative_spread**2 * np.median(spread)
    if not usable.any():
        return np.array([0.0])
    return np.asarray((a * b).sum(axis=1)[usable] / np.sqrt(energy_a * energy_b)[usable], np.float64)


def _blocks(image: Image, blocks: int, rows: int, cols: int) -> npt.NDArray[np.float64]:
    """(blocks**2, rows*cols) matrix of the image's blocks, row-major."""
    tiles = image.astype(np.float64).reshape(blocks, rows, blocks, cols).transpose(0, 2, 1, 3)
    return tiles.reshape(blocks * blocks, rows * cols)


def correlation(first: Image, second: Image) -> float:
    """Pearson correlation of two equally shaped images (0 if either is flat).

    Written with element-wise products, not BLAS: see the note in
    ``nearindex/__init__.py`` on OpenBLAS threads.
    """
    a = first.astype(np.float64).ravel()
    b = second.astype(np.float64).ravel()
    a -= a.mean()
    b -= b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denominator) if denominator > 1e-12 else 0.0


def _quantile(values: npt.NDArray[np.float64], q: float) -> float:
    """``np.quantile(values, q)`` (linear interpolation) of a few values, without its overhead.

    Rescoring takes this of 16 block correlations tens of times per pair, where
    ``np.quantile``'s argument handling cost more than the sort.
    """
    ordered = np.sort(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


def _spread(image: Image) -> float:
    """Standard deviation of an image's pixels (OpenCV's, several times faster than numpy's on small images)."""
    return float(cv2.meanStdDev(image)[1][0, 0])


def _resize(image: Image, size: tuple[int, int], scale: float) -> Image:
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(image, size, interpolation=interpolation), np.float32)
