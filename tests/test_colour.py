"""Colour of low-detail images: edits keep it, another picture's colours do not match, grey copies are not judged."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import nearindex
from nearindex import synthetic
from nearindex.colour import (
    COLOUR_DETAIL,
    COLOUR_DISTANCE,
    COLOUR_TIE_WEIGHT,
    GREY_CHROMA,
    HUE_BINS,
    TIE_BREAK_MOST,
    Colour,
    colour_distance,
    colour_of,
    colours_differ,
    tie_break,
    tone_distance,
)
from nearindex.features import describe
from nearindex.intake import describe_content, describe_image, load_for_editing
from nearindex.planes import prepare
from nearindex.rescore import rescore
from nearindex.settings import DEFAULT_SETTINGS

#: Edits of a smooth picture that must keep its colours within ``COLOUR_DISTANCE``.
KEPT_BY = (
    "crop90", "crop75", "crop60", "half", "quarter", "jpeg30", "caption", "watermark", "border", "gamma",
    "brighter", "contrast", "flip", "rotate3", "rotate8", "shift", "screenshot", "paste", "crop75+caption+jpeg50",
)  # fmt: skip


def darker(image: np.ndarray) -> np.ndarray:
    """One stop darker."""
    return synthetic.adjust_brightness(image, gain=0.5)


def brighter_clipped(image: np.ndarray) -> np.ndarray:
    """Gain 1.3 and 20 levels up: clipped channels turn some hues."""
    return synthetic.adjust_brightness(image, gain=1.3, offset=20)


def paler(image: np.ndarray) -> np.ndarray:
    """Saturation times 0.4 (each pixel 60 % of the way to its grey)."""
    grey = synthetic.to_grayscale(image).astype(np.float32)
    return np.asarray(np.rint(grey + 0.4 * (image.astype(np.float32) - grey)), np.uint8)


def hue_turned(image: np.ndarray) -> np.ndarray:
    """The picture with its hue turned half way round (YCrCb chroma negated): its grey stays, where not clipped."""
    ycrcb = cv2.cvtColor(image, cv2.COLOR_BGR2YCrCb).astype(np.int16)
    ycrcb[:, :, 1:] = 256 - ycrcb[:, :, 1:]
    return np.asarray(cv2.cvtColor(np.clip(ycrcb, 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2BGR), np.uint8)


def grey_correlation(first: np.ndarray, second: np.ndarray) -> float:
    grey = [cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32).ravel() for image in (first, second)]
    return float(np.corrcoef(grey[0], grey[1])[0, 1])


@pytest.fixture(scope="module")
def smooth_pictures() -> list[np.ndarray]:
    """Gradients and soft fields in colour whose hue-turned twin has the same grey (correlation 0.98 or more)."""
    pictures = [synthetic.make_gradient(seed) for seed in range(16)] + [synthetic.make_soft(seed) for seed in range(16)]
    chosen = [
        picture
        for picture in pictures
        if colour_of(picture).chroma >= 2 * GREY_CHROMA and grey_correlation(picture, hue_turned(picture)) >= 0.98
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
        for edit in (darker, paler, brighter_clipped):
            assert not colours_differ(original, colour_of(edit(picture))), (index, edit.__name__)


def test_a_hue_turned_twin_is_one_picture_in_grey_and_another_in_colour(smooth_pictures: list[np.ndarray]) -> None:
    """All but a few: a picture of two opposite hues (red to green) has its twin's hues, in other places."""
    told_apart = [colours_differ(colour_of(picture), colour_of(hue_turned(picture))) for picture in smooth_pictures]
    assert sum(told_apart) >= 0.9 * len(told_apart)


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
    """Half red, half green: the mean a* is near 0, yet the picture is not grey, and keeps both hues."""
    image = np.zeros((60, 80, 3), np.uint8)
    image[:, :40] = (0, 0, 255)
    image[:, 40:] = (0, 255, 0)
    colour = colour_of(image)
    assert colour.chroma > 10 * GREY_CHROMA
    shares = sorted(colour.hues, reverse=True)
    assert shares[0] + shares[1] > 0.9 and min(shares[:2]) > 0.3


