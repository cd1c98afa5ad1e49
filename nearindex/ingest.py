"""Incremental ingest: ``add``, ``sync`` and ``remove``.

A pipeline of three stages (the shape of clip-retrieval's reader -> mapper ->
writer): the *walk* lists regular files and compares their size and mtime
with the catalog, so an unchanged file costs one ``stat``; the *describe*
stage hashes new and changed files and decodes only contents it has not seen;
the *write* stage commits batches to the database, so an interrupted run keeps
everything committed and the next run continues from there.

Paths may be store URLs (``s3://bucket/photos``, see ``stores``), and the
describe stage may run on a Dask cluster (``cluster``); the walk and the
writes always stay in this process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from . import stores
from .catalog import Batch, FailureRecord, FileRecord, NewContent
from .database import Database
from .errors import Failed, NearIndexError
from .filetree import FoundFile, location, walk
from .images import sniff_format
from .intake import FileDescription
from .progress import NoProgress, Progress
from .settings import Settings
from .workers import DEFAULT_TIMEOUT, describe_files, in_this_process, pool_size

if TYPE_CHECKING:
    from distributed import Client

#: Fewer files than this are described in-process when workers are automatic.
SMALL_JOB_FILES = 16
#: A batch is committed after this many items ...
BATCH_ITEMS = 256
#: ... or after this many seconds, whichever comes first.
BATCH_SECONDS = 5.0


@dataclass(frozen=True)
class IngestReport:
    """What an ``add``, ``sync`` or ``remove`` run did.

    Attributes:
        added: Paths stored for the first time.
        updated: Stored paths whose file changed and was read again.
        unchanged: Stored paths skipped because size and mtime were the same.
        moved: New paths whose content was stored under a path that is gone.
        removed: Paths forgotten (sync: gone from disk; remove: asked for).
        failed: Files that could not be used, with the reason.
    """

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    moved: int = 0
    removed: int = 0
    failed: tuple[Failed, ...] = ()

    def counts(self) -> dict[str, int]:
        """The counts as a dict (failed as a number)."""
        return {
            "added": self.added, "updated": self.updated, "unchanged": self.unchanged,
            "moved": self.moved, "removed": self.removed, "failed": len(self.failed),
        }  # fmt: skip


class IngestInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run; ``report`` counts what was committed before it."""

    def __init__(self, report: IngestReport) -> None:
        super().__init__("interrupted")
        self.report = report


@dataclass
class _Tally:
    """Running counts while a run goes on."""

    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(["added", "updated", "unchanged", "moved", "removed"], 0)
    )
    failed: list[Failed] = field(default_factory=list)

    def report(self) -> IngestReport:
        return IngestReport(**self.counts, failed=tuple(self.failed))


def add(
    database: Database, paths: Iterable[str | os.PathLike[str]], *,
    forget_missing: bool = False, workers: int | None = None, timeout: float = DEFAULT_TIMEOUT,
    max_pixels: int | None = None, progress: Progress | None = None, client: Client | None = None,
) -> IngestReport:  # fmt: skip
    """Store new and changed images under ``paths``; skip unchanged ones.

    Args:
        database: A writable database.
        paths: Files and folders (searched recursively; images by content),
            or store URLs (``s3://bucket/photos``) when fsspec and the
            store's package are installed.
        forget_missing: Also forget stored paths under ``paths`` that no
            longer exist (this is ``sync``).
        workers: Worker processes for decoding; 0 decodes in this process;
            None picks one per core, or none for a handful of files (starting
            workers costs more than it saves there).
        timeout: Seconds one file may take to describe in a worker; a file
            that takes longer alone fails (and is tried again by the next
            run). A chunk of small files may take this once per file.
        max_pixels: Refuse images whose header claims more pixels than this
            (default: the database's ``max_pixels``, 100 million).
        progress: Receives progress over the files to read.
        client: A Dask ``distributed.Client``: describe on its cluster
            instead of local processes (``workers`` and ``timeout`` are then
            not used; objects of ``memory://`` are still described here).

    Returns:
        The run's counts and failures. A missing path or a bad file is a
        failure in the report, never an exception.

    Raises:
        IngestInterrupted: On Ctrl-C, after committing what was described;
            its ``report`` counts that work.
    """
    given = [os.fspath(p) for p in paths]
    tally, progress = _Tally(), progress or NoProgress()
    settings = database.settings if max_pixels is None else replace(database.settings, max_pixels=max_pixels)
    run_id = database.record_run_start("sync" if forget_missing else "add")
    try:
        seen, to_read = _plan(database, given, tally)
        writer = _Writer(database, tally, listed={f.path: f for f in to_read if stores.is_url(f.path)})
        progress.start(len(to_read), "describing")
        try:
            known = frozenset(database.known_hashes())
            for result in _describe(to_read, settings, known, workers=workers, timeout=timeout, client=client):
                writer.take(result)
                progress.advance()
        finally:
            progress.finish()
            writer.flush()
        if forget_missing:
            _forget_missing(database, given, seen, tally)
        database.collect_orphans()
        database.save_index_if_changed()
    except KeyboardInterrupt:
        raise IngestInterrupted(tally.report()) from None
    finally:
        database.record_run_end(run_id, {**tally.counts, "failed": len(tally.failed)})
    return tally.report()


