"""Calibration on a generated collection: a measured threshold, stored only when asked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import nearindex
from nearindex import synthetic
from nearindex.calibration import CALIBRATION_EDITS
from nearindex.cli import app
from nearindex.errors import DatabaseError

from .conftest import Collection, write_collection


@pytest.fixture(scope="module")
def sparse(tmp_path_factory: pytest.TempPathFactory) -> Collection:
    """Unrelated images (calibration assumes near-duplicates are a small share of random pairs)."""
    return write_collection(tmp_path_factory.mktemp("sparse"), seeds=range(30), edited=(), textures=4)


@pytest.fixture
def filled(database: nearindex.NearIndex, sparse: Collection) -> nearindex.NearIndex:
    database.add(sparse.root, workers=0)
    return database


@pytest.fixture
def calibrated(filled: nearindex.NearIndex) -> nearindex.Calibration:
    return filled.calibrate(sample=4, negatives=300, fpr=0.01, seed=3)


def test_the_threshold_lets_through_at_most_the_asked_share_of_false_pairs(calibrated: nearindex.Calibration) -> None:
    assert calibrated.negatives == 300 and calibrated.measured_fpr <= 0.01
    assert calibrated.images == 4 and calibrated.positives == 4 * len(CALIBRATION_EDITS)
    assert set(calibrated.per_edit) == set(CALIBRATION_EDITS)
    assert 0.0 < calibrated.threshold <= 1.0


def test_mild_edits_are_found_at_the_calibrated_threshold(calibrated: nearindex.Calibration) -> None:
    for edit in ("half", "jpeg30", "gamma", "flip"):
        assert calibrated.per_edit[edit] == 1.0, edit
    assert calibrated.tpr > max(calibrated.measured_fpr, 0.5)


def test_the_same_seed_gives_the_same_threshold(filled: nearindex.NearIndex, calibrated: nearindex.Calibration) -> None:
    again = filled.calibrate(sample=4, negatives=300, fpr=0.01, seed=3)
    assert again.threshold == calibrated.threshold and again.per_edit == calibrated.per_edit


def test_a_stored_threshold_is_the_default_after_reopening(
    filled: nearindex.NearIndex, db_path: Path, sparse: Collection
) -> None:
    assert not filled.info().calibrated
    result = filled.calibrate(sample=2, negatives=100, fpr=0.05, store=True)
    filled.close()
    with nearindex.open(db_path, read_only=True) as reopened:
        info = reopened.info()
        assert info.calibrated and info.duplicate_threshold == result.threshold
        original, edit = sparse.originals[0], sparse.root.parent / "edit.jpg"
        synthetic.write_image(edit, synthetic.EDITS["jpeg30"](synthetic.make_scene(0)))
        assert reopened.compare(original, edit).duplicate == (
            reopened.compare(original, edit).score >= result.threshold
        )


def test_without_store_nothing_is_written(filled: nearindex.NearIndex) -> None:
    before = filled.info()
    filled.calibrate(sample=2, negatives=50)
    after = filled.info()
    assert (after.calibrated, after.duplicate_threshold, after.generation) == (
        False,
        before.duplicate_threshold,
        before.generation,
    )


def test_a_collection_of_one_image_cannot_be_calibrated(database: nearindex.NearIndex, tmp_path: Path) -> None:
    image = tmp_path / "only.jpg"
    synthetic.write_image(image, synthetic.make_scene(1))
    database.add(image)
    with pytest.raises(DatabaseError, match="at least two stored images"):
        database.calibrate()


def test_a_sampled_file_gone_since_it_was_added_is_skipped_and_named(
    database: nearindex.NearIndex, collection: Collection
) -> None:
    database.add(collection.root, workers=0)
    gone = collection.originals[3]
    gone.unlink()
    result = database.calibrate(sample=100, negatives=50)
    assert [failure.path for failure in result.skipped] == [str(gone)]
    assert result.images == database.info().contents - database.info().flat - 1


@pytest.mark.parametrize("fpr", [0.0, 1.0, -0.1])
def test_fpr_outside_zero_to_one_is_refused(filled: nearindex.NearIndex, fpr: float) -> None:
    with pytest.raises(ValueError, match="fpr"):
        filled.calibrate(fpr=fpr)


def test_an_image_s_nearest_neighbour_is_never_a_false_pair(database: nearindex.NearIndex, tmp_path: Path) -> None:
    small = write_collection(tmp_path / "small", seeds=range(12), edited=(), textures=0)
    copy = tmp_path / "copy-of-scene00.jpg"
    synthetic.write_image(copy, synthetic.EDITS["jpeg30"](synthetic.make_scene(0)))
    database.add(small.root, copy, workers=0)
    # 500 draws from 78 pairs: the copy pair would come up about 6 times; none may (0.1 % of 500 is 0).
    result = database.calibrate(sample=1, negatives=500, fpr=0.001)
    assert result.threshold < database.compare(small.originals[0], copy).score


def test_cli_calibrate_json_reports_and_stores(filled: nearindex.NearIndex, db_path: Path) -> None:
    filled.close()
    result = CliRunner().invoke(
        app,
        ["--db", str(db_path), "calibrate", "--sample", "2", "--negatives", "60", "--fpr", "0.05", "--store", "--json"],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["stored"] is True and set(document["per_edit"]) == set(CALIBRATION_EDITS)
    with nearindex.open(db_path, read_only=True) as reopened:
        assert reopened.info().duplicate_threshold == document["threshold"]


def test_cli_calibrate_refuses_an_fpr_of_one(filled: nearindex.NearIndex, db_path: Path) -> None:
    result = CliRunner().invoke(app, ["--db", str(db_path), "calibrate", "--fpr", "1"])
    assert result.exit_code == 2 and "between 0 and 1" in result.output


def test_two_images_that_are_each_other_s_nearest_neighbour_cannot_be_calibrated(
    database: nearindex.NearIndex, tmp_path: Path
) -> None:
    for seed in (1, 2):
        synthetic.write_image(tmp_path / f"scene{seed}.jpg", synthetic.make_scene(seed))
    database.add(tmp_path, workers=0)
    with pytest.raises(DatabaseError, match="too few stored images"):
        database.calibrate(sample=1, negatives=10)
