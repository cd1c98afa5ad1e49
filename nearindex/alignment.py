"""Coarse alignment of two copies of an image: where B's pixels land in A.

``coarse_alignment`` tries ORB features with a RANSAC similarity at ``ALIGN_SIDE`` px
(upgraded to a homography only when one fits clearly more matches and stays close to the
similarity; RANSAC takes the alignment from the unchanged majority, so a pasted patch does
not pull it), then the rescorer's best scale and shift (``nearindex.rescore``) for images
without enough features. ``difference`` refines the result and compares the images.
"""

from __future__ import annotations

from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from .images import shrink_to_long_side
from .placement import Frame
from .planes import prepare
from .rescore import rescore

Matrix = npt.NDArray[np.float64]

#: Long side (pixels) the features are detected at.
ALIGN_SIDE: Final = 768
#: ORB features per image, the Lowe ratio test, RANSAC's reprojection error (align pixels).
ORB_FEATURES: Final = 3000
RATIO_TEST: Final = 0.8
RANSAC_ERROR: Final = 3.0
#: Fewer RANSAC inliers than this, or a scale outside these bounds, is no alignment.
MIN_INLIERS: Final = 15
SCALE_BOUNDS: Final = (0.05, 20.0)
#: A homography replaces the similarity with this many times its inliers, its corners within
#: this fraction of A's diagonal of where the similarity puts them.
HOMOGRAPHY_GAIN: Final = 1.3
HOMOGRAPHY_DRIFT: Final = 0.03
#: Side (pixels) of the rescorer's thumbnails in the fallback alignment, and its lowest usable score.
RESCORE_SIDE: Final = 128
RESCORE_MIN_SCORE: Final = 0.3


def coarse_alignment(first: npt.NDArray[np.uint8], second: npt.NDArray[np.uint8]) -> tuple[Matrix | None, str]:
    """The 3x3 matrix mapping ``second``'s pixels onto ``first``'s, and what found it.

    Args:
        first: A, 2-D uint8.
        second: B, 2-D uint8.

    Returns:
        (matrix, ``"features"``) or (matrix, ``"rescore"``); (None, ``"identity"``) when neither works.
    """
    for aligned_by, method in (("features", _align_by_features), ("rescore", _align_by_rescore)):
        found = method(first, second)
        if found is not None:
            return found, aligned_by
    return None, "identity"


def scaling(sx: float, sy: float) -> Matrix:
    """The 3x3 matrix scaling x by ``sx`` and y by ``sy``."""
    return np.diag([sx, sy, 1.0])


def downscaled(image: npt.NDArray[np.uint8], side: int) -> tuple[npt.NDArray[np.uint8], Matrix]:
    """The image at most ``side`` px long, and the matrix from original to downscaled pixels."""
    small = shrink_to_long_side(image, side)
    return small, scaling(small.shape[1] / image.shape[1], small.shape[0] / image.shape[0])


def _align_by_features(first: npt.NDArray[np.uint8], second: npt.NDArray[np.uint8]) -> Matrix | None:
    """ORB + RANSAC similarity (or homography) in original pixels, or None when unreliable."""
    (small_a, to_a), (small_b, to_b) = downscaled(first, ALIGN_SIDE), downscaled(second, ALIGN_SIDE)
    points = _matched_points(small_a, small_b)
    if points is None:
        return None
    similarity, inliers = cv2.estimateAffinePartial2D(
        points[1], points[0], method=cv2.RANSAC, ransacReprojThreshold=RANSAC_ERROR
    )
    if similarity is None or int(inliers.sum()) < MIN_INLIERS:
        return None
    matrix = np.vstack([similarity, [0.0, 0.0, 1.0]])
    matrix = _maybe_homography(matrix, int(inliers.sum()), points, small_b.shape)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:2, :2]))))
    if not SCALE_BOUNDS[0] <= scale <= SCALE_BOUNDS[1]:
        return None
    return np.asarray(np.linalg.inv(to_a) @ matrix @ to_b, np.float64)


