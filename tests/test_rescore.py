"""Rescoring relations: edits stay close, unrelated and flat images do not."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from nearindex import placement as placement_module
from nearindex import planes as planes_module
from nearindex import rescore as rescore_module
from nearindex import synthetic
from nearindex.features import describe
from nearindex.placement import template_scales
from nearindex.planes import Prepared, prepare
from nearindex.rescore import EXCLUSION_PENALTY, ROTATIONS, SMOOTH_TURNS, rescore
from nearindex.settings import DEFAULT_SETTINGS, Settings
from nearindex.smooth import DEEPEST_BAND, LOW_DETAIL, SAME_FRAMING, is_smooth, smooth_score

TOLERATED_EDITS = (
    "crop90", "crop75", "crop60", "half", "jpeg30", "caption", "border", "gamma", "shift", "rotate3", "rotate8",
    "screenshot", "crop75+caption+jpeg50",
)  # fmt: skip


def prepared(bgr: np.ndarray, settings: Settings = DEFAULT_SETTINGS) -> tuple[Prepared, np.ndarray]:
    description = describe(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255, settings=settings)
    return prepare(description.thumbnail), description.descriptor


def score(first: np.ndarray, second: np.ndarray) -> float:
    (a, va), (b, vb) = prepared(first), prepared(second)
    return rescore(a, b, coarse=float(np.dot(va, vb))).score


@pytest.fixture(scope="module")
def unrelated_scores() -> list[float]:
    scenes = [synthetic.make_scene(seed) for seed in range(40, 52)]
    return [score(a, b) for i, a in enumerate(scenes) for b in scenes[i + 1 :]]


@pytest.mark.parametrize("edit", TOLERATED_EDITS)
def test_an_edited_copy_scores_above_every_unrelated_pair(edit: str, unrelated_scores: list[float]) -> None:
    original = synthetic.make_scene(9)
    assert score(original, synthetic.EDITS[edit](original)) > max(unrelated_scores)


def test_rescoring_recovers_what_a_crop_costs_the_coarse_correlation() -> None:
    original = synthetic.make_scene(11)
    cropped = synthetic.EDITS["crop75"](original)
    (a, va), (b, vb) = prepared(original), prepared(cropped)
    coarse = float(np.dot(va, vb))
    assert rescore(a, b, coarse=coarse).score > coarse


def test_score_is_symmetric_and_identity_is_near_one() -> None:
    first, second = synthetic.make_scene(12), synthetic.EDITS["caption"](synthetic.make_scene(12))
    assert score(first, second) == pytest.approx(score(second, first), abs=1e-6)
    assert score(first, first) > 0.99


def test_flat_image_scores_zero_against_anything() -> None:
    flat = synthetic.make_flat(128)
    assert score(flat, synthetic.make_scene(2)) == 0.0
    assert score(flat, flat) == 0.0


def test_a_smooth_gradient_does_not_match_unrelated_scenes_as_a_duplicate() -> None:
    gradient = synthetic.make_gradient(4)
    assert max(score(gradient, synthetic.make_scene(seed)) for seed in range(20)) < DEFAULT_SETTINGS.duplicate_threshold


def test_template_scales_run_from_fitting_down_to_about_half() -> None:
    scales = template_scales((96, 128), (96, 128))
    assert list(scales) == sorted(scales, reverse=True)
    assert scales[0] == pytest.approx(1 / 0.8)
    assert 0.5 < scales[-1] < 0.6


def test_tiny_thumbnails_do_not_crash() -> None:
    line = prepare(np.tile(np.arange(128, dtype=np.uint8), (1, 1)))
    assert 0.0 <= rescore(line, line).score <= 1.0


@pytest.mark.parametrize("edit", ["jpeg30", "half", "crop90"])
def test_a_smooth_gradient_matches_its_copies_and_no_other_gradient(edit: str) -> None:
    gradients = [synthetic.make_gradient(seed) for seed in range(6)]
    for gradient in gradients:
        assert score(gradient, synthetic.EDITS[edit](gradient)) >= DEFAULT_SETTINGS.duplicate_threshold
    unrelated = [score(a, b) for i, a in enumerate(gradients) for b in gradients[i + 1 :]]
    assert max(unrelated) < 0.5


@pytest.mark.parametrize("edit", ["rotate3", "rotate8"])
def test_a_smooth_gradient_matches_its_turned_copies_either_way_round(edit: str) -> None:
    for seed in range(6):
        gradient = synthetic.make_gradient(seed)
        (original, va), (turned, vb) = prepared(gradient), prepared(synthetic.EDITS[edit](gradient))
        assert is_smooth(original) and is_smooth(turned)
        coarse = float(np.dot(va, vb))
        forward, backward = rescore(original, turned, coarse=coarse), rescore(turned, original, coarse=coarse)
        assert forward.score == backward.score >= DEFAULT_SETTINGS.duplicate_threshold
        assert forward.frame == backward.frame == SAME_FRAMING  # a smooth image has no detail to place by


def test_turning_back_is_what_finds_a_smooth_gradient_turned_8_degrees() -> None:
    for seed in range(6):
        gradient = synthetic.make_gradient(seed)
        (original, va), (turned, vb) = prepared(gradient), prepared(synthetic.EDITS["rotate8"](gradient))
        coarse = float(np.dot(va, vb))
        unturned, _ = smooth_score(original, turned, coarse=coarse, turns=(), penalty=EXCLUSION_PENALTY)
        turned_back, _ = smooth_score(original, turned, coarse=coarse, turns=ROTATIONS, penalty=EXCLUSION_PENALTY)
        assert turned_back >= DEFAULT_SETTINGS.duplicate_threshold
        assert turned_back > unturned + 0.05


def test_half_turns_find_a_smooth_gradient_turned_3_degrees_nearly_whole() -> None:
    """Unturned or turned by 7 degrees, a 3-degree turn loses what another gradient's angle may not."""
    for seed in range(6):
        gradient = synthetic.make_gradient(seed)
        (original, va), (turned, vb) = prepared(gradient), prepared(synthetic.EDITS["rotate3"](gradient))
        coarse = float(np.dot(va, vb))
        whole, _ = smooth_score(original, turned, coarse=coarse, turns=ROTATIONS, penalty=EXCLUSION_PENALTY)
        halves, _ = smooth_score(original, turned, coarse=coarse, turns=SMOOTH_TURNS, penalty=EXCLUSION_PENALTY)
        assert halves > 0.99 and halves > whole
        assert rescore(original, turned, coarse=coarse).score == pytest.approx(halves)


