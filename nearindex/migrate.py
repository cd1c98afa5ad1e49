"""Bring a catalog file to the schema this nearindex knows, on open.

Pattern from mlflow's ``store/db/utils.py``: migrations run automatically,
inside one transaction, after a backup of a populated file, and a file whose
schema is newer than the code is refused untouched.
"""

from __future__ import annotations

import functools
import importlib.util
import sqlite3
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from .errors import SchemaTooNewError


def migrations_directory() -> Path:
    """Folder of the Alembic scripts.

    Installed, they are the package ``nearindex.migrations`` (the checkout's
    top-level ``migrations/`` mapped into the wheel); run from a source
    checkout that shadows the installed package, they are that folder.
    """
    try:
        spec = importlib.util.find_spec("nearindex.migrations")
    except ModuleNotFoundError:
        spec = None
    if spec is not None and spec.origin:
        return Path(spec.origin).parent
    return Path(__file__).resolve().parent.parent / "migrations"


def alembic_config() -> Config:
    """An Alembic Config pointing at the shipped migration scripts."""
    config = Config()
    config.set_main_option("script_location", str(migrations_directory()))
    return config


@functools.cache
def head_revision() -> str:
    """The newest schema revision this code knows (the scripts are parsed once)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the package ships no migrations"
    return head


def current_revision(engine: Engine) -> str | None:
    """The schema revision recorded in a catalog, or None for a new file."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_catalog(engine: Engine, path: Path) -> str:
    """Migrate a catalog to the head revision if it is behind.

    Args:
        engine: Engine on the catalog (see ``engine.create_catalog_engine``).
        path: The catalog file, used for the backup and error messages.

    Returns:
        The revision the catalog is at afterwards.

    Raises:
        SchemaTooNewError: The file was written by a newer nearindex; it is
            left untouched.
    """
    config = alembic_config()
    scripts = ScriptDirectory.from_config(config)
    current, head = current_revision(engine), head_revision()
    if current == head:
        return head
    if current is not None and not _known(scripts, current):
        raise SchemaTooNewError(
            path, f"catalog schema {current} is newer than this nearindex (knows {head}); upgrade nearindex"
        )
    if current is not None:
        backup_catalog(path, path.with_name(f"{path.name}.before-{head}"))
    _run_upgrade(engine, config)
    return head


def _known(scripts: ScriptDirectory, revision: str) -> bool:
    try:
        return scripts.get_revision(revision) is not None
    except Exception:  # alembic raises several types for an unknown id
        return False


def _run_upgrade(engine: Engine, config: Config) -> None:
    with engine.connect() as connection:
        # Foreign keys can only be switched outside a transaction, so this goes
        # to the driver directly; batch mode copies tables, which would
        # otherwise cascade deletes.
        driver = connection.connection.driver_connection
        assert driver is not None
        driver.execute("PRAGMA foreign_keys=OFF")
        with connection.begin():
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        driver.execute("PRAGMA foreign_keys=ON")


def backup_catalog(source: Path, destination: Path) -> None:
    """Copy a live SQLite file consistently with SQLite's backup API."""
    with sqlite3.connect(source) as src, sqlite3.connect(destination) as dst:
        src.backup(dst)
