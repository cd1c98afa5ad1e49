"""Rescoring pairs in worker processes: the same scores and groups as in this process, survives a dead worker."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import nearindex
from nearindex import pair_pool, search
from nearindex.database import Database
from nearindex.duplicates import indexed_contents
from nearindex.pair_pool import score_pairs
from nearindex.search import PairScorer

from .conftest import Collection
from .test_cli import clean_env, run_with_terminal_stderr


def stored_pairs(index: nearindex.NearIndex, count: int) -> list[tuple[int, int]]:
    """The first ``count`` pairs of stored contents, sorted."""
    contents = indexed_contents(index._database)
    return sorted(itertools.combinations(contents, 2))[:count]


def test_workers_give_every_pair_the_score_this_process_gives(filled: nearindex.NearIndex) -> None:
    pairs = stored_pairs(filled, 120)
    here = dict(score_pairs(filled._database, pairs, workers=0))
    pooled = list(score_pairs(filled._database, pairs, workers=2))
    assert sorted(pair for pair, _ in pooled) == pairs  # each pair once
    assert dict(pooled) == pytest.approx(here, abs=1e-9)
    assert max(here.values()) > 0.87 > min(here.values())  # the sample holds matches and non-matches


def test_duplicates_with_workers_equal_duplicates_in_this_process(filled: nearindex.NearIndex) -> None:
    assert filled.duplicates(workers=2) == filled.duplicates(workers=0)


@pytest.mark.parametrize("pause", [0.0, 1.5])
def test_a_killed_worker_leaves_no_pair_unscored(
    filled: nearindex.NearIndex, monkeypatch: pytest.MonkeyPatch, pause: float
) -> None:
    monkeypatch.setattr(pair_pool, "CHUNK_PAIRS", 4)  # many chunks still waiting when the workers die
    pairs = stored_pairs(filled, 96)
    here = dict(score_pairs(filled._database, pairs, workers=0))
    scored = score_pairs(filled._database, pairs, workers=2)
    found = [next(scored)]
    killed = [child.pid for child in multiprocessing.active_children()]
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    time.sleep(pause)  # long enough for the pool to notice before the next chunk is sent
    found += list(scored)
    assert killed
    assert sorted(pair for pair, _ in found) == pairs
    assert dict(found) == pytest.approx(here, abs=1e-9)


class Recorder:
    """A Progress that remembers what it was told."""

    def __init__(self) -> None:
        self.tasks: list[tuple[str, int, int]] = []

    def start(self, total: int, description: str) -> None:
        self.tasks.append((description, total, 0))

    def advance(self, steps: int = 1) -> None:
        description, total, done = self.tasks[-1]
        self.tasks[-1] = (description, total, done + steps)

    def finish(self) -> None:
        pass


def test_duplicates_report_both_stages(filled: nearindex.NearIndex, collection: Collection) -> None:
    recorder = Recorder()
    filled.duplicates(workers=0, progress=recorder)
    (search, images, searched), (rescore, pairs, rescored) = recorder.tasks
    assert (search, rescore) == ("searching images", "rescoring pairs")
    assert images == searched == len(collection.all_files)
    assert pairs == rescored > 0


def test_duplicates_on_a_terminal_show_each_stage_and_print_the_same_groups(filled: nearindex.NearIndex) -> None:
    db = str(filled._database.directory)
    filled.close()
    command = [sys.executable, "-m", "nearindex", "--db", db, "duplicates", "--workers"]
    piped = subprocess.run([*command, "0"], capture_output=True, text=True, env=clean_env(), check=True)
    code, text, terminal = run_with_terminal_stderr([*command, "2"])
    assert code == 0
    assert "rescoring pairs" in terminal
    assert "\x1b" not in piped.stderr
    assert text == piped.stdout and "score" in text


def test_a_worker_opens_the_database_without_its_index(filled: nearindex.NearIndex, tmp_path: Path) -> None:
    directory = filled._database.directory
    filled.close()
    for index_file in directory.glob("vectors.*.faiss"):
        index_file.unlink()  # a reader without the index file would rebuild it in memory
    reader = Database.open(directory, writable=False, create=False, with_index=False)
    try:
        assert reader.index.size == 0
        assert not list(directory.glob("vectors.*.faiss"))
    finally:
        reader.close()


def test_a_scorer_keeps_no_more_images_than_asked_and_scores_as_one_that_keeps_all(
    filled: nearindex.NearIndex,
) -> None:
    pairs = stored_pairs(filled, 60)
    bounded, unbounded = PairScorer(filled._database, keep=3), PairScorer(filled._database, keep=10_000)
    for first, second in pairs:
        assert bounded.score(first, second) == unbounded.score(first, second)
        assert bounded.loaded <= 3
    assert unbounded.loaded == len({cid for pair in pairs for cid in pair}) > 3


def test_duplicates_hold_a_bounded_number_of_images_and_find_the_same_groups(
    filled: nearindex.NearIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    unbounded = filled.duplicates(workers=0)
    most = 0
    load = PairScorer.load

    def counting_load(self: PairScorer, content_ids: list[int]) -> None:
        nonlocal most
        load(self, content_ids)
        most = max(most, self.loaded)

    monkeypatch.setattr(search, "SIDES_KEPT", 4)
    monkeypatch.setattr(pair_pool, "CHUNK_PAIRS", 4)
    monkeypatch.setattr(PairScorer, "load", counting_load)
    assert filled.duplicates(workers=0) == unbounded
    assert 0 < most <= 2 * 4 < len(indexed_contents(filled._database))  # one chunk's images at most, not all
