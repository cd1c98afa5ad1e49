"""Describing many files in worker processes.

Decoding is CPU-bound and a hostile file can crash or stall a decoder, so
files are described in a pool of ``spawn``-ed processes (``fork`` would copy
FAISS's and OpenCV's threads into a half-initialised child). At most a few
files per worker are in flight at once, which bounds memory and tells which
files were in flight when a worker died: those are retried one at a time, and
the file that kills a worker on its own is reported as that file's failure.
Likewise, when no file at all finishes for ``timeout`` seconds, a worker is
stuck: the pool is stopped, the files in flight are retried one at a time
with the same limit, and the one that exceeds it alone is reported.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from .errors import Failed, ImageError, UnreadableFileError
from .intake import FileDescription, describe_file
from .settings import Settings

#: Files in flight per worker process.
IN_FLIGHT_PER_WORKER = 4
#: Seconds one file may take to describe in a worker before it is given up.
DEFAULT_TIMEOUT = 60.0

_worker_settings: Settings | None = None
_worker_known: frozenset[bytes] = frozenset()


def describe_safely(path: str, settings: Settings, known: frozenset[bytes]) -> FileDescription | Failed:
    """Describe one file, turning every error into a Failed item."""
    try:
        return describe_file(path, settings=settings, known_hashes=known)
    except UnreadableFileError as error:
        return Failed(error.subject, error.reason, transient=True)
    except ImageError as error:
        return Failed(error.subject, error.reason)
    except MemoryError:
        return Failed(path, "out of memory while decoding", transient=True)
    except Exception as error:  # a decoder bug must not end the batch
        return Failed(path, f"unexpected error ({type(error).__name__}: {error})", transient=True)


def describe_files(
    paths: Iterable[str],
    *,
    settings: Settings,
    known_hashes: frozenset[bytes],
    workers: int,
    timeout: float = DEFAULT_TIMEOUT,
) -> Iterator[FileDescription | Failed]:
    """Describe files, in worker processes when ``workers`` > 0.

    Args:
        paths: Regular files to describe.
        settings: Descriptor parameters.
        known_hashes: Contents already stored (hashed, not decoded).
        workers: Worker processes; 0 describes in this process (no timeout then).
        timeout: Seconds a file may take in a worker before it fails (> 0).

    Yields:
        One FileDescription or Failed per path, in completion order.
    """
    if workers <= 0:
        for path in paths:
            yield describe_safely(path, settings, known_hashes)
        return
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    yield from _describe_in_pool(iter(paths), settings, known_hashes, workers, timeout)


def _initialise(settings: Settings, known: frozenset[bytes]) -> None:
    global _worker_settings, _worker_known
    _worker_settings, _worker_known = settings, known
    # Ctrl-C reaches the whole process group; the parent alone decides what to do.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _describe_in_worker(path: str) -> FileDescription | Failed:
    assert _worker_settings is not None
    return describe_safely(path, _worker_settings, _worker_known)


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
    paths: Iterator[str], settings: Settings, known: frozenset[bytes], workers: int, timeout: float
) -> Iterator[FileDescription | Failed]:
    pool = _new_pool(settings, known, workers)
    in_flight: dict[Future[FileDescription | Failed], str] = {}
    try:
        while True:
            _fill(pool, paths, in_flight, workers * IN_FLIGHT_PER_WORKER)
            if not in_flight:
                return
            done, _ = wait(in_flight, timeout=timeout, return_when=FIRST_COMPLETED)
            try:
                if not done:
                    raise _StuckError
                for future in done:
                    result = future.result()
                    del in_flight[future]
                    yield result
            except (BrokenProcessPool, _StuckError):
                _stop(pool)
                suspects = list(in_flight.values())
                in_flight.clear()
                yield from _isolate(suspects, settings, known, timeout)
                pool = _new_pool(settings, known, workers)
    finally:
        pool.shutdown(cancel_futures=True)


class _StuckError(Exception):
    """No file finished within the timeout."""


def _fill(
    pool: ProcessPoolExecutor, paths: Iterator[str], in_flight: dict[Future[FileDescription | Failed], str], limit: int
) -> None:
    while len(in_flight) < limit:
        path = next(paths, None)
        if path is None:
            return
        in_flight[pool.submit(_describe_in_worker, path)] = path


def _isolate(
    paths: list[str], settings: Settings, known: frozenset[bytes], timeout: float
) -> Iterator[FileDescription | Failed]:
    """Describe each suspect alone; the one that kills or stalls its worker fails."""
    for path in paths:
        pool = _new_pool(settings, known, 1)
        try:
            result: FileDescription | Failed = pool.submit(_describe_in_worker, path).result(timeout=timeout)
        except BrokenProcessPool:
            result = Failed(path, "decoder crashed (worker process died)", transient=True)
        except TimeoutError:
            _stop(pool)
            result = Failed(path, f"took longer than {timeout:g} s to decode", transient=True)
        pool.shutdown(cancel_futures=True)
        yield result


def _stop(pool: ProcessPoolExecutor) -> None:
    """Shut a pool down, killing workers that are still busy (a stuck decoder never returns)."""
    # ProcessPoolExecutor has no public way to stop a busy worker before Python 3.14.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.kill()
        process.join()
