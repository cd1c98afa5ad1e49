"""Tests of nearindex.vectors: a real FAISS index, saved to and loaded from real files."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nearindex import vectors
from nearindex.vectors import VectorIndex, check_vectors

DIM = 16
F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


def unit_rows(n: int, dim: int = DIM, *, seed: int = 0) -> F32:
    """``n`` random unit vectors of ``dim`` floats, C-contiguous float32."""
    rows = np.random.default_rng(seed).standard_normal((n, dim))
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return np.ascontiguousarray(rows, dtype=np.float32)


def ids_of(*values: int) -> I64:
    return np.asarray(values, np.int64)


@pytest.fixture
def index() -> VectorIndex:
    """Five unit vectors under sparse, unordered ids."""
    return VectorIndex.build(DIM, ids_of(40, 7, 1000, 3, 512), unit_rows(5))


# -- add / search / remove / ids ------------------------------------------------


def test_empty_index_has_its_dimension_and_nothing_in_it() -> None:
    empty = VectorIndex.empty(DIM)
    assert (empty.dimension, empty.size) == (DIM, 0)
    assert empty.ids().tolist() == []
    assert str(DIM) in empty.kind


def test_ids_are_the_added_ids_in_storage_order(index: VectorIndex) -> None:
    assert index.ids().dtype == np.int64
    assert index.ids().tolist() == [40, 7, 1000, 3, 512]
    assert index.size == 5


def test_add_appends_and_an_empty_add_changes_nothing(index: VectorIndex) -> None:
    index.add(ids_of(), np.zeros((0, DIM), np.float32))
    assert index.size == 5
    index.add(ids_of(9, 8), unit_rows(2, seed=1))
    assert index.ids().tolist() == [40, 7, 1000, 3, 512, 9, 8]


def test_search_ranks_each_stored_vector_first_under_its_own_id(index: VectorIndex) -> None:
    scores, found = index.search(unit_rows(5), k=3)
    assert found.shape == scores.shape == (5, 3)
    assert found[:, 0].tolist() == [40, 7, 1000, 3, 512]
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 1e-6), "scores must be sorted best first"


def test_search_returns_at_most_size_neighbours(index: VectorIndex) -> None:
    scores, found = index.search(unit_rows(2, seed=3), k=50)
    assert found.shape == scores.shape == (2, index.size)
    assert sorted(found[0].tolist()) == sorted(index.ids().tolist())


def test_search_of_an_empty_index_says_missing_with_minus_one() -> None:
    _scores, found = VectorIndex.empty(DIM).search(unit_rows(1), k=4)
    assert found.tolist() == [[-1]]


def test_search_refuses_k_below_one(index: VectorIndex) -> None:
    with pytest.raises(ValueError, match="k must be >= 1"):
        index.search(unit_rows(1), k=0)


def test_remove_forgets_exactly_the_present_ids(index: VectorIndex) -> None:
    stored = unit_rows(5)
    assert index.remove(ids_of(7, 3, 999)) == 2
    assert index.ids().tolist() == [40, 1000, 512]
    _scores, found = index.search(stored, k=index.size)
    assert {7, 3}.isdisjoint(found.ravel().tolist())
    assert found[[0, 2, 4], 0].tolist() == [40, 1000, 512]


def test_remove_of_nothing_or_of_unknown_ids_changes_nothing(index: VectorIndex) -> None:
    assert index.remove(ids_of()) == 0
    assert index.remove(ids_of(-5, 6, 10_000)) == 0
    assert index.ids().tolist() == [40, 7, 1000, 3, 512]


def test_reconstruct_gives_back_the_stored_vector(index: VectorIndex) -> None:
    np.testing.assert_array_equal(index.reconstruct(1000), unit_rows(5)[2])


def test_reconstruct_many_gives_back_the_stored_vectors_in_the_order_asked(index: VectorIndex) -> None:
    np.testing.assert_array_equal(index.reconstruct_many(ids_of(512, 40, 1000)), unit_rows(5)[[4, 0, 2]])


# -- boundary checks --------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (unit_rows(3).astype(np.float64), "float32"),
        (unit_rows(3).astype(np.float16), "float32"),
        (unit_rows(3).tolist(), "float32"),
        (unit_rows(3, DIM + 1), "shape"),
        (unit_rows(3, DIM - 1), "shape"),
        (unit_rows(1)[0], "shape"),
        (unit_rows(6).reshape(2, 3, DIM), "shape"),
        (unit_rows(3, 2 * DIM)[:, ::2], "contiguous"),
        (np.asfortranarray(unit_rows(3)), "contiguous"),
    ],
    ids=["float64", "float16", "list", "too-wide", "too-narrow", "1-d", "3-d", "strided", "fortran"],
)
def test_check_vectors_refuses_arrays_faiss_would_misread(bad: F32, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_vectors(bad, DIM)


def test_check_vectors_accepts_a_contiguous_float32_matrix_including_an_empty_one() -> None:
    check_vectors(unit_rows(3), DIM)
    check_vectors(np.zeros((0, DIM), np.float32), DIM)


@pytest.mark.parametrize(
    "bad", [np.asfortranarray(unit_rows(3)), unit_rows(3).astype(np.float64)], ids=["fortran", "float64"]
)
def test_add_and_search_check_their_vectors(index: VectorIndex, bad: F32) -> None:
    with pytest.raises(ValueError):
        index.add(ids_of(1, 2, 4), bad)
    with pytest.raises(ValueError):
        index.search(bad, k=1)
    assert index.size == 5


@pytest.mark.parametrize("ids", [ids_of(1, 2), ids_of(1, 2, 4, 5), np.asarray([[1, 2, 4]], np.int64)])
def test_add_refuses_ids_that_do_not_match_the_vectors_one_to_one(index: VectorIndex, ids: I64) -> None:
    with pytest.raises(ValueError, match="one id per vector"):
        index.add(ids, unit_rows(3, seed=2))
    assert index.size == 5


# -- files ------------------------------------------------------------------------


def test_save_and_load_round_trip_keeps_ids_vectors_and_answers(index: VectorIndex, tmp_path: Path) -> None:
    target = tmp_path / "vectors.00000003.faiss"
    index.save(target)
    loaded = VectorIndex.load(target)
    assert (loaded.dimension, loaded.size) == (index.dimension, index.size)
    assert loaded.ids().tolist() == index.ids().tolist()
    for content_id in index.ids().tolist():
        np.testing.assert_array_equal(loaded.reconstruct(content_id), index.reconstruct(content_id))
    queries = unit_rows(4, seed=9)
    for mine, theirs in zip(index.search(queries, k=3), loaded.search(queries, k=3), strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_a_loaded_index_can_be_changed_and_saved_again(index: VectorIndex, tmp_path: Path) -> None:
    index.save(tmp_path / "a.faiss")
    loaded = VectorIndex.load(tmp_path / "a.faiss")
    loaded.remove(ids_of(40))
    loaded.add(ids_of(41), unit_rows(1, seed=5))
    loaded.save(tmp_path / "b.faiss")
    assert VectorIndex.load(tmp_path / "b.faiss").ids().tolist() == [7, 1000, 3, 512, 41]


def test_save_replaces_the_target_and_leaves_no_temporary_file(index: VectorIndex, tmp_path: Path) -> None:
    target = tmp_path / "vectors.00000001.faiss"
    VectorIndex.build(DIM, ids_of(1), unit_rows(1, seed=8)).save(target)
    index.save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]
    assert VectorIndex.load(target).ids().tolist() == index.ids().tolist()


def test_a_failed_save_removes_its_temporary_file(index: VectorIndex, tmp_path: Path) -> None:
    target = tmp_path / "occupied"
    target.mkdir()
    (target / "keep").write_text("x")
    with pytest.raises(OSError):
        index.save(target)  # os.replace cannot put a file over a non-empty folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["occupied"]
    assert (target / "keep").read_text() == "x"


def test_index_file_names_carry_the_generation_and_are_found_again(tmp_path: Path) -> None:
    for generation in (0, 7, 123):
        VectorIndex.empty(DIM).save(vectors.index_file(tmp_path, generation))
    (tmp_path / "vectors.faiss").write_bytes(b"")  # no generation: not an index file
    (tmp_path / "vectors.12.faiss.bak").write_bytes(b"")
    found = vectors.index_files(tmp_path)
    assert sorted(found) == [0, 7, 123]
    assert all(path == vectors.index_file(tmp_path, generation) for generation, path in found.items())
    assert vectors.index_file(tmp_path, 2) != vectors.index_file(tmp_path, 20)


def test_remove_other_files_keeps_one_generation_and_drops_temporaries(tmp_path: Path) -> None:
    for generation in (1, 2, 3):
        VectorIndex.empty(DIM).save(vectors.index_file(tmp_path, generation))
    (tmp_path / ".vectors-leftover.tmp").write_bytes(b"half")
    (tmp_path / "catalog.sqlite3").write_bytes(b"not touched")
    vectors.remove_other_files(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalog.sqlite3", vectors.index_file(tmp_path, 2).name]


# -- properties -------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    dim=st.integers(4, 64),
    ids=st.lists(st.integers(0, 2**62), min_size=1, max_size=40, unique=True),
)
def test_each_stored_unit_vector_finds_itself_first_with_score_one(seed: int, dim: int, ids: list[int]) -> None:
    stored = unit_rows(len(ids), dim, seed=seed)
    index = VectorIndex.build(dim, np.asarray(ids, np.int64), stored)
    scores, found = index.search(stored, k=1)
    assert found[:, 0].tolist() == ids
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), dim=st.integers(1, 64), stored=st.integers(1, 30), queries=st.integers(1, 5))
def test_search_scores_are_numpy_inner_products_best_first(seed: int, dim: int, stored: int, queries: int) -> None:
    rows = unit_rows(stored, dim, seed=seed)
    asked = unit_rows(queries, dim, seed=seed + 1)
    index = VectorIndex.build(dim, np.arange(100, 100 + stored, dtype=np.int64), rows)
    scores, found = index.search(asked, k=stored)
    expected = asked.astype(np.float64) @ rows.astype(np.float64).T
    for q in range(queries):
        assert sorted(found[q].tolist()) == list(range(100, 100 + stored))
        np.testing.assert_allclose(scores[q], expected[q, found[q] - 100], atol=1e-5)
        np.testing.assert_allclose(scores[q], np.sort(expected[q])[::-1], atol=1e-5)


# -- the compressed index -------------------------------------------------------


def low_rank_rows(n: int, *, seed: int, dim: int = 256) -> F32:
    """Zero-mean unit vectors with a steeply falling spectrum, like blurred-image descriptors."""
    rng = np.random.default_rng(seed)
    spectrum = 0.85 ** np.arange(dim)
    axes = np.linalg.qr(np.random.default_rng(99).standard_normal((dim, dim)))[0]
    rows = rng.standard_normal((n, dim)) * spectrum @ axes
    rows -= rows.mean(axis=1, keepdims=True)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return np.ascontiguousarray(rows, dtype=np.float32)


@pytest.fixture(scope="module")
def compressed_case() -> tuple[VectorIndex, F32, F32]:
    """A compressed index of 6,000 vectors, and near-duplicate queries of the first 100."""
    stored = low_rank_rows(6000, seed=1)
    noisy = stored[:100] + 0.25 * low_rank_rows(100, seed=2)
    noisy -= noisy.mean(axis=1, keepdims=True)
    queries = np.ascontiguousarray(noisy / np.linalg.norm(noisy, axis=1, keepdims=True), dtype=np.float32)
    index = VectorIndex.compressed(256, stored)
    index.add(np.arange(6000, dtype=np.int64) * 16, stored)
    return index, stored, queries


def test_a_compressed_index_finds_the_near_duplicate_among_its_candidates(
    compressed_case: tuple[VectorIndex, F32, F32],
) -> None:
    index, stored, queries = compressed_case
    exact = VectorIndex.build(256, np.arange(6000, dtype=np.int64) * 16, stored)
    _, truth = exact.search(queries, 1)
    _, found = index.search(queries, 30)
    assert (truth[:, 0] == np.arange(100) * 16).all()  # the planted copy is the true nearest
    assert np.mean([t in row for t, row in zip(truth[:, 0], found, strict=True)]) >= 0.95
    assert index.is_compressed and "IVF" in index.kind
    assert index.memory_bytes() < exact.memory_bytes() / 10


def test_a_compressed_index_lists_removes_and_reloads_its_ids(
    compressed_case: tuple[VectorIndex, F32, F32], tmp_path: Path
) -> None:
    index, _stored, queries = compressed_case
    path = tmp_path / vectors.index_file(tmp_path, 3).name
    index.save(path)
    copy = VectorIndex.load(path)
    assert sorted(copy.ids().tolist()) == [i * 16 for i in range(6000)]
    mapped = VectorIndex.load(path, mmap=True)
    np.testing.assert_array_equal(mapped.search(queries, 10)[1], index.search(queries, 10)[1])
    assert copy.remove(ids_of(0, 16, 5)) == 2
    assert copy.size == 5998 and 0 not in copy.ids() and 0 not in copy.search(queries[:1], 30)[1]


def test_a_compressed_index_scans_fast_scan_codes_and_keeps_no_vectors(
    compressed_case: tuple[VectorIndex, F32, F32],
) -> None:
    index, _stored, _queries = compressed_case
    assert "PQ56x4fs" in index.kind
    with pytest.raises(RuntimeError, match="codes, not vectors"):
        index.reconstruct_many(ids_of(0, 16))
    # 28 bytes of code and an 8-byte id per vector, plus tables: a few KB over 6,000 vectors.
    assert 36 * index.size < index.memory_bytes() < 36 * index.size + 400_000


def test_a_compressed_file_of_8_bit_codes_from_an_earlier_release_still_answers(
    compressed_case: tuple[VectorIndex, F32, F32], tmp_path: Path
) -> None:
    _index, stored, queries = compressed_case
    projection = faiss.PCAMatrix(256, 56)
    coded = faiss.index_factory(56, "IVF64,PQ28", faiss.METRIC_INNER_PRODUCT)
    earlier = faiss.IndexPreTransform(projection, coded)
    earlier.train(stored)
    earlier.add_with_ids(stored, np.arange(6000, dtype=np.int64) * 16)
    faiss.write_index(earlier, str(tmp_path / "vectors.00000001.faiss"))
    loaded = VectorIndex.load(tmp_path / "vectors.00000001.faiss", mmap=True)
    assert loaded.is_compressed and "IVF64,PQ28x8 " in loaded.kind
    assert 36 * 6000 < loaded.memory_bytes() < 36 * 6000 + 400_000
    _, found = loaded.search(queries, 30)
    assert np.mean([i * 16 in row for i, row in enumerate(found)]) >= 0.9


def test_vectors_added_after_a_removal_score_as_in_an_index_that_never_held_the_removed(tmp_path: Path) -> None:
    stored, added = low_rank_rows(4000, seed=11), low_rank_rows(200, seed=12)
    ids, new_ids = np.arange(4000, dtype=np.int64) * 16, (np.arange(200, dtype=np.int64) + 5000) * 16
    gone = np.zeros(4000, bool)
    gone[::15] = True

    def trained() -> VectorIndex:
        return VectorIndex.compressed(256, stored[:2000], lists=32)

    index = trained()
    index.add(ids, stored)
    assert index.remove(ids[gone]) == gone.sum()
    index.save(tmp_path / "vectors.00000001.faiss")
    index = VectorIndex.load(tmp_path / "vectors.00000001.faiss")
    index.add(new_ids, added)
    clean = trained()
    clean.add(ids[~gone], np.ascontiguousarray(stored[~gone]))
    clean.add(new_ids, added)
    after_removal, never_removed = scores_by_id(index, added), scores_by_id(clean, added)
    for row, new_id in enumerate(new_ids.tolist()):
        assert set(after_removal[row]) == set(never_removed[row])
        assert abs(after_removal[row][new_id] - never_removed[row][new_id]) < 1e-4


def scores_by_id(index: VectorIndex, queries: F32) -> list[dict[int, float]]:
    """Each query's estimated inner product with every stored vector, by id."""
    scores, found = index.search(queries, index.size)
    return [dict(zip(ids.tolist(), values.tolist(), strict=True)) for ids, values in zip(found, scores, strict=True)]


