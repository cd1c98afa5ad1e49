"""A low-detail image's colour: what tells apart two smooth pictures a grey correlation calls one.

Everything else in nearindex is grey. Two gradients running the same way in
other colours, or two soft fields of one layout in other hues, correlate
0.99 or more in grey, and nothing in their detail (they have none) can
separate them. So an image with little detail (``COLOUR_DETAIL``) also keeps
its mean colour (``Colour``), and two such images whose colours lie farther
apart than any edit moves them (``COLOUR_DISTANCE``) are not copies
(``colours_differ``). A grey copy of a colour picture tells nothing: the
test is skipped when either image has no colour (``GREY_CHROMA``).

Measured on a generated smooth collection (``scripts/smooth_collection.py``:
250 gradients and 250 soft colour fields, each a random pair of colours),
the 18 colour edits of 100 of them (``scripts/evaluate.py``) against 20,000
random unrelated pairs: the edits move the mean colour by at most 20.6 (a
contrast change; a crop with a caption and JPEG 20.5, a pasted patch 19.6, a
caption band 18.8, every other edit under 16), while half the unrelated
pairs lie 46 or more apart and 80 % more than 25. A mean is blind to a
picture whose colours average out to grey (red to green): its hue-turned
twin has the same mean. The colour of two halves split by brightness, or of
the colour's slope along brightness, saw such twins but moved more under
captions and pastes: at the threshold just keeping every edit they rejected
78 % and 52 % of the unrelated pairs, the mean 86 %.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

#: An image whose thumbnail's band-pass varies less than this (grey levels, as
#: ``planes.Prepared.detail``) keeps its colour. Twice ``smooth.LOW_DETAIL``:
#: soft fields just above that limit are still aligned by chance (the blocks of
#: two smooth fields correlate), and a JPEG copy of a low-contrast gradient
#: reaches 7-12 through its banding.
COLOUR_DETAIL = 12.0
#: Distance (CIELAB a*b* units) between two images' mean colours above which
#: they are not copies: 25 % above the most any generated edit moved it (20.6).
COLOUR_DISTANCE = 25.0
#: Mean chroma (CIELAB, 0..~130) under which an image counts as grey: a grey
#: copy has 0, so its colour cannot be compared with its original's.
GREY_CHROMA = 2.0
#: Long side (pixels) the colour is averaged at; the mean hardly depends on it.
_SIDE = 64
#: Bytes of a stored Colour: three float32.
_STORED = np.dtype("<f4")


@dataclass(frozen=True)
class Colour:
    """An image's mean colour in CIELAB.

    Attributes:
        a: Mean a* (green -..+ red).
        b: Mean b* (blue -..+ yellow).
        chroma: Mean of each pixel's chroma sqrt(a*^2 + b*^2): 0 for a grey
            image, even one whose colours average out to grey.
    """

    a: float
    b: float
    chroma: float

    def to_bytes(self) -> bytes:
        """The colour as the catalog stores it (12 bytes)."""
        return np.array([self.a, self.b, self.chroma], _STORED).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Colour:
        """A colour stored by ``to_bytes``."""
        a, b, chroma = (float(value) for value in np.frombuffer(data, _STORED, count=3))
        return cls(a, b, chroma)


def colour_of(image: npt.NDArray[np.uint8]) -> Colour:
    """The mean colour of an 8-bit BGR image.

    Raises:
        ValueError: If ``image`` is not a non-empty (height, width, 3) uint8 array.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        raise ValueError(f"expected a (height, width, 3) uint8 image, got {image.dtype} {image.shape}")
    ratio = _SIDE / max(image.shape[:2])
    if ratio < 1:
        size = (max(1, round(image.shape[1] * ratio)), max(1, round(image.shape[0] * ratio)))
        image = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.uint8)
    lab = cv2.cvtColor(image.astype(np.float32) / 255, cv2.COLOR_BGR2Lab)
    a, b = lab[:, :, 1], lab[:, :, 2]
    return Colour(float(a.mean()), float(b.mean()), float(np.hypot(a, b).mean()))


def colours_differ(first: Colour | None, second: Colour | None) -> bool:
    """True when two images' colours say they cannot be copies.

    Both must be known (only low-detail images keep theirs) and in colour
    (``GREY_CHROMA``), and their mean a*b* lie more than
    ``COLOUR_DISTANCE`` apart.
    """
    if first is None or second is None or min(first.chroma, second.chroma) < GREY_CHROMA:
        return False
    return float(np.hypot(first.a - second.a, first.b - second.b)) > COLOUR_DISTANCE
