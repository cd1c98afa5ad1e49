"""One crash trial: copy a template, start nearindex, SIGKILL it at some moment, verify.

The moment is either random (uniform over the duration of an uninterrupted run of the same
command, measured first in the same slot) or targeted (the first, or a random later, moment the
``Observer`` sees the process in a chosen phase). Either way the phase at the kill is what the
observer saw just before it, and the committed state is read by another connection just before it.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from crashlab.collection import Slot, bad_files, good_files, stored_files
from crashlab.observe import CatalogView, Observer, read_catalog
from crashlab.verify import Expectation, verify

#: Runs the real command line with batches of 8 files instead of 256, so that a run of a hundred
#: images commits many times (nothing else changes; a quarter of the trials use the default).
SMALL_BATCH_LAUNCHER = (
    "import sys; from nearindex import ingest; ingest.BATCH_ITEMS = 8; "
    "from nearindex.cli import main; sys.argv[0] = 'nearindex'; main()"
)
#: Longest a trial's process may run, seconds.
RUN_TIMEOUT = 120.0
#: Observations of a targeted phase that may be skipped before killing (spreads kills within it).
MAX_SKIPS = {"describing": 150, "walking": 2}


@dataclass(frozen=True)
class Kind:
    """A command to interrupt and the database it starts from.

    Attributes:
        name: Row label.
        template: Template database (None: no database yet, so the schema is created on open).
        targets: Phases the targeted trials aim at.
    """

    name: str
    template: str | None
    targets: tuple[str, ...]


INGEST = ("describing", "writing SQLite", "saving FAISS", "finishing")
KINDS = {
    kind.name: kind
    for kind in (
        Kind("add, new database", None, ("starting", "migrating", "walking", *INGEST)),
        Kind("add, big database", "big", ("opening", *INGEST)),
        Kind("add, resume after crash", "half", ("rebuilding index", *INGEST)),
        Kind("add, schema-0001 fixture", "fixture-0001", ("opening", *INGEST)),
        Kind("sync", "sync", INGEST),
        Kind("remove", "full", ("opening", "writing SQLite", "saving FAISS")),
        Kind("index rebuild (check --repair)", "stale", ("rebuilding index", "saving FAISS")),
    )
}


@dataclass(frozen=True)
class TrialResult:
    """The verdict of one trial.

    Attributes:
        kind: The Kind's name.
        phase: Phase at the kill ("exited" if the process ended first; "uninterrupted" for calibration).
        problems: What failed (empty: passed).
        seconds: Time from start to kill (or exit).
        detail: How the moment was chosen, for failure reports.
    """

    kind: str
    phase: str
    problems: tuple[str, ...]
    seconds: float
    detail: str

    @property
    def passed(self) -> bool:
        """True when every check held."""
        return not self.problems


def expectation_for(slot: Slot, kind: Kind) -> Expectation:
    """What an uninterrupted run of ``kind`` does to the stored files."""
    before = stored_files(slot.template(kind.template)) if kind.template else {}
    if kind.name.startswith("add"):
        slot.ensure_images()
        after = {**before, **good_files(slot.images)}
        return Expectation(("add", str(slot.images)), before, after, (slot.images,), frozenset(bad_files(slot.images)))
    if kind.name == "sync":
        root = slot.sync_images
        kept = {p: h for p, h in before.items() if not Path(p).is_relative_to(root)}
        after = {**kept, **good_files(root)}
        return Expectation(("sync", str(root)), before, after, (root,), frozenset(bad_files(root)))
    if kind.name == "remove":
        targets = (slot.images / "edits", slot.images / "scene001.jpg")
        gone = {p for p in before if any(Path(p) == t or Path(p).is_relative_to(t) for t in targets)}
        after = {p: h for p, h in before.items() if p not in gone}
        return Expectation(("remove", *map(str, targets)), before, after, atomic=frozenset(gone))
    return Expectation(("check", "--repair"), before, before)


def command_line(database: Path, expectation: Expectation, *, small_batches: bool) -> list[str]:
    """The argv of the process to kill."""
    launcher = ["-c", SMALL_BATCH_LAUNCHER] if small_batches else ["-m", "nearindex"]
    workers = ["--workers", "1"] if expectation.command[0] in ("add", "sync") else []
    return [sys.executable, *launcher, "--db", str(database), *expectation.command, *workers]


def calibrate(slot: Slot, kind: Kind) -> tuple[float, TrialResult]:
    """Run ``kind`` uninterrupted: its duration (for random kill moments) and its verdict."""
    database = slot.fresh_database(kind.template)
    expectation = expectation_for(slot, kind)
    started = time.monotonic()
    argv = command_line(database, expectation, small_batches=True)
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    seconds = time.monotonic() - started
    problems = [] if completed.returncode in (0, 1) else [f"exited {completed.returncode}: {completed.stderr[-300:]}"]
    problems += verify(database, expectation, read_catalog(database) or CatalogView())
    return seconds, TrialResult(kind.name, "uninterrupted", tuple(problems), seconds, "no kill")


@dataclass(frozen=True)
class Moment:
    """When to kill: after ``delay`` seconds, or on a sighting of ``target`` (after ``skips`` others).

    Attributes:
        delay: Seconds after the start (ignored when ``target`` is set).
        target: A phase of ``observe.PHASES``.
        skips: Sightings of ``target`` to let pass first.
        small_batches: Run with batches of 8 files (``SMALL_BATCH_LAUNCHER``).
    """

    delay: float = RUN_TIMEOUT
    target: str | None = None
    skips: int = 0
    small_batches: bool = True

    def describe(self) -> str:
        """The moment in words, for reports."""
        when = f"random at {self.delay:.3f}s" if self.target is None else f"targeted at {self.target!r}"
        skipped = f" after {self.skips} sightings" if self.skips else ""
        return f"{when}{skipped}, {'batches of 8' if self.small_batches else 'default batches'}"


def choose_moment(kind: Kind, *, duration: float, seed: int) -> Moment:
    """A random moment (60 %) or a targeted one (40 %); a quarter of them with default batches."""
    rng = random.Random(seed)
    small = rng.random() < 0.75
    if rng.random() < 0.6:
        return Moment(delay=rng.uniform(0.0, 0.95 * duration), small_batches=small)
    target = rng.choice(kind.targets)
    return Moment(target=target, skips=rng.randint(0, MAX_SKIPS.get(target, 3)), small_batches=small)


def run_trial(slot: Slot, kind: Kind, moment: Moment) -> TrialResult:
    """One trial: start the command on a fresh copy of the template, kill it at ``moment``, verify."""
    database = slot.fresh_database(kind.template)
    expectation = expectation_for(slot, kind)
    before = read_catalog(database, with_files=False) or CatalogView()
    process = subprocess.Popen(
        command_line(database, expectation, small_batches=moment.small_batches),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    observer = Observer(process.pid, database, frozenset(rid for rid, _ in before.runs))
    phase, snapshot, seconds = _kill_when(process, observer, moment)
    problems = [] if phase != "exited" or process.returncode in (0, 1) else [f"exited {process.returncode}"]
    problems += verify(database, expectation, snapshot)
    return TrialResult(kind.name, phase, tuple(problems), seconds, moment.describe())


def _kill_when(process: subprocess.Popen[bytes], observer: Observer, moment: Moment) -> tuple[str, CatalogView, float]:
    """Poll the process; SIGKILL it at ``moment``.

    Returns:
        The phase at the kill ("exited" if it ended first), the committed state read just
        before the kill, and the seconds since the start.
    """
    started, last = time.monotonic(), CatalogView()
    delay, target, skips = moment.delay, moment.target, moment.skips
    try:
        while process.poll() is None and time.monotonic() - started < RUN_TIMEOUT:
            phase = observer.phase()
            due = time.monotonic() - started >= delay if target is None else phase == target
            if due and target is not None and skips > 0:
                skips, due = skips - 1, False
            if due:
                last = read_catalog(observer.database) or last
                phase = observer.phase()
                os.kill(process.pid, signal.SIGKILL)
                return phase, last, time.monotonic() - started
            time.sleep(0.0005 if target else 0.002)
        process.wait(RUN_TIMEOUT)
        return "exited", read_catalog(observer.database) or last, time.monotonic() - started
    finally:
        _reap(process)


def _reap(process: subprocess.Popen[bytes]) -> None:
    """Wait for the killed process, then kill whatever of its session is left (its workers)."""
    with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
        process.wait(30)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
