"""Colour of low-detail images: edits keep it, another picture's colours do not match, grey copies are not judged."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import nearindex
from nearindex import synthetic
from nearindex.colour import COLOUR_DISTANCE, GREY_CHROMA, Colour, colour_of, colours_differ
from nearindex.features import describe
from nearindex.intake import describe_content, describe_image
from nearindex.planes import prepare
from nearindex.rescore import rescore
from nearindex.settings import DEFAULT_SETTINGS

#: Edits of a smooth picture that must keep its colour within ``COLOUR_DISTANCE``.
KEPT_BY = (
    "crop90", "crop75", "crop60", "half", "quarter", "jpeg30", "caption", "watermark", "border", "gamma",
    "brighter", "contrast", "flip", "rotate3", "rotate8", "screenshot", "crop75+caption+jpeg50",
)  # fmt: skip


def hue_turned(image: np.ndarray) -> np.ndarray:
    """The picture with its hue turned half way round (YCrCb chroma negated): its grey stays, where not clipped."""
    ycrcb = cv2.cvtColor(image, cv2.COLOR_BGR2YCrCb).astype(np.int16)
    ycrcb[:, :, 1:] = 256 - ycrcb[:, :, 1:]
    return np.asarray(cv2.cvtColor(np.clip(ycrcb, 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2BGR), np.uint8)


def grey_correlation(first: np.ndarray, second: np.ndarray) -> float:
    grey = [cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32).ravel() for image in (first, second)]
    return float(np.corrcoef(grey[0], grey[1])[0, 1])


def mean_colour_moves(first: np.ndarray, second: np.ndarray) -> bool:
    """True when the two mean colours lie 1.5 times ``COLOUR_DISTANCE`` apart or more."""
    one, other = colour_of(first), colour_of(second)
    return float(np.hypot(one.a - other.a, one.b - other.b)) >= 1.5 * COLOUR_DISTANCE


@pytest.fixture(scope="module")
def smooth_pictures() -> list[np.ndarray]:
    """Gradients and soft fields whose hue-turned twin has the same grey (correlation 0.98 or more) ...

    ... and another mean colour: in a picture whose colours average out to
    grey (red to green), the twin's mean colour is the picture's own, and
    ``colours_differ`` cannot tell them apart.
    """
    pictures = [synthetic.make_gradient(seed) for seed in range(16)] + [synthetic.make_soft(seed) for seed in range(16)]
    chosen = [
        picture
        for picture in pictures
        if grey_correlation(picture, hue_turned(picture)) >= 0.98 and mean_colour_moves(picture, hue_turned(picture))
    ]
    assert len(chosen) >= 8
    return chosen


def test_no_edit_moves_a_smooth_pictures_colour_past_the_limit(smooth_pictures: list[np.ndarray]) -> None:
    donor = synthetic.make_scene(7)
    for index, picture in enumerate(smooth_pictures):
        original = colour_of(picture)
        for name in KEPT_BY:
            edited = synthetic.apply_edit(picture, name, donor=donor, seed=index)
            assert not colours_differ(original, colour_of(edited)), (index, name)


def test_a_hue_turned_twin_is_one_picture_in_grey_and_another_in_colour(smooth_pictures: list[np.ndarray]) -> None:
    for picture in smooth_pictures:
        assert colours_differ(colour_of(picture), colour_of(hue_turned(picture)))


def test_a_grey_copy_is_not_judged_by_colour(smooth_pictures: list[np.ndarray]) -> None:
    for picture in smooth_pictures:
        grey = colour_of(synthetic.to_grayscale(picture))
        assert grey.chroma < GREY_CHROMA
        assert not colours_differ(colour_of(picture), grey)
        assert not colours_differ(colour_of(hue_turned(picture)), grey)


def test_an_unknown_colour_is_not_judged(smooth_pictures: list[np.ndarray]) -> None:
    colour = colour_of(smooth_pictures[0])
    assert not colours_differ(colour, None)
    assert not colours_differ(None, colour)


def test_colours_whose_means_cancel_out_still_count_as_colour() -> None:
    """Half red, half green: the mean a* is near 0, yet the picture is not grey."""
    image = np.zeros((60, 80, 3), np.uint8)
    image[:, :40] = (0, 0, 255)
    image[:, 40:] = (0, 255, 0)
    colour = colour_of(image)
    assert colour.chroma > 10 * GREY_CHROMA
    assert abs(colour.a) < colour.chroma / 2


def test_a_stored_colour_reads_back_equal(smooth_pictures: list[np.ndarray]) -> None:
    colour = colour_of(smooth_pictures[0])
    assert Colour.from_bytes(colour.to_bytes()) == Colour(*np.float32([colour.a, colour.b, colour.chroma]).tolist())


@pytest.mark.parametrize(
    "image", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.float32), np.zeros((0, 4, 3), np.uint8)]
)
def test_colour_of_refuses_anything_but_an_8_bit_colour_image(image: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8"):
        colour_of(image)


def test_only_low_detail_images_keep_their_colour(smooth_pictures: list[np.ndarray]) -> None:
    assert describe_image(smooth_pictures[0]).colour is not None
    assert describe_image(synthetic.make_scene(3)).colour is None
    assert describe_image(synthetic.make_texture(3)).colour is None


def test_a_file_keeps_the_colour_its_pixels_have(smooth_pictures: list[np.ndarray]) -> None:
    for suffix in (".png", ".jpg"):
        data = synthetic.encode_image(smooth_pictures[0], suffix, quality=95)
        described = describe_content(f"picture{suffix}", data, mtime_ns=0).description
        assert described is not None and described.colour is not None
        expected = colour_of(smooth_pictures[0])
        assert np.hypot(described.colour.a - expected.a, described.colour.b - expected.b) < 2


def test_the_rescorer_tells_a_twin_apart_only_by_its_colour(smooth_pictures: list[np.ndarray]) -> None:
    for picture in smooth_pictures:
        twin = hue_turned(picture)
        sides = [describe(cv2.cvtColor(im, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255) for im in (picture, twin)]
        grey = [prepare(side.thumbnail, side=DEFAULT_SETTINGS.rescore_side) for side in sides]
        coloured = [
            prepare(side.thumbnail, side=DEFAULT_SETTINGS.rescore_side, colour=colour_of(image))
            for side, image in zip(sides, (picture, twin), strict=True)
        ]
        coarse = float(np.dot(sides[0].descriptor, sides[1].descriptor))
        assert rescore(*grey, coarse=coarse).score > 0.5
        assert rescore(*coloured, coarse=coarse).score == 0.0


def test_a_stored_smooth_picture_is_found_by_its_copy_and_not_by_its_twin(
    database: nearindex.NearIndex, smooth_pictures: list[np.ndarray], tmp_path: Path
) -> None:
    stored = tmp_path / "stored"
    stored.mkdir()
    for index, picture in enumerate(smooth_pictures[:4]):
        synthetic.write_image(stored / f"picture-{index}.png", picture)
        synthetic.write_image(stored / f"twin-{index}.png", hue_turned(picture))
    assert not database.add(stored, workers=0).failed
    threshold = DEFAULT_SETTINGS.duplicate_threshold
    for index, picture in enumerate(smooth_pictures[:4]):
        probe = tmp_path / f"copy-{index}.jpg"
        synthetic.write_image(probe, synthetic.jpeg_reencode(synthetic.scale(picture, factor=0.5), quality=60))
        scores = {Path(match.path).name: match.score for match in database.query(probe, k=8)}
        assert scores[f"picture-{index}.png"] >= threshold
        assert scores.get(f"twin-{index}.png", 0.0) < threshold
    for group in database.duplicates(workers=0):
        names = {Path(member).name for member in group.paths}
        assert not any({f"picture-{index}.png", f"twin-{index}.png"} <= names for index in range(4)), names
