"""Tests of the database facade on real directories: a SQLite catalog and a FAISS file."""

from __future__ import annotations

import hashlib
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

import nearindex
from nearindex import DatabaseError, DatabaseLockedError
from nearindex.catalog import Batch, Catalog, FailureRecord, FileRecord
from nearindex.database import CATALOG_NAME, WINDOW_SLOTS, Database
from nearindex.engine import BUSY_TIMEOUT_MS, create_catalog_engine
from nearindex.settings import WINDOW_COUNT
from nearindex.vectors import VectorIndex, index_file, index_files
from tests.conftest import Collection, new_content, write_collection

#: Edits of the first scene stored next to it (its near-duplicates).


# -- helpers ------------------------------------------------------------------------


def batch_of(seeds: range, dimension: int, *, folder: str = "/photos") -> Batch:
    """New contents for ``seeds``, each stored under one path in ``folder``."""
    contents = [new_content(seed, dimension) for seed in seeds]
    files = [
        FileRecord(f"{folder}/{seed}.jpg", 1000 + seed, seed, c.content_hash)
        for seed, c in zip(seeds, contents, strict=True)
    ]
    return Batch(contents=contents, files=files)


def catalog_rows(directory: Path, query: str) -> list[tuple[object, ...]]:
    """Rows of a query on the catalog, read with plain sqlite3 (read-only)."""
    with sqlite3.connect(f"file:{directory / CATALOG_NAME}?mode=ro", uri=True) as connection:
        rows = connection.execute(query).fetchall()
    connection.close()
    return rows


def indexed_ids(directory: Path) -> set[int]:
    """Ids of the contents the catalog says belong in the index (non-flat)."""
    return {cid for (cid,) in catalog_rows(directory, "SELECT id FROM contents WHERE NOT flat")}


def catalog_generation(directory: Path) -> int:
    rows = catalog_rows(directory, "SELECT value FROM state WHERE key = 'generation'")
    return int(rows[0][0]) if rows else 0


