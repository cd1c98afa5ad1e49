"""The checks after a kill, through the real command line (in this process, with Typer's runner).

In order: ``check`` runs (and, if it reports problems, ``check --repair`` fixes them and a second
``check`` passes); nothing a reader saw committed before the kill is lost or undone; no path or
content is stored twice; the index file of the catalog's generation holds exactly the vectors of
the stored contents; re-running the command finishes the rest without re-reading committed files;
the end state is what an uninterrupted run gives, and ``check`` passes.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from typer.testing import CliRunner

from crashlab.observe import CatalogView, read_catalog
from nearindex.cli import app
from nearindex.database import CATALOG_NAME, WINDOW_SLOTS
from nearindex.settings import DEFAULT_SETTINGS
from nearindex.vectors import VectorIndex, index_file

#: Contents whose every vector is compared with its descriptor (the rest: ids only).
VECTOR_SAMPLE = 200


@dataclass(frozen=True)
class Expectation:
    """What a command does to the stored files when it runs to the end.

    Attributes:
        command: The CLI arguments after ``--db DIR`` (also used for the re-run).
        before: Stored path -> content hash before the command.
        after: The same after an uninterrupted run.
        roots: Folders the command reads (re-run counts are checked against them).
        failures: Failure records expected at the end, or None when not checked.
        atomic: Paths that must change together (one transaction).
    """

    command: tuple[str, ...]
    before: dict[str, bytes]
    after: dict[str, bytes]
    roots: tuple[Path, ...] = ()
    failures: frozenset[str] | None = None
    atomic: frozenset[str] = field(default_factory=frozenset)


def run_cli(database: Path, *args: str, stdout_only: bool = False) -> tuple[int, str]:
    """Run ``nearindex --db DATABASE ARGS`` in this process; (exit code, stdout and stderr).

    An exception escaping the command line (a crash, not an error line) is exit code 99.
    """
    result = CliRunner().invoke(app, ["--db", str(database), *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return 99, f"{type(result.exception).__name__}: {result.exception}"
    return result.exit_code, result.stdout if stdout_only else (result.stdout + result.stderr).strip()


def verify(database: Path, expectation: Expectation, snapshot: CatalogView) -> list[str]:
    """Every check after a kill; returns the problems found (empty: the trial passed)."""
    problems = check_or_repair(database, snapshot)
    if problems or not (database / CATALOG_NAME).exists():
        return problems or _finish(database, expectation, CatalogView())
    now = read_catalog(database)
    if now is None:
        return ["the catalog cannot be read after check"]
    problems += compare_progress(expectation, snapshot.files, now.files)
    problems += find_duplicates(database)
    problems += verify_index(database)
    return problems + _finish(database, expectation, now)


def check_or_repair(database: Path, snapshot: CatalogView) -> list[str]:
    """``check``; on problems ``check --repair`` then ``check`` again. Returns failures of that."""
    code, text = run_cli(database, "check")
    if code == 0:
        return []
    if "no nearindex database here" in text:
        return [] if not snapshot.files and snapshot.revision is None else [f"database gone: {text}"]
    if code != 1 or "problem:" not in text:
        return [f"check exited {code}: {text}"]
    code, repaired = run_cli(database, "check", "--repair")
    if code != 0:
        return [f"check --repair exited {code}: {repaired} (after check said: {text})"]
    code, again = run_cli(database, "check")
    return [] if code == 0 else [f"check after repair exited {code}: {again}"]


def compare_progress(expectation: Expectation, seen: dict[str, bytes], now: dict[str, bytes]) -> list[str]:
    """Each path's stored value is its before or after value and never went back from after to before."""
    problems = []
    positions = {}
    for path in sorted(set(expectation.before) | set(expectation.after) | set(seen) | set(now)):
        old, new = expectation.before.get(path), expectation.after.get(path)
        then, current = _position(seen.get(path), old, new), _position(now.get(path), old, new)
        if current is None:
            problems.append(f"{path}: stores content that is neither its old nor its new one")
        elif then is not None and current < then:
            problems.append(f"{path}: a committed change was lost (seen {then}, now {current})")
        positions[path] = current
    moved = {positions.get(path) for path in expectation.atomic}
    if len(moved) > 1:
        problems.append(f"paths meant to change in one transaction are split: {sorted(expectation.atomic)[:3]}...")
    return problems


def _position(value: bytes | None, old: bytes | None, new: bytes | None) -> int | None:
    """0 for the old value, 1 for the new (0 when they are the same), None for anything else."""
    if value == old:
        return 0
    return 1 if value == new else None


def find_duplicates(database: Path) -> list[str]:
    """Paths, content hashes or failure paths stored twice, or a path both stored and failed."""
    queries = {
        "file paths": "SELECT count(*) - count(DISTINCT path) FROM files",
        "content hashes": "SELECT count(*) - count(DISTINCT content_hash) FROM contents",
        "failure paths": "SELECT count(*) - count(DISTINCT path) FROM failures",
        "paths both stored and failed": "SELECT count(*) FROM files JOIN failures ON files.path = failures.path",
    }
    with sqlite3.connect(f"file:{database / CATALOG_NAME}?mode=ro", uri=True) as connection:
        counts = {name: connection.execute(sql).fetchone()[0] for name, sql in queries.items()}
    connection.close()
    return [f"{count} duplicate {name}" for name, count in counts.items() if count]


