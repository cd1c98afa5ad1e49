"""Generators are deterministic and edits keep their contract; scenes relate as real photos do."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nearindex import synthetic

SEEDS = range(40)
#: Edits whose copy must still correlate with its original after heavy blur.
KEPT_EDITS = ("jpeg30", "caption", "crop90")


def blurred_signature(image: synthetic.Image) -> npt.NDArray[np.float64]:
    """Zero-mean unit-norm 32x32 grey thumbnail after a blur of 2 % of the long side."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    height, width = gray.shape
    ratio = 128 / max(height, width)
    small = cv2.resize(gray, (round(width * ratio), round(height * ratio)), interpolation=cv2.INTER_AREA)
    blurred = cv2.GaussianBlur(small, (0, 0), 2.56)
    vector = cv2.resize(blurred, (32, 32), interpolation=cv2.INTER_AREA).ravel().astype(np.float64)
    vector -= vector.mean()
    return np.asarray(vector / np.linalg.norm(vector), dtype=np.float64)


@pytest.fixture(scope="module")
def scenes() -> list[synthetic.Image]:
    return [synthetic.make_scene(seed) for seed in SEEDS]


@pytest.fixture(scope="module")
def small_scene() -> synthetic.Image:
    return synthetic.make_scene(5, width=200, height=150)


@pytest.mark.parametrize(
    "generate", [synthetic.make_scene, synthetic.make_texture, synthetic.make_gradient, synthetic.make_soft]
)
def test_generators_are_deterministic_per_seed(generate: Callable[..., synthetic.Image]) -> None:
    first, again = generate(3, width=96, height=64), generate(3, width=96, height=64)
    other = generate(4, width=96, height=64)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize(
    ("generate", "shape"),
    [
        (lambda: synthetic.make_scene(1), (480, 640, 3)),
        (lambda: synthetic.make_scene(1, width=333, height=77), (77, 333, 3)),
        (lambda: synthetic.make_texture(1), (512, 512, 3)),
        (lambda: synthetic.make_gradient(1, width=50, height=40), (40, 50, 3)),
        (lambda: synthetic.make_soft(1, width=50, height=40), (40, 50, 3)),
        (lambda: synthetic.make_flat(7), (240, 320, 3)),
    ],
)
def test_generators_return_bgr_uint8_of_the_requested_size(
    generate: Callable[[], synthetic.Image], shape: tuple[int, ...]
) -> None:
    image = generate()
    assert image.dtype == np.uint8
    assert image.shape == shape
    assert image.flags.c_contiguous


def test_flat_is_one_value_and_scene_uses_the_range() -> None:
    assert np.all(synthetic.make_flat(90) == 90)
    scene = cv2.cvtColor(synthetic.make_scene(2), cv2.COLOR_BGR2GRAY)
    assert scene.std() > 40
    assert scene.max() - scene.min() > 200


def test_gradient_is_smooth() -> None:
    gradient = synthetic.make_gradient(8).astype(np.int16)
    assert np.abs(np.diff(gradient, axis=0)).max() <= 3
    assert np.abs(np.diff(gradient, axis=1)).max() <= 3


@pytest.mark.parametrize("name", sorted(synthetic.EDITS))
def test_every_edit_returns_a_new_bgr_uint8_image(name: str, small_scene: synthetic.Image) -> None:
    before = small_scene.copy()
    edited = synthetic.EDITS[name](small_scene)
    assert edited.dtype == np.uint8
    assert edited.ndim == 3 and edited.shape[2] == 3
    assert edited is not small_scene
    assert np.array_equal(small_scene, before)


def test_geometric_edits_keep_or_change_size_as_documented(small_scene: synthetic.Image) -> None:
    for edit in (synthetic.EDITS["rotate8"], synthetic.EDITS["shift"], synthetic.EDITS["caption"]):
        assert edit(small_scene).shape == small_scene.shape
    assert synthetic.scale(small_scene, factor=0.5).shape == (75, 100, 3)
    assert synthetic.scale(small_scene, factor=2.0).shape == (300, 400, 3)
    assert synthetic.add_border(small_scene, fraction=0.1).shape == (180, 200, 3)
    assert synthetic.screenshot(small_scene).shape[1] == 60


@settings(max_examples=40, deadline=None)
@given(keep_area=st.floats(0.2, 1.0), seed=st.integers(0, 2**32 - 1))
def test_crop_keeps_the_requested_area(keep_area: float, seed: int) -> None:
    image = synthetic.make_flat(0, width=300, height=200)
    cropped = synthetic.crop(image, keep_area=keep_area, seed=seed)
    assert cropped.shape[0] * cropped.shape[1] / (300 * 200) == pytest.approx(keep_area, rel=0.05)
    assert cropped.shape[1] / cropped.shape[0] == pytest.approx(1.5, rel=0.05)


