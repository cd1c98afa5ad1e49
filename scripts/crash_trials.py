#!/usr/bin/env python3
"""Crash trials: SIGKILL real nearindex processes at random moments and check what survives.

Each trial copies a template database, starts ``nearindex add`` (or ``sync``, ``remove``,
``check --repair``) in a subprocess, kills it with SIGKILL at a random moment (uniform over an
uninterrupted run's duration) or at a moment the process is seen in a chosen phase, and then
checks: ``check`` passes or ``check --repair`` restores the database; everything committed before
the kill (read by another connection) is still there, with its vectors in the index file; no
duplicate rows; re-running the command finishes the rest without re-reading committed files.

Usage: python scripts/crash_trials.py [--trials N] [--jobs J] [--seed S] [--workdir DIR] [--small]

The default (120 trials) takes a few minutes on two cores; ``--trials 1000`` is the full proof.
Exits 1 if any trial fails. Linux only (reads ``/proc``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from crashlab.collection import FULL_SCALE, TEST_SCALE, Scale, Slot
from crashlab.observe import PHASES
from crashlab.trial import KINDS, TrialResult, calibrate, choose_moment, run_trial

#: Relative number of trials per kind.
WEIGHTS = {
    "add, new database": 3,
    "add, big database": 2,
    "add, resume after crash": 2,
    "add, schema-0001 fixture": 1,
    "sync": 2,
    "remove": 1,
    "index rebuild (check --repair)": 1,
}

_slot: Slot | None = None
_durations: dict[str, float] = {}


def plan_trials(count: int, seed: int) -> list[tuple[str, int]]:
    """(kind, seed) for ``count`` trials, kinds in proportion to ``WEIGHTS``."""
    cycle = [name for name, weight in WEIGHTS.items() for _ in range(weight)]
    return [(cycle[number % len(cycle)], seed * 1_000_003 + number) for number in range(count)]


def _start_slot(workdir: Path, scale: Scale) -> None:
    global _slot
    _slot = Slot(workdir / f"slot-{os.getpid()}", scale)
    _slot.root.mkdir(parents=True, exist_ok=True)


def run_planned(planned: tuple[str, int]) -> list[TrialResult]:
    """Run one planned trial in this process's slot (calibrating its kind first if needed)."""
    assert _slot is not None, "the slot is made by the pool initializer"
    kind, seed = KINDS[planned[0]], planned[1]
    results = []
    if kind.name not in _durations:
        _durations[kind.name], calibration = calibrate(_slot, kind)
        results.append(calibration)
    results.append(run_trial(_slot, kind, choose_moment(kind, duration=_durations[kind.name], seed=seed)))
    return results


def run_all(
    plan: list[tuple[str, int]], *, jobs: int, workdir: Path, scale: Scale, log: Path | None = None
) -> list[TrialResult]:
    """Run the plan on ``jobs`` processes, printing progress to stderr (and each result to ``log``)."""
    context = multiprocessing.get_context("spawn")
    results: list[TrialResult] = []
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_slot, initargs=(workdir, scale)) as pool:
        for number, batch in enumerate(pool.map(run_planned, plan), 1):
            results.extend(batch)
            if log is not None:
                with log.open("a") as lines:
                    lines.writelines(json.dumps(vars(result) | {"passed": result.passed}) + "\n" for result in batch)
            if number % 50 == 0 or number == len(plan):
                failed = sum(not r.passed for r in results)
                print(f"{number}/{len(plan)} trials, {failed} failed", file=sys.stderr, flush=True)
    return results


def table(rows: Iterable[tuple[str, str]], results: list[TrialResult]) -> str:
    """A text table of trials, passed and failed for each (command, phase) row."""
    trials = Counter((r.kind, r.phase) for r in results)
    passed = Counter((r.kind, r.phase) for r in results if r.passed)
    lines = [f"{'command':32} {'phase at kill':18} {'trials':>6} {'passed':>6} {'failed':>6}"]
    for kind, phase in rows:
        key = (kind, phase)
        lines.append(f"{kind:32} {phase:18} {trials[key]:6d} {passed[key]:6d} {trials[key] - passed[key]:6d}")
    return "\n".join(lines)


def report(results: list[TrialResult], seconds: float) -> str:
    """The full report: per command and phase, per phase, totals and failure details."""
    order = {phase: number for number, phase in enumerate(("uninterrupted", *PHASES))}
    pairs = sorted({(r.kind, r.phase) for r in results}, key=lambda p: (list(KINDS).index(p[0]), order[p[1]]))
    by_phase = [("all commands", phase) for phase in sorted({r.phase for r in results}, key=order.__getitem__)]
    merged = [TrialResult("all commands", r.phase, r.problems, r.seconds, r.detail) for r in results]
    killed = [r for r in results if r.phase not in ("uninterrupted", "exited")]
    parts = [
        table(pairs, results), "", table(by_phase, merged), "",
        f"{len(results)} runs ({len(killed)} killed, {sum(r.phase == 'exited' for r in results)} ended before "
        f"the kill, {sum(r.phase == 'uninterrupted' for r in results)} uninterrupted calibrations): "
        f"{sum(r.passed for r in results)} passed, {sum(not r.passed for r in results)} failed, in {seconds:.0f} s",
    ]  # fmt: skip
    for result in results:
        if not result.passed:
            parts.append(f"FAILED {result.kind} / {result.phase} ({result.detail}): " + "; ".join(result.problems))
    return "\n".join(parts)


def main() -> int:
    """Parse arguments, run the trials, print the report; 1 if any trial failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=120, help="number of kills (1000 for the full proof)")
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)), help="trials run in parallel")
    parser.add_argument("--seed", type=int, default=1, help="seed of the kill moments")
    parser.add_argument("--workdir", type=Path, help="where slots go (default: a temporary directory)")
    parser.add_argument("--small", action="store_true", help="smaller collections and databases (faster)")
    parser.add_argument("--log", type=Path, help="append each result to this file as a JSON line")
    args = parser.parse_args()
    scale = TEST_SCALE if args.small else FULL_SCALE
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nearindex-crash-") as temporary:
        workdir = args.workdir or Path(temporary)
        results = run_all(
            plan_trials(args.trials, args.seed), jobs=args.jobs, workdir=workdir, scale=scale, log=args.log
        )
    print(report(results, time.monotonic() - started))
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
