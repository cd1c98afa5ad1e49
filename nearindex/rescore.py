"""Rescoring: slide one blurred thumbnail over the other.

The vector index compares whole images cell by cell, so a crop or a shift
costs it correlation. The rescorer recovers it: the central part of one
thumbnail (a *template*) is matched with ``cv2.matchTemplate``
(``TM_CCOEFF_NORMED``) over the other at a range of scales, in both
directions, and the best normalised correlation is the score. Scales cover
"the same framing" down to "the template image is a crop of about half the
other's width", which is what a moderate crop, a caption band or a letterbox
amounts to. Each direction costs ``SCALE_STEPS`` template matches on images
of ``thumb_side`` pixels.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

#: Fraction of each side kept for the template (the rest is slack for shifts).
TEMPLATE_FRACTION = 0.8
#: Smallest template scale tried, relative to "same framing".
MIN_RELATIVE_SCALE = 0.55
#: Number of template scales tried per direction (geometric spacing).
SCALE_STEPS = 9
#: Templates smaller than this (pixels, either side) are not trusted.
MIN_TEMPLATE_SIDE = 12


def rescore(first: npt.NDArray[np.uint8], second: npt.NDArray[np.uint8]) -> float:
    """Score how well two thumbnails match allowing shift, crop and scale.

    Args:
        first: 2-D blurred grayscale thumbnail (uint8 or float).
        second: The other thumbnail.

    Returns:
        Best ``TM_CCOEFF_NORMED`` correlation over positions, scales and both
        directions, clipped to 0..1; 0 when either image is flat.
    """
    a = first.astype(np.float32, copy=False)
    b = second.astype(np.float32, copy=False)
    if float(a.std()) < 1e-6 or float(b.std()) < 1e-6:
        return 0.0
    best = max(match_template_into(a, b), match_template_into(b, a))
    return float(np.clip(best, 0.0, 1.0))


def template_scales(source: tuple[int, int], target: tuple[int, int]) -> list[float]:
    """Scales at which the central part of ``source`` is resized to search ``target``.

    Args:
        source: (height, width) of the image the template is cut from.
        target: (height, width) of the image searched.

    Returns:
        Scale factors from the largest that still fits down to
        ``MIN_RELATIVE_SCALE`` of "same framing", largest first.
    """
    fit = min(target[0] / (TEMPLATE_FRACTION * source[0]), target[1] / (TEMPLATE_FRACTION * source[1]))
    same_framing = min(target[0] / source[0], target[1] / source[1])
    low = min(fit, same_framing * MIN_RELATIVE_SCALE)
    return [float(s) for s in np.geomspace(fit, low, SCALE_STEPS)]


def central_template(image: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Cut the central ``TEMPLATE_FRACTION`` of an image (both sides)."""
    height, width = image.shape
    dy = int(round(height * (1 - TEMPLATE_FRACTION) / 2))
    dx = int(round(width * (1 - TEMPLATE_FRACTION) / 2))
    return image[dy : height - dy, dx : width - dx]


def match_template_into(source: npt.NDArray[np.float32], target: npt.NDArray[np.float32]) -> float:
    """Best correlation of ``source``'s central part over ``target`` at all scales.

    Args:
        source: Image the template is cut from.
        target: Image searched.

    Returns:
        The highest ``TM_CCOEFF_NORMED`` value found, or 0 when no scale gives
        a usable template.
    """
    template = central_template(source)
    best = 0.0
    for scale in template_scales(source.shape, target.shape):
        size = (round(template.shape[1] * scale), round(template.shape[0] * scale))
        if min(size) < MIN_TEMPLATE_SIDE or size[0] > target.shape[1] or size[1] > target.shape[0]:
            continue
        resized = cv2.resize(template, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        if float(resized.std()) < 1e-6:
            continue
        scores = cv2.matchTemplate(target, resized, cv2.TM_CCOEFF_NORMED)
        best = max(best, float(np.nan_to_num(scores).max()))
    return best