def test_a_patch_pasted_on_a_smooth_gradient_leaves_it_a_copy_of_that_gradient_alone() -> None:
    gradients = [synthetic.make_gradient(seed) for seed in range(6)]
    for seed, gradient in enumerate(gradients):
        faked = synthetic.paste_patch(gradient, synthetic.make_scene(20 + seed), seed=seed)
        assert prepared(faked)[0].central_detail >= LOW_DETAIL  # the patch is in its middle
        own = score(gradient, faked)
        assert DEFAULT_SETTINGS.duplicate_threshold <= own <= 1 - EXCLUSION_PENALTY  # what leaving a region out costs
        assert max(score(other, faked) for other in gradients if other is not gradient) < 0.5


def test_a_smooth_gradient_has_less_detail_than_any_scene() -> None:
    gradients = [prepared(synthetic.make_gradient(seed))[0].detail for seed in range(6)]
    scenes = [prepared(synthetic.make_scene(seed))[0].detail for seed in range(6)]
    assert max(gradients) < LOW_DETAIL < min(scenes)


def frame(image: np.ndarray, width: int, value: int) -> np.ndarray:
    framed = image.copy()
    cv2.rectangle(framed, (0, 0), (image.shape[1] - 1, image.shape[0] - 1), (value, value, value), width)
    return framed


def test_a_smooth_gradient_never_matches_an_image_with_detail_all_over_it() -> None:
    gradient = synthetic.make_gradient(3)
    textured = (0.75 * gradient + 0.25 * synthetic.make_texture(3, width=640, height=480)).astype(np.uint8)
    copies = [synthetic.EDITS["caption"](gradient), frame(gradient, 1, 64), frame(gradient, 3, 255)]
    smooth, busy = prepared(gradient)[0], prepared(textured)[0]
    assert busy.central_detail >= LOW_DETAIL
    # Even were their vectors near-identical (a squashed diagram can be a ramp), only copies
    # whose added detail is at the edges (or in one region: a paste, above) keep a score, whichever comes first.
    assert rescore(smooth, busy, coarse=0.999).score == rescore(busy, smooth, coarse=0.999).score == 0.0
    for copy in (prepared(image)[0] for image in copies):
        assert copy.central_detail < LOW_DETAIL
        assert min(rescore(smooth, copy, coarse=0.999).score, rescore(copy, smooth, coarse=0.999).score) > 0.9


