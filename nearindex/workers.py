"""Describing many files in worker processes.

Decoding is CPU-bound and a hostile file can crash or stall a decoder, so
files are described in a pool of ``spawn``-ed processes (``fork`` would copy
FAISS's and OpenCV's threads into a half-initialised child). Small files go
to a worker in chunks (``chunks_of``): a task per file cost the main process
a third of its time. At most a few chunks per worker are in flight at once,
which bounds memory and tells which files were in flight when a worker died:
those are retried one at a time, and the file that kills a worker on its own
is reported as that file's failure. Likewise, when no chunk at all finishes
within ``timeout`` seconds per file of the largest chunk in flight, a worker is
stuck: the pool is stopped, the files of chunks in flight are retried one at a
time, each with ``timeout``, and the one that exceeds it alone is reported.

A file found in a store (a URL) is read with one request and checked against
the size the listing gave; its stamp is the listing's. Objects of a store that
lives in this process's memory (``memory://``) are described here.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from . import stores
from .errors import Failed, ImageError, MissingDependencyError, UnreadableFileError
from .filetree import FoundFile
from .intake import FileDescription, describe_content, describe_file
from .settings import Settings

#: Chunks of files in flight per worker process.
IN_FLIGHT_PER_WORKER = 4
#: Files are sent to a worker in chunks of up to this many files ...
CHUNK_FILES = 8
#: ... and this many bytes (a larger file goes alone).
CHUNK_BYTES = 1 << 20
#: Seconds one file may take to describe in a worker before it is given up (a chunk: this per file).
DEFAULT_TIMEOUT = 60.0

_worker_settings: Settings | None = None
_worker_known: frozenset[bytes] = frozenset()


def describe_safely(found: FoundFile, settings: Settings, known: frozenset[bytes]) -> FileDescription | Failed:
    """Describe one file or store object, turning every error into a Failed item."""
    path = found.path
    try:
        if stores.is_url(path):
            data = stores.read_object(path, size=found.size)
            return describe_content(path, data, mtime_ns=found.mtime_ns, settings=settings, known_hashes=known)
        return describe_file(path, settings=settings, known_hashes=known)
    except (UnreadableFileError, MissingDependencyError) as error:
        return Failed(error.subject, error.reason, transient=True)
    except ImageError as error:
        return Failed(error.subject, error.reason)
    except MemoryError:
        return Failed(path, "out of memory while decoding", transient=True)
    except Exception as error:  # a decoder bug must not end the batch
        return Failed(path, f"unexpected error ({type(error).__name__}: {error})", transient=True)


def describe_files(
    files: Iterable[FoundFile],
    *,
    settings: Settings,
    known_hashes: frozenset[bytes],
    workers: int,
    timeout: float = DEFAULT_TIMEOUT,
) -> Iterator[FileDescription | Failed]:
    """Describe files, in worker processes when ``workers`` > 0.

    Args:
        files: Regular files (or store objects) to describe.
        settings: Descriptor parameters.
        known_hashes: Contents already stored (hashed, not decoded).
        workers: Worker processes; 0 describes in this process (no timeout then).
        timeout: Seconds a file may take in a worker before it fails (> 0; a
            chunk of small files may take this once per file it holds).

    Yields:
        One FileDescription or Failed per file, in completion order.
    """
    if workers <= 0:
        for found in files:
            yield describe_safely(found, settings, known_hashes)
        return
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    yield from _describe_in_pool(iter(files), settings, known_hashes, workers, timeout)


def pool_size(requested: int | None, jobs: int, *, small: int) -> int:
    """Worker processes for ``jobs`` jobs: ``requested`` if given, else none below ``small`` jobs and one per core."""
    if requested is not None:
        return max(0, requested)
    return 0 if jobs < small else len(os.sched_getaffinity(0))  # the cores this process may use


def in_this_process(found: FoundFile) -> bool:
    """True for an object of a store that only this process can see (``memory://``)."""
    return stores.is_url(found.path) and stores.protocol_of(found.path) in stores.PROCESS_LOCAL_PROTOCOLS


def _initialise(settings: Settings, known: frozenset[bytes]) -> None:
    global _worker_settings, _worker_known
    _worker_settings, _worker_known = settings, known
    # Ctrl-C reaches the whole process group; the parent alone decides what to do.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _describe_in_worker(chunk: list[FoundFile]) -> list[FileDescription | Failed]:
    assert _worker_settings is not None
    return [describe_safely(found, _worker_settings, _worker_known) for found in chunk]


def _new_pool(settings: Settings, known: frozenset[bytes], workers: int) -> ProcessPoolExecutor:
    """A started pool: every worker has imported everything, so the timeout counts decoding, not start-up."""
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_initialise, initargs=(settings, known))
    started: set[int] = set()
    while len(started) < workers:
        started.update(future.result() for future in [pool.submit(_ready) for _ in range(workers)])
    return pool


