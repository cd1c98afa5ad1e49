"""The describe stage on a Dask distributed cluster.

The walk and every write stay in the calling process (one writer); only the
read + hash + decode + describe work becomes Dask tasks, one task per *batch*
of files so that a task's overhead (a few milliseconds) is small beside its
work. Batches start small, so the first results come back at once and measure
the work; then each batch is sized to take about ``TARGET_BATCH_SECONDS`` on
one worker thread. ``BATCHES_PER_THREAD`` batches per worker thread are in
flight at once: workers never wait for the next batch, and memory and the
work lost with a worker stay bounded. Results stream back in completion order.

The settings and the known content hashes go to the workers once
(``Client.scatter``), not with every task; should every worker holding them
die, Dask cancels the tasks that need them ("lost dependencies"): they are
scattered again and each cancelled batch is sent once more. A file's error
comes back as a ``Failed`` item (``workers.describe_safely``). When a worker dies, Dask gives
its tasks to other workers; a batch that kills workers again and again ends
in ``KilledWorker`` (after ``distributed.scheduler.allowed-failures`` deaths):
its files are then sent one task each, and a file that kills workers on its
own is reported as that file's failure, as the local pool does. Before any
task is sent, every worker must have this very version of nearindex installed
(another version could describe differently; a worker without it would never
run the tasks): otherwise the run fails with one ``ClusterError`` line.

Dask is optional (the ``dist`` extra): this module imports it only when used.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import CancelledError
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from .errors import ClusterError, Failed, MissingDependencyError
from .filetree import FoundFile
from .intake import FileDescription
from .settings import Settings
from .workers import crashed, describe_safely

if TYPE_CHECKING:
    from distributed import Client, Future

#: Seconds of work one batch should take on one worker thread.
TARGET_BATCH_SECONDS: Final = 1.0
#: Files in the first batches, before any has been timed.
FIRST_BATCH_FILES: Final = 4
#: Most files in one batch (bounds a batch's result size and the work lost with a worker).
MAX_BATCH_FILES: Final = 256
#: Batches in flight per worker thread.
BATCHES_PER_THREAD: Final = 3
#: What ``--cluster local`` means: a cluster of worker processes on this machine.
LOCAL_ADDRESS: Final = "local"
INSTALL_HINT: Final = "pip install 'nearindex[dist]'"
#: Seconds to wait for a first worker when the scheduler has none yet.
WORKER_WAIT_SECONDS = 60.0

Outcome = FileDescription | Failed
_Shared = tuple[Settings, frozenset[bytes]]
_BatchResult = tuple[list[Outcome], float]


def require_dask() -> Any:
    """The ``distributed`` module.

    Raises:
        MissingDependencyError: Dask distributed is not installed.
    """
    try:
        import distributed  # optional (the dist extra): imported when a cluster is asked for
    except ImportError as error:
        raise MissingDependencyError("--cluster", f"needs Dask: {INSTALL_HINT}") from error
    return distributed


@contextmanager
def connect(address: str) -> Iterator[Client]:
    """A Dask client for ``address``, closed (with its cluster, if started here) at the end.

    Args:
        address: A scheduler address (``tcp://host:8786``), or ``local`` to
            start a ``LocalCluster`` of one single-threaded worker process
            per core of this machine.

    Yields:
        The connected client.

    Raises:
        MissingDependencyError: Dask distributed is not installed.
        ClusterError: The scheduler cannot be reached.
    """
    distributed = require_dask()
    cluster = None
    try:
        if address == LOCAL_ADDRESS:
            cluster = _start_local_cluster(distributed)
        client = distributed.Client(cluster if cluster is not None else address)
    except (OSError, TimeoutError, ValueError) as error:
        if cluster is not None:
            cluster.close()
        raise ClusterError(address, f"cannot reach the Dask scheduler ({error})") from error
    except BaseException:  # Ctrl-C while connecting: the cluster started here must not outlive us
        if cluster is not None:
            cluster.close()
        raise
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _start_local_cluster(distributed: Any) -> Any:
    """One single-threaded worker process per core, started with Ctrl-C ignored.

    Ctrl-C reaches the whole process group; as with the local pool, this
    process alone decides what to do (commit, then close the cluster), and a
    worker process inherits the ignored signal from its nanny.
    """
    cores = len(os.sched_getaffinity(0))
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        return distributed.LocalCluster(n_workers=cores, threads_per_worker=1, processes=True)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return distributed.LocalCluster(n_workers=cores, threads_per_worker=1, processes=True)
    finally:
        signal.signal(signal.SIGINT, previous)


def describe_on_cluster(
    client: Client, files: Sequence[FoundFile], *, settings: Settings, known_hashes: frozenset[bytes]
) -> Iterator[Outcome]:
    """Describe files as batched tasks on a Dask cluster.

    Args:
        client: A connected Dask client; its workers must be able to import
            nearindex and reach the files (shared storage or a store's URL).
        files: The files to describe.
        settings: Descriptor parameters.
        known_hashes: Contents already stored (hashed, not decoded).

    Yields:
        One FileDescription or Failed per file, a batch at a time, in
        completion order.

    Raises:
        ClusterError: A worker lacks this version of nearindex (checked
            before anything is sent).
    """
    if not files:
        return
    distributed = require_dask()
    untyped: Any = client  # parts of Client's API carry no annotations
    address = str(untyped.scheduler.address)
    try:
        _require_same_nearindex(untyped)
        run = _Run(untyped, distributed, (settings, known_hashes), iter(files))
        try:
            yield from run.results()
        finally:
            run.cancel()
    except (OSError, TimeoutError) as error:  # the scheduler went away (CommClosedError is an OSError)
        raise ClusterError(address, f"lost the Dask scheduler ({error})") from error


def _require_same_nearindex(client: Any) -> None:
    """Refuse workers whose installed nearindex is missing or another version than this process's.

    Waits up to ``WORKER_WAIT_SECONDS`` for a first worker: with none, nothing
    would be checked, and a worker joining later without nearindex would hang the run.
    """
    try:
        client.wait_for_workers(1, timeout=WORKER_WAIT_SECONDS)
    except TimeoutError as error:
        raise ClusterError(
            client.scheduler.address, f"no Dask worker joined the scheduler within {WORKER_WAIT_SECONDS:g} s"
        ) from error
    versions = client.get_versions(packages=["nearindex"])
    here = versions["client"]["packages"]["nearindex"]
    for address, worker in sorted(versions["workers"].items()):
        there = worker["packages"].get("nearindex")
        if there != here:
            found = f"nearindex {there}" if there else "no nearindex"
            raise ClusterError(
                client.scheduler.address, f"worker {address} has {found}, this process {here}: {INSTALL_HINT} there"
            )


def describe_batch(files: list[FoundFile], shared: _Shared) -> _BatchResult:
    """The task: describe a batch on a worker; also return the seconds it took."""
    settings, known = shared
    started = time.perf_counter()
    results = [describe_safely(found, settings, known) for found in files]
    return results, time.perf_counter() - started


@dataclass
class _BatchSizer:
    """Sizes batches from the measured seconds per file (a moving average)."""

    seconds_per_file: float | None = None

    def record(self, files: int, seconds: float) -> None:
        measured = seconds / max(files, 1)
        previous = self.seconds_per_file
        self.seconds_per_file = measured if previous is None else 0.7 * previous + 0.3 * measured

    def size(self) -> int:
        if self.seconds_per_file is None:
            return FIRST_BATCH_FILES
        wanted = round(TARGET_BATCH_SECONDS / max(self.seconds_per_file, 1e-6))
        return max(1, min(MAX_BATCH_FILES, wanted))


class _Run:
    """One stream of batches: submit, collect, retry killed batches file by file."""

    def __init__(self, client: Any, distributed: Any, shared: _Shared, files: Iterator[FoundFile]) -> None:
        self._client, self._distributed, self._files = client, distributed, files
        self._shared_data = shared
        self._shared = self._scatter()
        self._sizer = _BatchSizer()
        self._in_flight: dict[Future[_BatchResult], list[FoundFile]] = {}
        self._completed = distributed.as_completed()

    def results(self) -> Iterator[Outcome]:
        self._fill()
        for future in self._completed:
            batch = self._in_flight.pop(future)
            yield from self._outcomes(future, batch)
            self._fill()

    def cancel(self) -> None:
        if self._in_flight:
            self._client.cancel(list(self._in_flight))

    def _outcomes(self, future: Future[_BatchResult], batch: list[FoundFile], *, resent: bool = False) -> list[Outcome]:
        try:
            results, seconds = future.result()
        except self._distributed.KilledWorker:
            return self._one_by_one(batch) if len(batch) > 1 else [crashed(batch[0].path)]
        except CancelledError:
            if resent:
                return [Failed(f.path, "cluster task cancelled twice (its workers were lost)", True) for f in batch]
            if self._shared.status != "finished":  # lost with the workers that held it
                self._shared = self._scatter()
            return self._outcomes(self._submit(batch), batch, resent=True)
        except Exception as error:  # the task never ran to its end: its files fail, the run goes on
            return [Failed(f.path, f"cluster task failed ({type(error).__name__}: {error})", True) for f in batch]
        self._sizer.record(len(batch), seconds)
        return list(results)

    def _one_by_one(self, batch: list[FoundFile]) -> list[Outcome]:
        """Each file of a batch that kept killing workers as a task of its own (one at a time)."""
        outcomes: list[Outcome] = []
        for found in batch:
            outcomes.extend(self._outcomes(self._submit([found]), [found]))
        return outcomes

    def _fill(self) -> None:
        limit = BATCHES_PER_THREAD * max(1, sum(self._client.nthreads().values()))
        while len(self._in_flight) < limit:
            batch = [found for _, found in zip(range(self._sizer.size()), self._files, strict=False)]
            if not batch:
                return
            future = self._submit(batch)
            self._in_flight[future] = batch
            self._completed.add(future)

    def _scatter(self) -> Future[_Shared]:
        """The settings and known hashes, sent to every worker."""
        [shared] = self._client.scatter([self._shared_data], broadcast=True, hash=False)
        return shared  # type: ignore[no-any-return]

    def _submit(self, batch: list[FoundFile]) -> Future[_BatchResult]:
        future: Future[_BatchResult] = self._client.submit(describe_batch, batch, self._shared, pure=False)
        return future
