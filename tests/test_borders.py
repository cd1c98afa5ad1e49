"""Uniform borders: letterboxes, pillarboxes and frames are left out; pictures, captions and gradients are not."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

import nearindex
from nearindex import synthetic
from nearindex.borders import MAX_DEPTH, NO_BORDERS, SEARCH_SIDE, Borders, find_borders, shows_bars
from nearindex.colour import colour_of, colours_differ
from nearindex.features import describe
from nearindex.intake import describe_content, describe_image
from nearindex.search import Side, relation_of, score_pair
from nearindex.settings import DEFAULT_SETTINGS

#: One pixel at the size borders are looked for, as a fraction of a 640 px side (and a little more).
STEP = 1.5 / SEARCH_SIDE

PICTURES = {
    "scene": synthetic.make_scene,
    "texture": synthetic.make_texture,
    "soft": synthetic.make_soft,
    "gradient": synthetic.make_gradient,
}


def gray(image: np.ndarray) -> np.ndarray:
    """A BGR uint8 image as OpenCV's grey, 0..1."""
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255


def framed(image: np.ndarray, *, top: int, bottom: int, left: int, right: int, value: int) -> np.ndarray:
    """``image`` inside flat bars of ``value`` of the given widths (pixels)."""
    return cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(value, value, value))


def correlation(first: np.ndarray, second: np.ndarray) -> float:
    """Correlation of two whole-image descriptors (unit norm, zero mean)."""
    return float(first @ second)


@pytest.mark.parametrize("kind", sorted(PICTURES))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pictures_have_no_borders(kind: str, seed: int) -> None:
    assert find_borders(gray(PICTURES[kind](seed))) == NO_BORDERS


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_captions_watermarks_and_screenshot_bars_are_not_borders(seed: int) -> None:
    picture = synthetic.make_scene(seed)
    for edited in (synthetic.add_caption(picture), synthetic.add_watermark(picture), synthetic.screenshot(picture)):
        borders = find_borders(gray(edited))
        assert borders.bottom == 0 and borders.left == 0 and borders.right == 0
        assert borders.top == 0


def figure(*, boxed: bool) -> np.ndarray:
    """A line drawing on white: a curve, a slanted line and a label, optionally inside a drawn box."""
    drawing = np.full((480, 640, 3), 255, np.uint8)
    if boxed:
        cv2.rectangle(drawing, (120, 90), (520, 390), (0, 0, 0), 3)
    cv2.line(drawing, (120, 90), (520, 390), (0, 0, 0), 3)
    cv2.ellipse(drawing, (320, 240), (150, 80), 20, 0, 270, (40, 40, 40), 2)
    cv2.putText(drawing, "x = 3", (200, 300), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (0, 0, 0), 3)
    return drawing


@pytest.mark.parametrize("boxed", [False, True])
def test_a_figures_white_margin_is_not_a_border(boxed: bool) -> None:
    """A line drawing's first line of ink, a drawn box's too, covers little of its width: no picture's edge."""
    assert find_borders(gray(figure(boxed=boxed))) == NO_BORDERS


def test_flat_images_have_no_borders() -> None:
    assert find_borders(gray(synthetic.make_flat(90))) == NO_BORDERS


@pytest.mark.parametrize("value", [0, 255, 128])
@pytest.mark.parametrize("kind", sorted(PICTURES))
def test_a_letterbox_is_found_to_a_pixel(kind: str, value: int) -> None:
    picture = PICTURES[kind](4)
    bar = picture.shape[0] // 8
    boxed = framed(picture, top=bar, bottom=bar, left=0, right=0, value=value)
    borders = find_borders(gray(boxed))
    assert borders.left == borders.right == 0
    expected = bar / boxed.shape[0]
    for found, edge in ((borders.top, gray(picture)[:3]), (borders.bottom, gray(picture)[-3:])):
        # A bar may only be missed where the picture's own edge has much of the bar's colour.
        assert abs(found - expected) <= STEP or (found == 0 and np.mean(np.abs(edge - value / 255) > 0.06) < 0.7)
    assert borders.found or value == 128


