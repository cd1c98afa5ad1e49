"""The database facade: one directory, two stores, kept in agreement.

A database directory holds ``catalog.sqlite3`` (SQLite, the source of truth)
and ``vectors.<generation>.faiss`` (FAISS, a cache derived from the catalog's
descriptors). This is the only module that knows both exist. It orders their
writes: the catalog commits a batch and bumps its generation, the in-memory
index mirrors it, and the index file is written (temp file, fsync, rename)
for that generation when a run ends. An index file whose generation is not
the catalog's is never trusted: it is rebuilt from the catalog on open.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt
from sqlalchemy.exc import DBAPIError

from . import vectors
from .catalog import Batch, BatchResult, Catalog, FailureRecord, FileState, StoredContent
from .engine import create_catalog_engine
from .errors import DatabaseError, DatabaseLockedError
from .migrate import current_revision, head_revision, upgrade_catalog
from .settings import DEFAULT_SETTINGS, WINDOW_COUNT, WINDOWS, Settings
from .vectors import VectorIndex

CATALOG_NAME = "catalog.sqlite3"
LOCK_NAME = "write.lock"
#: Seconds a writer waits for another writer to finish before giving up.
DEFAULT_LOCK_TIMEOUT = 10.0
#: Seconds between two tries of a held lock.
_LOCK_POLL = 0.1
#: Settings that shape stored vectors, fixed when a database is created.
_SHAPING_SETTINGS = ("grid", "thumb_side", "blur_fraction", "ranked_cells", "trim_borders")
#: State keys of a calibrated duplicate threshold and of the record of its calibration.
THRESHOLD_KEY, CALIBRATION_KEY = "settings.duplicate_threshold", "calibration"
#: A content's window vectors have index ids content_id * WINDOW_SLOTS + window.
WINDOW_SLOTS = 16


@dataclass(frozen=True)
class CheckReport:
    """What ``check`` found; ``problems`` is empty when the stores agree.

    ``repaired`` is true when every problem listed was repaired, by this check
    (``repair=True``) or already when the database was opened for writing.
    """

    problems: tuple[str, ...]
    repaired: bool

    @property
    def ok(self) -> bool:
        """True when no problem was found (or all were repaired)."""
        return not self.problems or self.repaired


class Database:
    """An open nearindex database directory.

    Use ``Database.open`` (or ``nearindex.open``) rather than the constructor.
    """

    def __init__(self, directory: Path, catalog: Catalog, settings: Settings, *, writable: bool) -> None:
        self.directory = directory
        self.settings = settings
        self.writable = writable
        self._catalog = catalog
        self._lock_fd: int | None = None
        self._index_dirty = False
        self._index_stale = False
        self._repaired_on_open: list[str] = []
        self._generation = 0
        self._index = VectorIndex.empty(settings.dimension)

    # -- opening and closing -------------------------------------------------
    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        *,
        writable: bool = True,
        create: bool | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        with_index: bool = True,
    ) -> Database:
        """Open (and, when writable, create) a database directory.

        Migrates the catalog to this code's schema, reads the settings the
        database was created with, and loads the vector index, rebuilding it
        from the catalog when it is missing or stale.

        Args:
            directory: The database directory.
            writable: Take the single-writer lock, waiting up to
                ``lock_timeout`` seconds for another writer to finish.
            create: Create a missing database (default: when writable).
            lock_timeout: Seconds to wait for the writer lock (0: fail at once).
            with_index: Load the vector index; a reader that only needs stored
                contents (a rescoring worker) passes False and searches nothing.

        Raises:
            DatabaseError: If the directory is not a database (or cannot become one).
            DatabaseLockedError: If another process kept the writer lock for ``lock_timeout``.
            SchemaTooNewError: If a newer nearindex wrote the catalog.
        """
        path = Path(directory)
        _check_directory(path, create=writable if create is None else create)
        database: Database | None = None
        try:
            engine = create_catalog_engine(path / CATALOG_NAME)
            database = cls(path, Catalog(engine), DEFAULT_SETTINGS, writable=writable)
            if writable or current_revision(engine) != head_revision():
                database._acquire_lock(lock_timeout)  # a reader takes it only to migrate
            upgrade_catalog(engine, path / CATALOG_NAME)
            if not writable:
                database._release_lock()
            database._load_settings()
            if with_index or writable:
                database._load_index()
        except DBAPIError as error:
            if database is not None:
                database.close()
            raise DatabaseError(path, f"cannot open catalog ({error.orig})") from error
        except BaseException:
            if database is not None:
                database.close()
            raise
        return database

    def close(self) -> None:
        """Write the index file if it changed, release the lock and the engine."""
        try:
            if self._index_dirty and self.writable:
                self.save_index()
        finally:
            self._catalog.engine.dispose()
            self._release_lock()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- reads ---------------------------------------------------------------
    @property
    def generation(self) -> int:
        """The catalog generation the loaded index reflects."""
        return self._generation

    @property
    def index(self) -> VectorIndex:
        """The in-memory vector index (read-only use)."""
        return self._index

    def file_states(self) -> dict[str, FileState]:
        """Size, mtime and content id of every stored path."""
        return self._catalog.file_states()

    def known_hashes(self) -> set[bytes]:
        """Hashes of every stored content."""
        return self._catalog.known_hashes()

    def paths_with_hash(self, content_hash: bytes) -> list[str]:
        """Stored paths holding exactly this content."""
        return self._catalog.paths_with_hash(content_hash)

    def paths_under(self, prefix: str) -> list[str]:
        """Stored paths equal to or below ``prefix``."""
        return self._catalog.paths_under(prefix)

    def failed_paths_under(self, prefix: str) -> list[str]:
        """Paths with a failure record equal to or below ``prefix``."""
        return self._catalog.failed_paths_under(prefix)

    def paths_of(self, content_ids: list[int]) -> dict[int, list[str]]:
        """Stored paths of each content id."""
        return self._catalog.paths_of(content_ids)

    def exact_copy_groups(self) -> list[list[str]]:
        """Groups of paths holding byte-identical content."""
        return self._catalog.duplicate_hash_groups()

    def non_flat_content_ids(self) -> list[int]:
        """Ids of the stored contents that have vectors (not flat), ascending."""
        return self._catalog.non_flat_content_ids()

    def store_duplicate_threshold(self, threshold: float, record: str) -> None:
        """Make ``threshold`` this database's duplicate threshold, with ``record`` saying where it came from.

        Raises:
            ValueError: If ``threshold`` is not in 0..1.
            DatabaseError: If the database is read-only or the write fails.
        """
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in 0..1, got {threshold}")
        self._require_writable()
        with self._translated("catalog write failed"):
            self._catalog.set_state({THRESHOLD_KEY: repr(threshold), CALIBRATION_KEY: record})
        self.settings = replace(self.settings, duplicate_threshold=threshold)

    def calibration_record(self) -> str | None:
        """The record stored with the current duplicate threshold, if it was calibrated."""
        return self._catalog.get_state(CALIBRATION_KEY)

    def stored_contents(self, content_ids: list[int]) -> dict[int, StoredContent]:
        """Stored descriptors and thumbnails by content id."""
        return self._catalog.contents(content_ids)

    def stored_descriptors(self, content_ids: list[int]) -> dict[int, bytes]:
        """Stored descriptors by content id (the window vectors, float32, row 0 the whole image)."""
        return self._catalog.descriptors(content_ids)

    def thumbnail(self, content: StoredContent) -> npt.NDArray[np.uint8]:
        """A stored thumbnail as a 2-D uint8 array."""
        flat = np.frombuffer(content.thumbnail, np.uint8)
        return flat.reshape(content.thumb_height, content.thumb_width)

    def search(self, queries: npt.NDArray[np.float32], k: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """k-NN of vectors by inner product: (coarse scores, content ids).

        Each stored content has several window vectors, so a content id may
        appear more than once in a row; missing neighbours are -1.
        """
        scores, content_ids, _windows = self.search_windows(queries, k)
        return scores, content_ids

    def search_windows(
        self, queries: npt.NDArray[np.float32], k: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """``search``, with the number of the window each neighbour is (-1 where none)."""
        if self._index.size == 0:
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64), empty.astype(np.int64)
        scores, ids = self._index.search(queries, k)
        found = ids >= 0
        return scores, np.where(found, ids // WINDOW_SLOTS, -1), np.where(found, ids % WINDOW_SLOTS, -1)

    def counts(self) -> dict[str, int]:
        """Numbers of images (paths), contents, flat contents and failures."""
        return self._catalog.counts()

    def failures(self) -> list[FailureRecord]:
        """Recorded failures by path."""
        return self._catalog.failures()

    def failure_states(self) -> dict[str, FailureRecord]:
        """Recorded failures keyed by path."""
        return self._catalog.failure_states()

    def storage_bytes(self) -> dict[str, int]:
        """On-disk sizes of the catalog (with its WAL) and the index file."""
        catalog = sum(p.stat().st_size for p in self.directory.glob(CATALOG_NAME + "*") if ".before-" not in p.name)
        index_path = vectors.index_file(self.directory, self._generation)
        return {"catalog": catalog, "index": index_path.stat().st_size if index_path.exists() else 0}

    def schema_revision(self) -> str | None:
        """The Alembic revision of the catalog."""
        return current_revision(self._catalog.engine)

    # -- writes ----------------------------------------------------------------
    def write(self, batch: Batch, *, keep_orphans: bool = False) -> BatchResult:
        """Commit a batch to the catalog and mirror it in the in-memory index.

        Args:
            batch: The changes.
            keep_orphans: Keep contents left without a file (until ``collect_orphans``).

        Raises:
            DatabaseError: If the database was opened read-only or the write fails.
        """
        self._require_writable()
        descriptors = {c.content_hash: c.descriptor for c in batch.contents if not c.flat}
        return self._commit(lambda: self._catalog.apply_batch(batch, keep_orphans=keep_orphans), descriptors)

    def collect_orphans(self) -> BatchResult:
        """Delete contents no file points to any more, and their vectors."""
        self._require_writable()
        return self._commit(self._catalog.collect_orphans, {})

    def _commit(self, apply: Callable[[], BatchResult], descriptors: dict[bytes, bytes]) -> BatchResult:
        """Run a catalog transaction, then mirror its content changes in the index."""
        # Until the index mirrors the commit, it cannot be trusted: an interrupt
        # (Ctrl-C) between the two makes the next save rebuild it from the catalog.
        was_stale, self._index_stale = self._index_stale, True
        with self._translated("catalog write failed"):
            result = apply()
        if result.generation != self._generation:
            self._index_dirty = True
            removed = np.asarray(result.removed_ids, np.int64)[:, None] * WINDOW_SLOTS + np.arange(WINDOW_COUNT)
            self._index.remove(removed.ravel())
            gone = set(result.removed_ids)  # a content can come and go in one batch (a path listed twice)
            added = [
                (cid, descriptors[d]) for d, cid in result.added_ids.items() if d in descriptors and cid not in gone
            ]
            self._add_vectors(added)
            self._generation = result.generation
        self._index_stale = was_stale
        return result

    @contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        """Turn storage failures into one-line DatabaseErrors naming the directory."""
        try:
            yield
        except DBAPIError as error:
            raise DatabaseError(self.directory, f"{what} ({error.orig})") from error
        except OSError as error:
            raise DatabaseError(self.directory, f"{what} ({error.strerror or error})") from error
        except RuntimeError as error:  # FAISS reports I/O failures as RuntimeError
            raise DatabaseError(self.directory, f"{what} ({str(error).splitlines()[0]})") from error

    def record_run_start(self, command: str) -> int:
        """Record that an ingest run started; returns its id."""
        self._require_writable()
        with self._translated("catalog write failed"):
            return self._catalog.start_run(command)

    def record_run_end(self, run_id: int, counts: dict[str, int]) -> None:
        """Record an ingest run's counts."""
        self._require_writable()
        with self._translated("catalog write failed"):
            self._catalog.finish_run(run_id, counts)

    def save_index_if_changed(self) -> None:
        """``save_index``, unless the index file already holds what is in memory."""
        if self._index_dirty or self._index_stale:
            self.save_index()

    def save_index(self) -> None:
        """Write the index file for the current generation and drop older ones.

        An index that has outgrown its kind (``VectorIndex.outgrown``: a flat
        index past ``COMPRESS_ABOVE`` vectors, a compressed one with too few
        lists for its size) is rebuilt from the catalog first.
        """
        self._require_writable()
        if self._index_stale or self._index.outgrown():
            self._generation = self._catalog.generation()
            self._rebuild_index()
        self._write_index()

    def _write_index(self) -> None:
        """Write the in-memory index as the current generation's file and drop older ones."""
        target = vectors.index_file(self.directory, self._generation)
        with self._translated("cannot write the vector index"):
            self._index.save(target)
            vectors.remove_other_files(self.directory, keep=self._generation)
        self._index_dirty = False

    def reindex(self, kind: str | None = None) -> None:
        """Rebuild the vector index from the catalog and save it.

        Args:
            kind: ``"flat"`` (exact), ``"compressed"``, or None to choose by
                size (``vectors.choose_index_kind``).

        Raises:
            ValueError: If ``kind`` is unknown.
            DatabaseError: If a compressed index is asked for with fewer than
                ``vectors.MIN_TRAINING`` vectors to train it on.
        """
        self._require_writable()
        if kind not in (None, "flat", "compressed"):
            raise ValueError(f"index kind must be 'flat' or 'compressed', got {kind!r}")
        self._generation = self._catalog.generation()
        try:
            self._rebuild_index(kind)
        except ValueError as error:
            self._rebuild_index()
            raise DatabaseError(self.directory, f"cannot build a {kind} index ({error})") from None
        self._write_index()  # as asked, even a flat index past COMPRESS_ABOVE (until the next write)

    # -- consistency ---------------------------------------------------------
    def check(self, *, repair: bool = False) -> CheckReport:
        """Verify that the catalog and the index agree; optionally rebuild.

        Checks that the index file exists for the catalog's generation, that
        it holds exactly the non-flat contents, that every descriptor has the
        right length and no content is left without a file.

        Args:
            repair: Rebuild the index from the catalog (and drop orphans).

        Returns:
            The problems found and whether they were repaired.
        """
        problems = self._find_problems()
        if repair and problems:
            self._require_writable()
            self._repair()
        # What opening already repaired is reported once, by the first check.
        reported, self._repaired_on_open = self._repaired_on_open, []
        repaired = (repair and bool(problems)) or (bool(reported) and not problems)
        return CheckReport(problems=tuple(reported + problems), repaired=repaired)

    def _find_problems(self) -> list[str]:
        problems = []
        generation = self._catalog.generation()
        on_disk = _load_index_file(self.directory, generation, self.settings.dimension, mmap=True)
        if not vectors.index_file(self.directory, generation).exists():
            problems.append(f"no index file for catalog generation {generation}")
        elif on_disk is None:
            problems.append(f"index file for catalog generation {generation} cannot be read")
        index_ids = set((on_disk or self._index).ids().tolist())
        expected, bad = self._expected_ids()
        if index_ids != expected:
            problems.append(
                f"index holds {len(index_ids - expected)} unknown and misses {len(expected - index_ids)} contents"
            )
        problems += [f"content {cid}: descriptor has the wrong length" for cid in bad]
        orphans = self._catalog.orphan_contents()
        if orphans:
            problems.append(f"{len(orphans)} contents have no file")
        return problems

    def _expected_ids(self) -> tuple[set[int], list[int]]:
        """Vector ids the index should hold, and contents whose descriptor is malformed."""
        expected: set[int] = set()
        bad: list[int] = []
        for rows in self._catalog.iter_descriptors():
            for cid, blob in rows:
                if not self._well_formed(blob):
                    bad.append(cid)
                    continue
                expected.update(self._vectors_of(cid, blob)[0].tolist())
        return expected, bad

    def _repair(self) -> None:
        _expected, bad = self._expected_ids()
        orphans = self._catalog.orphan_contents()
        self._generation = self._catalog.delete_contents(bad + orphans)
        self._rebuild_index()
        self.save_index()

    # -- internals -------------------------------------------------------------
    def _require_writable(self) -> None:
        if not self.writable:
            raise DatabaseError(self.directory, "opened read-only")

    def _acquire_lock(self, timeout: float) -> None:
        fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    waited = f" (waited {timeout:g} s)" if timeout > 0 else ""
                    reason = f"another nearindex process is writing to it{waited}"
                    raise DatabaseLockedError(self.directory, reason) from None
                time.sleep(_LOCK_POLL)
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _load_settings(self) -> None:
        stored = {key: self._catalog.get_state(f"settings.{key}") for key in _SHAPING_SETTINGS}
        if all(value is None for value in stored.values()):
            if self.writable:
                values = {f"settings.{k}": str(getattr(DEFAULT_SETTINGS, k)) for k in _SHAPING_SETTINGS}
                self._catalog.set_state(values)
            return
        threshold = self._catalog.get_state(THRESHOLD_KEY)
        self.settings = Settings(
            grid=int(stored["grid"] or DEFAULT_SETTINGS.grid),
            thumb_side=int(stored["thumb_side"] or DEFAULT_SETTINGS.thumb_side),
            blur_fraction=float(stored["blur_fraction"] or DEFAULT_SETTINGS.blur_fraction),
            ranked_cells=stored["ranked_cells"] == "True",  # absent before ranks existed: plain cells
            trim_borders=stored["trim_borders"] == "True",  # absent before borders were trimmed: whole images
            duplicate_threshold=float(threshold) if threshold else DEFAULT_SETTINGS.duplicate_threshold,
        )

    def _load_index(self) -> None:
        self._generation = self._catalog.generation()
        # A reader asks FAISS to map the file (it maps the 8-bit codes of earlier releases'
        # compressed indexes; fast-scan codes it reads in, 36 bytes per vector); either way a
        # writer replacing the file leaves the reader's copy intact.
        loaded = _load_index_file(self.directory, self._generation, self.settings.dimension, mmap=not self.writable)
        if loaded is not None:
            self._index = loaded
            return
        problem = "unreadable" if vectors.index_file(self.directory, self._generation).exists() else "missing"
        self._rebuild_index()
        if self.writable:
            self.save_index()
            if self._generation > 0:  # a new database simply has no index file yet
                self._repaired_on_open.append(f"index file for catalog generation {self._generation} was {problem}")

    def _rebuild_index(self, kind: str | None = None) -> None:
        """A new index of every stored vector; flat or compressed by their number unless ``kind`` says."""
        counts = self._catalog.counts()
        estimate = WINDOW_COUNT * (counts["contents"] - counts["flat"])
        if (kind or vectors.choose_index_kind(estimate)) == "compressed":
            sample = self._training_sample(estimate)
            lists = vectors.list_count(estimate)
            self._index = VectorIndex.compressed(self.settings.dimension, sample, lists=lists)
        else:
            self._index = VectorIndex.empty(self.settings.dimension)
        for rows in self._catalog.iter_descriptors():
            self._add_vectors([(cid, blob) for cid, blob in rows if self._well_formed(blob)])
        self._index_dirty = True
        self._index_stale = False

    def _training_sample(self, estimate: int) -> npt.NDArray[np.float32]:
        """Vectors of evenly spread contents, enough to train a compressed index of ``estimate`` vectors."""
        wanted = vectors.training_size(estimate)
        step = max(1, estimate // max(wanted, 1))
        picked = [
            self._vectors_of(cid, blob)[1]
            for rows in self._catalog.iter_descriptors()
            for number, (cid, blob) in enumerate(rows)
            if number % step == 0 and self._well_formed(blob)
        ]
        dimension = self.settings.dimension
        return np.ascontiguousarray(np.concatenate(picked) if picked else np.zeros((0, dimension), np.float32))

    def _well_formed(self, blob: bytes) -> bool:
        """True for a descriptor of ``WINDOW_COUNT`` vectors, or of ``WINDOWS`` alone (stored by earlier releases)."""
        return len(blob) in {rows * self.settings.dimension * 4 for rows in (WINDOW_COUNT, len(WINDOWS))}

    def _vectors_of(self, content_id: int, blob: bytes) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """A content's non-zero window vectors and their index ids."""
        matrix = np.frombuffer(blob, np.float32).reshape(-1, self.settings.dimension)
        rows = np.flatnonzero(np.abs(matrix).sum(axis=1) > 0)
        return content_id * WINDOW_SLOTS + rows.astype(np.int64), matrix[rows]

    def _add_vectors(self, contents: list[tuple[int, bytes]]) -> None:
        pieces = [self._vectors_of(cid, blob) for cid, blob in contents]
        if pieces:
            ids = np.concatenate([ids for ids, _ in pieces])
            matrix = np.ascontiguousarray(np.concatenate([m for _, m in pieces]))
            self._index.add(ids, matrix)


def _load_index_file(directory: Path, generation: int, dimension: int, *, mmap: bool = False) -> VectorIndex | None:
    """The index file of this generation if it exists and fits; else None (``mmap``: see ``VectorIndex.load``)."""
    path = vectors.index_file(directory, generation)
    if not path.exists():
        return None
    try:
        index = VectorIndex.load(path, mmap=mmap)
    except RuntimeError:  # FAISS raises RuntimeError for an unreadable file
        return None
    return index if index.dimension == dimension else None


def _check_directory(path: Path, *, create: bool) -> None:
    """Refuse a path that is not (and cannot become) a database directory."""
    if path.exists() and not path.is_dir():
        raise DatabaseError(path, "not a directory")
    if (path / CATALOG_NAME).exists():
        return
    if not create:
        raise DatabaseError(path, "no nearindex database here (create one with 'nearindex add')")
    if path.exists() and any(entry.name != LOCK_NAME for entry in path.iterdir()):
        raise DatabaseError(path, "not a nearindex database (the directory exists and is not empty)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatabaseError(path, f"cannot create database directory ({error.strerror})") from error