def window_of(image: np.ndarray, keep: float) -> np.ndarray:
    """The part of ``image`` keeping ``keep`` of each side, off-centre (from 10 % down and 20 % right)."""
    height, width = image.shape[:2]
    top, left = height // 10, width // 5
    return image[top : top + round(keep * height), left : left + round(keep * width)]


CROP_SIDES = (0.58, 0.62, 0.66, 0.7, 0.74, 0.78, 0.82)


def crop_placements(original: np.ndarray) -> list[tuple[float, float]]:
    """(score, error of the found scale) of each crop of ``original`` rescored against it."""
    found = []
    for keep in CROP_SIDES:
        (a, va), (b, vb) = prepared(window_of(original, keep)), prepared(original)
        rescored = rescore(a, b, coarse=float(np.dot(va, vb)))
        assert rescored.frame is not None
        found.append((rescored.score, float(np.abs(np.subtract(rescored.frame.scale, keep)).mean())))
    return found


@pytest.mark.parametrize("seed", [21, 22])
def test_refining_the_scale_places_crops_closer_to_their_scale_and_scores_them_higher(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = synthetic.make_scene(seed)
    refined = np.array(crop_placements(original))
    monkeypatch.setattr(placement_module, "SCALE_REFINEMENTS", ())
    on_the_grid = np.array(crop_placements(original))
    assert refined[:, 1].mean() < on_the_grid[:, 1].mean()
    # Placing between pixels (peak_shift) recovers part of what a scale between steps costs.
    assert refined[:, 0].mean() > on_the_grid[:, 0].mean() + 0.001
    assert (refined[:, 0] > on_the_grid[:, 0] - 0.01).all()


def test_a_turned_thumbnail_is_kept_and_scores_as_one_turned_afresh() -> None:
    """One image meets many others: its turned versions are made once and give the same scores."""
    original, rotated = (
        prepared(synthetic.make_scene(13))[0],
        prepared(synthetic.EDITS["rotate8"](synthetic.make_scene(13)))[0],
    )
    turned = original.turned(7.0)
    assert original.turned(7.0) is turned and original.turned(-7.0) is not turned
    afresh = planes_module.rotate(original, 7.0)
    np.testing.assert_array_equal(turned.plain, afresh.plain)
    first = rescore(original, rotated).score
    assert rescore(original, rotated).score == first == rescore(prepared(synthetic.make_scene(13))[0], rotated).score


@pytest.mark.parametrize("seed", [21, 22])
def test_a_turned_copy_is_found_again_near_the_unturned_scale_and_only_there(seed: int) -> None:
    """The rotation retry searches a turned source only within a scale step of the unturned placement."""
    original = prepared(synthetic.make_scene(seed))[0]
    rotated = prepared(synthetic.EDITS["crop75"](synthetic.EDITS["rotate8"](synthetic.make_scene(seed))))[0]
    turned = rotated.turned(-7.0)
    everywhere = placement_module.best_placement(turned, original)
    unturned = rescore_module.align_into(rotated, original)
    near = placement_module.best_placement(turned, original, near=unturned.scale)
    assert everywhere is not None and near is not None and unturned.scale is not None
    assert near == everywhere  # a small turn leaves the scale where it was
    scales = placement_module.template_scales(turned.plain.shape, original.plain.shape)
    step = (scales[0] / scales[-1]) ** (1 / (placement_module.SCALE_STEPS - 1))
    far = placement_module.best_placement(turned, original, near=scales[-1])
    assert far is not None and far.scale <= scales[-1] * step**1.5 < everywhere.scale


def soft_page(seed: int, *, width: int = 640, height: int = 440) -> np.ndarray:
    """A page of pale, defocused text: little contrast, next to which a caption band's edge is strong."""
    rng = np.random.default_rng(seed)
    page = np.full((height, width, 3), 235, np.uint8)
    for baseline in range(30, height - 10, 26):
        x = 12 + int(rng.integers(0, 20))
        while x < width - 40:
            word = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), int(rng.integers(2, 9))))
            cv2.putText(page, word, (x, baseline), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (190, 190, 190), 1, cv2.LINE_AA)
            x += 14 * len(word) + 12
    return cv2.GaussianBlur(page, (0, 0), 3.5)


