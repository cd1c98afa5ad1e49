"""Tests of the Alembic migrations and nearindex.migrate on real SQLite files."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.resources
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import nearindex
from nearindex import DatabaseLockedError, SchemaTooNewError, synthetic
from nearindex.catalog import Batch, FileRecord
from nearindex.database import CATALOG_NAME, Database
from nearindex.engine import create_catalog_engine
from nearindex.migrate import (
    alembic_config,
    backup_catalog,
    current_revision,
    head_revision,
    migrations_directory,
    upgrade_catalog,
)
from nearindex.models import Base
from nearindex.settings import DEFAULT_SETTINGS, WINDOW_COUNT, WINDOWS
from tests.conftest import new_content

REPO = Path(__file__).resolve().parents[1]
REVISION_ID = re.compile(r"^(\d{4})_[a-z0-9_]+$")
SHIPPED = (
    "env.py", "script.py.mako", "versions/0001_initial.py", "versions/0002_colour.py", "versions/0003_borders.py"
)  # fmt: skip


def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def chain_from_base() -> list[str]:
    """Revision ids from the first to the head."""
    return [script.revision for script in scripts().walk_revisions()][::-1]


def populate(directory: Path, count: int = 4) -> None:
    """Create a database with ``count`` contents (one file each) and close it."""
    with Database.open(directory) as db:
        contents = [new_content(seed, db.settings.dimension) for seed in range(count)]
        files = [FileRecord(f"/photos/{seed}.jpg", 100 + seed, seed, c.content_hash) for seed, c in enumerate(contents)]
        db.write(Batch(contents=contents, files=files))


def table_rows(catalog: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, read with plain sqlite3 (read-only)."""
    with sqlite3.connect(f"file:{catalog}?mode=ro", uri=True) as connection:
        tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        rows = {table: sorted(connection.execute(f'SELECT * FROM "{table}"'), key=repr) for table in tables}
    connection.close()
    return rows


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def set_revision(catalog: Path, revision: str) -> None:
    connection = sqlite3.connect(catalog)
    with connection:
        connection.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    connection.close()


# -- the script directory ---------------------------------------------------------


def test_the_scripts_have_exactly_one_head_and_one_base() -> None:
    assert len(scripts().get_heads()) == 1
    assert len(scripts().get_bases()) == 1
    assert scripts().get_current_head() == head_revision()


def test_revision_ids_are_readable_and_numbered_in_chain_order() -> None:
    chain = chain_from_base()
    assert chain, "the package ships no migrations"
    for position, revision in enumerate(chain, start=1):
        match = REVISION_ID.match(revision)
        assert match, f"revision id {revision!r} is not like 0001_initial"
        assert int(match.group(1)) == position, f"{revision} is number {position} in the chain"


def test_every_revision_file_is_one_link_of_a_linear_chain() -> None:
    directory = scripts()
    files = sorted(p.stem for p in (migrations_directory() / "versions").glob("*.py") if p.stem != "__init__")
    assert files == sorted(chain_from_base()), "a revision file is not in the chain (or is named apart from its id)"
    previous = None
    for revision in chain_from_base():
        script = directory.get_revision(revision)
        assert script is not None
        assert script.down_revision == previous, f"{revision} revises {script.down_revision!r}, not {previous!r}"
        assert not script.is_merge_point and not script.is_branch_point
        assert not script.branch_labels and not script.dependencies
        previous = revision


# -- upgrade from nothing ---------------------------------------------------------


def test_upgrade_from_an_empty_file_gives_exactly_the_models(tmp_path: Path) -> None:
    Database.open(tmp_path / "db").close()
    engine = create_catalog_engine(tmp_path / "db" / CATALOG_NAME)
    try:
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_upgrade_catalog_of_a_new_file_reaches_head_without_a_backup(tmp_path: Path) -> None:
    catalog = tmp_path / CATALOG_NAME
    engine = create_catalog_engine(catalog)
    try:
        assert current_revision(engine) is None
        assert upgrade_catalog(engine, catalog) == head_revision()
        assert current_revision(engine) == head_revision()
        assert upgrade_catalog(engine, catalog) == head_revision()  # a second call is a no-op
    finally:
        engine.dispose()
    assert not list(tmp_path.glob("*.before-*"))
    assert {"contents", "files", "failures", "ingest_runs", "state", "alembic_version"} <= set(table_rows(catalog))


