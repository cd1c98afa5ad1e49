#!/usr/bin/env python3
"""Ingest speed on a Dask cluster beside one process and the local process pool.

On the same files (a generated set of JPEG and PNG files of mixed sizes, cached under
``~/.cache/nearindex-bench``, or ``--folder``), each method adds them into a fresh
database, end to end as ``add`` does it (walk, describe, commits, index save):

* single process: ``workers=0``;
* process pool: ``workers=N`` (the local ``spawn`` pool, start-up included);
* Dask: a ``LocalCluster`` of N single-threaded worker processes, through
  ``add(client=...)``; the cluster is started before the clock starts (a user's
  cluster is already running) and its start-up is reported apart.

It also measures a Dask task's overhead three ways: the round trip of one no-op task
(submit, wait for its result), the cost per no-op task when 1,000 are submitted at once
(pipelined, as batches are), and the extra time of the cluster run (its start-up added,
as the pool run includes its own) over the pool run, divided by the number of batch tasks
the run submitted (counted from Dask's task stream). The single writer's ceiling is the
calling process's CPU time during the Dask run (walk, receiving results, database writes,
index save, and LocalCluster's scheduler thread, which a remote cluster would not add).
From these it prints an *extrapolation* (not a measurement) for N workers: describing
scales with workers while the single writer does not, so images/s ~ min(N x rate per
worker, writer ceiling), once with the rate per Dask worker measured here and once with
the single process's describing rate (what one dedicated core does).

Each method runs ``--repeat`` times (default 3, alternating) and its fastest run is kept: on a
shared machine the other load only ever slows a run down. The load average is printed before
and after, since a busy machine hides the parallel speed-up of every method alike.

Usage:
    python scripts/bench_cluster.py [--files 2000] [--workers 2] [--repeat 3] [--folder DIR] [--quick] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from distributed import Client, LocalCluster, get_task_stream

from nearindex import ingest, synthetic
from nearindex.database import Database

CACHE = Path.home() / ".cache" / "nearindex-bench"
SEED = 20261126
#: Long sides of the generated files (pixels, log-uniform) and the share of PNG files.
LONG_SIDES, PNG_SHARE = (320, 2400), 0.15
EXTRAPOLATE = (1, 2, 4, 8, 16, 32, 64)


@dataclass
class Run:
    """One method's add over the file set: wall time and CPU time of every process involved."""

    method: str
    images: int
    seconds: float
    caller_cpu: float = 0.0
    worker_cpu: float = 0.0
    write_seconds: float = 0.0
    tasks: int = 0

    @property
    def per_second(self) -> float:
        """Images per second (wall clock)."""
        return self.images / self.seconds

    @property
    def cpu_per_image(self) -> float:
        """CPU-seconds per image, the calling process and the workers together."""
        return (self.caller_cpu + self.worker_cpu) / self.images


# -- the file set --------------------------------------------------------------------------------
def write_one(folder: str, index: int) -> None:
    """One seeded file: a scene or a texture, resized to a random size, JPEG or PNG."""
    rng = np.random.default_rng(SEED + index)
    long_side = int(np.exp(rng.uniform(*np.log(LONG_SIDES))))
    short_side = round(long_side / rng.choice([1.0, 4 / 3, 3 / 2, 16 / 9]))
    width, height = (long_side, short_side) if rng.random() < 0.75 else (short_side, long_side)
    make = synthetic.make_texture if index % 3 == 2 else synthetic.make_scene
    base = make(SEED + index, width=1024, height=768)
    image = cv2.resize(base, (width, height), interpolation=cv2.INTER_LINEAR)
    suffix = ".png" if rng.random() < PNG_SHARE else ".jpg"
    (Path(folder) / f"c{index:05d}{suffix}").write_bytes(synthetic.encode_image(image, suffix, quality=85))