def captioned_crop_found(seed: int) -> tuple[float, float]:
    """(score, mean error of the found frame's scale and offset) of a captioned crop of a soft page."""
    original = soft_page(seed)
    height, width = original.shape[:2]
    keep, start = 0.87, 0.1
    top, left = round(start * height), round(start * width)
    edited = synthetic.add_caption(original[top : top + round(keep * height), left : left + round(keep * width)])
    (a, va), (b, vb) = prepared(edited), prepared(original)
    rescored = rescore(a, b, coarse=float(np.dot(va, vb)))
    assert rescored.frame is not None
    error = np.abs(np.subtract([*rescored.frame.scale, *rescored.frame.offset], [keep, keep, start, start])).mean()
    return rescored.score, float(error)


def test_a_caption_band_does_not_pull_a_crop_of_a_soft_page_off_its_place(monkeypatch: pytest.MonkeyPatch) -> None:
    """Placed on evened band-pass planes, the strong edge of a caption no longer decides where the crop lies."""
    seeds = (0, 1, 2, 3)
    evened = np.array([captioned_crop_found(seed) for seed in seeds])
    pages = [prepared(soft_page(seed)) for seed in (10, 11, 12)]
    unrelated = [rescore(a, b, coarse=float(np.dot(va, vb))).score for (a, va), (b, vb) in
                 ((pages[0], pages[1]), (pages[0], pages[2]), (pages[1], pages[2]))]  # fmt: skip
    with monkeypatch.context() as patched:
        patched.setattr(planes_module, "EVENING", 1e9)  # s * tanh(v / s) is v here: the band-pass itself
        raw = np.array([captioned_crop_found(seed) for seed in seeds])
    assert (evened[:, 1] < 0.015).all()
    assert raw[:, 1].mean() > 2 * evened[:, 1].mean()
    assert (evened[:, 0] > raw[:, 0]).all()
    assert evened[:, 0].min() > max(unrelated) + 0.2


