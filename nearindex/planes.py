"""Prepared thumbnail planes: a blurred thumbnail, its band-pass, and the band-pass evened out.

Images are aligned on *band-pass* thumbnails (the blurred image minus a much
more blurred one): smooth, unrelated images (gradients, skies) correlate
highly in plain blurred form, and the best of many placements makes that
worse. Their values are evened out first (``EVENING``), so that one strong
edge, such as a caption band's, cannot pull the template onto a lookalike
edge. A ``Prepared`` thumbnail computes its planes once and keeps what one
image needs again against many others: its resized central parts and its
turned copies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from .colour import Colour
from .images import shrink_to_long_side

#: Sigma of the blur subtracted for the band-pass image, as a fraction of the long side.
BANDPASS_FRACTION = 0.06
#: Fraction of each side kept for the template (the rest is slack for shifts).
TEMPLATE_FRACTION = 0.8
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
#: No edit of a smooth image (under ``smooth.LOW_DETAIL``) but a local one puts detail in its middle half,
#: so against an image with detail (``detail`` >= LOW_DETAIL) whose middle half has it too
#: (``central_detail``) it is compared only outside the one region where they differ most
#: (``smooth.correlation_outside_edit``). A tall class diagram (middle half 34.6), squashed to the
#: vectors' square grid, is a ramp that correlated 0.996 with ``gradient.png`` turned 3 degrees
#: (0.992 with the original); the gradient's captioned, bordered, screenshot and framed copies
#: keep a middle half under 1 (their detail is at the edges: a median over 4x4 blocks, tried
#: first, zeroed a gradient in a 1 px frame); a patch pasted in its middle has 10-14.
CENTRAL_FRACTION = 0.5

Image = npt.NDArray[np.float32]
#: Which plane of a Prepared thumbnail: the blurred one, its band-pass, or the band-pass evened out.
Plane = Literal["plain", "bandpass", "evened"]


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
    #: The colours (hues) of an image with little detail (``colour``), else None.
    colour: Colour | None = None
    _resized: dict[tuple[Plane, int, int, bool], tuple[Image, float]] = field(
        default_factory=dict, compare=False, repr=False
    )
    _turned: dict[float, Prepared] = field(default_factory=dict, compare=False, repr=False)
    _bands: dict[tuple[float, float], tuple[Band, ...]] = field(default_factory=dict, compare=False, repr=False)

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
        for most of them (``rescore.align_allowing_rotation``).
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

    def bands(self, *, below: float, deepest: float) -> tuple[Band, ...]:
        """The bands along an edge beyond which the thumbnail has less detail than ``below`` (kept).

        For each edge, the shallowest band (whole rows or columns of the plain
        plane, at most ``deepest`` of the side, at least one) whose rest has a
        band-pass standard deviation under ``below``, the rest's own band-pass
        (the band's edge leaks into the whole image's). Empty for an image with
        less detail than that already (nothing to cut off).
        """
        key = (below, deepest)
        if key not in self._bands:
            self._bands[key] = tuple(_bands(self.plain, below=below, deepest=deepest)) if self.detail >= below else ()
        return self._bands[key]

    @cached_property
    def usable(self) -> bool:
        """False for a flat thumbnail (nothing to align)."""
        return self.detail > 1e-6 and float(self.plain.std()) > 1e-6


@dataclass(frozen=True)
class Band:
    """A band of rows or columns along one edge of a plane.

    Attributes:
        axis: 0 for rows (the top or bottom edge), 1 for columns (left or right).
        at_end: At the bottom or the right edge.
        depth: Rows (or columns) it holds.
    """

    axis: int
    at_end: bool
    depth: int

    def oriented(self, plane: Image) -> Image:
        """``plane`` turned over so that this band's edge is at the top (its first rows)."""
        turned = plane.T if self.axis else plane
        return np.ascontiguousarray(turned[::-1] if self.at_end else turned)


def _bands(plain: Image, *, below: float, deepest: float) -> list[Band]:
    sigma = BANDPASS_FRACTION * max(plain.shape)

    def rest_is_smooth(oriented: Image, depth: int) -> bool:
        return float(band_pass(np.ascontiguousarray(oriented[depth:]), sigma).std()) < below

    found = []
    for axis, at_end in ((0, False), (0, True), (1, False), (1, True)):
        oriented = Band(axis, at_end, 0).oriented(plain)
        deep, shallow = int(deepest * len(oriented)), 0
        if deep < 1 or not rest_is_smooth(oriented, deep):
            continue
        # The rest only loses detail as the band deepens: bisect for the shallowest smooth rest.
        while deep - shallow > 1:
            middle = (deep + shallow) // 2
            deep, shallow = (middle, shallow) if rest_is_smooth(oriented, middle) else (deep, middle)
        found.append(Band(axis, at_end, deep))
    return found


def prepare(
    thumbnail: npt.NDArray[np.uint8] | Image, *, side: int = 64, mirrored: bool = False, colour: Colour | None = None
) -> Prepared:
    """Downscale a thumbnail to the rescoring size and compute its band-pass once.

    Args:
        thumbnail: 2-D blurred grayscale thumbnail (uint8 or float).
        side: Long side to work at, in pixels (never upscaled).
        mirrored: Flip it horizontally first (to match a mirrored copy).
        colour: The image's stored colour, if any (``Description.colour``).

    Returns:
        The Prepared pair, reusable against many other thumbnails.
    """
    plain = shrink_to_long_side(np.ascontiguousarray(thumbnail[:, ::-1] if mirrored else thumbnail, np.float32), side)
    return Prepared(plain=plain, bandpass=band_pass(plain, BANDPASS_FRACTION * max(plain.shape)), colour=colour)


def band_pass(image: Image, sigma: float) -> Image:
    """``image`` minus its Gaussian blur of ``sigma`` pixels (borders reflected)."""
    return image - cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def rotate(image: Prepared, degrees: float) -> Prepared:
    """Both versions of a prepared thumbnail turned about their centre (borders reflected)."""
    height, width = image.plain.shape
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)

    def turn(plane: Image) -> Image:
        warped = cv2.warpAffine(plane, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        return np.asarray(warped, np.float32)

    return Prepared(plain=turn(image.plain), bandpass=turn(image.bandpass), colour=image.colour)


def central_part(image: Image) -> Image:
    """The central ``TEMPLATE_FRACTION`` of an image (both sides)."""
    height, width = image.shape
    dy, dx = template_margin(height), template_margin(width)
    return image[dy : height - dy, dx : width - dx]


def template_margin(side: int) -> int:
    """Pixels ``central_part`` leaves out at each end of a side of ``side`` pixels."""
    return round(side * (1 - TEMPLATE_FRACTION) / 2)


def _spread(image: Image) -> float:
    """Standard deviation of an image's pixels (OpenCV's, several times faster than numpy's on small images)."""
    return float(cv2.meanStdDev(image)[1][0, 0])


def _resize(image: Image, size: tuple[int, int], scale: float) -> Image:
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(image, size, interpolation=interpolation), np.float32)
