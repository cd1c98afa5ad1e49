"""Relations: how a match relates to the query, judged on generated image files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nearindex import synthetic
from nearindex.placement import Frame
from nearindex.relation import CONTAINS, CROP, EXACT, RESIZED, SIMILAR, Relation
from nearindex.search import compare


def write(folder: Path, name: str, image: np.ndarray) -> Path:
    path = folder / name
    synthetic.write_image(path, image)
    return path


def overlap(first: tuple[int, ...], second: tuple[int, ...]) -> float:
    """Intersection over union of two (x, y, width, height) boxes."""
    ax, ay, aw, ah = first
    bx, by, bw, bh = second
    inter = max(0, min(ax + aw, bx + bw) - max(ax, bx)) * max(0, min(ay + ah, by + bh) - max(ay, by))
    return inter / (aw * ah + bw * bh - inter)


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return synthetic.make_scene(21)


#: (x, y, width, height) windows of a 640x480 scene: off-centre crops of about 75 % and 50 % of the area.
WINDOWS = [(40, 60, 560, 400), (200, 40, 440, 380), (0, 120, 480, 360)]


@pytest.mark.parametrize("window", WINDOWS)
def test_a_crop_is_reported_with_the_region_of_the_query_it_shows(
    scene: np.ndarray, window: tuple[int, int, int, int], tmp_path: Path
) -> None:
    x, y, width, height = window
    original = write(tmp_path, "original.png", scene)
    cropped = write(tmp_path, "cropped.png", scene[y : y + height, x : x + width])
    relation = compare(original, cropped).relation
    assert relation.kind == CROP
    assert relation.box is not None and overlap(relation.box, window) > 0.85
    assert relation.scale == pytest.approx(1.0, abs=0.08)


def test_the_original_of_a_crop_contains_it_where_it_was_cut(scene: np.ndarray, tmp_path: Path) -> None:
    x, y, width, height = WINDOWS[1]
    original = write(tmp_path, "original.png", scene)
    cropped = write(tmp_path, "cropped.png", scene[y : y + height, x : x + width])
    relation = compare(cropped, original).relation
    assert relation.kind == CONTAINS
    assert relation.box is not None and overlap(relation.box, WINDOWS[1]) > 0.85


@pytest.mark.parametrize("factor", [0.5, 0.25])
def test_a_smaller_copy_is_resized_at_its_scale(scene: np.ndarray, factor: float, tmp_path: Path) -> None:
    original = write(tmp_path, "original.png", scene)
    smaller = write(tmp_path, "smaller.jpg", synthetic.scale(scene, factor=factor))
    relation = compare(original, smaller).relation
    assert relation.kind == RESIZED and relation.box is None and not relation.edited
    assert relation.scale == pytest.approx(factor, rel=0.1)


@pytest.mark.parametrize("edit", ["jpeg30", "gamma", "brighter", "rotate3", "grayscale"])
def test_global_edits_are_not_called_local_edits(scene: np.ndarray, edit: str, tmp_path: Path) -> None:
    original = write(tmp_path, "original.png", scene)
    copy = write(tmp_path, "copy.jpg", synthetic.EDITS[edit](scene))
    comparison = compare(original, copy)
    assert comparison.duplicate and comparison.relation.kind == RESIZED and not comparison.relation.edited


@pytest.mark.parametrize("seed", range(1, 5))
def test_a_pasted_patch_makes_a_matching_copy_edited(seed: int, tmp_path: Path) -> None:
    original_image = synthetic.make_scene(30 + seed)
    faked = synthetic.paste_patch(original_image, synthetic.make_scene(60 + seed), area=0.15, seed=seed)
    original, copy = write(tmp_path, "original.png", original_image), write(tmp_path, "faked.png", faked)
    comparison = compare(original, copy)
    # The patch may pull the placement a little (a box of most of the image): the flag is what counts here.
    assert comparison.relation.edited and comparison.relation.scale == pytest.approx(1.0, abs=0.05)


def test_a_caption_makes_a_matching_copy_edited(scene: np.ndarray, tmp_path: Path) -> None:
    original, copy = write(tmp_path, "original.png", scene), write(tmp_path, "c.png", synthetic.EDITS["caption"](scene))
    assert compare(original, copy).relation.edited


def test_a_mirrored_crop_box_is_in_the_query_s_own_pixels(scene: np.ndarray, tmp_path: Path) -> None:
    x, y, width, height = WINDOWS[2]
    original = write(tmp_path, "original.png", scene)
    flipped = write(tmp_path, "flipped.png", np.ascontiguousarray(scene[y : y + height, x : x + width, :][:, ::-1]))
    comparison = compare(original, flipped)
    assert comparison.mirrored and comparison.relation.kind == CROP
    assert comparison.relation.box is not None and overlap(comparison.relation.box, WINDOWS[2]) > 0.85


def test_identical_bytes_are_exact_and_unrelated_images_only_similar(scene: np.ndarray, tmp_path: Path) -> None:
    first = write(tmp_path, "a.png", scene)
    second = tmp_path / "b.png"
    second.write_bytes(first.read_bytes())
    unrelated = write(tmp_path, "c.png", synthetic.make_scene(99))
    assert compare(first, second).relation.kind == EXACT
    assert compare(first, unrelated).relation.kind == SIMILAR


def test_a_frame_and_its_inverse_undo_each_other() -> None:
    frame = Frame((0.5, 0.8), (0.25, 0.1))
    back = frame.inverse().inverse()
    assert back.scale == pytest.approx(frame.scale) and back.offset == pytest.approx(frame.offset)
    assert frame.box() == pytest.approx((0.25, 0.1, 0.5, 0.8))
    assert frame.inverse().box() == pytest.approx((0.0, 0.0, 1.0, 1.0))


@pytest.mark.parametrize("seed", [0, 3])
def test_a_smooth_gradient_s_copies_relate_in_its_own_framing(seed: int, tmp_path: Path) -> None:
    # It has no detail to place by: a paste must not turn into a crop, a turn must not look edited.
    gradient = synthetic.make_gradient(seed)
    original = write(tmp_path, "gradient.png", gradient)
    faked = write(tmp_path, "faked.png", synthetic.paste_patch(gradient, synthetic.make_scene(20 + seed), seed=seed))
    turned = write(tmp_path, "turned.png", synthetic.EDITS["rotate8"](gradient))
    assert compare(original, faked).relation == Relation(RESIZED, None, 1.0, edited=True)
    assert compare(original, turned).relation == Relation(RESIZED, None, 1.0, edited=False)


def picture_box(shape: tuple[int, ...], bar_rows: int, turns: int) -> tuple[int, int, int, int]:
    """(x, y, width, height) of a screenshot's picture once turned by ``turns`` quarter turns."""
    below_bar = np.zeros(shape[:2], np.uint8)
    below_bar[bar_rows:] = 1
    rows, cols = np.nonzero(np.rot90(below_bar, turns))
    return int(cols.min()), int(rows.min()), int(cols.max() - cols.min() + 1), int(rows.max() - rows.min() + 1)


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
def test_a_screenshot_of_a_smooth_gradient_contains_it_beside_its_bar(turns: int, tmp_path: Path) -> None:
    # The bar, at any edge, holds all the screenshot's detail: the gradient lies in the rest.
    for seed in range(4):
        gradient = synthetic.make_gradient(seed)
        shot = synthetic.screenshot(np.ascontiguousarray(np.rot90(gradient, -turns)))
        bar_rows = shot.shape[0] - synthetic.scale(np.rot90(gradient, -turns), factor=0.3).shape[0]
        original, copy = write(tmp_path, "gradient.png", gradient), write(tmp_path, "shot.png", np.rot90(shot, turns))
        comparison = compare(original, copy)
        assert comparison.duplicate and comparison.relation.kind == CONTAINS
        assert comparison.relation.box is not None
        assert overlap(comparison.relation.box, picture_box(shot.shape, bar_rows, turns)) > 0.9