def ids_of(index: VectorIndex) -> set[int]:
    """The content ids an index holds vectors of (several window vectors each)."""
    return set((index.ids() // WINDOW_SLOTS).tolist())


def only_index_file(directory: Path) -> Path:
    files = index_files(directory)
    assert len(files) == 1, f"expected one index file, found {sorted(p.name for p in files.values())}"
    return next(iter(files.values()))


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file below ``directory`` with its bytes."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def assert_queries_work(db: nearindex.NearIndex, images: Collection) -> None:
    """An original finds itself first (exact copy) and then its edited copies."""
    matches = db.query(images.originals[0], k=4)
    assert matches[0].path == str(images.originals[0]) and matches[0].score == 1.0
    assert {m.path for m in matches[1:]} <= {str(p) for p in images.edits[0].values()}


# -- fixtures -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Collection:
    """A small collection, written once for the module (tests only read it)."""
    return write_collection(tmp_path_factory.mktemp("collection") / "images", seeds=range(4), edited=(0,), textures=0)


@pytest.fixture(scope="module")
def more_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of scenes that are not in ``images``."""
    return write_collection(
        tmp_path_factory.mktemp("more") / "images", seeds=range(100, 103), edited=(), textures=0
    ).root


@pytest.fixture
def closed_db(tmp_path: Path, images: Collection) -> Path:
    """A database holding ``images``, closed."""
    directory = tmp_path / "db"
    with nearindex.open(directory) as db:
        assert not db.add(images.root, workers=0).failed
    return directory


# -- creating and reopening -----------------------------------------------------------


def test_a_new_directory_gets_a_catalog_and_one_index_file(tmp_path: Path, images: Collection) -> None:
    directory = tmp_path / "deep" / "db"
    with nearindex.open(directory) as db:
        db.add(images.root, workers=0)
        info = db.info()
    assert (directory / CATALOG_NAME).is_file()
    assert only_index_file(directory) == index_file(directory, info.generation)
    with nearindex.open(directory, read_only=True) as reopened:
        again = reopened.info()
    assert (again.images, again.contents, again.vectors, again.generation) == (
        info.images, info.contents, info.vectors, info.generation,
    )  # fmt: skip
    assert info.images == len(images.all_files) and info.vectors == WINDOW_COUNT * (info.contents - info.flat)


def test_an_empty_new_database_has_an_index_file_of_its_generation(db_path: Path) -> None:
    with Database.open(db_path) as db:
        generation = db.generation
        assert db.index.size == 0
    assert only_index_file(db_path) == index_file(db_path, generation)


@pytest.mark.parametrize("writable", [True, False], ids=["writable", "read-only"])
def test_a_non_empty_unrelated_directory_is_refused_and_left_alone(tmp_path: Path, writable: bool) -> None:
    directory = tmp_path / "notes"
    (directory / "sub").mkdir(parents=True)
    (directory / "todo.txt").write_text("buy milk\n")
    (directory / "sub" / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    before = snapshot(directory)
    with pytest.raises(DatabaseError) as raised:
        Database.open(directory, writable=writable)
    assert str(directory) in str(raised.value)
    if writable:
        assert "not a nearindex database" in str(raised.value)
    assert snapshot(directory) == before
    assert sorted(p.name for p in directory.iterdir()) == ["sub", "todo.txt"]


@pytest.mark.parametrize("writable", [True, False], ids=["writable", "read-only"])
def test_a_path_that_is_a_file_is_refused(tmp_path: Path, writable: bool) -> None:
    path = tmp_path / "db"
    path.write_bytes(b"just a file")
    with pytest.raises(DatabaseError, match="not a directory"):
        Database.open(path, writable=writable)
    assert path.read_bytes() == b"just a file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db"]


def test_read_only_open_of_a_missing_directory_is_refused_and_creates_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "missing" / "db"
    with pytest.raises(DatabaseError) as raised:
        nearindex.open(directory, read_only=True)
    assert str(directory) in str(raised.value)
    assert not (tmp_path / "missing").exists()


def test_a_catalog_that_is_not_sqlite_is_refused_with_a_database_error(tmp_path: Path) -> None:
    directory = tmp_path / "db"
    directory.mkdir()
    (directory / CATALOG_NAME).write_bytes(b"this is not SQLite" * 300)
    with pytest.raises(DatabaseError, match=r"cannot open catalog"):
        Database.open(directory)


def test_a_read_only_open_writes_nothing(closed_db: Path, images: Collection) -> None:
    only_index_file(closed_db).unlink()  # a read-only open must rebuild in memory only
    before = snapshot(closed_db)
    with nearindex.open(closed_db, read_only=True) as db:
        assert_queries_work(db, images)
        with pytest.raises(DatabaseError, match="read-only"):
            db.remove(images.root)
    assert snapshot(closed_db) == before
    assert index_files(closed_db) == {}


# -- a stale or broken index file -----------------------------------------------------


def test_a_deleted_index_file_is_rebuilt_with_the_same_ids(closed_db: Path, images: Collection) -> None:
    old_file = only_index_file(closed_db)
    before = ids_of(VectorIndex.load(old_file))
    old_file.unlink()
    with nearindex.open(closed_db) as db:
        assert_queries_work(db, images)
    rebuilt = only_index_file(closed_db)
    assert rebuilt == index_file(closed_db, catalog_generation(closed_db))
    assert ids_of(VectorIndex.load(rebuilt)) == before == indexed_ids(closed_db)


def test_an_index_file_of_an_older_generation_is_rebuilt_from_the_catalog(closed_db: Path, more_images: Path) -> None:
    saved = closed_db.parent / "saved.faiss"
    old_file = only_index_file(closed_db)
    shutil.copy2(old_file, saved)
    with nearindex.open(closed_db) as db:
        db.add(more_images, workers=0)
    current = only_index_file(closed_db)
    assert current != old_file
    current.unlink()
    shutil.copy2(saved, old_file)  # as if the newer file was never written

    with nearindex.open(closed_db) as db:
        assert db.info().vectors == WINDOW_COUNT * len(indexed_ids(closed_db))
        assert db.query(sorted(more_images.glob("*.jpg"))[0], k=1)[0].score == 1.0
    assert only_index_file(closed_db) == index_file(closed_db, catalog_generation(closed_db))
    assert ids_of(VectorIndex.load(only_index_file(closed_db))) == indexed_ids(closed_db)
    assert ids_of(VectorIndex.load(saved)) < indexed_ids(closed_db)


def test_old_vectors_under_the_current_file_name_are_caught_by_check(closed_db: Path, more_images: Path) -> None:
    saved = closed_db.parent / "saved.faiss"
    shutil.copy2(only_index_file(closed_db), saved)
    with nearindex.open(closed_db) as db:
        db.add(more_images, workers=0)
    shutil.copy2(saved, only_index_file(closed_db))  # the name says current, the content is old
    with nearindex.open(closed_db) as db:
        report = db.check()
        assert not report.ok and any("misses" in problem for problem in report.problems)
        assert db.check(repair=True).repaired
        assert db.check() == nearindex.CheckReport(problems=(), repaired=False)
    assert ids_of(VectorIndex.load(only_index_file(closed_db))) == indexed_ids(closed_db)


@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated"])
def test_a_corrupt_index_file_of_the_current_generation_is_rebuilt(
    closed_db: Path, images: Collection, damage: str
) -> None:
    path = only_index_file(closed_db)
    data = path.read_bytes()
    garbage = np.random.default_rng(0).bytes(len(data))
    damaged = {"garbage": garbage, "empty": b"", "truncated": data[: len(data) // 2]}[damage]
    path.write_bytes(damaged)
    with nearindex.open(closed_db) as db:
        assert db.check().ok
        assert_queries_work(db, images)
    assert ids_of(VectorIndex.load(only_index_file(closed_db))) == indexed_ids(closed_db)


def test_check_reports_an_index_file_that_cannot_be_read(closed_db: Path) -> None:
    only_index_file(closed_db).write_bytes(b"not a FAISS index" * 100)
    with nearindex.open(closed_db, read_only=True) as db:  # what `nearindex check` does
        assert not db.check().ok


def test_a_repair_interrupted_after_deleting_contents_is_not_trusted_on_open(closed_db: Path) -> None:
    doomed = min(indexed_ids(closed_db))
    engine = create_catalog_engine(closed_db / CATALOG_NAME)
    try:
        Catalog(engine).delete_contents([doomed])  # the first transaction of _repair, then a crash
    finally:
        engine.dispose()
    with Database.open(closed_db) as db:
        assert ids_of(db.index) == indexed_ids(closed_db)


# -- check and repair -------------------------------------------------------------------


def test_check_is_ok_on_a_freshly_filled_database(filled: nearindex.NearIndex) -> None:
    report = filled.check()
    assert report.ok and report.problems == () and not report.repaired


def test_check_reports_a_missing_index_file_and_repair_fixes_it(closed_db: Path) -> None:
    only_index_file(closed_db).unlink()
    with nearindex.open(closed_db, read_only=True) as db:
        report = db.check()
        assert not report.ok and not report.repaired
        assert any("no index file" in problem for problem in report.problems)
        with pytest.raises(DatabaseError, match="read-only"):
            db.check(repair=True)
    with nearindex.open(closed_db) as db:
        only_index_file(closed_db).unlink()  # gone while a writer has the database open
        assert not db.check().ok
        repaired = db.check(repair=True)
        assert repaired.repaired and repaired.ok and repaired.problems
        assert db.check() == nearindex.CheckReport(problems=(), repaired=False)
    with nearindex.open(closed_db, read_only=True) as db:
        assert db.check().problems == ()


def test_repair_drops_a_content_whose_descriptor_has_the_wrong_length(closed_db: Path, images: Collection) -> None:
    victim = str(images.originals[3])
    (content_id,) = catalog_rows(closed_db, f"SELECT content_id FROM files WHERE path = '{victim}'")[0]
    with sqlite3.connect(closed_db / CATALOG_NAME) as connection:
        connection.execute("UPDATE contents SET descriptor = x'00000000' WHERE id = ?", (content_id,))
    connection.close()
    with nearindex.open(closed_db) as db:
        report = db.check()
        assert any(f"content {content_id}" in problem for problem in report.problems)
        images_before = db.info().images
        assert db.check(repair=True).repaired
        assert db.check().problems == ()
        assert db.info().images == images_before - 1
        assert victim not in {m.path for m in db.query(victim, k=10)}
    assert content_id not in ids_of(VectorIndex.load(only_index_file(closed_db)))
    assert ids_of(VectorIndex.load(only_index_file(closed_db))) == indexed_ids(closed_db)


# -- the write lock ----------------------------------------------------------------------


def test_a_second_writer_is_refused_while_readers_still_open(closed_db: Path, images: Collection) -> None:
    with nearindex.open(closed_db) as writer:
        with pytest.raises(DatabaseLockedError) as raised:
            Database.open(closed_db, lock_timeout=0)
        assert str(closed_db) in str(raised.value)
        with nearindex.open(closed_db, read_only=True) as reader:
            assert reader.info().images == writer.info().images
            assert_queries_work(reader, images)
        writer.remove(images.unrelated[0])  # the refused open did not take the writer's lock away
        remaining = writer.info().images
    with nearindex.open(closed_db) as next_writer:  # released on close
        assert next_writer.info().images == remaining == len(images.all_files) - 1


# -- SQLite settings and transactions ------------------------------------------------------


def test_the_catalog_is_in_wal_mode_with_a_busy_timeout(closed_db: Path) -> None:
    engine = create_catalog_engine(closed_db / CATALOG_NAME)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == BUSY_TIMEOUT_MS > 0
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        engine.dispose()
    assert catalog_rows(closed_db, "PRAGMA journal_mode") == [("wal",)]  # stored in the file itself


def test_a_failing_batch_stores_nothing_and_keeps_the_generation(db_path: Path) -> None:
    with Database.open(db_path) as db:
        dimension = db.settings.dimension
        db.write(batch_of(range(3), dimension))
    tables = ("contents", "files", "failures", "state")
    before = {table: catalog_rows(db_path, f"SELECT * FROM {table}") for table in tables}
    generation = catalog_generation(db_path)
    fresh = new_content(99, dimension)
    failing = Batch(
        contents=[fresh],
        files=[
            FileRecord("/photos/0.jpg", 5, 5, fresh.content_hash),  # repoints a stored path
            FileRecord("/photos/new.jpg", 5, 5, hashlib.sha256(b"never stored").digest()),
        ],
        removals=["/photos/1.jpg"],
        failures=[FailureRecord("/photos/broken.jpg", "not an image")],
    )
    engine = create_catalog_engine(db_path / CATALOG_NAME)
    catalog = Catalog(engine)
    try:
        with pytest.raises(KeyError):
            catalog.apply_batch(failing)
        assert catalog.generation() == generation
        assert {table: catalog_rows(db_path, f"SELECT * FROM {table}") for table in tables} == before
        assert catalog.apply_batch(batch_of(range(10, 11), dimension)).generation == generation + 1  # still usable
    finally:
        engine.dispose()


def test_a_failing_write_leaves_the_open_database_as_it_was(db_path: Path) -> None:
    with Database.open(db_path) as db:
        db.write(batch_of(range(3), db.settings.dimension))
        generation, ids, counts = db.generation, ids_of(db.index), db.counts()
        bad = Batch(files=[FileRecord("/x.jpg", 1, 1, b"\x00" * 32)])
        with pytest.raises(KeyError):
            db.write(bad)
        assert (db.generation, ids_of(db.index), db.counts()) == (generation, ids, counts)


@pytest.mark.parametrize("stored_first", [False, True])
def test_a_path_listed_twice_in_a_batch_keeps_only_its_last_content(db_path: Path, stored_first: bool) -> None:
    """A batch writes in bulk, yet every content a path held before its last row loses that path."""
    with Database.open(db_path) as db:
        dimension = db.settings.dimension
        first, second, last = (new_content(seed, dimension) for seed in (60, 61, 62))
        if stored_first:
            db.write(Batch(contents=[first], files=[FileRecord("/a.jpg", 1, 1, first.content_hash)]))
        listed_twice = [FileRecord("/a.jpg", 2, 2, c.content_hash) for c in (second, last)]
        db.write(Batch(contents=[second, last], files=listed_twice))
        assert [h for (h,) in catalog_rows(db_path, "SELECT content_hash FROM contents")] == [last.content_hash]
        assert {int(i) // WINDOW_SLOTS for i in db.index.ids()} == indexed_ids(db_path)


def test_generation_bumps_once_per_batch_that_changes_contents_and_names_the_file(db_path: Path) -> None:
    with Database.open(db_path) as db:
        dimension = db.settings.dimension
        start = db.generation
        flat = new_content(50, dimension, flat=True)
        batches = [  # (batch, does it change the set of contents?)
            (batch_of(range(0, 3), dimension), True),
            (Batch(contents=[flat], files=[FileRecord("/flat.png", 1, 1, flat.content_hash)]), True),
            (Batch(removals=["/photos/1.jpg"]), True),
            (Batch(), False),
            (Batch(failures=[FailureRecord("/broken.jpg", "not an image")]), False),
            (batch_of(range(3, 5), dimension, folder="/more"), True),
        ]
        expected = start
        for batch, changes in batches:
            expected += changes
            result = db.write(batch)
            assert result.generation == db.generation == expected
            assert catalog_generation(db_path) == expected  # committed, visible to other connections
        assert ids_of(db.index) == indexed_ids(db_path)
        final = db.generation
    assert only_index_file(db_path) == index_file(db_path, final)
    assert catalog_generation(db_path) == final
    assert ids_of(VectorIndex.load(index_file(db_path, final))) == indexed_ids(db_path)
    assert len(indexed_ids(db_path)) == 4  # five non-flat contents, one removed; the flat one is not indexed


def test_check_says_what_opening_for_writing_repaired(closed_db: Path) -> None:
    only_index_file(closed_db).unlink()
    with nearindex.open(closed_db) as db:
        report = db.check()
        assert report.repaired and report.ok
        assert any("was missing" in problem for problem in report.problems)
        assert db.check() == nearindex.CheckReport(problems=(), repaired=False)


# -- a second writer waits ------------------------------------------------------------------


def hold_writer_lock(directory: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process that opens the database for writing and keeps it for ``seconds``."""
    script = (
        "import sys, time, nearindex\n"
        "with nearindex.open(sys.argv[1]):\n"
        "    print('holding', flush=True)\n"
        "    time.sleep(float(sys.argv[2]))\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(directory), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    return holder


def test_a_second_writer_gives_up_after_its_timeout_with_a_clear_message(closed_db: Path, images: Collection) -> None:
    holder = hold_writer_lock(closed_db, 30)
    try:
        started = time.monotonic()
        with pytest.raises(DatabaseLockedError, match=r"another nearindex process is writing to it \(waited 0.5 s\)"):
            nearindex.open(closed_db, lock_timeout=0.5)
        assert time.monotonic() - started >= 0.5
        with nearindex.open(closed_db, read_only=True) as reader:  # readers never wait
            assert_queries_work(reader, images)
    finally:
        holder.kill()
        holder.wait()
    with nearindex.open(closed_db, lock_timeout=0) as writer:  # a killed holder's lock is gone with it
        assert writer.check().ok


def test_a_second_writer_waits_for_the_first_to_finish(closed_db: Path, images: Collection) -> None:
    holder = hold_writer_lock(closed_db, 1.5)
    try:
        started = time.monotonic()
        with nearindex.open(closed_db, lock_timeout=30) as writer:
            assert time.monotonic() - started > 0.5
            assert writer.remove(images.unrelated[0]).removed == 1
    finally:
        holder.wait()
    assert holder.returncode == 0


def test_an_index_file_of_another_dimension_is_rebuilt(closed_db: Path, images: Collection) -> None:
    foreign = VectorIndex.empty(64)
    foreign.add(np.arange(5, dtype=np.int64), np.eye(64, dtype=np.float32)[:5])
    foreign.save(only_index_file(closed_db))
    with nearindex.open(closed_db) as db:
        assert db.check().ok
        assert_queries_work(db, images)
    assert ids_of(VectorIndex.load(only_index_file(closed_db))) == indexed_ids(closed_db)


# -- a full disk ----------------------------------------------------------------------------


def run_with_file_size_limit(limit: int, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI in a process that cannot write files beyond ``limit`` bytes (as on a full disk)."""

    def limit_writes() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "nearindex", *args], capture_output=True, text=True, preexec_fn=limit_writes, check=False
    )


def test_a_write_that_hits_a_full_disk_fails_cleanly_and_loses_nothing(
    closed_db: Path, images: Collection, more_images: Path
) -> None:
    before = indexed_ids(closed_db)
    # 32 KB: less than the WAL pages of three new images, and than the index file.
    result = run_with_file_size_limit(32 * 1024, "--db", str(closed_db), "add", "--workers", "0", str(more_images))
    assert result.returncode != 0
    assert result.stderr.startswith(f"nearindex: {closed_db}") and len(result.stderr.strip().splitlines()) == 1
    with nearindex.open(closed_db) as db:
        assert db.check().ok
        assert_queries_work(db, images)
        assert db.info().images == len(images.all_files)
    assert indexed_ids(closed_db) == before


def test_queries_from_another_process_keep_working_while_add_runs(
    closed_db: Path, images: Collection, tmp_path: Path
) -> None:
    bulk = write_collection(tmp_path / "bulk", seeds=range(200, 260), edited=(), textures=0).root
    adding = subprocess.Popen(
        [sys.executable, "-m", "nearindex", "--db", str(closed_db), "add", "--workers", "1", str(bulk)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    answered = 0
    try:
        while adding.poll() is None:
            with nearindex.open(closed_db, read_only=True) as reader:
                assert_queries_work(reader, images)
                answered += 1
    finally:
        out, err = adding.communicate(timeout=120)
    assert adding.returncode == 0, err
    assert answered >= 2 and out.startswith("60 added")
    with nearindex.open(closed_db, read_only=True) as reader:
        assert reader.info().images == len(images.all_files) + 60 and reader.check().ok


def test_a_database_made_before_ranked_cells_keeps_plain_cells(db_path: Path, collection: Collection) -> None:
    with nearindex.open(db_path) as database:
        database.add(collection.root, workers=0)
    with sqlite3.connect(db_path / "catalog.sqlite3") as connection:  # as an older nearindex left it
        assert connection.execute("DELETE FROM state WHERE key = 'settings.ranked_cells'").rowcount == 1
    with nearindex.open(db_path) as database:
        raw = database._database  # the settings the stored vectors were made with
        assert raw.settings.ranked_cells is False
        found = database.query(collection.originals[1], k=1)[0]
        assert found.path == str(collection.originals[1]) and found.coarse == 1.0
    fresh = db_path.parent / "fresh"
    with nearindex.open(fresh) as database:
        database.add(collection.originals[1], workers=0)
        assert database._database.settings.ranked_cells is True