@pytest.mark.parametrize("kind", sorted(PICTURES))
@pytest.mark.parametrize("seed", [1, 2])
def test_pillarboxes_and_frames_survive_jpeg(kind: str, seed: int) -> None:
    picture = PICTURES[kind](seed)
    boxed = framed(picture, top=40, bottom=40, left=160, right=160, value=0)
    borders = find_borders(gray(synthetic.jpeg_reencode(boxed, quality=30)))
    height, width = boxed.shape[:2]
    for found, expected in ((borders.top, 40 / height), (borders.bottom, 40 / height)):
        assert abs(found - expected) <= 2 * STEP
    for found, expected in ((borders.left, 160 / width), (borders.right, 160 / width)):
        assert abs(found - expected) <= 2 * STEP


@pytest.mark.parametrize("bar", [0.04, 0.08])
def test_frames_of_one_and_of_two_colours_are_found(bar: float) -> None:
    """Black bars all round; white bars above and below and black ones at the sides."""
    picture = synthetic.make_scene(3)
    height, width = picture.shape[:2]
    across, down = round(bar * height / (1 - 2 * bar)), round(bar * width / (1 - 2 * bar))
    two_colours = framed(framed(picture, top=0, bottom=0, left=down, right=down, value=0), top=across,
                         bottom=across, left=0, right=0, value=255)  # fmt: skip
    for boxed in (two_colours, framed(picture, top=across, bottom=across, left=down, right=down, value=0)):
        borders = find_borders(gray(boxed))
        assert borders.box == pytest.approx((bar, bar, 1 - 2 * bar, 1 - 2 * bar), abs=2 * STEP)


def test_a_blank_slide_in_a_letterbox_is_described_whole() -> None:
    """Without its bars it would be flat, and a flat image matches nothing but its own bytes."""
    slide = framed(synthetic.make_flat(200, width=640, height=480), top=80, bottom=80, left=0, right=0, value=0)
    description = describe(gray(slide))
    assert not description.flat and not description.borders.found


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (5, 5, 3), (5,)])
def test_describing_something_not_a_grey_image_is_refused_clearly(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="expected a non-empty 2-D grayscale image"):
        describe(np.zeros(shape, np.float32))


def test_bars_leaving_too_little_picture_are_not_borders() -> None:
    picture = synthetic.make_scene(5, width=64, height=64)
    bar = round(64 * MAX_DEPTH / (1 - 2 * MAX_DEPTH)) + 40
    boxed = framed(picture, top=bar, bottom=bar, left=0, right=0, value=0)
    assert find_borders(gray(boxed)).top == 0


def test_trim_cuts_the_same_content_from_any_size_of_an_image() -> None:
    borders = Borders(left=0.1, top=0.2, right=0.05, bottom=0.25)
    for height, width in ((480, 640), (120, 160), (7, 9)):
        content = borders.trim(np.zeros((height, width, 3), np.uint8))
        assert content.shape[2] == 3
        assert abs(content.shape[0] - 0.55 * height) <= 1 and abs(content.shape[1] - 0.85 * width) <= 1
    assert borders.content_size((640, 480)) == (544, 264)
    rng = np.random.default_rng(0)
    for _ in range(200):
        width, height = (int(side) for side in rng.integers(1, 400, 2))
        cut = Borders(*(float(share) for share in rng.uniform(0, 0.45, 4)))
        assert cut.content_size((width, height)) == cut.trim(np.zeros((height, width))).shape[::-1]
    assert borders.box == pytest.approx((0.1, 0.2, 0.85, 0.55))
    assert borders.found and not NO_BORDERS.found
    assert Borders(top=0.9, bottom=0.9).trim(np.zeros((10, 10))).size > 0