def _describe(
    files: list[FoundFile], settings: Settings, known: frozenset[bytes], *,
    workers: int | None, timeout: float, client: Client | None,
) -> Iterator[FileDescription | Failed]:  # fmt: skip
    """The describe stage: here, in local worker processes, or on a Dask cluster."""
    here = [f for f in files if in_this_process(f)]
    elsewhere = [f for f in files if not in_this_process(f)] if here else files
    yield from describe_files(here, settings=settings, known_hashes=known, workers=0)
    if client is not None:
        from .cluster import describe_on_cluster  # Dask is optional: imported only when asked for

        yield from describe_on_cluster(client, elsewhere, settings=settings, known_hashes=known)
        return
    pool_size = choose_workers(workers, len(elsewhere))
    yield from describe_files(elsewhere, settings=settings, known_hashes=known, workers=pool_size, timeout=timeout)


def choose_workers(requested: int | None, files: int) -> int:
    """Worker processes to use for ``files`` files (see ``add``)."""
    return pool_size(requested, files, small=SMALL_JOB_FILES)


def remove(database: Database, paths: Iterable[str | os.PathLike[str]]) -> IngestReport:
    """Forget stored paths equal to or under each of ``paths``.

    The files themselves are not touched and need not exist.
    """
    tally = _Tally()
    forgotten: set[str] = set()
    run_id = database.record_run_start("remove")
    try:
        for given in paths:
            absolute = location(os.fspath(given))
            matches = database.paths_under(absolute) + database.failed_paths_under(absolute)
            if not matches:
                tally.failed.append(Failed(absolute, "not in the database"))
            forgotten.update(matches)
        if forgotten:
            database.write(Batch(removals=sorted(forgotten)))
            database.save_index()
        tally.counts["removed"] = len(forgotten)  # failure records forgotten count too
    finally:
        database.record_run_end(run_id, {**tally.counts, "failed": len(tally.failed)})
    return tally.report()


def _plan(database: Database, given: list[str], tally: _Tally) -> tuple[set[str], list[FoundFile]]:
    """Walk the paths: count unchanged files, list the ones to read."""
    states, failures = database.file_states(), database.failure_states()
    seen: set[str] = set()
    to_read: list[FoundFile] = []
    for found in walk(given):
        if isinstance(found, Failed):
            tally.failed.append(found)
            continue
        if found.path in seen:  # named twice (a folder and a file inside it)
            continue
        seen.add(found.path)
        state, failure = states.get(found.path), failures.get(found.path)
        if state is not None and (state.size, state.mtime_ns) == (found.size, found.mtime_ns):
            tally.counts["unchanged"] += 1
        elif failure is not None and (failure.size, failure.mtime_ns) == (found.size, found.mtime_ns):
            # Failed before and not changed since: report it again without reading.
            tally.failed.append(Failed(found.path, failure.reason))
        elif state is not None or found.must_be_image or _looks_like_image(found):
            to_read.append(found)
    return seen, to_read


def _looks_like_image(found: FoundFile) -> bool:
    if stores.is_url(found.path):
        try:  # one small ranged read, only for new objects without an image suffix
            return sniff_format(stores.read_object(found.path, length=32)) is not None
        except NearIndexError:
            return False
    try:
        with open(found.path, "rb") as handle:
            return sniff_format(handle.read(32)) is not None
    except OSError:
        return False