def test_a_compressed_index_needs_enough_vectors_to_train() -> None:
    with pytest.raises(ValueError, match="at least 256 vectors"):
        VectorIndex.compressed(256, low_rank_rows(100, seed=3))


def test_an_index_outgrows_its_kind_by_size(monkeypatch: pytest.MonkeyPatch) -> None:
    flat = VectorIndex.build(256, np.arange(300, dtype=np.int64), low_rank_rows(300, seed=4))
    assert vectors.choose_index_kind(300) == "flat" and not flat.outgrown()
    monkeypatch.setattr(vectors, "COMPRESS_ABOVE", 200)
    assert vectors.choose_index_kind(300) == "compressed" and flat.outgrown()


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 300))
def test_the_code_uses_the_most_sub_quantisers_that_divide_the_projection(dimension: int) -> None:
    parts = vectors.sub_quantisers(dimension)
    most = vectors.CODE_BYTES * 8 // vectors.CODE_BITS
    assert dimension % parts == 0 and parts <= most
    assert not any(dimension % more == 0 for more in range(parts + 1, min(most, dimension) + 1))


def test_a_compressed_index_trains_on_vectors_shorter_than_its_projection() -> None:
    rows = low_rank_rows(600, seed=5)[:, :36]  # grid 6: 36 dims, fewer than the projection keeps
    rows = np.ascontiguousarray(rows / np.linalg.norm(rows, axis=1, keepdims=True), dtype=np.float32)
    index = VectorIndex.compressed(36, rows)
    index.add(np.arange(600, dtype=np.int64), rows)
    _, found = index.search(rows[:20], 10)
    assert np.mean([i in row for i, row in enumerate(found)]) >= 0.9