@pytest.mark.parametrize("kind", ["gradient", "soft", "scene"])
def test_a_letterboxed_copy_is_described_like_its_picture(kind: str) -> None:
    """Without its bars the copy's descriptor is its picture's; with them (trimming off) it is not."""
    picture = PICTURES[kind](6)
    boxed = synthetic.add_border(picture, fraction=0.1, value=0)
    original, copy = describe(gray(picture)), describe(gray(boxed))
    assert copy.borders.found and not original.borders.found
    whole = describe(gray(boxed), settings=replace(DEFAULT_SETTINGS, trim_borders=False))
    assert not whole.borders.found
    trimmed_fit = correlation(original.descriptor, copy.descriptor)
    assert trimmed_fit > 0.98
    assert trimmed_fit > correlation(original.descriptor, whole.descriptor)


def test_colours_are_taken_inside_the_borders() -> None:
    """A blue frame around a smooth yellow-green picture does not add its hue to the picture's colours."""
    picture = synthetic.make_gradient(7)
    boxed = cv2.copyMakeBorder(picture, 60, 60, 80, 80, cv2.BORDER_CONSTANT, value=(255, 0, 0))
    original, copy = describe_image(picture), describe_image(boxed)
    assert original.colour is not None and copy.colour is not None
    assert copy.borders.found
    assert not colours_differ(copy.colour, original.colour)
    whole = colour_of(boxed)
    assert colours_differ(whole, original.colour)


def test_a_file_and_its_in_memory_image_find_the_same_borders(tmp_path: Path) -> None:
    boxed = synthetic.add_border(synthetic.make_soft(8), fraction=0.12, value=20)
    path = tmp_path / "boxed.png"
    synthetic.write_image(path, boxed)
    from_file = describe_content(str(path), path.read_bytes(), mtime_ns=0).description
    assert from_file is not None
    in_memory = describe_image(boxed).borders
    assert from_file.borders.box == pytest.approx(in_memory.box, abs=1e-3) and in_memory.top > 0.09


