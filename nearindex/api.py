"""The Python API: an open database with the same verbs as the CLI.

import nearindex
with nearindex.open("nearindex-db") as db:
    db.add("photos/")
    for match in db.query("suspect.jpg", k=5):
        print(match.path, match.score)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from . import calibration, ingest, search
from .calibration import Calibration
from .database import DEFAULT_LOCK_TIMEOUT, CheckReport, Database
from .difference import Difference, diff_images, load_for_diff, write_difference_picture
from .duplicates import DuplicateGroup, find_duplicates
from .errors import Failed
from .ingest import IngestReport
from .progress import Progress
from .search import Comparison, Match
from .settings import DEFAULT_DATABASE, DEFAULT_SETTINGS, Settings
from .workers import DEFAULT_TIMEOUT

if TYPE_CHECKING:
    from distributed import Client

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Info:
    """A summary of a database.

    Attributes:
        directory: The database directory.
        images: Stored paths.
        contents: Distinct contents (byte-identical copies count once).
        flat: Contents without structure (never matched except as exact copies).
        failed: Paths recorded as failed.
        vectors: Vectors in the index.
        index_kind: The FAISS index type.
        generation: Catalog generation the index reflects.
        schema: Catalog schema revision.
        catalog_bytes: Size of the SQLite catalog (with its WAL).
        index_bytes: Size of the FAISS index file.
        index_bytes_per_image: ``index_bytes`` per distinct content (0 when empty):
            the vector index is held in memory, so this is its RAM per image.
        catalog_bytes_per_image: ``catalog_bytes`` per stored path (0 when empty).
        coloured: Contents keeping their colours (little detail, or beside a band of it: ``intake.colour_part``).
        bordered: Contents described without uniform borders (``borders``).
        trim_borders: Images are described without their uniform borders
            (false for a database made before they were).
        grid: Descriptor grid side.
        thumb_side: Rescore thumbnail long side, pixels.
        duplicate_threshold: The score at or above which two images are duplicates.
        calibrated: The threshold was measured on this collection (``calibrate --store``).
        failures: The recorded failures.
    """

    directory: str
    images: int
    contents: int
    flat: int
    failed: int
    vectors: int
    index_kind: str
    generation: int
    schema: str | None
    catalog_bytes: int
    index_bytes: int
    index_bytes_per_image: float
    catalog_bytes_per_image: float
    coloured: int
    bordered: int
    trim_borders: bool
    grid: int
    thumb_side: int
    duplicate_threshold: float
    calibrated: bool
    failures: tuple[Failed, ...]


class NearIndex:
    """An open nearindex database. Create with ``nearindex.open``."""

    def __init__(self, database: Database) -> None:
        self._database = database

    @property
    def directory(self) -> Path:
        """The database directory."""
        return self._database.directory

    def add(
        self, *paths: PathLike, workers: int | None = None, timeout: float = DEFAULT_TIMEOUT,
        max_pixels: int | None = None, progress: Progress | None = None, client: Client | None = None,
    ) -> IngestReport:  # fmt: skip
        """Store new and changed images under files, folders or store URLs (see ``ingest.add``).

        With ``client`` (a ``dask.distributed.Client``), images are decoded on its cluster.
        """
        return ingest.add(
            self._database, paths, workers=workers, timeout=timeout, max_pixels=max_pixels, progress=progress,
            client=client,
        )  # fmt: skip

    def sync(
        self, *paths: PathLike, workers: int | None = None, timeout: float = DEFAULT_TIMEOUT,
        max_pixels: int | None = None, progress: Progress | None = None, client: Client | None = None,
    ) -> IngestReport:  # fmt: skip
        """Like ``add``, and forget stored paths under ``paths`` that are gone."""
        return ingest.add(
            self._database, paths, forget_missing=True, workers=workers, timeout=timeout, max_pixels=max_pixels,
            progress=progress, client=client,
        )  # fmt: skip

    def remove(self, *paths: PathLike) -> IngestReport:
        """Forget stored paths equal to or under ``paths``."""
        return ingest.remove(self._database, paths)

    def query(self, image: PathLike, *, k: int = 10, min_score: float = 0.0) -> list[Match]:
        """Stored images most like ``image``, best first (see ``search.query``)."""
        return search.query(self._database, image, k=k, min_score=min_score)

    def compare(self, a: PathLike, b: PathLike) -> Comparison:
        """Compare two image files with this database's settings."""
        return search.compare(a, b, settings=self._database.settings)

    def duplicates(
        self, *, min_score: float | None = None, workers: int | None = None, progress: Progress | None = None
    ) -> list[DuplicateGroup]:
        """All near-duplicate groups, largest first (see ``duplicates.find_duplicates``).

        ``workers`` processes rescore the candidate pairs (default: one per
        core when there are many; 0 rescores in this process).
        """
        return find_duplicates(self._database, min_score=min_score, workers=workers, progress=progress)

    def calibrate(
        self,
        *,
        sample: int = 100,
        negatives: int = 10_000,
        fpr: float = 0.001,
        seed: int = 0,
        store: bool = False,
        workers: int | None = None,
        progress: Progress | None = None,
    ) -> Calibration:
        """Measure the duplicate threshold for ``fpr`` on this collection (see ``calibration.calibrate``).

        With ``store``, it becomes this database's default threshold. ``workers``
        processes rescore the random pairs (as in ``duplicates``).
        """
        result = calibration.calibrate(
            self._database, sample=sample, negatives=negatives, fpr=fpr, seed=seed, workers=workers, progress=progress
        )
        if store:
            calibration.store_calibration(self._database, result)
        return result

    def reindex(self, kind: str | None = None) -> Info:
        """Rebuild the vector index from the catalog, flat, compressed or (None) chosen by size; returns the new info.

        Raises:
            DatabaseError: If the index cannot be built as asked (too few vectors to compress).
        """
        self._database.reindex(kind)
        return self.info()

    def check(self, *, repair: bool = False) -> CheckReport:
        """Verify the catalog and the vector index agree; ``repair`` rebuilds the index."""
        return self._database.check(repair=repair)

    def info(self) -> Info:
        """Counts, sizes, index type and schema of the database."""
        db = self._database
        counts, sizes = db.counts(), db.storage_bytes()
        return Info(
            directory=str(db.directory), images=counts["images"], contents=counts["contents"],
            flat=counts["flat"], failed=counts["failed"], vectors=db.index.size, index_kind=db.index.kind,
            generation=db.generation, schema=db.schema_revision(), catalog_bytes=sizes["catalog"],
            index_bytes=sizes["index"], index_bytes_per_image=sizes["index"] / max(counts["contents"], 1),
            catalog_bytes_per_image=sizes["catalog"] / max(counts["images"], 1),
            coloured=counts["coloured"], bordered=counts["bordered"], trim_borders=db.settings.trim_borders,
            grid=db.settings.grid, thumb_side=db.settings.thumb_side,
            duplicate_threshold=db.settings.duplicate_threshold, calibrated=db.calibration_record() is not None,
            failures=tuple(Failed(f.path, f.reason) for f in db.failures()),
        )  # fmt: skip

    def close(self) -> None:
        """Write pending index changes and release the database."""
        self._database.close()

    def __enter__(self) -> NearIndex:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def open(
    path: PathLike = DEFAULT_DATABASE,
    *,
    read_only: bool = False,
    create: bool = True,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> NearIndex:
    """Open a database directory, creating it if needed (unless told not to).

    Args:
        path: The database directory (default ``./nearindex-db``).
        read_only: Do not create, and do not take the writer lock (query,
            duplicates, info and check still work; add/sync/remove raise).
        create: Create the database when missing (ignored when ``read_only``).
        lock_timeout: Seconds to wait while another process is writing (then
            DatabaseLockedError).

    Returns:
        The open NearIndex; use it as a context manager or call ``close``.

    Raises:
        DatabaseError: If the path is not (and cannot become) a database.
        SchemaTooNewError: If a newer nearindex wrote it.
        DatabaseLockedError: If another writer kept it for ``lock_timeout`` seconds.
    """
    database = Database.open(path, writable=not read_only, create=create and not read_only, lock_timeout=lock_timeout)
    return NearIndex(database)


def diff(a: PathLike, b: PathLike, *, out: PathLike | None = None, settings: Settings = DEFAULT_SETTINGS) -> Difference:
    """Align image ``b`` onto image ``a`` and find the regions that differ (no database needed).

    Args:
        a: First image file (boxes ``box_a`` are in its pixels).
        b: Second image file, possibly scaled, cropped, shifted, slightly
            turned or re-encoded (``box_b`` in its pixels).
        out: Also write a picture here: A and B side by side with the
            regions outlined, and a heat map of the local difference.
        settings: Supplies the decoder's pixel limit.

    Returns:
        The Difference: the 3x3 transform from B's pixels to A's, the
        overlaps, a global similarity and the regions (empty when nothing
        changed).

    Raises:
        ImageError: If either file cannot be read or is not an image.
        OutputFileError: If ``out`` cannot be written.
    """
    first = load_for_diff(a, max_pixels=settings.max_pixels)
    second = load_for_diff(b, max_pixels=settings.max_pixels)
    result = diff_images(first, second)
    if out is not None:
        write_difference_picture(out, first, second, result)
    return result
