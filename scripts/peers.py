"""The methods nearindex is measured against, each as (extract, similarity).

``extract(path)`` turns an image file into the method's feature;
``similarity(a, b)`` is higher for more alike images (hash methods: the share
of equal bits). Needs the ``bench`` extra (imagehash, pdqhash, Pillow).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

#: The motivating case: blur at full size with this kernel and sigma ...
BRUTE_KERNEL, BRUTE_SIGMA = 43, 21
#: ... then compare thumbnails of this size with matchTemplate.
BRUTE_SIDE = 64


def _pil(path: Path) -> Any:
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB")


def phash(path: Path) -> np.ndarray:
    """imagehash's pHash bits (64)."""
    import imagehash

    return np.asarray(imagehash.phash(_pil(path)).hash).ravel()


def dhash(path: Path) -> np.ndarray:
    """imagehash's dHash bits (64)."""
    import imagehash

    return np.asarray(imagehash.dhash(_pil(path)).hash).ravel()


def pdq(path: Path) -> np.ndarray:
    """PDQ bits (256) of the RGB image."""
    import pdqhash

    rgb = cv2.cvtColor(cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    bits, _quality = pdqhash.compute(rgb)
    return np.asarray(bits).ravel()


def bit_similarity(first: np.ndarray, second: np.ndarray) -> float:
    """Share of equal bits: 1 - normalised Hamming distance."""
    return 1.0 - float(np.count_nonzero(first != second)) / first.size


def brute_blur(path: Path) -> np.ndarray:
    """Full-size grayscale blurred 43x43/sigma 21, then a square thumbnail."""
    gray = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_GRAYSCALE).astype(np.float32)
    blurred = cv2.GaussianBlur(gray, (BRUTE_KERNEL, BRUTE_KERNEL), BRUTE_SIGMA)
    return np.asarray(cv2.resize(blurred, (BRUTE_SIDE, BRUTE_SIDE), interpolation=cv2.INTER_AREA), np.float32)


def brute_similarity(first: np.ndarray, second: np.ndarray) -> float:
    """matchTemplate TM_CCOEFF_NORMED of two equal-size thumbnails (their correlation).

    OpenCV returns 1.0 when the template is flat, so a blank image would match
    everything and sink this method's recall to zero; that obvious fix (a
    flat image scores 0) is applied, to measure the method at its best.
    """
    if float(first.std()) < 1e-3 or float(second.std()) < 1e-3:
        return 0.0
    value = float(cv2.matchTemplate(first, second, cv2.TM_CCOEFF_NORMED)[0, 0])
    return value if np.isfinite(value) else 0.0


PEERS: dict[str, tuple[Callable[[Path], np.ndarray], Callable[[np.ndarray, np.ndarray], float]]] = {
    "phash": (phash, bit_similarity),
    "dhash": (dhash, bit_similarity),
    "pdq": (pdq, bit_similarity),
    "blur43-brute": (brute_blur, brute_similarity),
}
