"""A database whose vector index is compressed: queries, duplicates, writes and the switch by size."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import nearindex
from nearindex import synthetic, vectors
from nearindex.cli import app
from nearindex.duplicates import indexed_contents, vector_pairs
from nearindex.search import Side, best_coarse, best_inner_product, candidate_contents, describe_query
from nearindex.vectors import VectorIndex

from .conftest import Collection
from .test_search import family_of


def test_a_compressed_index_keeps_every_edited_copy_ahead(filled: nearindex.NearIndex, collection: Collection) -> None:
    flat_groups = {group.paths for group in filled.duplicates()}
    info = filled.reindex("compressed")
    assert "IVF" in info.index_kind and info.vectors > 0
    for seed, edits in collection.edits.items():
        for name, path in edits.items():
            results = filled.query(path, k=50)
            family = family_of(collection, seed)
            worst_family = min(m.score for m in results if m.path in family)
            assert worst_family > max((m.score for m in results if m.path not in family), default=0.0), name
    assert {group.paths for group in filled.duplicates()} == flat_groups
    assert filled.check().ok


def test_a_compressed_index_survives_reopening_adding_and_removing(
    db_path: Path, collection: Collection, tmp_path: Path
) -> None:
    with nearindex.open(db_path) as database:
        database.add(collection.root, workers=0)
        database.reindex("compressed")
    newcomer = tmp_path / "more" / "new.jpg"
    newcomer.parent.mkdir()
    synthetic.write_image(newcomer, synthetic.make_scene(77))
    with nearindex.open(db_path) as database:
        assert "IVF" in database.info().index_kind
        database.add(newcomer.parent, workers=0)
        assert database.query(newcomer, k=1)[0].path == str(newcomer)
        database.remove(str(collection.originals[0]))
        assert str(collection.originals[0]) not in {m.path for m in database.query(collection.originals[0], k=50)}
    with nearindex.open(db_path, read_only=True) as database:
        assert "IVF" in database.info().index_kind and database.check().ok
        with nearindex.open(db_path) as writer:
            assert "Flat" in writer.reindex("flat").index_kind
        # The reader maps the compressed file; the writer replaced it, the mapping stays whole.
        assert database.query(newcomer, k=1)[0].path == str(newcomer)


def test_an_index_is_compressed_by_itself_once_it_grows_past_the_limit(
    database: nearindex.NearIndex, collection: Collection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vectors, "COMPRESS_ABOVE", 260)
    database.add(collection.root, workers=0)
    info = database.info()
    assert info.vectors > 260 and "IVF" in info.index_kind
    assert "Flat" in database.reindex("flat").index_kind  # as asked, until the next write


def test_too_few_vectors_to_compress_is_one_line_and_changes_nothing(db_path: Path, tmp_path: Path) -> None:
    folder = tmp_path / "few"
    folder.mkdir()
    synthetic.write_image(folder / "a.jpg", synthetic.make_scene(1))
    runner = CliRunner()
    assert runner.invoke(app, ["--db", str(db_path), "add", str(folder)]).exit_code == 0
    result = runner.invoke(app, ["--db", str(db_path), "reindex", "--kind", "compressed"])
    assert result.exit_code == 1
    assert "cannot build a compressed index" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    shown = json.loads(runner.invoke(app, ["--db", str(db_path), "reindex", "--json"]).stdout)
    assert "Flat" in shown["index_kind"] and shown["images"] == 1


def test_vector_pairs_finds_close_contents_once_with_their_best_product() -> None:
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((6, 8)).astype(np.float32)
    rows[5] = rows[1] + 0.05  # content 2's second window nearly equals content 0's second window
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    index = VectorIndex.build(8, np.array([0, 1, 16, 17, 32, 33], np.int64), np.ascontiguousarray(rows))
    queries = np.ascontiguousarray(rows[[1, 3, 5]])
    pairs = vector_pairs(index, [(np.array([0, 1, 2], np.int64), queries)], neighbours=6, min_coarse=0.9, slots=16)
    assert list(pairs) == [(0, 2)] and pairs[(0, 2)] > 0.99


def test_a_compressed_index_ranks_its_candidates_by_their_stored_vectors_exact_products(
    filled: nearindex.NearIndex, collection: Collection
) -> None:
    database = filled._database
    filled.reindex("compressed")
    count = 12
    contents = database.stored_contents(indexed_contents(database))
    found_best = estimated_best = 0
    for path in [*collection.edits[0].values(), collection.unrelated[0]]:
        side = Side.of(describe_query(path), database.settings)
        stored = {
            cid: np.frombuffer(c.descriptor, np.float32).reshape(-1, side.vectors.shape[1])
            for cid, c in contents.items()
        }
        exact = {
            cid: max(best_inner_product(side.vectors, rows), best_inner_product(side.mirrored_vectors, rows))
            for cid, rows in stored.items()
        }
        truth = set(sorted(exact, key=lambda cid: -exact[cid])[:count])
        found = candidate_contents(database, side, count, window_leaders=0, edit_leaders=0)
        assert found == sorted(found, key=lambda cid: -exact[cid])
        estimated, _ = best_coarse(database, side, count)
        found_best += len(truth & set(found))
        estimated_best += len(truth & set(sorted(estimated, key=lambda cid: -estimated[cid])[:count]))
    assert found_best > estimated_best