def lone_object(seed: int, side: int) -> np.ndarray:
    """A small scene of ``side`` pixels on a white page of 640 x 480: most of the thumbnail is flat."""
    page = np.full((480, 640, 3), 255, np.uint8)
    page[200 : 200 + side * 3 // 4, 260 : 260 + side] = cv2.resize(synthetic.make_scene(seed), (side, side * 3 // 4))
    return page


@pytest.mark.parametrize("side", [60, 160])
def test_the_flat_part_of_a_mostly_flat_thumbnail_stays_flat_when_evened(side: int) -> None:
    """Where most of a thumbnail is flat, its median is rounding noise: evening must not make a sign map of it.

    (Described whole: the page's margins around a rectangular scene are a frame, ``borders``.)
    """
    thumbnail, _ = prepared(lone_object(7, side), replace(DEFAULT_SETTINGS, trim_borders=False))
    assert float(np.median(np.abs(thumbnail.bandpass))) < 0.1
    evened = np.abs(thumbnail.evened)
    height, width = evened.shape
    corner = evened[: height // 5, : width // 5]  # white page, far from the object
    assert corner.max() < 0.1 * evened.max()


@pytest.mark.parametrize("centre", [(10.0, 7.0), (10.3, 6.8), (9.55, 7.45)], ids=str)
def test_a_peak_between_pixels_is_placed_between_them(centre: tuple[float, float]) -> None:
    columns, rows = np.meshgrid(np.arange(21, dtype=np.float32), np.arange(15, dtype=np.float32))
    response = np.exp(-((columns - centre[0]) ** 2 + (rows - centre[1]) ** 2) / 8).astype(np.float32)
    _, _, _, (x, y) = cv2.minMaxLoc(response)
    shift = placement_module.peak_shift(response, x, y)
    assert x + shift[0] == pytest.approx(centre[0], abs=0.05)
    assert y + shift[1] == pytest.approx(centre[1], abs=0.05)


def fine_texture(seed: int) -> np.ndarray:
    """Blurred noise whose detail is a pixel or two wide at the rescorer's size: a whole-pixel shift costs it."""
    noise = cv2.GaussianBlur(np.random.default_rng(seed).random((480, 640)).astype(np.float32), (0, 0), 4)
    grey = (255 * (noise - noise.min()) / (noise.max() - noise.min())).astype(np.uint8)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)


@pytest.mark.parametrize("seed", [21, 22])
def test_crops_of_fine_detail_are_placed_between_pixels_and_score_higher(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = fine_texture(seed)
    between = np.array(crop_placements(original))
    monkeypatch.setattr(placement_module, "peak_shift", lambda *_: (0.0, 0.0))
    whole_pixels = np.array(crop_placements(original))
    assert between[:, 0].mean() > whole_pixels[:, 0].mean() + 0.003
    assert between[:, 1].mean() <= whole_pixels[:, 1].mean() + 0.001


@pytest.mark.parametrize("keep", [1.0, 0.7])
def test_the_overlap_holds_the_template_where_the_blocks_compare_it(keep: float) -> None:
    """``Placement.overlap`` maps the whole source as the blocks' template is placed: their common part agrees."""
    source = prepared(window_of(synthetic.make_scene(5), keep))[0]
    target = prepared(synthetic.make_scene(5))[0]
    placement = placement_module.best_placement(source, target)
    assert placement is not None
    (_, _), (whole, window) = placement.overlap(source, target)
    x, y = (
        placement.span(1, source.plain.shape, target.plain.shape),
        placement.span(0, source.plain.shape, target.plain.shape),
    )
    template, _ = source.central_resized("plain", size=(placement.width, placement.height), scale=placement.scale)
    inside = whole[placement.y - y.first :, placement.x - x.first :][: placement.height, : placement.width]
    assert inside.shape == template.shape and whole.shape == window.shape
    assert rescore_module.correlation(inside[1:-1, 1:-1], template[1:-1, 1:-1]) > 0.99


def test_a_thin_source_shifted_between_pixels_keeps_its_whole_overlap() -> None:
    """A source 4 px high has no margin: shifted, its overlap must still hold the template's rows."""
    rng = np.random.default_rng(3)
    source = Prepared(plain=rng.random((4, 40), dtype=np.float32) * 255, bandpass=rng.random((4, 40), dtype=np.float32))
    target = Prepared(
        plain=rng.random((30, 60), dtype=np.float32) * 255, bandpass=rng.random((30, 60), dtype=np.float32)
    )
    placement = placement_module.Placement(1.0, 10, 12, 32, 4, shift=(0.3, 0.4))
    (bandpass, window), _ = placement.overlap(source, target)
    assert bandpass.shape == window.shape and window.shape[0] >= 4 and window.shape[1] >= 32


def test_a_smooth_gradient_matches_its_screenshots_beside_the_bar_and_no_other_gradient() -> None:
    gradients = [synthetic.make_gradient(seed) for seed in range(6)]
    shots = [synthetic.EDITS["screenshot"](gradient) for gradient in gradients]
    for gradient, shot in zip(gradients, shots, strict=True):
        assert score(gradient, shot) >= DEFAULT_SETTINGS.duplicate_threshold
    pairs = [(gradient, shot) for i, gradient in enumerate(gradients) for j, shot in enumerate(shots) if i != j]
    unrelated = [score(gradient, shot) for gradient, shot in pairs]
    assert max(unrelated) < 0.5


def test_only_an_image_with_detail_along_one_edge_alone_has_a_band_there() -> None:
    gradient = synthetic.make_gradient(2)
    shot, scene = prepared(synthetic.EDITS["screenshot"](gradient))[0], prepared(synthetic.make_scene(2))[0]
    bar_share = 1 - synthetic.scale(gradient, factor=0.3).shape[0] / synthetic.EDITS["screenshot"](gradient).shape[0]
    (band,) = shot.bands(below=LOW_DETAIL, deepest=DEEPEST_BAND)
    assert (band.axis, band.at_end) == (0, False)  # the bar is on top
    assert bar_share <= band.depth / shot.plain.shape[0] <= bar_share + 0.1  # and the blur spreads its edge a little
    assert prepared(gradient)[0].bands(below=LOW_DETAIL, deepest=DEEPEST_BAND) == ()  # no detail to cut off
    assert scene.bands(below=LOW_DETAIL, deepest=DEEPEST_BAND) == ()  # detail everywhere
