"""What a running ``nearindex`` process has reached, seen from outside, and what it has committed.

Nothing in nearindex is hooked: the phase is read from ``/proc`` (the process's open files, its
child processes, and the POSIX locks SQLite holds, listed in ``/proc/locks``) and from the catalog
through a separate read-only SQLite connection (WAL readers never block the writer):

* ``writing SQLite``: the process holds the WAL write lock (byte 120 of ``catalog.sqlite3-shm``);
  ``migrating`` when the catalog has no schema revision committed yet;
* ``saving FAISS``: a ``.vectors-*.tmp`` file exists in the database directory;
* ``starting``: the process has no file of the database open yet (interpreter and imports);
* ``opening`` / ``rebuilding index``: the database is open but no ingest run is recorded yet;
  rebuilding when no index file exists for the catalog's generation;
* ``walking``, ``describing`` (worker processes alive), ``finishing`` (workers gone, the run not
  recorded as ended), ``exiting`` (the run recorded as ended).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from nearindex.database import CATALOG_NAME
from nearindex.vectors import index_file

#: Offset of SQLite's WAL write lock in the -shm file (WALINDEX_LOCK_OFFSET + WAL_WRITE_LOCK).
WAL_WRITE_LOCK_BYTE = 120

PHASES = (
    "starting", "migrating", "opening", "rebuilding index", "walking", "describing",
    "writing SQLite", "saving FAISS", "finishing", "exiting", "exited",
)  # fmt: skip


@dataclass(frozen=True)
class CatalogView:
    """What a reader sees in the catalog at one moment (all committed).

    Attributes:
        revision: The schema revision, or None before the first migration committed.
        generation: The catalog generation (0 when unset).
        files: Stored path -> content hash.
        failures: Paths with a failure record.
        runs: (id, finished) of each ingest run.
    """

    revision: str | None = None
    generation: int = 0
    files: dict[str, bytes] = field(default_factory=dict)
    failures: frozenset[str] = frozenset()
    runs: tuple[tuple[int, bool], ...] = ()


def read_catalog(database: Path, *, with_files: bool = True) -> CatalogView | None:
    """Read the committed state with a read-only connection; None if it cannot be read yet."""
    catalog = database / CATALOG_NAME
    if not catalog.exists():
        return CatalogView()
    try:
        connection = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True, timeout=0.05, isolation_level=None)
    except sqlite3.Error:
        return None
    try:
        connection.execute("BEGIN")  # one read transaction: a consistent view of every table
        return _read_view(connection, with_files=with_files)
    except sqlite3.OperationalError as error:
        return CatalogView() if "no such table" in str(error) else None
    except sqlite3.DatabaseError:
        return None
    finally:
        connection.close()


def _read_view(connection: sqlite3.Connection, *, with_files: bool) -> CatalogView:
    tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "alembic_version" not in tables or "files" not in tables:
        return CatalogView()
    revision = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    generation = connection.execute("SELECT value FROM state WHERE key = 'generation'").fetchone()
    runs = tuple((rid, done is not None) for rid, done in connection.execute("SELECT id, finished_at FROM ingest_runs"))
    files: dict[str, bytes] = {}
    failures: frozenset[str] = frozenset()
    if with_files:
        query = "SELECT files.path, contents.content_hash FROM files JOIN contents ON files.content_id = contents.id"
        files = dict(connection.execute(query).fetchall())
        failures = frozenset(path for (path,) in connection.execute("SELECT path FROM failures"))
    return CatalogView(
        revision[0] if revision else None, int(generation[0]) if generation else 0, files, failures, runs
    )


def holds_wal_write_lock(pid: int, database: Path) -> bool:
    """True while ``pid`` is inside a SQLite write transaction on the catalog."""
    try:
        inode = os.stat(database / (CATALOG_NAME + "-shm")).st_ino
        with open("/proc/locks") as locks:
            lines = locks.read().splitlines()
    except OSError:
        return False
    return any(_is_write_lock(line.split(), pid, inode) for line in lines)


def _is_write_lock(parts: list[str], pid: int, inode: int) -> bool:
    """One /proc/locks line ("1: POSIX  ADVISORY  WRITE 1234 fe:00:5678 120 120") is the WAL write lock."""
    if len(parts) < 8 or parts[3] != "WRITE" or parts[4] != str(pid) or not parts[5].endswith(f":{inode}"):
        return False
    return int(parts[6]) <= WAL_WRITE_LOCK_BYTE <= int(parts[7])


def open_paths(pid: int) -> list[str]:
    """The files ``pid`` has open (empty once it is gone)."""
    found = []
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                found.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
    return found


def has_workers(pid: int) -> bool:
    """True when ``pid`` has decoding worker processes (spawned children running ``spawn_main``).

    The resource tracker is also a child, and a child between fork and exec still shows the
    parent's command line, so workers are recognised by their own command line.
    """
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            pids = children.read().split()
    except OSError:
        return False
    return any("--multiprocessing-fork" in _command_line(child) for child in pids)


def _command_line(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().decode("utf-8", "replace")
    except OSError:
        return ""  # gone


def saving_index(database: Path) -> bool:
    """True while an index temp file exists (FAISS is writing, fsyncing or renaming it)."""
    with contextlib.suppress(OSError):
        return any(name.startswith(".vectors-") and name.endswith(".tmp") for name in os.listdir(database))
    return False


@dataclass
class Observer:
    """Classifies the phase of one running nearindex process, remembering what it saw before.

    Attributes:
        pid: The process.
        database: Its database directory.
        runs_before: Ingest run ids recorded before the process started.
    """

    pid: int
    database: Path
    runs_before: frozenset[int] = frozenset()
    seen_workers: bool = False

    def phase(self) -> str:
        """The phase the process is in now (one of ``PHASES``)."""
        if not os.path.exists(f"/proc/{self.pid}/fd"):
            return "exited"
        if saving_index(self.database):
            return "saving FAISS"
        if holds_wal_write_lock(self.pid, self.database):
            view = read_catalog(self.database, with_files=False)
            return "migrating" if view is not None and view.revision is None else "writing SQLite"
        database_prefix = str(self.database) + os.sep
        if not any(path.startswith(database_prefix) for path in open_paths(self.pid)):
            return "starting"
        if has_workers(self.pid):
            self.seen_workers = True
            return "describing"
        return self._phase_from_catalog()

    def _phase_from_catalog(self) -> str:
        view = read_catalog(self.database, with_files=False)
        if view is None or view.revision is None:
            return "migrating"
        runs = [done for rid, done in view.runs if rid not in self.runs_before]
        if not runs:
            missing = not index_file(self.database, view.generation).exists()
            return "rebuilding index" if missing else "opening"
        if runs[-1]:
            return "exiting"
        return "finishing" if self.seen_workers else "walking"
