"""Incremental ingest: add, re-run, change, copy, move, sync, remove, bad files."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import nearindex
from nearindex import ingest, synthetic
from nearindex.catalog import Catalog
from nearindex.engine import create_catalog_engine
from nearindex.errors import UnreadableFileError
from nearindex.images import read_file_bytes
from nearindex.intake import stat_after_read
from nearindex.settings import WINDOW_COUNT

from .conftest import Collection


def generation(db_path: Path) -> int:
    return Catalog(create_catalog_engine(db_path / "catalog.sqlite3")).generation()


def test_add_stores_every_image_of_a_folder(filled: nearindex.NearIndex, collection: Collection) -> None:
    info = filled.info()
    assert info.images == len(collection.all_files)
    assert info.contents == info.images and info.vectors == WINDOW_COUNT * info.contents
    assert info.failed == 0


def test_rerun_on_an_unchanged_tree_reads_nothing_and_changes_nothing(
    filled: nearindex.NearIndex, collection: Collection, db_path: Path
) -> None:
    before = generation(db_path)
    index_files = sorted(db_path.glob("vectors.*.faiss"))
    written = [path.stat().st_mtime_ns for path in index_files]
    # Unreadable content would fail if it were read: proof that nothing is opened.
    for path in collection.all_files:
        os.chmod(path, 0)
    try:
        report = filled.add(collection.root, workers=0)
    finally:
        for path in collection.all_files:
            os.chmod(path, 0o644)
    assert report.counts() == {**dict.fromkeys(report.counts(), 0), "unchanged": len(collection.all_files)}
    assert generation(db_path) == before
    assert sorted(db_path.glob("vectors.*.faiss")) == index_files  # and the index file is not rewritten
    assert [path.stat().st_mtime_ns for path in index_files] == written


def test_a_changed_file_is_described_again(filled: nearindex.NearIndex, collection: Collection) -> None:
    target = collection.originals[5]
    synthetic.write_image(target, synthetic.make_scene(500))
    report = filled.add(collection.root, workers=0)
    assert (report.updated, report.added) == (1, 0)
    best = filled.query(target, k=1)[0]
    assert best.path == str(target) and best.score == 1.0


def test_an_exact_copy_is_stored_without_a_new_vector(filled: nearindex.NearIndex, collection: Collection) -> None:
    vectors_before = filled.info().vectors
    copy = collection.root / "copy-of-scene03.jpg"
    shutil.copyfile(collection.originals[3], copy)
    report = filled.add(copy, workers=0)
    assert report.added == 1
    info = filled.info()
    assert info.vectors == vectors_before and info.images == len(collection.all_files)
    paths = {m.path for m in filled.query(copy, k=5) if m.score == 1.0}
    assert {str(copy), str(collection.originals[3])} <= paths


def test_a_moved_file_is_recognised_by_its_content(filled: nearindex.NearIndex, collection: Collection) -> None:
    old = collection.originals[4]
    new = collection.root / "moved" / "scene04-renamed.jpg"
    new.parent.mkdir()
    os.replace(old, new)
    report = filled.add(collection.root, workers=0)
    assert (report.moved, report.added, report.removed) == (1, 0, 0)
    stored = {m.path for m in filled.query(new, k=3)}
    assert str(new) in stored and str(old) not in stored


def test_sync_forgets_deleted_files_and_add_does_not(filled: nearindex.NearIndex, collection: Collection) -> None:
    gone = collection.unrelated[0]
    gone.unlink()
    assert filled.add(collection.root, workers=0).removed == 0
    assert filled.info().images == len(collection.all_files) + 1
    report = filled.sync(collection.root, workers=0)
    assert report.removed == 1
    assert filled.info().images == len(collection.all_files)
    assert all(m.path != str(gone) for m in filled.query(collection.originals[0], k=50))


def test_remove_forgets_a_folder_and_its_vectors(filled: nearindex.NearIndex, collection: Collection) -> None:
    report = filled.remove(collection.root / "edits")
    edited = sum(len(e) for e in collection.edits.values())
    assert report.removed == edited
    info = filled.info()
    assert info.images == len(collection.all_files) - edited
    assert info.vectors == WINDOW_COUNT * info.contents
    assert filled.check().ok


def test_remove_of_an_unknown_path_is_reported(filled: nearindex.NearIndex, tmp_path: Path) -> None:
    report = filled.remove(tmp_path / "never-added")
    assert report.removed == 0
    assert [f.reason for f in report.failed] == ["not in the database"]


def test_bad_files_are_reported_and_good_ones_stored(database: nearindex.NearIndex, collection: Collection) -> None:
    good = len(collection.all_files)
    original = collection.originals[0].read_bytes()
    (collection.root / "truncated.jpg").write_bytes(original[: len(original) // 2])
    (collection.root / "notes.jpg").write_text("this is not an image")
    (collection.root / "empty.png").write_bytes(b"")
    (collection.root / "README.txt").write_text("ignored: not an image and not named like one")
    report = database.add(collection.root, workers=0)
    assert report.added == good
    failed = {Path(f.path).name: f.reason for f in report.failed}
    assert set(failed) == {"truncated.jpg", "notes.jpg", "empty.png"}
    assert all(reason and "\n" not in reason for reason in failed.values())
    info = database.info()
    assert (info.images, info.failed) == (good, 3)


def test_a_fixed_file_is_retried_and_its_failure_cleared(database: nearindex.NearIndex, collection: Collection) -> None:
    broken = collection.root / "later.jpg"
    broken.write_bytes(b"\xff\xd8\xff garbage")
    assert len(database.add(broken, workers=0).failed) == 1
    synthetic.write_image(broken, synthetic.make_scene(77))
    report = database.add(broken, workers=0)
    assert (report.added, len(report.failed)) == (1, 0)
    assert database.info().failed == 0


def test_images_are_found_by_content_whatever_their_name(database: nearindex.NearIndex, tmp_path: Path) -> None:
    folder = tmp_path / "odd"
    folder.mkdir()
    synthetic.write_image(folder / "photo.png", synthetic.make_scene(1))
    os.replace(folder / "photo.png", folder / "photo.data")
    assert database.add(folder, workers=0).added == 1


def test_a_missing_path_is_a_failure_not_an_exception(database: nearindex.NearIndex, tmp_path: Path) -> None:
    report = database.add(tmp_path / "nowhere", workers=0)
    assert [(f.path, f.reason) for f in report.failed] == [(str(tmp_path / "nowhere"), "no such file or directory")]


def test_worker_processes_give_the_same_result_as_in_process(tmp_path: Path, collection: Collection) -> None:
    with nearindex.open(tmp_path / "a") as first, nearindex.open(tmp_path / "b") as second:
        first.add(collection.root, workers=0)
        second.add(collection.root, workers=2)
        probe = collection.edits[1]["caption"]
        assert [(m.path, round(m.score, 5)) for m in first.query(probe)] == [
            (m.path, round(m.score, 5)) for m in second.query(probe)
        ]


def test_an_interrupted_run_keeps_committed_work(db_path: Path, collection: Collection) -> None:
    class InterruptError(Exception):
        pass

    class InterruptAfterFive:
        def __init__(self) -> None:
            self.done = 0

        def start(self, total: int, description: str) -> None: ...

        def advance(self, steps: int = 1) -> None:
            self.done += steps
            if self.done == 5:
                raise InterruptError

        def finish(self) -> None: ...

    with nearindex.open(db_path) as database, contextlib.suppress(InterruptError):
        database.add(collection.root, workers=0, progress=InterruptAfterFive())
    with nearindex.open(db_path) as database:
        assert database.check().ok
        report = database.add(collection.root, workers=0)
        assert report.unchanged >= 5
        assert report.added + report.unchanged == len(collection.all_files)


def test_a_move_and_a_change_in_separate_batches_keep_every_content(
    filled: nearindex.NearIndex, collection: Collection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """a.jpg is renamed to z.jpg and a new image written as a.jpg: the old content must survive the first batch."""
    monkeypatch.setattr(ingest, "BATCH_ITEMS", 1)
    old = collection.originals[3]
    renamed = collection.root / "zz-renamed.jpg"
    os.replace(old, renamed)
    synthetic.write_image(old, synthetic.make_scene(600))
    report = filled.add(collection.root, workers=0)
    assert (report.updated, report.added, len(report.failed)) == (1, 1, 0)
    assert filled.query(renamed, k=1)[0].path == str(renamed)
    assert filled.check().ok


def test_identical_files_and_a_path_named_twice_store_one_content(
    database: nearindex.NearIndex, tmp_path: Path
) -> None:
    folder = tmp_path / "twins"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        synthetic.write_image(folder / name, synthetic.make_scene(8))
    report = database.add(folder, folder / "a.png", workers=0)
    assert report.added == 2
    info = database.info()
    assert (info.images, info.contents, info.vectors) == (2, 1, WINDOW_COUNT)
    assert database.check().ok


def write_slow_png(path: Path) -> None:
    """An 81-megapixel PNG of stripes: a few hundred KB that take about a second to decode."""
    stripes = np.zeros((9000, 9000), np.uint8)
    stripes[::7] = 255
    assert cv2.imwrite(str(path), stripes, [cv2.IMWRITE_PNG_COMPRESSION, 1])


def test_a_file_slower_than_the_timeout_fails_and_the_others_are_stored(
    database: nearindex.NearIndex, tmp_path: Path
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for seed in range(3):
        synthetic.write_image(folder / f"scene{seed}.jpg", synthetic.make_scene(seed))
    write_slow_png(folder / "slow.png")
    # The four files share a chunk, which may take the timeout once per file: 0.4 s, less than slow.png alone.
    report = database.add(folder, workers=1, timeout=0.1)
    slow = "took longer than 0.1 s to decode"
    failed = {Path(f.path).name: f.reason for f in report.failed}
    assert failed.pop("slow.png") == slow
    # A scene takes ~20 ms; on a machine loaded enough (CI beside an evaluation) one took longer alone.
    assert set(failed.values()) <= {slow} and report.added + len(failed) == 3, report
    again = database.add(folder, workers=1, timeout=30)  # a timeout is retried, and with time enough succeeds
    assert (again.added, again.unchanged, again.failed) == (1 + len(failed), 3 - len(failed), ())


def test_names_with_spaces_and_newlines_are_stored_and_found(database: nearindex.NearIndex, tmp_path: Path) -> None:
    folder = tmp_path / "odd names"
    folder.mkdir()
    spaced, broken = folder / "a photo of scene 1.jpg", folder / "scene\n2.png"
    synthetic.write_image(spaced, synthetic.make_scene(1))
    synthetic.write_image(broken, synthetic.make_scene(2))
    assert database.add(folder, workers=0).added == 2
    assert database.query(spaced, k=1)[0].path == str(spaced)
    assert database.query(broken, k=1)[0].path == str(broken)


def test_a_file_replaced_or_removed_while_being_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "moving.jpg"
    synthetic.write_image(path, synthetic.make_scene(3))
    size = len(read_file_bytes(path))
    synthetic.write_image(path, synthetic.make_scene(4))  # replaced after the read
    with pytest.raises(UnreadableFileError, match="changed while being read"):
        stat_after_read(str(path), size)
    path.unlink()
    with pytest.raises(UnreadableFileError, match="vanished while being read"):
        stat_after_read(str(path), size)