def _ready() -> int:
    time.sleep(0.05)  # long enough that one started worker cannot answer for all of them
    return os.getpid()


def _describe_in_pool(
    files: Iterator[FoundFile], settings: Settings, known: frozenset[bytes], workers: int, timeout: float
) -> Iterator[FileDescription | Failed]:
    pool = _new_pool(settings, known, workers)
    chunks = chunks_of(files)
    unsent: list[list[FoundFile]] = []  # a chunk taken from ``chunks`` that a broken pool refused
    in_flight: dict[Future[list[FileDescription | Failed]], list[FoundFile]] = {}
    try:
        while True:
            try:
                _fill(pool, chunks, unsent, in_flight, workers * IN_FLIGHT_PER_WORKER)
                if not in_flight:
                    return
                # A chunk may take the timeout once per file it holds.
                allowed = timeout * max(len(chunk) for chunk in in_flight.values())
                done, _ = wait(in_flight, timeout=allowed, return_when=FIRST_COMPLETED)
                if not done:
                    raise _StuckError
                finished = [(future, future.result()) for future in done]
            except (BrokenProcessPool, _StuckError):
                _stop(pool)
                yield from _recover(in_flight, settings, known, timeout)
                pool = _new_pool(settings, known, workers)
                continue
            for future, results in finished:
                del in_flight[future]
                yield from results
    finally:
        pool.shutdown(cancel_futures=True)


class _StuckError(Exception):
    """No chunk finished within the timeout."""


def _fill(
    pool: ProcessPoolExecutor,
    chunks: Iterator[list[FoundFile]],
    unsent: list[list[FoundFile]],
    in_flight: dict[Future[list[FileDescription | Failed]], list[FoundFile]],
    limit: int,
) -> None:
    while len(in_flight) < limit:
        chunk = unsent.pop() if unsent else next(chunks, None)
        if chunk is None:
            return
        try:
            in_flight[pool.submit(_describe_in_worker, chunk)] = chunk
        except BrokenProcessPool:  # a worker died since the last results came back
            unsent.append(chunk)
            raise


def chunks_of(files: Iterable[FoundFile]) -> Iterator[list[FoundFile]]:
    """Consecutive files in chunks of at most ``CHUNK_FILES`` files and ``CHUNK_BYTES`` bytes (a larger file alone).

    On 5,000 generated JPEG and PNG files, one task per file had cost the main
    process 0.77 ms per file, a third more than chunks (0.57 ms): each task
    wakes the pool's management thread, which unpickles its result apart.
    """
    chunk: list[FoundFile] = []
    size = 0
    for found in files:
        if chunk and (len(chunk) == CHUNK_FILES or size + found.size > CHUNK_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(found)
        size += found.size
    if chunk:
        yield chunk


def _recover(
    in_flight: dict[Future[list[FileDescription | Failed]], list[FoundFile]],
    settings: Settings,
    known: frozenset[bytes],
    timeout: float,
) -> Iterator[FileDescription | Failed]:
    """After a crash or a stall: the results of chunks that finished, then every other file in flight alone."""
    suspects: list[FoundFile] = []
    for future, chunk in in_flight.items():
        if future.done() and not future.cancelled() and future.exception() is None:
            yield from future.result()
        else:
            suspects.extend(chunk)
    in_flight.clear()
    yield from _isolate(suspects, settings, known, timeout)


def _isolate(
    files: list[FoundFile], settings: Settings, known: frozenset[bytes], timeout: float
) -> Iterator[FileDescription | Failed]:
    """Describe each suspect alone in one worker; the one that kills or stalls it fails, and the worker is replaced."""
    pool: ProcessPoolExecutor | None = None
    try:
        for found in files:
            pool = pool or _new_pool(settings, known, 1)
            try:
                result: FileDescription | Failed = pool.submit(_describe_in_worker, [found]).result(timeout=timeout)[0]
            except BrokenProcessPool:
                pool.shutdown(cancel_futures=True)
                pool, result = None, crashed(found.path)
            except TimeoutError:
                _stop(pool)
                pool, result = None, Failed(found.path, f"took longer than {timeout:g} s to decode", transient=True)
            yield result
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def crashed(path: str) -> Failed:
    """The failure of a file that killed the worker process describing it, alone."""
    return Failed(path, "decoder crashed (worker process died)", transient=True)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Shut a pool down, killing workers that are still busy (a stuck decoder never returns)."""
    # ProcessPoolExecutor has no public way to stop a busy worker before Python 3.14.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.kill()
        process.join()
