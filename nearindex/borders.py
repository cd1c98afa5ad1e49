"""Uniform borders: letterbox, pillarbox and frame bars found at an image's edges, to describe what lies inside.

A letterboxed copy of a picture holds the picture and two flat bars. A
picture with detail is still placed inside it by the rescorer, but a smooth
one (a gradient, a soft wallpaper) has nothing to be placed by: it is
compared as a whole, and the bars' edges outweigh it (on
``scripts/smooth_collection.py``'s collection, letterboxed copies were found
first for 0.40), while two unrelated letterboxed smooth pictures match by
their bars. So each image is described without its uniform borders, and the
borders are kept to say where its content lies (``relation``: a letterboxed
copy *contains* its picture).

A border is a band of lines at one edge, each line (row or column) the colour
of the outermost one within ``TOLERANCE`` in nearly all its pixels, at least
``MIN_DEPTH`` deep, ended by lines that differ from that colour in most of
their width (``COVERED``): the edge of a picture, not a caption's text, a
line drawing's white margin or a gradient fading into a flat colour. Across a
frame's side bars, once found, a bar is judged between them; a frame of one
colour all round is found only where its bars are narrow enough (up to about
15 % of each side, less where the picture's edge has the bars' colour) for
some bar's inner edge to be mostly picture. An edit can
still hide a bar (a caption over a pillarbox, a turn) or make one (a contrast
edit clipping a sky to white): ``search.score_pair`` then compares the two
images again, both trimmed to the deeper border at each edge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeVar

import cv2
import numpy as np
import numpy.typing as npt

#: Borders are looked for on the image shrunk to this long side (pixels): JPEG noise averages out.
SEARCH_SIDE = 256
#: A border line's pixels lie within this of the border's colour (0..1 grey scale; 8 levels of 255) ...
TOLERANCE = 0.03
#: ... all but this share of them (a speck of dust, a JPEG block).
STRAY_SHARE = 0.01
#: A border is at least this deep (fraction of the side across it): a one-pixel frame is not worth it.
MIN_DEPTH = 0.015
#: The lines just inside a border (``INNER_DEPTH`` deep) differ from its colour by more than twice
#: ``TOLERANCE`` in at least this share of their pixels. Measured with a prototype on the public corpus
#: and the smooth collection (``scripts/smooth_collection.py``), originals and generated edits: at 0.5 a
#: caption band's margin under its text was trimmed for 14 of 301 captions; at 0.7 none, while 288 of
#: 301 letterboxed copies still lost their bars (the rest border a dark picture edge with black).
COVERED = 0.7
#: Depth of the lines judged just inside a border (fraction of the side).
INNER_DEPTH = 0.01
#: No border is deeper than this share of the side across it (a vertical video pillarboxed in a
#: landscape frame has bars of 0.34); what is left is at least a tenth of each side.
MAX_DEPTH = 0.45

Image = TypeVar("Image", npt.NDArray[np.uint8], npt.NDArray[np.uint16], npt.NDArray[np.float32])
Lines = TypeVar("Lines", npt.NDArray[np.uint8], npt.NDArray[np.float32])


@dataclass(frozen=True)
class Borders:
    """The uniform bars at an image's edges, as fractions of its width (left, right) and height (top, bottom).

    All zero when it has none. Fractions, not pixels, so one image decoded at
    different sizes (a reduced JPEG decode, the colour decode) trims alike.
    """

    left: float = 0.0
    top: float = 0.0
    right: float = 0.0
    bottom: float = 0.0

    @property
    def box(self) -> tuple[float, float, float, float]:
        """The content inside the borders: (x, y, width, height), fractions of the image."""
        return self.left, self.top, 1.0 - self.left - self.right, 1.0 - self.top - self.bottom

    @property
    def found(self) -> bool:
        """True when the image has any border."""
        return any((self.left, self.top, self.right, self.bottom))

    def trim(self, image: Image) -> Image:
        """The part of ``image`` (any size of this image, 2-D or with channels) inside the borders.

        Returns:
            A view of ``image``, never empty.
        """
        height, width = image.shape[:2]
        top, bottom = _cut(height, self.top, self.bottom)
        left, right = _cut(width, self.left, self.right)
        return image[top:bottom, left:right]

    def content_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """(width, height) of the content of an image of ``size`` (width, height) pixels (as ``trim`` cuts it)."""
        width, height = size
        (top, bottom), (left, right) = _cut(height, self.top, self.bottom), _cut(width, self.left, self.right)
        return right - left, bottom - top

    def joined(self, other: Borders, *, seam: float = 0.0) -> Borders:
        """The deeper of the two borders at each edge, and ``seam`` deeper still where they differ.

        An image described with a bar cut out later has the bar blurred into
        its picture's edge: ``seam`` (a fraction of the side) leaves that out
        of both images alike.
        """
        return Borders(
            *(
                min(MAX_DEPTH, max(mine, theirs) + (seam if abs(mine - theirs) > BORDER_AGREEMENT else 0.0))
                for mine, theirs in zip(self._edges, other._edges, strict=True)
            )
        )

    def cut_after(self, trimmed: Borders) -> Borders:
        """What to cut from an image already trimmed by ``trimmed`` to trim it by these (deeper) borders.

        Returns:
            Borders in fractions of ``trimmed``'s content.
        """
        x, y, width, height = trimmed.box
        return Borders(
            left=(self.left - x) / width,
            top=(self.top - y) / height,
            right=(self.right - trimmed.right) / width,
            bottom=(self.bottom - trimmed.bottom) / height,
        )

    def differs_from(self, other: Borders) -> bool:
        """True when one image has a border the other lacks, or a deeper one (by more than ``BORDER_AGREEMENT``)."""
        return any(
            abs(mine - theirs) > BORDER_AGREEMENT for mine, theirs in zip(self._edges, other._edges, strict=True)
        )

    @property
    def _edges(self) -> tuple[float, float, float, float]:
        return self.left, self.top, self.right, self.bottom


#: An image without borders.
NO_BORDERS = Borders()
#: Borders of two copies of one picture agree to this (fraction of a side): a few pixels at ``SEARCH_SIDE``.
BORDER_AGREEMENT = 0.015


def find_borders(gray: npt.NDArray[np.floating]) -> Borders:
    """The uniform borders of a grayscale image (see the module's description).

    Args:
        gray: 2-D grayscale image, values 0..1.

    Returns:
        Its Borders (``NO_BORDERS`` when none, and for a flat image).

    Raises:
        ValueError: If ``gray`` is not a non-empty 2-D array.
    """
    return borders_in(search_image(gray))


def search_image(gray: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    """A grayscale image as borders are looked for in it: shrunk to ``SEARCH_SIDE`` (``INTER_AREA``), NaN as 0.

    Args:
        gray: 2-D grayscale image, values 0..1.

    Returns:
        float32 image whose long side is at most ``SEARCH_SIDE`` (the image
        itself, as float32, when it is no larger).

    Raises:
        ValueError: If ``gray`` is not a non-empty 2-D array.
    """
    if gray.ndim != 2 or gray.size == 0:
        raise ValueError(f"expected a non-empty 2-D grayscale image, got shape {gray.shape}")
    height, width = gray.shape
    ratio = SEARCH_SIDE / max(height, width)
    image = gray.astype(np.float32, copy=False)
    if ratio < 1:
        size = (max(1, round(width * ratio)), max(1, round(height * ratio)))
        image = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.float32)
    return image if np.isfinite(image).all() else np.nan_to_num(image)  # on the small image: no full-size copy


def borders_in(small: npt.NDArray[np.float32]) -> Borders:
    """The uniform borders of an image given as its ``search_image`` (``find_borders``)."""
    edges = _lines_by_edge(small)
    runs = {side: _uniform_run(lines) for side, lines in edges.items()}
    depths = {side: _depth(edges[side], *runs[side]) for side in edges}
    # A frame's top bar ends on the picture in its middle and on the side bars at its ends (which
    # may have another colour): once bars across it are found, it is judged again between them.
    # (Not between bars merely possible: a smooth picture's flat margins around a pasted patch
    # would frame the patch.)
    for side, across in _ACROSS.items():
        first, second = (math.ceil(depths[other] * len(edges[other])) for other in across)
        inner = slice(first + _MIXED_LINES, len(edges[across[0]]) - second - _MIXED_LINES)
        if not depths[side] and first + second and inner.stop - inner.start > 1:
            depths[side] = _depth(edges[side][:, inner], *_uniform_run(edges[side][:, inner]))
    return Borders(**depths)


#: The edges across each edge's lines.
_ACROSS = {"left": ("top", "bottom"), "right": ("top", "bottom"), "top": ("left", "right"), "bottom": ("left", "right")}
#: Lines after a bar that may still mix it with the picture (resampling, JPEG ringing), at ``SEARCH_SIDE``.
_MIXED_LINES = 3


#: A bar that an edit covered in part (a caption band over a pillarbox, a turn) still fills this share
#: of its band ...
HIDDEN_BAR_SHARE = 0.6
#: ... within this many grey levels of its outermost line's colour, in a stretched, blurred thumbnail.
HIDDEN_BAR_TOLERANCE = 8
#: Fewest lines of a band ``shows_bars`` judges (when the bar is that deep).
_JUDGED_LINES = 3


def shows_bars(thumbnail: npt.NDArray[np.uint8], own: Borders, deeper: Borders, *, blur: int) -> bool:
    """True when an image shows the bars of ``deeper`` that its own borders left in it (``HIDDEN_BAR_SHARE``).

    An edit can keep a bar and yet hide it from ``find_borders`` (a caption
    over a pillarbox's bars, a turned letterbox, JPEG ringing), or clip a
    band into one (a sky to white); an unrelated picture has no flat band
    where the other image's bar lies.

    Args:
        thumbnail: The image's stored thumbnail (inside its ``own`` borders).
        own: The borders left out of it.
        deeper: Borders at least as deep as ``own`` at every edge.
        blur: Pixels of the thumbnail next to each bar's inner edge not judged (the blur mixes them).

    Returns:
        True when every edge where ``deeper`` goes deeper than ``own`` holds such a band.
    """
    cut = deeper.cut_after(own)
    for side, lines in _lines_by_edge(thumbnail).items():
        depth = getattr(cut, side)
        deep = round(depth * len(lines))
        # At least a few lines, even where the blur allowance leaves fewer: one line is one colour by itself.
        # (None in a thumbnail a few pixels across, where the bar is under a pixel: nothing to judge.)
        judged = lines[: max(min(_JUDGED_LINES, deep), deep - blur)]
        if depth > BORDER_AGREEMENT and len(judged) and not _one_colour(judged):
            return False
    return True


def _lines_by_edge(image: Lines) -> dict[str, Lines]:
    """Each edge's lines (rows or columns) as rows, the outermost first."""
    return {"left": image.T, "top": image, "right": image[:, ::-1].T, "bottom": image[::-1]}


def _one_colour(lines: npt.NDArray[np.uint8]) -> bool:
    colour = float(np.median(lines[0]))
    return float(np.mean(np.abs(lines.astype(np.float32) - colour) <= HIDDEN_BAR_TOLERANCE)) >= HIDDEN_BAR_SHARE


def _uniform_run(lines: npt.NDArray[np.float32]) -> tuple[float, int]:
    """The colour of the outermost line and how many lines from it have that colour (``TOLERANCE``)."""
    colour = float(np.median(lines[0]))
    deepest = int(MAX_DEPTH * len(lines))
    # Most edges end their run within a few lines: the rest (up to ``MAX_DEPTH``) is read only when not.
    shallow = min(deepest + 1, math.ceil(MIN_DEPTH * len(lines)) + 1)
    for start, stop in ((0, shallow), (shallow, deepest + 1)):
        uniform = np.mean(np.abs(lines[start:stop] - colour) <= TOLERANCE, axis=1) >= 1.0 - STRAY_SHARE
        if not uniform.all():
            return colour, start + int(np.argmin(uniform))
    return colour, deepest + 1


def _depth(lines: npt.NDArray[np.float32], colour: float, run: int) -> float:
    """Depth of a border of ``colour`` whose uniform lines number ``run``, as a fraction of the side; 0 if none.

    The lines after the run may mix bar and picture (resampling, JPEG
    ringing): the picture's edge is looked for up to ``_MIXED_LINES`` past
    it, and the border's depth placed within the last mixed line by how far
    its values have gone from the bar's to the picture's.
    """
    count = len(lines)
    if run < max(1.0, MIN_DEPTH * count) or run > int(MAX_DEPTH * count):
        return 0.0
    depth = max(1, round(INNER_DEPTH * count))
    for mixed_lines in range(_MIXED_LINES + 1):
        edge = run + mixed_lines
        inner = np.abs(lines[edge + 1 : edge + 1 + depth] - colour)
        if inner.size and float(np.mean(inner > 2 * TOLERANCE)) >= COVERED:
            mixed = float(np.mean(np.abs(lines[edge] - colour))) / max(float(inner.mean()), 1e-6)
            return (edge + 1.0 - min(max(mixed, 0.0), 1.0)) / count
    return 0.0


def _cut(side: int, start: float, end: float) -> tuple[int, int]:
    """First and last-plus-one pixel of a side of ``side`` pixels with ``start`` and ``end`` fractions cut off."""
    first = min(round(side * start), side - 1)
    return first, max(first + 1, side - round(side * end))