def verify_index(database: Path) -> list[str]:
    """The index file of the catalog generation holds exactly the stored contents' vectors."""
    descriptors, generation = _descriptors(database)
    path = index_file(database, generation)
    if not path.exists():
        return [f"no index file for generation {generation} after check"]
    index = VectorIndex.load(path)
    ids = index.ids().tolist()
    expected = {vid for cid, blob in descriptors.items() for vid in _vector_ids(cid, blob)}
    problems = [] if len(ids) == len(set(ids)) else [f"{len(ids) - len(set(ids))} duplicate ids in the index"]
    if set(ids) != expected:
        problems.append(f"index misses {len(expected - set(ids))} and has {len(set(ids) - expected)} unknown vectors")
        return problems
    sample = random.Random(generation).sample(sorted(descriptors), min(VECTOR_SAMPLE, len(descriptors)))
    wrong = [cid for cid in sample if not _vectors_match(index, cid, descriptors[cid])]
    return problems + ([f"{len(wrong)} contents have other vectors in the index than in the catalog"] if wrong else [])


def _descriptors(database: Path) -> tuple[dict[int, bytes], int]:
    with sqlite3.connect(f"file:{database / CATALOG_NAME}?mode=ro", uri=True) as connection:
        rows = dict(connection.execute("SELECT id, descriptor FROM contents WHERE NOT flat").fetchall())
        generation = connection.execute("SELECT value FROM state WHERE key = 'generation'").fetchone()
    connection.close()
    return rows, int(generation[0]) if generation else 0


def _matrix(blob: bytes) -> npt.NDArray[np.float32]:
    return np.frombuffer(blob, np.float32).reshape(-1, DEFAULT_SETTINGS.dimension)


def _vector_ids(content_id: int, blob: bytes) -> Iterable[int]:
    rows = np.flatnonzero(np.abs(_matrix(blob)).sum(axis=1) > 0)
    return (content_id * WINDOW_SLOTS + int(row) for row in rows)


def _vectors_match(index: VectorIndex, content_id: int, blob: bytes) -> bool:
    matrix = _matrix(blob)
    return all(
        np.array_equal(index.reconstruct(vid), matrix[vid - content_id * WINDOW_SLOTS])
        for vid in _vector_ids(content_id, blob)
    )


def _finish(database: Path, expectation: Expectation, now: CatalogView) -> list[str]:
    """Re-run the command to the end and compare with an uninterrupted run."""
    problems = _rerun(database, expectation, now)
    end = read_catalog(database)
    if end is None:
        return [*problems, "the catalog cannot be read after the re-run"]
    if end.files != expectation.after:
        missing, extra = set(expectation.after) - set(end.files), set(end.files) - set(expectation.after)
        wrong = {p for p in set(end.files) & set(expectation.after) if end.files[p] != expectation.after[p]}
        problems.append(f"after the re-run: {len(missing)} missing, {len(extra)} extra, {len(wrong)} wrong files")
    if expectation.failures is not None and end.failures != expectation.failures:
        problems.append(f"after the re-run the failures are {sorted(end.failures)}")
    code, text = run_cli(database, "check")
    if code != 0:
        problems.append(f"check after the re-run exited {code}: {text}")
    return problems + find_duplicates(database) + verify_index(database)


def _rerun(database: Path, expectation: Expectation, now: CatalogView) -> list[str]:
    command = expectation.command
    if command[0] in ("add", "sync"):
        return _rerun_ingest(database, expectation, now)
    code, text = run_cli(database, *command)
    allowed = (0, 1) if command[0] == "remove" else (0,)  # a finished remove finds nothing left to forget
    return [] if code in allowed else [f"re-run of {' '.join(command)} exited {code}: {text}"]


def _rerun_ingest(database: Path, expectation: Expectation, now: CatalogView) -> list[str]:
    """Re-run add/sync: files committed before the kill must not be read again."""
    code, text = run_cli(database, *expectation.command, "--workers", "0", "--json", stdout_only=True)
    if code != 0:
        return [f"re-run of {expectation.command[0]} exited {code}: {text}"]
    counts = json.loads(text)
    on_disk = {p for p in expectation.after if any(Path(p).is_relative_to(root) for root in expectation.roots)}
    done = {p for p in on_disk if now.files.get(p) == expectation.after[p]}
    problems = []
    if counts["unchanged"] != len(done):
        problems.append(f"re-run found {counts['unchanged']} unchanged, but {len(done)} were committed before")
    if sum(counts[k] for k in ("added", "updated", "moved", "unchanged")) != len(on_disk):
        problems.append(f"re-run counts {counts} do not cover the {len(on_disk)} images")
    return problems
