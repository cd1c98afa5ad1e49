"""Scoring outside the most disagreeing region: a pasted patch no longer sinks a copy."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from nearindex import synthetic
from nearindex.exclusion import (
    CELLS,
    MAX_EXCLUDED_SHARE,
    correlation_outside_region,
    detail_region,
    plain_correlation_outside_region,
    rectangles,
)
from nearindex.rescore import align_allowing_rotation, align_into
from nearindex.smooth import LOW_DETAIL

from .test_rescore import prepared, score, soft_page


def soft(seed: int) -> np.ndarray:
    """A low-contrast scene: what a pasted high-contrast patch outweighs."""
    scene = synthetic.make_scene(seed).astype(np.float32)
    return np.asarray(np.clip(128 + 0.35 * (scene - scene.mean()), 0, 255), np.uint8)


def pasted_across_blocks(image: np.ndarray, donor: np.ndarray, area: float = 0.15) -> np.ndarray:
    """``image`` with a patch of ``donor`` over ``area`` of it, from 27 % of each side.

    The rescorer's template is the central 80 %, cut into 4x4 blocks at 10, 30,
    50 and 70 % of each side: this patch reaches into nine of the sixteen.
    """
    height, width = image.shape[:2]
    patch_h, patch_w = round(height * area**0.5), round(width * area**0.5)
    top, left = round(0.27 * height), round(0.27 * width)
    out = image.copy()
    out[top : top + patch_h, left : left + patch_w] = cv2.resize(donor, (patch_w, patch_h))
    return out


def chessboard(squares: int = 4, side: int = 240) -> np.ndarray:
    """Black and white squares: a patch whose contrast outweighs a soft picture's."""
    cells = (np.indices((squares, squares)).sum(axis=0) % 2).astype(np.uint8) * 255
    board = cv2.resize(cells, (side, side), interpolation=cv2.INTER_NEAREST)
    return np.ascontiguousarray(np.repeat(board[:, :, None], 3, axis=2))


@pytest.fixture(scope="module")
def unrelated_scores() -> list[float]:
    scenes = [soft(seed) for seed in range(60, 68)] + [synthetic.make_scene(seed) for seed in range(70, 76)]
    return [score(a, b) for i, a in enumerate(scenes) for b in scenes[i + 1 :]]


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_a_copy_with_a_pasted_patch_scores_above_every_unrelated_pair(seed: int, unrelated_scores: list[float]) -> None:
    original = soft(seed)
    fake = pasted_across_blocks(original, chessboard(3 + seed % 3))
    assert score(fake, original) > max(unrelated_scores)


def test_leaving_the_patch_out_is_what_recovers_the_copy() -> None:
    original = soft(6)
    (fake, _), (source, _) = prepared(pasted_across_blocks(original, chessboard(4))), prepared(original)
    blocks_only = align_into(fake, source).score
    with_exclusion, _ = align_allowing_rotation(fake, source)
    assert with_exclusion > blocks_only + 0.1


def pasted_at(image: np.ndarray, donor: np.ndarray, top: float, left: float, area: float = 0.15) -> np.ndarray:
    """``image`` with a patch of ``donor`` over ``area`` of it, its corner at (``top``, ``left``) fractions."""
    height, width = image.shape[:2]
    patch_h, patch_w = round(height * area**0.5), round(width * area**0.5)
    row, col = round(top * height), round(left * width)
    out = image.copy()
    out[row : row + patch_h, col : col + patch_w] = cv2.resize(donor, (patch_w, patch_h))
    return out


@pytest.mark.parametrize("corner", [(0.27, 0.27), (0.5, 0.3), (0.02, 0.3), (0.6, 0.6)], ids=str)
def test_a_patch_pasted_over_a_soft_page_leaves_the_copy_far_above_unrelated_pages(corner: tuple[float, float]) -> None:
    # The blur spreads a high-contrast patch over more of a soft page than it covers: within
    # the template (the central 80 %) it spoiled more cells than one region may leave out.
    pages = [soft_page(seed) for seed in (20, 21, 22, 23)]
    unrelated = max(score(a, b) for i, a in enumerate(pages) for b in pages[i + 1 :])
    for seed in (3, 4):
        original = soft_page(seed)
        fake = pasted_at(original, synthetic.make_scene(40 + seed), *corner)
        assert score(fake, original) > unrelated + 0.25


