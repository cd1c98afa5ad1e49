"""Descriptor properties: correlation by inner product, normalisation, flat images."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from nearindex import synthetic
from nearindex.features import (
    FLAT_STD,
    LEFT_OUT_SIDE,
    blur_thumbnail,
    cell_ranks,
    cells_kept,
    corners_left_out,
    describe,
    descriptor_from_thumbnail,
    detail_left_out,
    normalise,
    normalise_rows,
)
from nearindex.settings import DEFAULT_SETTINGS

images = arrays(
    np.float32,
    st.tuples(st.integers(8, 80), st.integers(8, 80)),
    elements=st.floats(0, 1, width=32),
)


def gray(bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255


PLAIN_CELLS = replace(DEFAULT_SETTINGS, ranked_cells=False)


@settings(max_examples=60, deadline=None)
@given(images, images)
def test_inner_product_is_pearson_correlation_of_the_grids(first: np.ndarray, second: np.ndarray) -> None:
    a, b = describe(first, settings=PLAIN_CELLS), describe(second, settings=PLAIN_CELLS)
    if a.flat or b.flat:
        return
    pearson = np.corrcoef(_cells(first), _cells(second))[0, 1]
    assert abs(float(np.dot(a.descriptor, b.descriptor)) - pearson) < 1e-4


@settings(max_examples=60, deadline=None)
@given(images, images)
def test_ranked_inner_product_is_spearman_correlation_of_the_grids(first: np.ndarray, second: np.ndarray) -> None:
    a, b = describe(first), describe(second)
    if a.flat or b.flat or not (a.descriptor.any() and b.descriptor.any()):
        return
    spearman = np.corrcoef(_average_ranks(_cells(first)), _average_ranks(_cells(second)))[0, 1]
    assert abs(float(np.dot(a.descriptor, b.descriptor)) - spearman) < 1e-4


def test_ranked_cells_bound_a_pasted_patch() -> None:
    """A bright patch over a soft image sinks the plain correlation more than the ranked one."""
    rng = np.random.default_rng(4)
    soft = cv2.GaussianBlur(rng.random((120, 160)).astype(np.float32), (0, 0), 12)
    soft = (soft - soft.min()) / (soft.max() - soft.min()) * 0.3 + 0.35  # soft: grey levels 0.35..0.65
    pasted = soft.copy()
    pasted[30:75, 40:100] = 1.0
    plain = float(describe(soft, settings=PLAIN_CELLS).descriptor @ describe(pasted, settings=PLAIN_CELLS).descriptor)
    ranked = float(describe(soft).descriptor @ describe(pasted).descriptor)
    assert ranked > plain + 0.2


@settings(max_examples=40, deadline=None)
@given(images, st.sampled_from([2, 3, 4, 6, 12, 16]))
def test_each_corner_left_out_is_zeros_and_the_rest_a_normalised_copy_of_the_vector(
    image: np.ndarray, grid: int
) -> None:
    vector = descriptor_from_thumbnail(image, grid=grid)
    rows = corners_left_out(vector, grid=grid)
    assert rows.shape == (4, grid * grid) and rows.dtype == np.float32
    assert grid / 2 <= _left_out_side(grid) < grid
    for corner, row in enumerate(rows):
        kept = _kept_cells(grid, corner)
        assert not row[~kept].any()
        assert np.allclose(row[kept], normalise(vector[kept]), atol=1e-5)


def test_a_pasted_patch_is_left_out_by_a_corner_and_the_rest_correlates_with_the_original() -> None:
    """With the corner holding a pasted patch left out, an edit is closer to its original than as a whole."""
    donor = synthetic.make_texture(1)
    for seed in range(6):
        original = describe(gray(synthetic.make_scene(seed))).descriptor
        pasted = gray(synthetic.paste_patch(synthetic.make_scene(seed), donor, area=0.15, seed=seed))
        whole = describe(pasted).descriptor
        rows = corners_left_out(whole, grid=DEFAULT_SETTINGS.grid)
        kept = [_kept_cells(DEFAULT_SETTINGS.grid, corner) for corner in range(4)]
        # A row is the edit's kept cells normalised: so normalised, the original's give their correlation.
        kept_correlation = [float(row[k] @ normalise(original[k])) for row, k in zip(rows, kept, strict=True)]
        assert max(kept_correlation) > float(whole @ original) + 0.02


def test_a_grid_too_small_to_keep_anything_gives_zeros() -> None:
    assert not corners_left_out(np.array([1.0], np.float32), grid=1).any()


#: Images whose grid cells are exact averages of well-separated levels (no rounding to rank by).
levels = st.sampled_from([0.0, 0.25, 0.5, 1.0])
block_images = st.sampled_from([4, 8, 16]).flatmap(
    lambda grid: st.tuples(
        st.just(grid),
        st.sampled_from([1, 2, 4]).flatmap(lambda block: arrays(np.float32, (grid * block,) * 2, elements=levels)),
    )
)


@settings(max_examples=40, deadline=None)
@given(block_images, st.tuples(st.floats(0, 0.5), st.floats(0.1, 0.5), st.floats(0, 0.5), st.floats(0.1, 0.5)))
def test_the_region_left_out_is_zeros_and_the_rest_is_described_on_its_own(
    grid_and_image: tuple[int, np.ndarray], box: tuple[float, float, float, float]
) -> None:
    grid, image = grid_and_image
    top, height, left, width = box
    region = (top, top + height, left, left + width)
    (row,) = detail_left_out(image, region, grid=grid, ranked=True)
    kept = cells_kept(region, grid=grid)
    assert not row[~kept].any()
    # The kept cells ranked among themselves, not among the whole image's: a patch in the region does not bend them.
    cells = descriptor_from_thumbnail(image, grid=grid)  # the cells in their own order
    assert np.allclose(row[kept], normalise(cell_ranks(cells[kept])), atol=1e-5)
    assert not detail_left_out(image, None, grid=grid).any()


def _left_out_side(grid: int) -> int:
    return int(LEFT_OUT_SIDE * grid + 0.5)


def _kept_cells(grid: int, corner: int) -> np.ndarray:
    """The cells ``corners_left_out``'s row ``corner`` keeps (corners row-major: top left first)."""
    side = _left_out_side(grid)
    top, left = (0, grid - side)[corner // 2], (0, grid - side)[corner % 2]
    kept = np.ones((grid, grid), bool)
    kept[top : top + side, left : left + side] = False
    return kept.ravel()


@settings(max_examples=80, deadline=None)
@given(
    arrays(
        np.float32, st.tuples(st.integers(1, 8), st.integers(1, 64)), elements=st.sampled_from([0.0, 0.25, 0.5, 1.0])
    )
)
def test_cell_ranks_of_each_row_are_average_ranks_with_ties_shared(cells: np.ndarray) -> None:
    ranks = cell_ranks(cells)
    for row, row_ranks in zip(cells, ranks, strict=True):
        assert np.array_equal(row_ranks, _average_ranks(row.astype(np.float64)))
        assert np.array_equal(cell_ranks(row), row_ranks)


def test_rows_without_real_spread_normalise_to_zeros_and_the_others_to_unit_norm() -> None:
    rng = np.random.default_rng(5)
    rows = np.stack([np.full(256, 0.3) + rng.normal(0, 1e-12, 256), rng.random(256), np.zeros(256)]).astype(np.float32)
    result = normalise_rows(rows)
    assert not result[0].any() and not result[2].any()
    assert abs(float(np.linalg.norm(result[1])) - 1) < 1e-5
    assert np.allclose(result[1], normalise(rows[1]))


def _cells(image: np.ndarray) -> np.ndarray:
    thumb = blur_thumbnail(image)
    grid = DEFAULT_SETTINGS.grid
    return cv2.resize(thumb, (grid, grid), interpolation=_interpolation(thumb)).ravel().astype(np.float64)


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Rank by definition: values below, plus half the other equal values."""
    below = (values[None, :] < values[:, None]).sum(axis=1)
    equal = (values[None, :] == values[:, None]).sum(axis=1)
    return below + (equal - 1) / 2


def _interpolation(thumb: np.ndarray) -> int:
    return cv2.INTER_AREA if min(thumb.shape) >= DEFAULT_SETTINGS.grid else cv2.INTER_LINEAR


@settings(max_examples=60, deadline=None)
@given(images)
def test_descriptor_is_zero_mean_unit_norm_float32_or_flat_zeros(image: np.ndarray) -> None:
    result = describe(image)
    assert result.descriptor.dtype == np.float32
    assert result.descriptor.shape == (DEFAULT_SETTINGS.dimension,)
    assert np.all(np.isfinite(result.descriptor))
    if result.flat:
        assert not result.descriptor.any()
    else:
        assert abs(float(result.descriptor.mean())) < 1e-5
        assert abs(float(np.linalg.norm(result.descriptor)) - 1) < 1e-4


def test_flat_image_is_flagged_and_correlates_with_nothing() -> None:
    flat = describe(np.full((240, 320), 0.4, np.float32))
    scene = describe(gray(synthetic.make_scene(1)))
    assert flat.flat and not scene.flat
    assert float(np.dot(flat.descriptor, scene.descriptor)) == 0.0
    assert flat.thumbnail.dtype == np.uint8


def test_noise_below_the_flat_threshold_still_counts_as_flat() -> None:
    rng = np.random.default_rng(0)
    faint = 0.5 + rng.normal(0, FLAT_STD / 10, (200, 300)).astype(np.float32)
    assert describe(faint).flat


def test_brightness_and_contrast_do_not_change_the_descriptor() -> None:
    image = gray(synthetic.make_scene(3))
    changed = np.clip(image * 0.6 + 0.2, 0, 1)
    assert float(np.dot(describe(image).descriptor, describe(changed).descriptor)) > 0.999


def test_blurring_after_downscaling_matches_blurring_at_full_size() -> None:
    """The cheap order (downscale, then blur) gives the descriptor of the costly one."""
    image = gray(synthetic.make_scene(5, width=1600, height=1200))
    sigma = DEFAULT_SETTINGS.blur_fraction * max(image.shape)
    full = cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    grid = DEFAULT_SETTINGS.grid
    costly = normalise(cv2.resize(full, (grid, grid), interpolation=cv2.INTER_AREA).ravel())
    assert float(np.dot(costly, describe(image).descriptor)) > 0.99


def test_the_border_searchs_shrink_gives_the_thumbnail_of_the_full_image() -> None:
    """Without borders, the thumbnail is made from the 256 px image the border search shrank (one full-size pass)."""
    whole = replace(DEFAULT_SETTINGS, trim_borders=False)
    for seed, (width, height) in enumerate([(1600, 1200), (1000, 333), (300, 451), (257, 200), (120, 90)]):
        image = gray(synthetic.make_scene(seed, width=width, height=height))
        shared, full = describe(image), describe(image, settings=whole)
        assert not shared.borders.found
        assert shared.thumbnail.shape == full.thumbnail.shape
        assert np.abs(shared.thumbnail.astype(int) - full.thumbnail).max() <= 2, (width, height)
        assert float(np.dot(shared.descriptor, full.descriptor)) > 0.998, (width, height)


def test_not_a_number_describes_as_zero_on_every_path() -> None:
    image = gray(synthetic.make_scene(2, width=1000, height=700))
    holed = image.copy()
    holed[100:140, 200:260] = np.nan
    zeroed = np.nan_to_num(holed)
    for chosen in (
        DEFAULT_SETTINGS,
        replace(DEFAULT_SETTINGS, thumb_side=512),
        replace(DEFAULT_SETTINGS, trim_borders=False),
    ):
        with_nan, with_zeros = describe(holed, settings=chosen), describe(zeroed, settings=chosen)
        assert np.array_equal(with_nan.thumbnail, with_zeros.thumbnail)
        assert np.array_equal(with_nan.vectors, with_zeros.vectors)
        assert not with_nan.flat


def test_thumbnail_keeps_aspect_and_long_side() -> None:
    thumb = blur_thumbnail(np.zeros((300, 1200), np.float32))
    assert thumb.shape == (32, 128)
    assert blur_thumbnail(np.zeros((10000, 1), np.float32)).shape == (128, 1)


def test_edited_copy_correlates_more_than_any_unrelated_scene() -> None:
    original = describe(gray(synthetic.make_scene(7))).descriptor
    edited = describe(gray(synthetic.EDITS["jpeg30"](synthetic.make_scene(7)))).descriptor
    others = [describe(gray(synthetic.make_scene(seed))).descriptor for seed in range(20, 30)]
    assert float(np.dot(original, edited)) > max(float(np.dot(original, other)) for other in others)


def test_descriptor_from_thumbnail_handles_thumbnails_smaller_than_the_grid() -> None:
    vector = descriptor_from_thumbnail(np.arange(12, dtype=np.float32).reshape(3, 4), grid=32)
    assert vector.shape == (1024,) and abs(float(np.linalg.norm(vector)) - 1) < 1e-4