def test_crop_position_depends_on_the_seed(small_scene: synthetic.Image) -> None:
    crops = {synthetic.crop(small_scene, keep_area=0.5, seed=seed).tobytes() for seed in range(5)}
    assert len(crops) > 1


def test_grayscale_has_equal_channels_and_flip_mirrors(small_scene: synthetic.Image) -> None:
    gray = synthetic.to_grayscale(small_scene)
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])
    assert np.array_equal(synthetic.flip_horizontal(small_scene)[:, 0], small_scene[:, -1])


def test_brightness_identity_and_direction(small_scene: synthetic.Image) -> None:
    assert np.array_equal(synthetic.adjust_brightness(small_scene), small_scene)
    assert synthetic.adjust_brightness(small_scene, gamma=0.7).mean() > small_scene.mean()
    assert synthetic.adjust_brightness(small_scene, offset=-30).mean() < small_scene.mean()


def test_paste_patch_replaces_about_the_requested_area(small_scene: synthetic.Image) -> None:
    donor = synthetic.make_flat(255, width=50, height=50)
    faked = synthetic.paste_patch(small_scene, donor, area=0.15, seed=2)
    changed = np.any(faked != small_scene, axis=2).mean()
    assert faked.shape == small_scene.shape
    assert 0.10 < changed <= 0.16


@pytest.mark.parametrize(
    "call",
    [
        lambda image: synthetic.crop(image, keep_area=0.0),
        lambda image: synthetic.scale(image, factor=0),
        lambda image: synthetic.jpeg_reencode(image, quality=0),
        lambda image: synthetic.add_watermark(image, corner="middle"),
        lambda image: synthetic.add_caption(image, band=1.5),
        lambda image: synthetic.adjust_brightness(image, gamma=0),
        lambda image: synthetic.crop(image[..., 0], keep_area=0.5),
        lambda image: synthetic.rotate(image.astype(np.float32), degrees=1),
    ],
)
def test_bad_arguments_raise_value_error(
    call: Callable[[synthetic.Image], synthetic.Image], small_scene: synthetic.Image
) -> None:
    with pytest.raises(ValueError):
        call(small_scene)


@pytest.mark.parametrize("suffix", [".jpg", ".JPEG", ".png", ".webp", ".bmp", ".tiff"])
def test_write_image_round_trips(suffix: str, tmp_path: Path, small_scene: synthetic.Image) -> None:
    path = tmp_path / f"scene{suffix}"
    synthetic.write_image(path, small_scene, quality=95)
    decoded = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None
    assert decoded.shape == small_scene.shape
    assert np.abs(decoded.astype(int) - small_scene.astype(int)).mean() < 4


def test_write_image_accepts_a_non_utf8_name(tmp_path: Path, small_scene: synthetic.Image) -> None:
    path = tmp_path / os.fsdecode(b"caf\xe9.png")
    synthetic.write_image(path, small_scene)
    assert os.fsencode(path.name) in os.listdir(os.fsencode(tmp_path))


def test_write_image_rejects_an_unknown_suffix(tmp_path: Path, small_scene: synthetic.Image) -> None:
    with pytest.raises(ValueError, match="suffix"):
        synthetic.write_image(tmp_path / "scene.gif", small_scene)
    assert not (tmp_path / "scene.gif").exists()


def test_unrelated_scenes_do_not_correlate_after_heavy_blur(scenes: list[synthetic.Image]) -> None:
    signatures = np.array([blurred_signature(scene) for scene in scenes])
    correlations = (signatures @ signatures.T)[np.triu_indices(len(scenes), k=1)]
    assert np.percentile(correlations, 99) < 0.6


@pytest.mark.parametrize("name", KEPT_EDITS)
def test_mild_edits_still_correlate_after_heavy_blur(name: str, scenes: list[synthetic.Image]) -> None:
    edit = synthetic.EDITS[name]
    correlations = [blurred_signature(scene) @ blurred_signature(edit(scene)) for scene in scenes]
    assert min(correlations) > 0.8


def test_apply_edit_takes_the_named_edit_or_a_patch_of_the_donor() -> None:
    image, donor = synthetic.make_scene(5), synthetic.make_scene(6)
    assert np.array_equal(synthetic.apply_edit(image, "flip", donor=donor), synthetic.EDITS["flip"](image))
    pasted = synthetic.apply_edit(image, "paste", donor=donor, seed=3)
    assert np.array_equal(pasted, synthetic.paste_patch(image, donor, area=0.15, seed=3))
    assert not np.array_equal(pasted, image)
    with pytest.raises(KeyError):
        synthetic.apply_edit(image, "sepia", donor=donor)