def test_a_letterboxed_smooth_copy_finds_its_picture_and_contains_it(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for seed in range(8):
        synthetic.write_image(folder / f"gradient{seed}.png", synthetic.make_gradient(seed))
        synthetic.write_image(folder / f"soft{seed}.png", synthetic.make_soft(seed))
    picture = synthetic.make_gradient(3)
    boxed = synthetic.add_border(picture, fraction=0.15, value=0)
    query = tmp_path / "boxed.png"
    synthetic.write_image(query, boxed)
    with nearindex.open(tmp_path / "db") as db:
        assert not db.add(folder, workers=0).failed
        best = db.query(query, k=3)[0]
        stored = tmp_path / "stored-boxed"
        stored.mkdir()
        synthetic.write_image(stored / "boxed.png", boxed)
        assert not db.add(stored, workers=0).failed
        reverse = next(m for m in db.query(folder / "gradient3.png", k=3) if m.path.endswith("boxed.png"))
        info = db.info()
    assert (info.trim_borders, info.bordered, info.contents) == (True, 1, 17)
    assert info.coloured > 0  # gradients and soft fields keep their colours
    assert best.path.endswith("/gradient3.png") and best.score >= DEFAULT_SETTINGS.duplicate_threshold
    bar = round(picture.shape[0] * 0.15)
    assert best.relation.kind == "crop"
    x, y, width, height = best.relation.box
    assert (x, width) == (0, boxed.shape[1]) and abs(y - bar) <= 3 and abs(height - picture.shape[0]) <= 6
    assert reverse.relation.kind == "contains" and abs(reverse.relation.box[1] - bar) <= 3
    assert reverse.relation.scale == pytest.approx(1.0, abs=0.03)


def boxed_side(image: np.ndarray) -> Side:
    """A Side of an in-memory image, as a query or a stored content would have it."""
    return Side.of_description(describe_image(image), DEFAULT_SETTINGS, (image.shape[1], image.shape[0]))


@pytest.mark.parametrize("boxing", ["letterbox", "pillarbox"])
def test_edits_hiding_a_bar_of_a_boxed_smooth_picture_still_match_it(boxing: str) -> None:
    """A caption over a pillarbox, a watermark on a bar or JPEG ringing leaves one image with a bar the other lacks.

    The two are compared again trimmed alike (``search.score_pair``); copies
    still outscore every other boxed smooth picture, which, described with
    their bars, matched each other for a quarter of pairs.
    """

    def boxed(picture: np.ndarray) -> np.ndarray:
        if boxing == "letterbox":
            return synthetic.add_border(picture, fraction=0.12)
        return framed(picture, top=0, bottom=0, left=picture.shape[1] // 6, right=picture.shape[1] // 6, value=0)

    pictures = [boxed(make(seed)) for make in (synthetic.make_soft, synthetic.make_gradient) for seed in range(3)]
    sides = [boxed_side(picture) for picture in pictures]
    unrelated = max(score_pair(a, b).score for i, a in enumerate(sides) for b in sides[i + 1 :])
    edits = ("watermark", "jpeg30") if boxing == "letterbox" else ("caption", "watermark", "jpeg30")
    for picture, side in zip(pictures, sides, strict=True):
        for edit in edits:
            copy = score_pair(side, boxed_side(synthetic.EDITS[edit](picture))).score
            assert copy >= DEFAULT_SETTINGS.duplicate_threshold and copy > unrelated, edit


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_bar_covered_in_part_shows_and_a_picture_shows_none(seed: int) -> None:
    """``shows_bars`` lets only an image that has the other's bar be trimmed like it."""
    picture = synthetic.make_soft(seed)
    pillars = framed(picture, top=0, bottom=0, left=107, right=107, value=0)
    bars = find_borders(gray(pillars))
    captioned = describe_image(synthetic.add_caption(pillars))
    assert not captioned.borders.found
    assert shows_bars(captioned.thumbnail, captioned.borders, bars, blur=8)
    for other in (synthetic.make_soft(seed + 10), synthetic.make_gradient(seed), synthetic.make_scene(seed)):
        unrelated = describe_image(other)
        assert not shows_bars(unrelated.thumbnail, unrelated.borders, bars, blur=8)


def test_a_bar_under_a_pixel_of_a_thin_thumbnail_is_not_judged() -> None:
    """A thin figure's thumbnail is a few pixels across: a bar of 3 % of it rounds to no line (it raised)."""
    thin = describe_image(np.ascontiguousarray(synthetic.make_scene(4, width=60, height=640)))
    assert thin.thumbnail.shape[1] < 20
    bars = Borders(left=0.03, right=0.03)
    assert shows_bars(thin.thumbnail, thin.borders, bars, blur=8)
    assert not shows_bars(thin.thumbnail, thin.borders, Borders(left=0.3), blur=2)


def test_a_pair_compared_again_trimmed_alike_relates_in_its_own_pixels() -> None:
    """A watermark on a letterbox's bottom bar hides it; the crop's box is still where the picture is."""
    boxed = synthetic.add_border(synthetic.make_scene(5), fraction=0.12)  # picture rows 58..538
    cropped = synthetic.add_watermark(boxed)[:, 80:560]
    whole, crop = boxed_side(boxed), boxed_side(cropped)
    assert whole.borders.bottom > 0 and crop.borders.bottom == 0
    pair = score_pair(whole, crop)
    relation = relation_of(whole, crop, pair, DEFAULT_SETTINGS.duplicate_threshold)
    assert pair.sides is not None and relation.kind == "crop"
    assert relation.box is not None and np.abs(np.subtract(relation.box, (80, 58, 480, 480))).max() <= 4


def test_joined_borders_always_leave_a_tenth_of_each_side() -> None:
    deep = Borders(top=MAX_DEPTH, bottom=MAX_DEPTH, left=0.3, right=0.0)
    joined = deep.joined(NO_BORDERS, seam=0.06)
    assert min(joined.box[2:]) >= 1 - 2 * MAX_DEPTH - 1e-9