def test_identical_planes_correlate_fully_and_unrelated_ones_do_not() -> None:
    (a, _), (b, _) = prepared(synthetic.make_scene(7)), prepared(synthetic.make_scene(8))
    same = correlation_outside_region((a.bandpass, a.bandpass), (a.plain, a.plain))
    other = correlation_outside_region((a.bandpass, b.bandpass), (a.plain, b.plain))
    assert same == pytest.approx(1.0, abs=1e-6)
    assert other < 0.8


def test_a_pasted_region_is_left_out_but_a_whole_different_image_is_not() -> None:
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.random((48, 64), dtype=np.float32), (0, 0), 2.0)
    patched = base.copy()
    patched[12:30, 20:44] = rng.random((18, 24), dtype=np.float32)
    other = cv2.GaussianBlur(rng.random((48, 64), dtype=np.float32), (0, 0), 2.0)
    assert correlation_outside_region((base, patched), (base, patched)) > 0.95
    assert correlation_outside_region((base, other), (base, other)) < 0.5


def test_the_plain_planes_alone_leave_out_a_patch_on_a_smooth_ramp() -> None:
    rng = np.random.default_rng(1)
    ramp = np.tile(np.linspace(0.0, 1.0, 64, dtype=np.float32), (48, 1))
    patched, other = ramp.copy(), cv2.GaussianBlur(rng.random((48, 64), dtype=np.float32), (0, 0), 6.0)
    patched[12:30, 20:44] = rng.random((18, 24), dtype=np.float32)
    noise = [rng.standard_normal((48, 64)).astype(np.float32) for _ in range(2)]  # a smooth image's band-passes
    outside = plain_correlation_outside_region((ramp, patched))
    assert outside > correlation_outside_region((noise[0], noise[1]), (ramp, patched))  # noise no longer counts
    assert outside > float(np.corrcoef(ramp.ravel(), patched.ravel())[0, 1])  # the patch is left out
    assert outside > plain_correlation_outside_region((ramp, other)) + 0.3  # an unrelated field is not a copy
    tiny = np.ones((CELLS - 1, 20), np.float32)
    assert plain_correlation_outside_region((tiny, tiny)) == -1.0


def test_no_rectangle_leaves_out_more_than_its_share() -> None:
    found = rectangles()
    areas = (found[:, 1] - found[:, 0]) * (found[:, 3] - found[:, 2])
    assert areas.max() <= MAX_EXCLUDED_SHARE * CELLS * CELLS
    assert areas.min() == 1


def test_images_smaller_than_the_grid_score_minus_one() -> None:
    tiny = np.ones((CELLS - 1, 20), np.float32)
    assert correlation_outside_region((tiny, tiny), (tiny, tiny)) == -1.0


@pytest.mark.parametrize("where", [(0.0, 0.0), (0.3, 0.35), (0.61, 0.61), (0.05, 0.6)])
def test_the_one_region_of_a_smooth_pictures_detail_holds_a_patch_pasted_anywhere(where: tuple[float, float]) -> None:
    gradient = synthetic.make_gradient(3)
    height, width = gradient.shape[:2]
    top, left, side = round(where[0] * height), round(where[1] * width), 0.39
    bottom, right = top + round(side * height), left + round(side * width)
    faked = gradient.copy()
    faked[top:bottom, left:right] = cv2.resize(synthetic.make_scene(4), (width, height))[top:bottom, left:right]
    region = detail_region(prepared(faked)[0].bandpass, below=LOW_DETAIL)
    assert region is not None
    region_top, region_bottom, region_left, region_right = region
    assert region_top <= top / height and bottom / height <= region_bottom
    assert region_left <= left / width and right / width <= region_right
    assert (region_bottom - region_top) * (region_right - region_left) <= MAX_EXCLUDED_SHARE


def test_an_image_with_detail_all_over_or_none_has_no_region_of_detail() -> None:
    for image in (synthetic.make_scene(5), synthetic.make_texture(5), synthetic.make_gradient(5)):
        assert detail_region(prepared(image)[0].bandpass, below=LOW_DETAIL) is None