# -- opening existing files ---------------------------------------------------------


def test_opening_an_up_to_date_populated_database_changes_nothing_and_backs_nothing_up(tmp_path: Path) -> None:
    directory = tmp_path / "db"
    populate(directory)
    rows = table_rows(directory / CATALOG_NAME)
    for writable in (True, False):
        with Database.open(directory, writable=writable) as db:
            assert db.schema_revision() == head_revision()
            assert db.counts()["contents"] == 4
    assert not list(directory.glob("*.before-*"))
    assert table_rows(directory / CATALOG_NAME) == rows


@pytest.mark.parametrize("writable", [True, False], ids=["writable", "read-only"])
def test_a_catalog_from_a_newer_nearindex_is_refused_untouched(tmp_path: Path, writable: bool) -> None:
    directory = tmp_path / "db"
    populate(directory)
    catalog = directory / CATALOG_NAME
    set_revision(catalog, "9999_future")
    rows, digest = table_rows(catalog), file_digest(catalog)

    with pytest.raises(SchemaTooNewError) as raised:
        Database.open(directory, writable=writable)

    message = str(raised.value)
    assert str(catalog) in message and "newer" in message
    assert "\n" not in message
    assert file_digest(catalog) == digest
    assert table_rows(catalog) == rows
    wal = catalog.with_name(CATALOG_NAME + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    assert not list(directory.glob("*.before-*"))
    with pytest.raises(SchemaTooNewError):  # still refused, nothing was "fixed" on the way
        Database.open(directory, writable=writable)


def test_the_refusal_leaves_the_database_openable_once_the_revision_is_known_again(tmp_path: Path) -> None:
    directory = tmp_path / "db"
    populate(directory)
    set_revision(directory / CATALOG_NAME, "9999_future")
    with pytest.raises(SchemaTooNewError):
        Database.open(directory)
    set_revision(directory / CATALOG_NAME, head_revision())
    with Database.open(directory) as db:  # the refused writable open released its lock
        assert db.counts()["contents"] == 4


def test_a_read_only_open_migrates_only_under_the_writer_lock(tmp_path: Path) -> None:
    """A reader may bring an old catalog up to date, but never while a writer works."""
    directory = tmp_path / "db"
    directory.mkdir()
    catalog = directory / CATALOG_NAME
    with contextlib.closing(sqlite3.connect(catalog)) as connection:  # a WAL file with no schema yet
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE placeholder (x)")
    before = catalog.read_bytes()
    lock = os.open(directory / "write.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(DatabaseLockedError):
            Database.open(directory, writable=False, lock_timeout=0)
        assert catalog.read_bytes() == before
    finally:
        os.close(lock)
    with Database.open(directory, writable=False) as db:
        assert db.counts()["contents"] == 0
    assert current_revision(create_catalog_engine(catalog)) == head_revision()


# -- backups ------------------------------------------------------------------------


def test_backup_catalog_makes_a_readable_copy_with_the_same_rows(tmp_path: Path) -> None:
    directory = tmp_path / "db"
    populate(directory)
    catalog = directory / CATALOG_NAME
    copy = tmp_path / "copy.sqlite3"
    backup_catalog(catalog, copy)
    with sqlite3.connect(copy) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    connection.close()
    assert table_rows(copy) == table_rows(catalog)
    assert table_rows(copy)["files"], "the copy must not be empty"


def test_backup_catalog_copies_a_catalog_that_is_open_and_being_written(tmp_path: Path) -> None:
    directory = tmp_path / "db"
    populate(directory)
    with Database.open(directory) as db:
        more = [new_content(seed, db.settings.dimension) for seed in (10, 11)]
        files = [FileRecord(f"/more/{i}.png", 1, 1, c.content_hash) for i, c in enumerate(more)]
        db.write(Batch(contents=more, files=files))
        backup_catalog(directory / CATALOG_NAME, tmp_path / "copy.sqlite3")  # committed rows may sit in the WAL
        expected = db.counts()["contents"]
    assert len(table_rows(tmp_path / "copy.sqlite3")["contents"]) == expected == 6


def test_upgrading_a_catalog_at_an_older_known_revision_backs_it_up_first(tmp_path: Path) -> None:
    chain = chain_from_base()
    if len(chain) < 2:
        pytest.skip(f"only one revision ({chain[0]}) ships, so no catalog can be at an older known revision")
    catalog = tmp_path / CATALOG_NAME
    engine = create_catalog_engine(catalog)
    try:
        with engine.begin() as connection:  # build the older schema with the shipped scripts
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, chain[-2])
            connection.exec_driver_sql("INSERT INTO state (key, value) VALUES ('generation', '5')")
        assert current_revision(engine) == chain[-2]
        rows_before = table_rows(catalog)
        assert upgrade_catalog(engine, catalog) == head_revision()
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
    backups = list(tmp_path.glob(f"{CATALOG_NAME}.before-*"))
    assert [b.name for b in backups] == [f"{CATALOG_NAME}.before-{head_revision()}"]
    assert table_rows(backups[0]) == rows_before
    assert ("generation", "5") in table_rows(catalog)["state"]


def test_every_revision_goes_down_and_up_again_keeping_the_rows(tmp_path: Path) -> None:
    """Downgrades too run with foreign keys on (``engine.create_catalog_engine``): none may cascade into ``files``."""
    directory = tmp_path / "db"
    populate(directory)
    catalog = directory / CATALOG_NAME
    rows_before = table_rows(catalog)
    engine = create_catalog_engine(catalog)
    try:
        for older in chain_from_base()[-2::-1]:
            with engine.begin() as connection:
                config = alembic_config()
                config.attributes["connection"] = connection
                command.downgrade(config, older)
            assert current_revision(engine) == older
            assert table_rows(catalog)["files"] == rows_before["files"]
        upgrade_catalog(engine, catalog)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
    assert {table: len(rows) for table, rows in table_rows(catalog).items()} == {
        table: len(rows) for table, rows in rows_before.items()
    }


# -- packaging ------------------------------------------------------------------------


def test_the_migrations_are_inside_the_installed_package() -> None:
    shipped = importlib.resources.files("nearindex.migrations")
    for name in SHIPPED:
        assert shipped.joinpath(name).is_file(), name
    assert Path(str(shipped)) == migrations_directory()


def _build_wheel(source: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """``python -m build --wheel``, or pip's offline build when that fails."""
    commands = [
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(source)],
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(source)],
    ]
    result = None
    for argv in commands:
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        except subprocess.TimeoutExpired:
            continue
        if result.returncode == 0 and list(out.glob("*.whl")):
            break
    assert result is not None
    return result