def _matched_points(
    first: npt.NDArray[np.uint8], second: npt.NDArray[np.uint8]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None:
    """Coordinates of ratio-tested ORB matches in ``first`` and ``second``, or None if too few."""
    orb = cv2.ORB.create(nfeatures=ORB_FEATURES, fastThreshold=10)
    keys_a, desc_a = orb.detectAndCompute(first, None)
    keys_b, desc_b = orb.detectAndCompute(second, None)
    if desc_a is None or desc_b is None or len(keys_a) < MIN_INLIERS or len(keys_b) < MIN_INLIERS:
        return None
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(desc_b, desc_a, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO_TEST * p[1].distance]
    if len(good) < MIN_INLIERS:
        return None
    points_a = np.array([keys_a[m.trainIdx].pt for m in good], np.float32)
    points_b = np.array([keys_b[m.queryIdx].pt for m in good], np.float32)
    return points_a, points_b


def _maybe_homography(
    similarity: Matrix,
    inliers: int,
    points: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]],
    shape_b: tuple[int, ...],
) -> Matrix:
    """A RANSAC homography when it fits clearly more matches and stays near the similarity."""
    homography, mask = cv2.findHomography(points[1], points[0], cv2.RANSAC, RANSAC_ERROR)
    if homography is None or int(mask.sum()) < HOMOGRAPHY_GAIN * inliers or abs(homography[2, 2]) < 1e-9:
        return similarity
    homography = homography / homography[2, 2]
    frame = corners(shape_b)
    drift = np.abs(project(homography, frame) - project(similarity, frame)).max()
    diagonal = float(np.hypot(shape_b[0], shape_b[1])) * float(np.sqrt(abs(np.linalg.det(similarity[:2, :2]))))
    if drift > HOMOGRAPHY_DRIFT * diagonal or np.linalg.det(homography[:2, :2]) <= 0:
        return similarity
    return np.asarray(homography, np.float64)


def corners(shape: tuple[int, ...]) -> npt.NDArray[np.float64]:
    """The four corners (x, y) of an image of this shape, clockwise from the top left."""
    height, width = shape[:2]
    return np.array([[0.0, 0.0], [width, 0.0], [width, height], [0.0, height]])


def project(matrix: Matrix, points: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """(n, 2) points mapped by a 3x3 matrix (with the perspective division)."""
    projected = cv2.perspectiveTransform(points.reshape(-1, 1, 2).astype(np.float64), matrix)
    return np.asarray(projected.reshape(-1, 2), np.float64)


def _align_by_rescore(first: npt.NDArray[np.uint8], second: npt.NDArray[np.uint8]) -> Matrix | None:
    """The rescorer's placement of B in A (scale and shift); None when it has none."""
    thumb_a, to_a = downscaled(first, RESCORE_SIDE)
    thumb_b, to_b = downscaled(second, RESCORE_SIDE)
    found = rescore(prepare(thumb_b, side=RESCORE_SIDE), prepare(thumb_a, side=RESCORE_SIDE))
    if found.frame is None or found.score < RESCORE_MIN_SCORE:
        return None
    coarse = _frame_matrix(found.frame, thumb_a.shape, thumb_b.shape)
    return np.asarray(np.linalg.inv(to_a) @ coarse @ to_b, np.float64)


def _frame_matrix(frame: Frame, shape_a: tuple[int, ...], shape_b: tuple[int, ...]) -> Matrix:
    """Pixels of B to pixels of A for a Frame of B in A (fractions of each image)."""
    (sx, sy), (ox, oy) = frame.scale, frame.offset
    return np.array([
        [sx * shape_a[1] / shape_b[1], 0.0, ox * shape_a[1]],
        [0.0, sy * shape_a[0] / shape_b[0], oy * shape_a[0]],
        [0.0, 0.0, 1.0],
    ])  # fmt: skip