def test_a_stored_colour_reads_back_equal_and_another_layout_reads_as_unknown(
    smooth_pictures: list[np.ndarray],
) -> None:
    colour = colour_of(smooth_pictures[0])
    stored = colour.to_bytes()
    assert colour.tone is not None
    tone = (float(np.float32(colour.tone[0])), float(np.float32(colour.tone[1])))
    rounded = Colour(tuple(np.float32(colour.hues).tolist()), float(np.float32(colour.chroma)), tone)
    assert Colour.from_stored(stored) == rounded
    # Stored before tones were kept: the hues and chroma alone.
    assert Colour.from_stored(stored[: -2 * 4]) == Colour(rounded.hues, rounded.chroma)
    assert Colour.from_stored(None) is None
    assert Colour.from_stored(np.zeros(3, np.float32).tobytes()) is None  # a development build's mean colour


def test_hues_are_shares_and_grey_has_none() -> None:
    colour = colour_of(synthetic.make_soft(5))
    assert len(colour.hues) == HUE_BINS and abs(sum(colour.hues) - 1) < 1e-6 and min(colour.hues) >= 0
    for grey in (synthetic.make_flat(128), synthetic.to_grayscale(synthetic.make_gradient(1))):
        assert sum(colour_of(grey).hues) == 0


def test_colour_of_leaves_its_image_alone_and_reads_both_sample_types(smooth_pictures: list[np.ndarray]) -> None:
    small = np.ascontiguousarray(cv2.resize(smooth_pictures[0], (48, 36), interpolation=cv2.INTER_AREA))
    unit = small.astype(np.float32) / 255 * np.float32(0.5)
    before = unit.copy()
    from_float, from_bytes = colour_of(unit), colour_of(small)
    assert np.array_equal(unit, before)
    assert np.abs(np.subtract(from_float.hues, from_bytes.hues)).max() < 0.01


