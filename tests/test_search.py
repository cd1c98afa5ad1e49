"""Query, compare and duplicates on a generated collection with edited copies."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import nearindex
from nearindex import search as search_module
from nearindex import synthetic
from nearindex.intake import describe_image
from nearindex.search import Side, best_inner_product, candidate_contents, describe_query
from nearindex.settings import DEFAULT_SETTINGS, WINDOW_COUNT, WINDOWS

from .conftest import Collection


def family_of(collection: Collection, seed: int) -> set[str]:
    return {str(collection.originals[seed])} | {str(p) for p in collection.edits.get(seed, {}).values()}


def test_every_edited_copy_outranks_every_unrelated_image(filled: nearindex.NearIndex, collection: Collection) -> None:
    for seed, edits in collection.edits.items():
        for name, path in edits.items():
            results = filled.query(path, k=50)
            family = family_of(collection, seed)
            worst_family = min(m.score for m in results if m.path in family)
            best_other = max((m.score for m in results if m.path not in family), default=0.0)
            assert worst_family > best_other, f"{name} of scene {seed}"


def test_a_query_image_need_not_be_stored(filled: nearindex.NearIndex, collection: Collection, tmp_path: Path) -> None:
    probe = tmp_path / "probe.jpg"
    synthetic.write_image(probe, synthetic.screenshot(synthetic.make_scene(1), seed=3))
    best = filled.query(probe, k=1)[0]
    assert best.path == str(collection.originals[1]) or best.path in family_of(collection, 1)
    assert best.score >= DEFAULT_SETTINGS.duplicate_threshold


def test_results_are_ranked_limited_and_filtered(filled: nearindex.NearIndex, collection: Collection) -> None:
    results = filled.query(collection.originals[0], k=4)
    assert len(results) == 4
    assert [m.score for m in results] == sorted((m.score for m in results), reverse=True)
    assert results[0].path == str(collection.originals[0]) and results[0].score == 1.0
    strict = filled.query(collection.originals[0], k=50, min_score=0.9)
    assert strict and all(m.score >= 0.9 for m in strict)


def test_k_must_be_positive(filled: nearindex.NearIndex, collection: Collection) -> None:
    with pytest.raises(ValueError, match="k must be >= 1"):
        filled.query(collection.originals[0], k=0)


def test_duplicates_group_each_original_with_its_edits_and_nothing_else(
    filled: nearindex.NearIndex, collection: Collection
) -> None:
    groups = filled.duplicates()
    families = {seed: family_of(collection, seed) for seed in collection.edits}
    for group in groups:
        assert len([seed for seed, family in families.items() if set(group.paths) <= family]) == 1
    for seed, family in families.items():
        # Every pair inside a group must match: an edit that matches its original but not every
        # other edit (a crop against a shift) is grouped with the original apart; most edits match.
        grouped = {path for group in groups if set(group.paths) <= family for path in group.paths}
        assert str(collection.originals[seed]) in grouped and len(grouped) >= len(family) - 2
    assert all(g.score >= DEFAULT_SETTINGS.duplicate_threshold for g in groups)
    assert [len(g.paths) for g in groups] == sorted((len(g.paths) for g in groups), reverse=True)


def test_byte_identical_flat_images_are_grouped_but_match_nothing_else(
    database: nearindex.NearIndex, collection: Collection
) -> None:
    for name in ("flat-a.png", "flat-b.png"):
        synthetic.write_image(collection.root / name, synthetic.make_flat(90))
    database.add(collection.root, workers=0)
    flat_group = {str(collection.root / "flat-a.png"), str(collection.root / "flat-b.png")}
    groups = [set(g.paths) for g in database.duplicates()]
    assert flat_group in groups
    matches = database.query(collection.root / "flat-a.png", k=10)
    assert {m.path for m in matches if m.score > 0} == flat_group


def test_compare_needs_no_database(collection: Collection) -> None:
    edited = nearindex.compare(collection.originals[0], collection.edits[0]["crop75"])
    unrelated = nearindex.compare(collection.originals[0], collection.unrelated[-1])
    assert edited.duplicate and not unrelated.duplicate
    assert edited.score > unrelated.score
    same = nearindex.compare(collection.originals[0], collection.originals[0])
    assert (same.score, same.coarse, same.duplicate) == (1.0, 1.0, True)


def test_compare_reports_a_bad_file_with_its_path(collection: Collection, tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(nearindex.ImageError) as raised:
        nearindex.compare(collection.originals[0], bad)
    assert str(raised.value).startswith(f"{bad}: ")


def test_a_mirrored_copy_is_found_and_reported_as_mirrored(
    filled: nearindex.NearIndex, collection: Collection, tmp_path: Path
) -> None:
    probe = tmp_path / "flipped.png"
    synthetic.write_image(probe, synthetic.flip_horizontal(synthetic.make_scene(4)))
    best = filled.query(probe, k=1)[0]
    assert best.path == str(collection.originals[4])
    assert best.mirrored and best.score >= DEFAULT_SETTINGS.duplicate_threshold
    unflipped = filled.query(collection.originals[4], k=1)[0]
    assert not unflipped.mirrored


def test_a_strong_crop_is_found_through_the_window_vectors(
    filled: nearindex.NearIndex, collection: Collection, tmp_path: Path
) -> None:
    for seed in (3, 5, 6):
        probe = tmp_path / f"crop60-{seed}.png"
        synthetic.write_image(probe, synthetic.EDITS["crop60"](synthetic.make_scene(seed)))
        assert filled.query(probe, k=1)[0].path == str(collection.originals[seed])


def _centre_cut(image: np.ndarray, aspect: float) -> np.ndarray:
    """The middle of a landscape image cut to ``aspect`` (width / height), its height whole."""
    width = round(image.shape[0] * aspect)
    left = (image.shape[1] - width) // 2
    return np.ascontiguousarray(image[:, left : left + width])


@pytest.mark.parametrize("aspect", [3 / 4, 9 / 16])
def test_a_picture_cut_to_another_screen_shape_is_found_through_the_strips(
    filled: nearindex.NearIndex, collection: Collection, tmp_path: Path, aspect: float
) -> None:
    """A portrait version of a 4:3 picture keeps 56 % or 42 % of it: too little for any window of ``WINDOWS``."""
    for seed in (3, 5, 6):
        probe = tmp_path / f"portrait-{seed}.png"
        synthetic.write_image(probe, _centre_cut(synthetic.make_scene(seed), aspect))
        best = filled.query(probe, k=1)[0]
        assert best.path == str(collection.originals[seed])
        width = round(480 * aspect)
        assert best.relation is not None and best.relation.kind == "contains" and best.relation.box is not None
        assert max(abs(a - b) for a, b in zip(best.relation.box, ((640 - width) // 2, 0, width, 480), strict=True)) <= 8


def test_a_portrait_version_is_its_originals_first_candidate(database: nearindex.NearIndex, tmp_path: Path) -> None:
    """Among 30 scenes and 10 textures, the vectors alone (no leaders) put the original first for each cut."""
    stored = tmp_path / "stored"
    stored.mkdir()
    for seed in range(30):
        synthetic.write_image(stored / f"scene-{seed}.png", synthetic.make_scene(seed))
    for seed in range(10):
        synthetic.write_image(stored / f"texture-{seed}.png", synthetic.make_texture(seed))
    database.add(stored, workers=0)
    inner = database._database
    content_of = {Path(paths[0]).name: cid for cid, paths in inner.paths_of(inner.non_flat_content_ids()).items()}
    for aspect in (3 / 4, 9 / 16):
        for seed in range(0, 30, 3):
            probe = tmp_path / "portrait.png"
            synthetic.write_image(probe, _centre_cut(synthetic.make_scene(seed), aspect))
            side = Side.of(describe_query(probe), inner.settings)
            first = candidate_contents(inner, side, 1, window_leaders=0, edit_leaders=0)[0]
            assert first == content_of[f"scene-{seed}.png"], (aspect, seed)


def test_a_whole_picture_finds_its_stored_portrait_version(database: nearindex.NearIndex, tmp_path: Path) -> None:
    """The query's own strips meet the stored cuts' whole-image vectors."""
    stored = tmp_path / "stored"
    stored.mkdir()
    for seed in range(10):
        synthetic.write_image(stored / f"portrait-{seed}.png", _centre_cut(synthetic.make_scene(seed), 9 / 16))
    database.add(stored, workers=0)
    for seed in (2, 7):
        probe = tmp_path / f"scene-{seed}.png"
        synthetic.write_image(probe, synthetic.make_scene(seed))
        best = database.query(probe, k=1)[0]
        assert best.path == str(stored / f"portrait-{seed}.png")
        assert best.relation is not None and best.relation.kind == "crop"


def test_a_strip_meets_only_the_other_images_whole_vector() -> None:
    """Strips met with windows or strips would give unrelated pairs more chances (``best_inner_product``)."""
    rng = np.random.default_rng(5)
    first, second = (rng.standard_normal((WINDOW_COUNT, DEFAULT_SETTINGS.dimension)) for _ in range(2))
    first, second = (np.asarray(v / np.linalg.norm(v, axis=1, keepdims=True), np.float32) for v in (first, second))
    strip = len(WINDOWS)
    second[strip] = first[strip]
    second[1] = first[strip + 1]
    assert best_inner_product(first, second) < 0.5
    second[0] = first[strip + 2]
    assert best_inner_product(first, second) > 0.999
    assert best_inner_product(second, first) > 0.999


def test_unrelated_ramps_are_not_matched_through_their_strips(tmp_path: Path) -> None:
    """A ramp's strip, squashed onto the grid, is a ramp: a smooth image starts from its windows' coarse alone."""
    first, second = tmp_path / "first.png", tmp_path / "second.png"
    # Grey, so that no colour tells them apart.
    synthetic.write_image(first, synthetic.to_grayscale(synthetic.make_gradient(7)))
    synthetic.write_image(second, synthetic.to_grayscale(synthetic.make_gradient(35)))
    comparison = nearindex.compare(first, second)
    assert comparison.coarse > 0.99  # through a strip
    assert comparison.score < DEFAULT_SETTINGS.duplicate_threshold


def test_compare_reports_a_mirrored_copy(collection: Collection, tmp_path: Path) -> None:
    flipped = tmp_path / "flipped.png"
    synthetic.write_image(flipped, synthetic.flip_horizontal(synthetic.make_scene(2)))
    result = nearindex.compare(collection.originals[2], flipped)
    assert result.duplicate and result.mirrored


def test_a_chain_of_near_pairs_is_split_into_groups_whose_every_pair_matches(
    database: nearindex.NearIndex, tmp_path: Path
) -> None:
    """Windows sliding along a panorama of two scenes: each overlaps the next by 7/8, the ends not at all."""
    panorama = np.concatenate([synthetic.make_scene(31), synthetic.make_scene(32)], axis=1)
    width = panorama.shape[1] // 2
    folder = tmp_path / "chain"
    folder.mkdir()
    for step in range(9):
        left = step * width // 8
        synthetic.write_image(folder / f"window{step}.png", panorama[:, left : left + width])
    database.add(folder, workers=0)
    threshold = DEFAULT_SETTINGS.duplicate_threshold
    groups = database.duplicates()
    assert groups, "the neighbouring windows should be duplicates"
    ends = {str(folder / "window0.png"), str(folder / "window8.png")}
    for group in groups:
        assert not ends <= set(group.paths)
        assert group.score >= threshold
        for a in group.paths:
            for b in group.paths:
                if a < b:
                    assert nearindex.compare(a, b).score >= threshold


def test_an_image_that_matches_a_member_but_not_its_group_gets_a_group_with_it(
    database: nearindex.NearIndex, tmp_path: Path
) -> None:
    """Two crops of one photo, the left and the right 70 %: each matches the photo, not each other."""
    folder = tmp_path / "crops"
    folder.mkdir()
    scene = synthetic.make_scene(7, width=800, height=480)
    width = scene.shape[1]
    for name, image in (
        ("photo", scene),
        ("left", scene[:, : width * 7 // 10]),
        ("right", scene[:, width * 3 // 10 :]),
    ):
        synthetic.write_image(folder / f"{name}.png", image)
    database.add(folder, workers=0)
    photo, left, right = (str(folder / f"{name}.png") for name in ("photo", "left", "right"))
    threshold = DEFAULT_SETTINGS.duplicate_threshold
    assert (
        nearindex.compare(left, right).score
        < threshold
        <= min(nearindex.compare(photo, crop).score for crop in (left, right))
    )
    groups = database.duplicates()
    assert sorted(group.paths for group in groups) == sorted(
        [tuple(sorted((photo, left))), tuple(sorted((photo, right)))]
    )
    assert all(group.score >= threshold for group in groups)


def test_duplicates_flag_the_locally_edited_members(filled: nearindex.NearIndex, collection: Collection) -> None:
    groups = filled.duplicates()
    captions = {str(edits["caption"]) for edits in collection.edits.values()}
    reencoded = {str(edits[name]) for edits in collection.edits.values() for name in ("jpeg30", "half", "gamma")}
    grouped_captions = captions & {p for g in groups for p in g.paths}
    assert grouped_captions and all(any(p in g.edited for g in groups) for p in grouped_captions)
    assert not reencoded & {p for g in groups for p in g.edited}
    assert all(set(g.edited) <= set(g.paths) for g in groups)


def _soft(seed: int) -> np.ndarray:
    """A generated scene faded to a soft, low-contrast picture (a map, a page, a wall)."""
    scene = synthetic.make_scene(seed)
    return cv2.addWeighted(cv2.GaussianBlur(scene, (0, 0), 6), 0.35, np.full_like(scene, 160), 0.65, 0)


def _pasted(image: np.ndarray, donor: np.ndarray) -> np.ndarray:
    """``image`` with the bottom right 0.6 x 0.6 of ``donor`` (resized to it) pasted in the same place."""
    height, width = image.shape[:2]
    top, left = round(0.4 * height), round(0.4 * width)
    out = image.copy()
    out[top:, left:] = cv2.resize(donor, (width, height))[top:, left:]
    return out


def test_a_pasted_patch_that_outweighs_the_picture_leaves_its_original_a_candidate(
    database: nearindex.NearIndex, tmp_path: Path
) -> None:
    """Images sharing a high-contrast patch outrank its soft original as wholes; a corner left out still finds it."""
    donor, stored = synthetic.make_texture(1), tmp_path / "stored"
    stored.mkdir()
    synthetic.write_image(stored / "original.png", _soft(0))
    for seed in range(100, 124):
        synthetic.write_image(stored / f"other-{seed}.png", _pasted(_soft(seed), donor))
    database.add(stored, workers=0)
    probe = tmp_path / "pasted.png"
    synthetic.write_image(probe, _pasted(_soft(0), donor))
    inner = database._database
    original = next(
        cid for cid, paths in inner.paths_of(inner.non_flat_content_ids()).items() if "original" in paths[0]
    )
    side = Side.of(describe_query(probe), inner.settings)
    without = candidate_contents(inner, side, 3, window_leaders=0, edit_leaders=0)
    found = candidate_contents(inner, side, 3, window_leaders=0, edit_leaders=1)
    assert original not in without
    assert original in found and len(found) <= len(without) + 4


@pytest.fixture(scope="module")
def smooth_collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database of 40 gradients and 40 soft colour fields."""
    root = tmp_path_factory.mktemp("smooth")
    (root / "pictures").mkdir()
    for seed in range(40):
        synthetic.write_image(root / "pictures" / f"gradient-{seed:02d}.png", synthetic.make_gradient(seed))
        synthetic.write_image(root / "pictures" / f"soft-{seed:02d}.png", synthetic.make_soft(seed))
    with nearindex.open(root / "db") as database:
        assert not database.add(root / "pictures", workers=0).failed
    return root


def test_a_patch_pasted_anywhere_on_a_smooth_picture_leaves_the_picture_findable(
    smooth_collection: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The patch is nearly all of the copy's spread: its vectors find images like the patch, not the picture."""
    probes = {}
    for seed in range(0, 40, 4):
        for name, picture in (("gradient", synthetic.make_gradient(seed)), ("soft", synthetic.make_soft(seed))):
            if describe_image(picture).flat:
                continue  # a flat original matches nothing (two near-equal colours)
            probe = tmp_path / f"{name}-{seed:02d}-pasted.png"
            synthetic.write_image(probe, synthetic.paste_patch(picture, synthetic.make_scene(seed), seed=seed))
            probes[probe] = f"{name}-{seed:02d}.png"
    with nearindex.open(smooth_collection / "db") as database:

        def first_found() -> int:
            return sum(Path(database.query(probe, k=1)[0].path).name == own for probe, own in probes.items())

        found = first_found()
        monkeypatch.setattr(search_module, "DETAIL_LEADERS", 0)
        assert found == len(probes) > first_found()
