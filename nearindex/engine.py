"""SQLite engine for the catalog: WAL, a busy timeout and real transactions.

Python 3.11's ``sqlite3`` module opens transactions lazily and never for DDL,
so SQLAlchemy's documented recipe is used: turn the driver's own transaction
handling off and emit ``BEGIN`` ourselves (``BEGIN IMMEDIATE`` would also lock
readers out of upgrading, which is what a writer wants; plain ``BEGIN`` is
enough for correctness and keeps readers cheap).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event

#: How long a connection waits for another writer before failing, in ms.
BUSY_TIMEOUT_MS = 30_000


def create_catalog_engine(path: Path) -> Engine:
    """Create an engine on a SQLite file with nearindex's connection settings.

    Args:
        path: The catalog file (created on first write if missing).

    Returns:
        An Engine whose connections use WAL, foreign keys and a busy timeout,
        and whose ``begin()`` really starts a SQLite transaction.
    """
    engine = create_engine(f"sqlite:///{path}")
    event.listen(engine, "connect", _configure_connection)
    event.listen(engine, "begin", _emit_begin)
    return engine


def _configure_connection(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    # Disable pysqlite's implicit transactions so the "begin" hook controls them.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _emit_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN")