def ensure_files(count: int, workers: int) -> Path:
    """The generated set, written once in a pool and reused."""
    folder = CACHE / f"cluster-v1-{count}"
    marker = folder.with_suffix(".complete")
    if not marker.exists():
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            list(pool.map(partial(write_one, str(folder)), range(count), chunksize=16))
        marker.write_text(f"{count} files\n")
        print(f"generated {count} files in {folder} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return folder


def warm(folder: Path) -> tuple[int, float]:
    """Read every file once (page cache); the number of files and megabytes."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(len(p.read_bytes()) for p in files) / 1e6


# -- the runs ------------------------------------------------------------------------------------
def timed_add(method: str, folder: Path, **options: Any) -> Run:
    """Add ``folder`` into a fresh database; time it, the database's writes and the CPU used.

    Worker CPU here is that of reaped child processes (the pool's, shut down inside ``add``).
    """
    with tempfile.TemporaryDirectory() as scratch:
        database = Database.open(Path(scratch) / "db", writable=True, create=True)
        writes = [0.0]
        for name in ("write", "collect_orphans", "save_index_if_changed"):
            setattr(database, name, _timed(getattr(database, name), writes))
        cpu, children, started = time.process_time(), children_cpu(), time.perf_counter()
        report = ingest.add(database, [folder], **options)
        seconds = time.perf_counter() - started
        caller, workers = time.process_time() - cpu, children_cpu() - children
        database.close()
    if report.failed:
        raise SystemExit(f"{method}: {len(report.failed)} files failed, e.g. {report.failed[0]}")
    return Run(method, report.added, seconds, caller, workers, writes[0])


def children_cpu() -> float:
    """CPU-seconds of this process's ended children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(function: Callable[..., Any], total: list[float]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            total[0] += time.perf_counter() - started

    return wrapper


def cluster_add(client: Client, folder: Path) -> Run:
    """The Dask run, with its workers' CPU time and the number of batch tasks it submitted."""
    before = client.run(time.process_time)
    with get_task_stream(client) as stream:
        run = timed_add("Dask LocalCluster", folder, client=client)
    after = client.run(time.process_time)
    run.worker_cpu = sum(after[worker] - before[worker] for worker in after if worker in before)
    run.tasks = sum(1 for task in stream.data if "describe_batch" in str(task.get("key", "")))
    return run


def noop(_: int = 0) -> None:
    """A task that does nothing: its round trip is Dask's own cost."""


def pipelined_seconds(client: Client, tasks: int = 1000) -> float:
    """Seconds per no-op task when ``tasks`` are submitted at once."""
    started = time.perf_counter()
    client.gather(client.map(noop, range(tasks), pure=False))
    return (time.perf_counter() - started) / tasks


def round_trip_seconds(client: Client, repeats: int = 200) -> float:
    """Median seconds to submit one no-op task and get its result."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        client.submit(noop, pure=False).result()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


# -- the report ----------------------------------------------------------------------------------
def _row(run: Run, single: Run, pool: Run) -> str:
    ratios = f"{run.per_second / single.per_second:>10.2f}{run.per_second / pool.per_second:>8.2f}"
    return f"{run.method:<28}{run.images:>7}{run.seconds:>8.1f}{run.per_second:>10.1f}{ratios}"


def print_table(runs: list[Run], start_up: float, overheads: tuple[float, float], workers: int) -> dict[str, Any]:
    single, pool, dask = runs
    round_trip, pipelined = overheads
    print(f"\n{'method':<28}{'images':>7}{'wall s':>8}{'images/s':>10}{'vs single':>10}{'vs pool':>8}"
          f"{'CPU ms/image = caller + workers':>34}")  # fmt: skip
    for run in runs:
        print(_row(run, single, pool) + f"{run.cpu_per_image * 1000:>14.2f} = {run.caller_cpu / run.images * 1000:.2f}"
              f" + {run.worker_cpu / run.images * 1000:.2f}")  # fmt: skip
    print(_row(Run("Dask, start-up included", dask.images, dask.seconds + start_up), single, pool))
    per_task = (dask.cpu_per_image - single.cpu_per_image) * dask.images / max(dask.tasks, 1)
    print(f"\nLocalCluster start-up (not in the Dask run's time): {start_up:.1f} s")
    print(f"Dask's cost per task: no-op round trip {round_trip * 1000:.1f} ms wall, {pipelined * 1000:.2f} ms when"
          f" pipelined; the Dask run used {per_task * 1000:+.0f} CPU-ms per batch task more than one process"
          f" ({dask.tasks} tasks, {dask.images / max(dask.tasks, 1):.0f} images each)")  # fmt: skip
    worker_rate = dask.images / max(dask.worker_cpu, 1e-9)  # images per CPU-second of a worker
    caller_rate = dask.images / max(dask.caller_cpu, 1e-9)
    print(f"the calling process (walk, results, {single.write_seconds:.1f} s of database writes per {single.images}"
          f" images, index save, LocalCluster's scheduler) used {dask.caller_cpu:.1f} CPU-s: it keeps up with"
          f" at most {caller_rate:.0f} images/s; a Dask worker: {worker_rate:.0f} images per CPU-s")  # fmt: skip
    print(f"\nEXTRAPOLATED, not measured: N Dask workers, each with a core of its own ~ min(N x {worker_rate:.0f},"
          f" {caller_rate:.0f}) images/s")  # fmt: skip
    estimates = {n: min(n * worker_rate, caller_rate) for n in EXTRAPOLATE}
    print("  " + "  ".join(f"N={n}: {rate:.0f}/s" for n, rate in estimates.items()))
    return {
        "runs": [asdict(run) | {"per_second": run.per_second} for run in runs],
        "cluster_start_up_s": start_up, "noop_round_trip_s": round_trip, "noop_pipelined_s": pipelined,
        "extra_cpu_s_per_task": per_task, "caller_images_per_cpu_s": caller_rate,
        "worker_images_per_cpu_s": worker_rate, "extrapolated_images_per_s": estimates,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=2000, help="generated files (default 2000)")
    parser.add_argument("--workers", type=int, default=2, help="pool processes and Dask workers (default 2)")
    parser.add_argument("--folder", type=Path, help="measure these files instead of generated ones")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each method; the fastest is kept (default 3)")
    parser.add_argument("--quick", action="store_true", help="300 generated files")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    folder = args.folder or ensure_files(300 if args.quick else args.files, args.workers)
    files, megabytes = warm(folder)
    print(f"{files} files, {megabytes:.0f} MB in {folder}; {args.workers} workers", file=sys.stderr)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0")
    with cluster, Client(cluster) as client:
        start_up = time.perf_counter() - started
        overheads = round_trip_seconds(client), pipelined_seconds(client)
        methods: list[Callable[[], Run]] = [
            lambda: timed_add("single process (workers=0)", folder, workers=0),
            lambda: timed_add(f"process pool (workers={args.workers})", folder, workers=args.workers),
            lambda: cluster_add(client, folder),
        ]
        trials = [[method() for method in methods] for _ in range(max(1, args.repeat))]
    runs = [min((trial[i] for trial in trials), key=lambda run: run.seconds) for i in range(len(methods))]
    print(f"\nload average (1 min) before {load_before:.1f}, after {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores;"
          f" fastest of {len(trials)} runs each")  # fmt: skip
    document = print_table(runs, start_up, overheads, args.workers)
    if args.json:
        args.json.write_text(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
