"""``nearindex.difference``: aligned pixel differences of generated edits, asserted as relations."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from nearindex import synthetic
from nearindex.difference import Difference, diff_images, draw_difference, load_for_diff
from nearindex.errors import NotAnImageError, UnreadableFileError

Box = tuple[int, int, int, int]


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return synthetic.make_scene(7)


@pytest.fixture(scope="module")
def donor() -> np.ndarray:
    return synthetic.make_scene(8)


def changed_box(first: np.ndarray, second: np.ndarray) -> Box:
    """The true box of an edit: bounding box of the pixels it changed by more than 20 levels."""
    changed = np.abs(first.astype(np.int16) - second.astype(np.int16)).max(axis=2) > 20
    x, y, w, h = cv2.boundingRect(changed.astype(np.uint8))
    return int(x), int(y), int(w), int(h)


def iou(first: Box, second: Box) -> float:
    x0, y0 = max(first[0], second[0]), max(first[1], second[1])
    x1, y1 = min(first[0] + first[2], second[0] + second[2]), min(first[1] + first[3], second[1] + second[3])
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    return inter / (first[2] * first[3] + second[2] * second[3] - inter)


def best_iou(found: Difference, truth: Box, *, in_b: bool = False) -> float:
    return max((iou(r.box_b if in_b else r.box_a, truth) for r in found.regions), default=0.0)


def test_pasted_patch_is_found(scene: np.ndarray, donor: np.ndarray) -> None:
    pasted = synthetic.paste_patch(scene, donor, area=0.15, seed=4)
    found = diff_images(scene, synthetic.jpeg_reencode(pasted, quality=90))
    assert best_iou(found, changed_box(scene, pasted)) >= 0.5
    assert found.aligned_by == "features"
    assert 0.0 <= found.regions[0].score <= 1.0


def test_caption_band_is_found(scene: np.ndarray) -> None:
    captioned = synthetic.add_caption(scene)
    assert best_iou(diff_images(scene, captioned), changed_box(scene, captioned)) >= 0.5


def test_flat_patch_over_texture_is_found(scene: np.ndarray) -> None:
    patched = scene.copy()
    patched[100:200, 300:420] = int(scene[100:200, 300:420].mean())  # same mean: only the structure differs
    assert best_iou(diff_images(scene, patched), (300, 100, 120, 100)) >= 0.5


def test_textured_patch_over_flat_background_is_found() -> None:
    smooth = synthetic.make_gradient(3)  # almost featureless: no alignment by features
    patched = smooth.copy()
    patched[200:320, 80:240] = synthetic.make_texture(5, width=160, height=120)
    assert best_iou(diff_images(smooth, patched), (80, 200, 160, 120)) >= 0.5


@pytest.mark.parametrize("edit", ["jpeg30", "half", "crop90"])
def test_untouched_copies_report_no_region(scene: np.ndarray, edit: str) -> None:
    found = diff_images(scene, synthetic.EDITS[edit](scene))
    assert found.regions == ()
    assert found.score > 0.95


def test_identical_images_agree_fully(scene: np.ndarray) -> None:
    found = diff_images(scene, scene.copy())
    assert found.regions == ()
    assert found.score > 0.99
    assert found.overlap_a > 99.0 and found.overlap_b > 99.0


def test_transform_maps_second_onto_first(scene: np.ndarray) -> None:
    half = synthetic.scale(scene, factor=0.5)
    matrix = np.array(diff_images(scene, half).transform)
    x, y, w = matrix @ np.array([100.0, 80.0, 1.0])
    assert abs(x / w - 200.5) < 2.0 and abs(y / w - 160.5) < 2.0  # pixel centres: 2 * x + 0.5


def test_crop_and_paste_boxes_land_in_each_image(scene: np.ndarray, donor: np.ndarray) -> None:
    pasted = synthetic.paste_patch(scene, donor, area=0.1, seed=9)
    x0, y0 = 40, 30
    cropped = pasted[y0 : y0 + 400, x0 : x0 + 560]
    truth_a = changed_box(scene, pasted)
    found = diff_images(scene, cropped)
    assert best_iou(found, truth_a) >= 0.5
    assert best_iou(found, (truth_a[0] - x0, truth_a[1] - y0, truth_a[2], truth_a[3]), in_b=True) >= 0.5
    assert found.overlap_b > 99.0 > found.overlap_a > 65.0


def test_grayscale_input_is_accepted(scene: np.ndarray, donor: np.ndarray) -> None:
    pasted = synthetic.paste_patch(scene, donor, area=0.15, seed=4)
    gray = cv2.cvtColor(pasted, cv2.COLOR_BGR2GRAY)
    assert best_iou(diff_images(scene, gray), changed_box(scene, pasted)) >= 0.5


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((64, 64, 3), np.float32), "uint8"),
        (np.zeros((64, 64, 2), np.uint8), "shape"),
        (np.zeros((64,), np.uint8), "shape"),
        (np.zeros((8, 64), np.uint8), "at least"),
    ],
)
def test_bad_inputs_are_refused(scene: np.ndarray, image: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        diff_images(scene, image)
    with pytest.raises(ValueError, match=message):
        diff_images(image, scene)


def test_drawing_shows_both_images_and_the_heat_map(scene: np.ndarray) -> None:
    captioned = synthetic.add_caption(scene)
    picture = draw_difference(scene, captioned, diff_images(scene, captioned))
    assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3
    assert picture.shape[0] == scene.shape[0] and picture.shape[1] == 3 * scene.shape[1]
    outline = (picture[:, :, 2] == 255) & (picture[:, :, 1] == 0) & (picture[:, :, 0] == 0)
    assert outline.any()


def test_files_are_loaded_with_nearindex_errors(tmp_path: Path, scene: np.ndarray) -> None:
    synthetic.write_image(tmp_path / "a.png", scene)
    loaded = load_for_diff(tmp_path / "a.png")
    assert loaded.shape == scene.shape[:2] and loaded.dtype == np.uint8
    (tmp_path / "b.png").write_bytes(b"not an image")
    with pytest.raises(NotAnImageError):
        load_for_diff(tmp_path / "b.png")
    with pytest.raises(UnreadableFileError):
        load_for_diff(tmp_path / "missing.png")
