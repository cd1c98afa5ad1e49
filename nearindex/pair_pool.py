"""Rescoring many pairs of stored contents, in worker processes when there are many.

``duplicates`` rescores every pair its vector stage brings close: tens per
image, a few milliseconds each, and independent of one another. The pairs are
cut into chunks of consecutive pairs (sorted, so a chunk meets few distinct
first images and each worker loads an image once for many pairs) and scored
by ``spawn``-ed processes that open the database read-only themselves, without
its vector index: only content ids and scores cross between processes.

A worker that dies (out of memory, killed) does not end the job, though it
breaks its pool (Python stops the other workers too): the chunks left unscored
go to a new pool, and if a worker of that one dies too, they are scored in
this process.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from .database import Database
from .progress import NoProgress, Progress
from .search import PairScorer
from .workers import pool_size

Pair = tuple[int, int]

#: Fewer pairs than this are rescored in this process unless workers are asked for
#: (starting a worker costs about a second; a pair a few milliseconds).
SMALL_JOB_PAIRS = 2_000
#: Pairs per chunk sent to a worker.
CHUNK_PAIRS = 256
#: Chunks in flight per worker (enough that none waits for the next).
IN_FLIGHT_PER_WORKER = 3
#: Pools started for one job: a second one takes the chunks a dead worker's pool left.
POOL_STARTS = 2

_worker_scorer: PairScorer | None = None


def score_pairs(
    database: Database,
    pairs: Sequence[Pair],
    *,
    workers: int | None = None,
    progress: Progress | None = None,
    scorer: PairScorer | None = None,
) -> Iterator[tuple[Pair, float]]:
    """Rescore pairs of stored contents (``search.PairScorer.score``).

    Args:
        database: The open database the contents are in.
        pairs: (content id, content id) pairs, best sorted.
        workers: Worker processes; 0 scores in this process; default one per
            core, or none for fewer than ``SMALL_JOB_PAIRS`` pairs.
        progress: Advanced by each chunk's pairs once they are scored.
        scorer: What scores here (no workers, or after they failed), so that
            images the caller already loaded are not loaded again.

    Yields:
        (pair, score) for every pair, in no particular order.
    """
    progress = progress or NoProgress()
    chunks = [list(pairs[start : start + CHUNK_PAIRS]) for start in range(0, len(pairs), CHUNK_PAIRS)]
    count = pool_size(workers, len(pairs), small=SMALL_JOB_PAIRS)
    unscored = chunks
    for _start in range(POOL_STARTS if count else 0):
        if unscored:
            # Resolved: a worker must open this database even if the caller changes directory.
            unscored = yield from _score_in_pool(database.directory.resolve(), unscored, count, progress)
    scorer = scorer or PairScorer(database)
    for chunk in unscored:
        yield from zip(chunk, _score_chunk_with(scorer, chunk), strict=True)
        progress.advance(len(chunk))


def _score_in_pool(
    directory: Path, chunks: list[list[Pair]], workers: int, progress: Progress
) -> Generator[tuple[Pair, float], None, list[list[Pair]]]:
    """Score chunks in a pool; returns the chunks left unscored when a worker died."""
    context = multiprocessing.get_context("spawn")
    waiting = iter(chunks)
    in_flight: dict[Future[list[float]], list[Pair]] = {}
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_open_scorer, initargs=(directory,)) as pool:
        try:
            while True:
                while len(in_flight) < workers * IN_FLIGHT_PER_WORKER and (chunk := next(waiting, None)) is not None:
                    try:
                        in_flight[pool.submit(_score_chunk, chunk)] = chunk
                    except BrokenProcessPool:  # a worker died since the last results came back
                        return [chunk, *in_flight.values(), *waiting]
                if not in_flight:
                    return []
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    scores = future.result()
                    chunk = in_flight.pop(future)
                    yield from zip(chunk, scores, strict=True)
                    progress.advance(len(chunk))
        except BrokenProcessPool:
            return list(in_flight.values()) + list(waiting)
        finally:
            pool.shutdown(cancel_futures=True)


def _open_scorer(directory: Path) -> None:
    global _worker_scorer
    # Ctrl-C reaches the whole process group; the parent alone decides what to do.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_scorer = PairScorer(Database.open(directory, writable=False, create=False, with_index=False))


def _score_chunk(chunk: list[Pair]) -> list[float]:
    assert _worker_scorer is not None
    return _score_chunk_with(_worker_scorer, chunk)


def _score_chunk_with(scorer: PairScorer, chunk: list[Pair]) -> list[float]:
    """Scores of a chunk's pairs, its images loaded together (``PairScorer`` bounds how many stay)."""
    scorer.load(sorted({content_id for pair in chunk for content_id in pair}))
    return [scorer.score(first, second) for first, second in chunk]