def test_the_wheel_ships_the_migrations(tmp_path: Path) -> None:
    # Build from a copy: a build writes build/ and *.egg-info into its source folder.
    source = tmp_path / "source"
    ignored = shutil.ignore_patterns(
        ".git", ".venv", ".*cache", ".hypothesis", "__pycache__", "build", "dist", "*.egg-info", "nearindex-d*"
    )
    shutil.copytree(REPO, source, ignore=ignored)
    result = _build_wheel(source, tmp_path / "dist")
    wheels = list((tmp_path / "dist").glob("nearindex-*.whl"))
    assert len(wheels) == 1, f"no wheel was built:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = set(wheel.namelist())
    for name in SHIPPED:
        assert f"nearindex/migrations/{name}" in names
    assert "nearindex/migrations/versions/__init__.py" in names


FIXTURE = Path(__file__).resolve().parent / "fixtures" / "schema-0001-db"


def test_a_database_written_by_the_first_schema_still_opens_with_its_data(tmp_path: Path) -> None:
    """A copy of a database made by schema 0001 (12 images of tests/conftest's scenes).

    Once a later revision exists, opening it must upgrade in place with every row kept
    and a backup written first; until then it must open unchanged.
    """
    directory = tmp_path / "old-db"
    shutil.copytree(FIXTURE, directory)
    rows_before = table_rows(directory / CATALOG_NAME)
    with nearindex.open(directory) as db:
        info = db.info()
        assert (info.images, info.contents, info.failed) == (12, 12, 0)
        assert info.schema == head_revision()
        assert db.check().ok
        probe = tmp_path / "probe.jpg"
        synthetic.write_image(probe, synthetic.make_scene(1))
        best = db.query(probe, k=1)[0]
        assert best.path.endswith("/scene01.jpg") and best.score >= DEFAULT_SETTINGS.duplicate_threshold
    if head_revision() == "0001_initial":
        assert table_rows(directory / CATALOG_NAME) == rows_before
    else:
        assert table_rows(directory / CATALOG_NAME)["files"] == rows_before["files"]
    backups = list(directory.glob(f"{CATALOG_NAME}.before-*"))
    assert bool(backups) == (head_revision() != "0001_initial")