@pytest.mark.parametrize(
    "image", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.float64), np.zeros((0, 4, 3), np.uint8)]
)
def test_colour_of_refuses_anything_but_a_colour_image_of_bytes_or_floats(image: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8 or float32"):
        colour_of(image)


def test_only_low_detail_images_keep_their_colour(smooth_pictures: list[np.ndarray]) -> None:
    assert describe_image(smooth_pictures[0]).colour is not None
    assert describe_image(synthetic.make_scene(3)).colour is None
    assert describe_image(synthetic.make_texture(3)).colour is None


def test_a_screenshot_of_a_smooth_picture_keeps_the_colours_beside_its_bar(smooth_pictures: list[np.ndarray]) -> None:
    """Its title bar is detail, so the whole has too much to keep colours; the rest is the picture.

    Those colours tell its own picture from a twin in other hues.
    """
    told_apart = []
    for picture in smooth_pictures:
        shot = synthetic.EDITS["screenshot"](picture)
        assert prepare(describe_image(shot).thumbnail, side=DEFAULT_SETTINGS.rescore_side).detail >= COLOUR_DETAIL
        kept = describe_image(shot).colour
        assert kept is not None and kept.beside_band
        assert not colours_differ(kept, describe_image(picture).colour)
        told_apart.append(colours_differ(kept, colour_of(hue_turned(picture))))
    assert sum(told_apart) >= 0.9 * len(told_apart)


def two_bands(cut_from_top: int) -> np.ndarray:
    """A pale ramp between a red band of detail on top and a green band with less at the bottom, less its top rows."""

    def band(seed: int, colour: tuple[int, int, int], contrast: float) -> np.ndarray:
        texture = synthetic.make_texture(seed, width=640, height=72).mean(axis=2, keepdims=True) / 255
        return np.array(colour, np.float32) * (1 - contrast + contrast * texture)

    ramp = np.linspace(0.8, 1.0, 480)[:, None, None] * np.array([175, 140, 125], np.float32)
    picture = np.broadcast_to(ramp, (480, 640, 3)).copy()
    picture[:72], picture[-72:] = band(0, (40, 40, 220), 0.3), band(100, (40, 200, 40), 0.15)
    return np.ascontiguousarray(picture.clip(0, 255).astype(np.uint8)[cut_from_top:])


def test_copies_keeping_colours_beside_bands_at_other_edges_are_not_told_apart_by_them(tmp_path: Path) -> None:
    # Cut a little off the top and the red band is a uniform border: the band is found at the bottom instead.
    original = describe_image(two_bands(0)).colour
    for cut in (9, 19, 29):
        copy = describe_image(two_bands(cut)).colour
        assert original is not None and copy is not None and original.beside_band and copy.beside_band
        assert colour_distance(original, copy) is not None
        synthetic.write_image(tmp_path / "original.png", two_bands(0))
        synthetic.write_image(tmp_path / "copy.png", two_bands(cut))
        assert nearindex.compare(tmp_path / "original.png", tmp_path / "copy.png").duplicate, cut


def test_a_file_keeps_the_colour_its_pixels_have(smooth_pictures: list[np.ndarray]) -> None:
    expected = colour_of(smooth_pictures[0])
    for suffix in (".png", ".jpg"):
        data = synthetic.encode_image(smooth_pictures[0], suffix, quality=95)
        described = describe_content(f"picture{suffix}", data, mtime_ns=0).description
        assert described is not None and described.colour is not None
        assert np.abs(np.subtract(described.colour.hues, expected.hues)).max() < 0.05
        assert colours_differ(described.colour, colour_of(hue_turned(smooth_pictures[0])))


def test_sixteen_bit_files_keep_their_colours_even_with_twelve_bits_of_data(smooth_pictures: list[np.ndarray]) -> None:
    """A 16-bit PNG holding 12-bit samples is dark, yet its hues are its 8-bit export's."""
    picture = smooth_pictures[0]
    for bits in (16, 12):
        samples = np.rint(picture.astype(np.float64) * (2**bits - 1) / 255).astype(np.uint16)
        encoded, data = cv2.imencode(".png", samples)
        assert encoded
        described = describe_content("deep.png", data.tobytes(), mtime_ns=0).description
        assert described is not None and described.colour is not None
        assert not colours_differ(described.colour, colour_of(picture)), bits
        assert colours_differ(described.colour, colour_of(hue_turned(picture))), bits


def test_images_loaded_for_editing_keep_their_colours(smooth_pictures: list[np.ndarray]) -> None:
    data = synthetic.encode_image(smooth_pictures[0], ".png")
    loaded = load_for_editing("picture.png", data=data, long_side=200)
    assert max(loaded.shape[:2]) == 200 and loaded.dtype == np.uint8
    assert not colours_differ(colour_of(loaded), colour_of(smooth_pictures[0]))
    assert colours_differ(colour_of(loaded), colour_of(hue_turned(smooth_pictures[0])))


def test_the_rescorer_tells_a_twin_apart_only_by_its_colour(smooth_pictures: list[np.ndarray]) -> None:
    for picture in smooth_pictures:
        twin = hue_turned(picture)
        if not colours_differ(colour_of(picture), colour_of(twin)):
            continue  # opposite hues (see above)
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
    differing = [p for p in smooth_pictures if colours_differ(colour_of(p), colour_of(hue_turned(p)))]
    for index, picture in enumerate(differing[:4]):
        synthetic.write_image(stored / f"picture-{index}.png", picture)
        synthetic.write_image(stored / f"twin-{index}.png", hue_turned(picture))
    assert not database.add(stored, workers=0).failed
    threshold = DEFAULT_SETTINGS.duplicate_threshold
    for index, picture in enumerate(differing[:4]):
        # The flipped copy is met by the mirrored query, which must carry the colours too.
        for kind, copy in (("resized", synthetic.scale(picture, factor=0.5)), ("flipped", picture[:, ::-1])):
            probe = tmp_path / f"{kind}-{index}.jpg"
            synthetic.write_image(probe, synthetic.jpeg_reencode(np.ascontiguousarray(copy), quality=60))
            scores = {Path(match.path).name: match.score for match in database.query(probe, k=8)}
            assert scores[f"picture-{index}.png"] >= threshold, kind
            assert scores.get(f"twin-{index}.png", 0.0) < threshold, kind
    for group in database.duplicates(workers=0):
        names = {Path(member).name for member in group.paths}
        assert not any({f"picture-{index}.png", f"twin-{index}.png"} <= names for index in range(4)), names


def ramp(left: tuple[int, int, int], right: tuple[int, int, int], *, size: tuple[int, int] = (480, 360)) -> np.ndarray:
    """A linear left-to-right ramp between two BGR colours (its grey is a linear ramp too)."""
    width, height = size
    share = np.linspace(0.0, 1.0, width)[None, :, None]
    colours = np.asarray(left, np.float64) * (1 - share) + np.asarray(right, np.float64) * share
    return np.ascontiguousarray(np.broadcast_to(np.rint(colours), (height, width, 3)).astype(np.uint8))


def test_a_grey_copy_keeps_its_originals_tones_and_colours_stored_before_tones_have_none() -> None:
    original = ramp((120, 40, 20), (60, 170, 230))
    kept, other = colour_of(synthetic.to_grayscale(original)), colour_of(ramp((160, 60, 40), (100, 160, 250)))
    assert colour_distance(kept, colour_of(original)) is None  # grey: no hues to compare
    first = tone_distance(kept, colour_of(original))
    assert first is not None and first < 0.01
    second = tone_distance(kept, other)
    assert second is not None and second > 0.05
    assert tie_break(kept, colour_of(original)) < tie_break(kept, other)
    assert (
        tie_break(Colour((1.0,) + (0.0,) * 7, 50.0, (0.0, 0.0)), Colour((1.0,) + (0.0,) * 7, 50.0, (1.0, 0.5)))
        == TIE_BREAK_MOST
    )
    # 12-bit samples in a 16-bit PNG decode dark; relative to its brightest pixel, the tone is the same.
    encoded, data = cv2.imencode(".png", np.rint(original.astype(np.float64) * 4095 / 255).astype(np.uint16))
    deep = describe_content("deep.png", data.tobytes(), mtime_ns=0).description
    assert encoded and deep is not None
    assert tone_distance(deep.colour, colour_of(original)) < 0.01  # type: ignore[operator]
    untoned = Colour(other.hues, other.chroma)
    assert tone_distance(kept, untoned) is None
    assert tie_break(colour_of(original), untoned) == pytest.approx(
        COLOUR_TIE_WEIGHT * colour_distance(colour_of(original), other)
    )


def test_a_copy_ranks_its_own_ramp_above_ramps_of_nearby_colours(database: nearindex.NearIndex, tmp_path: Path) -> None:
    """Two ramps running the same way correlate 1.0 in grey; the one whose hues and tones the copy keeps comes first."""
    original = ramp((120, 40, 20), (60, 170, 230))
    other_hues = [
        ramp((140, 30, 60), (40, 190, 210)),
        ramp((160, 60, 40), (100, 160, 250)),
        ramp((90, 60, 30), (30, 200, 200)),
    ]
    other_tones = [
        ramp((150, 90, 70), (60, 170, 230)),
        ramp((170, 110, 90), (140, 220, 250)),
        ramp((120, 40, 20), (40, 110, 150)),
    ]
    others = other_hues + other_tones
    for other in others:
        distance = colour_distance(colour_of(original), colour_of(other))
        assert distance is not None and distance < COLOUR_DISTANCE  # not told apart by the colour test
        assert grey_correlation(original, other) > 0.999
    assert all(colour_distance(colour_of(original), colour_of(other)) > 0.1 for other in other_hues)  # type: ignore[operator]
    assert all(tone_distance(colour_of(original), colour_of(other)) > 0.1 for other in other_tones)  # type: ignore[operator]
    stored = tmp_path / "stored"
    stored.mkdir()
    synthetic.write_image(stored / "original.png", original)
    for index, other in enumerate(others):
        synthetic.write_image(stored / f"other-{index}.png", other)
    assert not database.add(stored, workers=0).failed
    copies = {
        "half": synthetic.scale(original, factor=0.5),
        "crop": original[20:340, 30:460],
        # Grey: no hues to tell, only tones (a ramp of other hues and nearly its grey tones may tie with it).
        "grey": synthetic.to_grayscale(original),
    }
    probes = {}
    for kind, copy in copies.items():
        probes[kind] = tmp_path / f"{kind}.jpg"
        synthetic.write_image(probes[kind], synthetic.jpeg_reencode(np.ascontiguousarray(copy), quality=80))
    # 12-bit samples in a 16-bit PNG: dark as stored, its original's tones once its brightest is 1.
    probes["deep"] = tmp_path / "deep.png"
    deep = np.rint(original.astype(np.float64) * 4095 / 255).astype(np.uint16)
    assert cv2.imwrite(str(probes["deep"]), deep)
    for kind, probe in probes.items():
        scores = {Path(match.path).name: match.score for match in database.query(probe, k=8)}
        outranked = range(len(other_hues), len(others)) if kind == "grey" else range(len(others))
        assert scores["original.png"] > max(scores.get(f"other-{i}.png", 0.0) for i in outranked), kind
        assert scores["original.png"] >= DEFAULT_SETTINGS.duplicate_threshold, kind
