"""A low-detail image's colours: what tells apart two smooth pictures a grey correlation calls one.

Everything else in nearindex is grey. Two gradients running the same way in
other colours, or two soft fields of one layout in other hues, correlate
0.99 or more in grey, and nothing in their detail (they have none) can
separate them. So an image with little detail (``COLOUR_DETAIL``) also keeps
its hues (``Colour``): a histogram of its pixels' CIELAB hue angles, each
pixel weighted by its chroma. Two such images whose hues overlap less than
any edit leaves them (``COLOUR_DISTANCE``) are not copies
(``colours_differ``). A grey copy of a colour picture tells nothing: the test
is skipped when either image has next to no colour (``GREY_CHROMA``).

Hues, not the mean colour: a darker, paler, brighter or more contrasted copy
keeps its hues while its a*b* shrink or grow (and its largest channel value
is scaled to 1 first, so a dark copy does not count as grey). Measured on a
generated smooth collection (``scripts/smooth_collection.py``: 250
gradients and 250 soft colour fields, each a random pair of colours), the
18 colour edits of 100 of them (``scripts/evaluate.py``) and three more of
100 (one stop darker, saturation x 0.4, gain 1.3 + 20) against 20,000
random unrelated pairs:

* the mean a*b* of a paler copy moved 50 (unrelated pairs lie 46 apart at
  the median), so a limit keeping every edit rejected 34 % of unrelated pairs;
* the hue histogram's distance (1 - overlap) reached 0.451 for an edit (a
  crop with a red caption band and JPEG; a pasted patch 0.440, the brighter
  copy, whose clipped channels turn its hues, 0.436), and 72 % of unrelated
  pairs lie above 0.52 (the same on the collection's ``--shapes`` variant).
  Those worst edits were measured on the pictures themselves: a pasted or
  captioned copy rarely keeps colours at all (its patch or band is detail);
* the histogram's earth mover's distance around the hue circle needed no
  choice of bins but kept only 51 % apart: a red caption moves mass far.

A picture of two opposite hues (red to green) has the same hues as its
twin running the other way (green to red); no colour summary without
places tells those apart.

Short of that limit, colours still rank: every linear ramp running one way
is the same picture to a grey correlation, so a copy tied with all of them.
A pair of such images loses a little for hues and grey tones (``Colour.tone``,
what a grey copy keeps) that differ (``tie_break``), so the ramp the copy
keeps them of comes first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from .images import shrink_to_long_side

#: An image whose thumbnail's band-pass varies less than this (grey levels, as
#: ``planes.Prepared.detail``) keeps its colours. Twice ``smooth.LOW_DETAIL``:
#: soft fields just above that limit are still aligned by chance (the blocks of
#: two smooth fields correlate), and a JPEG copy of a low-contrast gradient
#: reaches 7-12 through its banding.
COLOUR_DETAIL = 12.0
#: Bins of the hue histogram (45 degrees each; a pixel is shared between the two
#: nearest). More bins tell hues apart more finely, and then the hues a clipped,
#: brightened copy turns by fall into other bins: at 10 bins that copy moved
#: 0.738 (39 % of unrelated pairs rejected at a limit 15 % above the worst
#: edit); at 6 it moved 0.483, and 62 % were rejected.
HUE_BINS = 8
#: Share of two images' hue histograms that must fail to overlap (0..1) for them
#: not to be copies: 15 % above the most any generated edit moved it (0.451).
COLOUR_DISTANCE = 0.52
#: What a pair of low-detail images loses per unit of ``colour_distance`` under that limit. Two
#: linear ramps running the same way are one picture to a grey correlation (1.0 to the last
#: decimal), so the original of a copy tied with every ramp of other colours; this ranks the
#: one whose hues the copy keeps first, and costs a copy whose hues an edit moved (0.45 at
#: most) under 0.01.
COLOUR_TIE_WEIGHT = 0.02
#: The same per unit of ``tone_distance``: a grey copy keeps its original's grey tones exactly,
#: while ramps of other colours tied with it have other ones (0.06-0.49 apart on the smooth
#: collection's grey copies that ranked another ramp first).
TONE_TIE_WEIGHT = 0.02
#: The most a pair loses to ``tie_break``: it ranks ties, it does not judge copies.
TIE_BREAK_MOST = 0.02
#: Mean chroma (CIELAB, 0..~130) under which an image counts as grey: a grey copy
#: has 0, and a scanned or toned grey print a few units, all in one hue.
GREY_CHROMA = 5.0
#: Long side (pixels) the colours are measured at; they hardly depend on it.
_SIDE = 64
#: Chroma under which a pixel is grey and weighs nothing in the hue histogram.
_NOISE_CHROMA = 0.5
#: A stored Colour: the ``HUE_BINS`` histogram, the mean chroma, then the tone (two values;
#: absent from colours stored before tones were kept), then 1 for colours taken beside a band
#: (absent otherwise), as float32.
_STORED = np.dtype("<f4")
_STORED_VALUES = (HUE_BINS + 1, HUE_BINS + 3, HUE_BINS + 4)


@dataclass(frozen=True)
class Colour:
    """An image's colours, as CIELAB hues.

    Attributes:
        hues: ``HUE_BINS`` shares (summing to 1, or all 0 for a grey image)
            of the image's chroma by hue angle atan2(b*, a*): bins centred on
            -180 (green), -135, ... 135 degrees, each pixel shared between
            the two nearest.
        chroma: Mean of the pixels' chroma sqrt(a*^2 + b*^2): 0 only for a
            grey image (a picture whose colours average out to grey has a
            high one).
        tone: Mean and standard deviation of its grey (as
            ``cv2.COLOR_BGR2GRAY`` makes it), its brightest pixel scaled to
            1 (so a copy with less gain keeps it), or None for colours
            stored before tones were kept.
        beside_band: Taken from the part of an image beside a band of
            detail (``intake.colour_part``). Two such colours rank copies
            (``tie_break``) but do not judge them (``colours_differ``):
            another copy may have kept another part's (a crop that leaves
            a sliver of the band moves it to another edge).
    """

    hues: tuple[float, ...]
    chroma: float
    tone: tuple[float, float] | None = None
    beside_band: bool = False

    def to_bytes(self) -> bytes:
        """The colours as the catalog stores them.

        Returns:
            Little-endian float32: the ``HUE_BINS`` hues, the chroma, then
            the tone's two values when known, then 1 when ``beside_band``
            (with a tone: ``colour_of`` always measures one).
        """
        beside = (1.0,) if self.beside_band and self.tone is not None else ()
        return np.array([*self.hues, self.chroma, *(self.tone or ()), *beside], _STORED).tobytes()

    @classmethod
    def from_stored(cls, data: bytes | None) -> Colour | None:
        """Colours stored by ``to_bytes``, or None when none are known.

        Args:
            data: The catalog's ``colour`` value.

        Returns:
            The Colour (without a tone when stored before tones were kept);
            None for NULL, and for a value of another length (a development
            build of schema 0002 stored a mean colour, 12 bytes): such an
            image is not judged by colour, as if it had none.
        """
        if data is None or len(data) not in [count * _STORED.itemsize for count in _STORED_VALUES]:
            return None
        values = [float(value) for value in np.frombuffer(data, _STORED)]
        tone = (values[HUE_BINS + 1], values[HUE_BINS + 2]) if len(values) > HUE_BINS + 1 else None
        return cls(tuple(values[:HUE_BINS]), values[HUE_BINS], tone, len(values) > HUE_BINS + 3)


def colour_of(image: npt.NDArray[np.uint8] | npt.NDArray[np.float32]) -> Colour:
    """The colours of a BGR image.

    Args:
        image: (height, width, 3) BGR, uint8 or float32 in 0..1 (as
            ``images.decode_colour`` returns); its largest channel value is
            scaled to 1 (on a copy).

    Returns:
        Its Colour.

    Raises:
        ValueError: If ``image`` is not a non-empty (height, width, 3) uint8 or float32 array.
    """
    if image.dtype not in (np.uint8, np.float32) or image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        raise ValueError(f"expected a (height, width, 3) uint8 or float32 image, got {image.dtype} {image.shape}")
    shrunk = shrink_to_long_side(np.asarray(image, np.float32), _SIDE)
    grey = np.asarray(cv2.cvtColor(shrunk, cv2.COLOR_BGR2GRAY), np.float32)
    # Relative to its brightest pixel, as the hues are: 12-bit data in a 16-bit file is dark.
    grey = grey * np.float32(1 / max(float(grey.max()), 1e-6))
    # Largest channel value to 1 (a new array: the caller's stays as it was). A dark copy, or
    # 12-bit data in a 16-bit file, has its original's hues at a fraction of the chroma, and
    # would count as grey.
    unit = shrunk * np.float32(1 / max(float(shrunk.max()), 1e-6))
    lab = cv2.cvtColor(unit, cv2.COLOR_BGR2Lab)
    a, b = lab[:, :, 1].ravel(), lab[:, :, 2].ravel()
    chroma = np.hypot(a, b)
    # OpenCV's float Lab gives a neutral grey a chroma of about 0.03, at an arbitrary hue.
    weights = np.where(chroma >= _NOISE_CHROMA, chroma, 0)
    tone = (float(grey.mean()), float(grey.std()))
    return Colour(_hue_histogram(np.arctan2(b, a), weights), float(chroma.mean()), tone)


def _hue_histogram(angles: npt.NDArray[np.float32], weights: npt.NDArray[np.float32]) -> tuple[float, ...]:
    """Shares of ``weights`` by hue angle (radians), each shared linearly between its two nearest bins."""
    position = (angles + math.pi) / (2 * math.pi) * HUE_BINS
    lower = np.floor(position)
    upper_share = position - lower
    first = lower.astype(np.int64) % HUE_BINS
    histogram = np.bincount(first, weights * (1 - upper_share), HUE_BINS)
    histogram += np.bincount((first + 1) % HUE_BINS, weights * upper_share, HUE_BINS)
    total = float(histogram.sum())
    return tuple(float(share) for share in (histogram / total if total > 0 else histogram))


def colour_distance(first: Colour | None, second: Colour | None) -> float | None:
    """The share of two images' hue histograms that does not overlap (0..1), or None when not judged.

    Args:
        first: One image's colours, or None when not kept.
        second: The other's.

    Returns:
        1 - the histograms' overlap when both are known (only low-detail
        images keep theirs) and both are in colour (``GREY_CHROMA``), else None.
    """
    if first is None or second is None or min(first.chroma, second.chroma) < GREY_CHROMA:
        return None
    return 1 - sum(min(one, other) for one, other in zip(first.hues, second.hues, strict=True))


def tone_distance(first: Colour | None, second: Colour | None) -> float | None:
    """How far apart two images' grey tones lie: the difference of their means plus that of their spreads (0..1 units).

    Returns:
        None unless both tones are known (colours stored before tones were kept have none).
    """
    if first is None or second is None or first.tone is None or second.tone is None:
        return None
    return sum(abs(one - other) for one, other in zip(first.tone, second.tone, strict=True))


def tie_break(first: Colour | None, second: Colour | None) -> float:
    """What a pair of low-detail images loses for hues and tones that differ short of ``colours_differ``.

    A grey correlation calls every ramp running one way the same picture, to
    the last decimal; of those, the one whose hues (``COLOUR_TIE_WEIGHT``) and
    grey tones (``TONE_TIE_WEIGHT``) a copy keeps should rank first. A copy
    whose hues an edit moved loses under 0.01 for them; for hues and tones
    together, over 40 generated smooth pictures, a copy one stop darker lost
    0.0002 at most, gain 1.3 + 20 0.006, gamma 0.5 0.008 and gamma 2 0.011.
    Never more than ``TIE_BREAK_MOST``.

    Returns:
        0 when neither is known (an image that keeps no colours, or colours
        stored before tones were kept for the tones).
    """
    hues, tones = colour_distance(first, second), tone_distance(first, second)
    return min(COLOUR_TIE_WEIGHT * (hues or 0.0) + TONE_TIE_WEIGHT * (tones or 0.0), TIE_BREAK_MOST)


def colours_differ(first: Colour | None, second: Colour | None) -> bool:
    """True when two images' colours say they cannot be copies (``colour_distance`` above ``COLOUR_DISTANCE``).

    Never when both were taken beside a band (``Colour.beside_band``): they may be other parts'.
    """
    if first is not None and second is not None and first.beside_band and second.beside_band:
        return False
    distance = colour_distance(first, second)
    return distance is not None and distance > COLOUR_DISTANCE