def _old_database_and(tmp_path: Path, name: str, image: synthetic.Image) -> tuple[Path, Path]:
    """A copy of the schema 0001 fixture with a new folder of one image, ``name``, added to it."""
    directory, folder = tmp_path / "old-db", tmp_path / "new"
    shutil.copytree(FIXTURE, directory)
    folder.mkdir()
    synthetic.write_image(folder / name, image)
    with nearindex.open(directory) as db:
        assert not db.add(folder, workers=0).failed
    return directory, folder


def test_contents_stored_before_colours_have_none_and_new_smooth_ones_get_theirs(tmp_path: Path) -> None:
    directory, _folder = _old_database_and(tmp_path, "gradient.png", synthetic.make_gradient(3))
    stored_before = len(table_rows(FIXTURE / CATALOG_NAME)["contents"])
    with contextlib.closing(sqlite3.connect(directory / CATALOG_NAME)) as connection:
        colours = [row[0] for row in connection.execute("SELECT colour FROM contents")]
    assert len(colours) == stored_before + 1
    assert sum(colour is None for colour in colours) == stored_before


def test_a_database_made_before_borders_keeps_describing_whole_images(tmp_path: Path) -> None:
    """Its stored contents were described with their borders: so are new ones, and queries (``trim_borders``)."""
    old, new, folder = tmp_path / "old-db", tmp_path / "new-db", tmp_path / "boxed"
    shutil.copytree(FIXTURE, old)
    folder.mkdir()
    synthetic.write_image(folder / "boxed.png", synthetic.add_border(synthetic.make_scene(2), fraction=0.15))
    found = {}
    for directory in (old, new):
        with nearindex.open(directory) as db:
            assert not db.add(folder, workers=0).failed
        with contextlib.closing(sqlite3.connect(directory / CATALOG_NAME)) as connection:
            setting = connection.execute("SELECT value FROM state WHERE key = 'settings.trim_borders'").fetchall()
            tops = [row[0] for row in connection.execute("SELECT border_top FROM contents")]
        found[directory] = (setting, len(tops), max(tops))
    assert found[old] == ([], 13, 0.0)
    assert found[new][:2] == ([("True",)], 1) and found[new][2] > 0.1


def test_a_database_of_window_vectors_alone_takes_new_contents_with_their_strips(tmp_path: Path) -> None:
    """Contents stored before ``STRIPS`` keep their ``WINDOWS`` vectors; new ones add the strips; both are found."""
    directory, folder = _old_database_and(tmp_path, "texture.png", synthetic.make_texture(4))
    with nearindex.open(directory) as db:
        assert db.info().vectors == 12 * len(WINDOWS) + WINDOW_COUNT
        assert db.check().ok
        probe = tmp_path / "probe.jpg"
        synthetic.write_image(probe, synthetic.make_scene(1))
        assert db.query(probe, k=1)[0].path.endswith("/scene01.jpg")
        assert db.query(folder / "texture.png", k=1)[0].path == str(folder / "texture.png")
        db.remove(folder / "texture.png")
        assert db.info().vectors == 12 * len(WINDOWS) and db.check().ok