def _forget_missing(database: Database, given: list[str], seen: set[str], tally: _Tally) -> None:
    """Forget stored paths (and failure records) under ``given`` not seen by the walk."""
    # A store whose listing broke off (a network error) saw only part of its objects: forget nothing there.
    broken = {f.path for f in tally.failed if stores.is_url(f.path) and f.reason != "no such file or directory"}
    roots = [root for root in (location(g) for g in given) if root not in broken]
    stored = {p for root in roots for p in database.paths_under(root)}
    failed = {p for root in roots for p in database.failed_paths_under(root)}
    gone = sorted(stored - seen)
    stale_failures = sorted(failed - seen - {f.path for f in tally.failed} - stored)
    if gone or stale_failures:
        database.write(Batch(removals=gone + stale_failures))
        tally.counts["removed"] += len(gone)


class _Writer:
    """Turns described files into catalog batches and commits them."""

    def __init__(self, database: Database, tally: _Tally, *, listed: dict[str, FoundFile]) -> None:
        self._database = database
        self._tally = tally
        self._listed = listed  # store objects as listed: their failures keep the listed size and stamp
        self._states = database.file_states()
        self._batch = Batch()
        self._pending: list[tuple[str, str]] = []
        self._last_commit = time.monotonic()

    def take(self, result: FileDescription | Failed) -> None:
        """Queue one file's outcome; commit when the batch is full or old."""
        if isinstance(result, Failed):
            self._take_failure(result)
        else:
            self._take_description(result)
        if len(self._batch) >= BATCH_ITEMS or time.monotonic() - self._last_commit > BATCH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Commit the queued batch (if any) and count it as done."""
        pending = self._pending
        if len(self._batch):
            self._database.write(self._batch, keep_orphans=True)
        # Emptied before counting: a Ctrl-C while counting used to leave the batch queued, so the
        # final flush wrote it again and counted it twice (a summary of 168 committed for 128 stored).
        self._batch, self._pending = Batch(), []
        for kind, _path in pending:
            self._tally.counts[kind] += 1
        self._last_commit = time.monotonic()

    def _take_failure(self, failure: Failed) -> None:
        self._tally.failed.append(failure)
        # A transient failure is recorded without size and mtime, so the next run retries it.
        size, mtime = (None, None) if failure.transient else self._stat_or_none(failure.path)
        self._batch.failures.append(FailureRecord(failure.path, failure.reason, size, mtime))
        if failure.path in self._states:
            # The stored description no longer matches the file: forget it.
            self._batch.removals.append(failure.path)

    def _stat_or_none(self, path: str) -> tuple[int | None, int | None]:
        listed = self._listed.get(path)
        return (listed.size, listed.mtime_ns) if listed is not None else _stat_or_none(path)

    def _take_description(self, result: FileDescription) -> None:
        kind = "updated" if result.path in self._states else "added"
        if result.description is None:
            kind = self._take_known_content(result, kind)
        else:
            self._batch.contents.append(_new_content(result))
        self._batch.files.append(FileRecord(result.path, result.size, result.mtime_ns, result.content_hash))
        self._pending.append((kind, result.path))

    def _take_known_content(self, result: FileDescription, kind: str) -> str:
        """A copy or a move: reuse the stored content; drop paths that are gone."""
        gone = [p for p in self._database.paths_with_hash(result.content_hash) if p != result.path and not _exists(p)]
        self._batch.removals.extend(gone)
        return "moved" if gone and kind == "added" else kind


def _new_content(result: FileDescription) -> NewContent:
    description = result.description
    assert description is not None
    thumb = description.thumbnail
    return NewContent(
        content_hash=result.content_hash, width=result.width, height=result.height, flat=description.flat,
        descriptor=description.vectors.tobytes(), thumbnail=thumb.tobytes(),
        thumb_width=int(thumb.shape[1]), thumb_height=int(thumb.shape[0]),
        colour=None if description.colour is None else description.colour.to_bytes(),
        border_left=description.borders.left, border_top=description.borders.top,
        border_right=description.borders.right, border_bottom=description.borders.bottom,
    )  # fmt: skip


def _exists(path: str) -> bool:
    return stores.object_exists(path) if stores.is_url(path) else os.path.lexists(path)


def _stat_or_none(path: str) -> tuple[int | None, int | None]:
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None, None
    return info.st_size, info.st_mtime_ns
