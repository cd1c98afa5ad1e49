"""The vector index: a FAISS file derived from the catalog.

The index maps int64 ids to vectors and answers inner-product k-NN queries
(``database`` decides the ids: one per window vector of each content). While
small it is exact (a flat index, 1 KB per 256-d vector); above
``COMPRESS_ABOVE`` vectors it is *compressed*: each vector is projected on the
``REDUCED_DIMENSION`` main axes of the stored vectors (an uncentred PCA, so
inner products keep their meaning, turned by a fixed random rotation so the
quantiser's sub-vectors carry equal variance), filed in one of a few thousand
IVF lists and kept as a ``CODE_BYTES``-byte product-quantiser code of 4-bit
indices (36 bytes with its id, 288 per image), laid out for FAISS's *fast-scan*
search, which compares 32 codes at a time in SIMD registers. A compressed index
only has to find the right candidates: ``search`` ranks a generous shortlist by
the stored vectors' exact products, and the rescorer ranks the rest exactly.
Its file name carries the catalog generation it reflects
(``vectors.00000042.faiss``); a file for any other generation is stale. Saving
writes a temporary file in the same folder, fsyncs it and renames it into
place, so a crash leaves either the old file or the new one, never half.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import faiss
import numpy as np
import numpy.typing as npt

IdArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]

_FILE_PATTERN = re.compile(r"^vectors\.(\d+)\.faiss$")

#: Vector count above which a database's index is compressed (about 90,000 images of 11 vectors).
COMPRESS_ABOVE = 1_000_000
#: Dimensions kept by the compressed index's projection.
REDUCED_DIMENSION = 56
#: Bytes of product-quantiser code per vector in the compressed index. Measured on 100,000
#: vectors drawn with the covariance of the public corpus's descriptors (the exact top 10
#: among the compressed top 30): 16 bytes kept 0.87 of them, 32 bytes 0.99, 4-bit
#: fast-scan codes of 32 bytes 0.97; the projection to 64 dims alone 0.999. With
#: ``scripts/bench_scale.py`` at 10^5 images, 28 bytes over 56 dims (288 bytes per image with
#: the ids of 8 vectors, under the 300 wanted; 396 with the 11 of ``WINDOW_COUNT``) kept
#: candidate recall@10 at 0.986/0.985 (random / near-duplicate queries) against 0.989/0.988
#: for 32 over 64, and 0.992/0.988 once ``search.RERANK_FACTOR`` went from 2 to 3; 32 codes
#: of 7 bits over 64 dims were both worse (0.982/0.984) and slower (no 8-bit fast path). The
#: same 28 bytes as 56 codes of 4 bits (fast-scan) took the vector stage of a query from
#: 35.9 to 9.5 ms at the median and ``duplicates``' from 99 to 21 s, but kept only
#: 0.939/0.943 until a query ranked more contents exactly (``search.RERANK_FACTOR``).
CODE_BYTES = 28
#: Bits per product-quantiser index: 4 is what FAISS's fast-scan kernels take.
CODE_BITS = 4
#: IVF lists searched per query vector by the compressed index (64 of 1,024 kept 0.976 in
#: the measurement above, 128 kept 0.993). With 10^5 images of ``scripts/bench_scale.py``
#: (4,096 lists), 256 probes instead of 128 raised candidate recall@10 only from 0.966 to
#: 0.968: the codes, not the probes, limit it there.
PROBES = 128
#: Training vectors wanted per IVF list (FAISS warns below 39) ...
TRAINING_PER_LIST = 40
#: ... and at least this many in all (enough for every IVF list and code book) ...
MIN_TRAINING = 256
#: ... but no more than this many in all (training time grows with the sample) ...
MAX_TRAINING = 500_000
#: ... and at most this many lists (16,384 lists of 8 million vectors at 10^6 images of 8 vectors keep a
#: query's 128 probed lists to 1.6 % of the index; trained on 30 vectors per list).
MAX_LISTS = 16_384
#: Fewest training vectors per list accepted when the sample is capped.
MIN_PER_LIST = 30
#: Smaller samples train on one thread: OpenMP's waiting threads made a 280-vector
#: training take 3.6 s instead of 0.04 s on two busy cores.
PARALLEL_TRAINING = 50_000
#: A compressed index is rebuilt with more lists once its size calls for this many times as many.
LIST_GROWTH = 4
#: Bytes per entry of the flat index's id map (a hash map from id to row; measured
#: with ``faiss.IndexIDMap2`` as the growth of the process's memory).
_ID_MAP_ENTRY_BYTES = 48


def sub_quantisers(dimension: int) -> int:
    """Product-quantiser sub-vectors (``CODE_BITS`` each) for ``dimension``: the most dividing it in ``CODE_BYTES``."""
    most = CODE_BYTES * 8 // CODE_BITS
    return max(m for m in range(1, min(most, dimension) + 1) if dimension % m == 0)


def choose_index_kind(vector_count: int) -> str:
    """``"flat"`` (exact) up to ``COMPRESS_ABOVE`` vectors, ``"compressed"`` above."""
    return "compressed" if vector_count > COMPRESS_ABOVE else "flat"


def list_count(vector_count: int) -> int:
    """IVF lists for ``vector_count`` vectors: a power of two near 4 * sqrt(n), at most ``MAX_LISTS``."""
    return min(int(2 ** round(np.log2(max(4 * np.sqrt(max(vector_count, 1)), 64)))), MAX_LISTS)


def training_size(vector_count: int) -> int:
    """Training vectors to sample for a compressed index of ``vector_count`` vectors."""
    return min(TRAINING_PER_LIST * list_count(vector_count), MAX_TRAINING, vector_count)


class VectorIndex:
    """Inner-product index over vectors keyed by int64 ids, exact (flat) or compressed."""

    def __init__(self, index: faiss.Index) -> None:
        self._index = index

    @classmethod
    def empty(cls, dimension: int) -> VectorIndex:
        """A new index for vectors of ``dimension`` floats."""
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dimension)))

    @classmethod
    def build(cls, dimension: int, ids: IdArray, vectors: FloatArray) -> VectorIndex:
        """A new index holding ``vectors`` under ``ids``."""
        index = cls.empty(dimension)
        index.add(ids, vectors)
        return index

    @classmethod
    def compressed(cls, dimension: int, training: FloatArray, *, lists: int | None = None) -> VectorIndex:
        """A new, empty compressed index trained on a sample of the vectors it will hold.

        Args:
            dimension: Length of the vectors.
            training: (n, dimension) float32 sample, ideally ``TRAINING_PER_LIST``
                per list and at least ``MIN_TRAINING`` rows.
            lists: IVF lists, normally ``list_count`` of the vectors the index
                will hold (default: of the sample); never more than one per
                ``MIN_PER_LIST`` training vectors.

        Raises:
            ValueError: If the sample does not fit or has fewer than ``MIN_TRAINING`` rows.
        """
        check_vectors(training, dimension)
        if len(training) < MIN_TRAINING:
            raise ValueError(f"needs at least {MIN_TRAINING} vectors to train on, has {len(training)}")
        lists = min(lists or list_count(len(training)), max(1, len(training) // MIN_PER_LIST))
        reduced = min(REDUCED_DIMENSION, dimension)
        code = f"PQ{sub_quantisers(reduced)}x{CODE_BITS}fs"
        coded = faiss.index_factory(reduced, f"IVF{lists},{code}", faiss.METRIC_INNER_PRODUCT)
        index = faiss.IndexPreTransform(_main_axes(training, reduced), coded)  # keeps its parts alive
        with _threads(1 if len(training) < PARALLEL_TRAINING else faiss.omp_get_max_threads()):
            index.train(training)
        faiss.extract_index_ivf(index).nprobe = PROBES
        return cls(index)

    @property
    def is_compressed(self) -> bool:
        """True for a compressed (projected, IVF, PQ) index."""
        return isinstance(self._index, faiss.IndexPreTransform)

    @property
    def dimension(self) -> int:
        """Length of the vectors held."""
        return int(self._index.d)

    @property
    def size(self) -> int:
        """Number of vectors held."""
        return int(self._index.ntotal)

    @property
    def kind(self) -> str:
        """Short description of the FAISS index type."""
        if not self.is_compressed:
            return f"IDMap2,Flat inner product ({self.dimension} dims)"
        ivf = self._ivf()
        code = f"PQ{ivf.pq.M}x{ivf.pq.nbits}{'fs' if self._is_fast_scan() else ''}"
        return f"projection to {ivf.d} dims,IVF{ivf.nlist},{code} inner product ({self.dimension} dims)"

    def outgrown(self) -> bool:
        """True when the index no longer suits its size.

        A flat index past ``COMPRESS_ABOVE`` vectors, or a compressed one past
        that whose size calls for ``LIST_GROWTH`` times as many IVF lists as it
        has. (A compressed index that shrinks stays compressed until reindexed.)
        """
        if self.size <= COMPRESS_ABOVE:
            return False
        return not self.is_compressed or list_count(self.size) >= LIST_GROWTH * int(self._ivf().nlist)

    def memory_bytes(self) -> int:
        """Approximate bytes of memory the index holds (vectors or codes, ids, tables)."""
        if not self.is_compressed:
            return self.size * (self.dimension * 4 + 8 + _ID_MAP_ENTRY_BYTES)
        ivf = self._ivf()
        lists, reduced, code = int(ivf.nlist), int(ivf.d), int(ivf.code_size)
        # centroids, code books, projection
        tables = (lists + int(ivf.pq.ksub)) * reduced * 4 + reduced * self.dimension * 4
        padding = lists * int(ivf.bbs) // 2 * code if self._is_fast_scan() else 0  # half a last block per list
        return self.size * (code + 8) + tables + padding

    def ids(self) -> IdArray:
        """The ids of all vectors held, in storage order."""
        if not self.is_compressed:
            id_map = cast(Any, self._index).id_map  # IndexIDMap2's member, untyped in faiss's stubs
            return np.asarray(faiss.vector_to_array(id_map), np.int64)
        lists = self._ivf().invlists
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(number), lists.list_size(number)).copy()
            for number in range(lists.nlist)
            if lists.list_size(number)
        ]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    def _ivf(self) -> Any:
        """The IVF index inside a compressed index, as its own class (untyped in faiss's stubs)."""
        return faiss.downcast_index(faiss.extract_index_ivf(self._index))

    def add(self, ids: IdArray, vectors: FloatArray) -> None:
        """Add vectors under ids (ids must not be present already).

        Raises:
            ValueError: If shapes, dtypes or lengths do not fit the index.
        """
        check_vectors(vectors, self.dimension)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.ndim != 1 or len(ids) != len(vectors):
            raise ValueError(f"need one id per vector: {ids.shape} ids for {len(vectors)} vectors")
        if len(ids):
            self._index.add_with_ids(vectors, ids)

    def remove(self, ids: IdArray) -> int:
        """Remove the vectors with these ids; returns how many were present."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if not len(ids):
            return 0
        if not self._is_fast_scan():
            return int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))
        lists = self._ivf().invlists
        before = [lists.list_size(number) for number in range(lists.nlist)]
        removed = int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))
        shrunk = [number for number, size in enumerate(before) if lists.list_size(number) < size]
        _clear_freed_slots(self._ivf(), shrunk)
        return removed

    def _is_fast_scan(self) -> bool:
        """True for a compressed index of fast-scan codes (earlier releases wrote 8-bit ``IndexIVFPQ`` ones)."""
        return self.is_compressed and isinstance(self._ivf(), faiss.IndexIVFFastScan)

    def search(self, queries: FloatArray, k: int) -> tuple[FloatArray, IdArray]:
        """The ``k`` nearest vectors by inner product for each query.

        Args:
            queries: (m, dimension) float32, C-contiguous.
            k: Neighbours per query (>= 1); fewer exist when the index is small.

        Returns:
            (scores, ids), each (m, min(k, size)); ids are -1 where missing.

        Raises:
            ValueError: If the queries do not fit or ``k`` < 1.
        """
        check_vectors(queries, self.dimension)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        k = min(k, max(self.size, 1))
        scores, ids = self._index.search(queries, k)
        return np.asarray(scores, np.float32), np.asarray(ids, np.int64)

    def reconstruct(self, vector_id: int) -> FloatArray:
        """The stored vector of one id (a flat index's; RuntimeError if absent or compressed)."""
        if self.is_compressed:
            raise RuntimeError("a compressed index keeps codes, not vectors")
        return np.asarray(self._index.reconstruct(int(vector_id)), np.float32)

    def reconstruct_many(self, vector_ids: IdArray) -> FloatArray:
        """The stored vectors of several ids, one row each (a flat index's; RuntimeError if absent or compressed)."""
        if self.is_compressed:
            raise RuntimeError("a compressed index keeps codes, not vectors")
        return np.asarray(self._index.reconstruct_batch(np.ascontiguousarray(vector_ids, np.int64)), np.float32)

    def save(self, path: Path) -> None:
        """Write the index atomically: temp file, fsync, rename, fsync folder."""
        fd, temp_name = tempfile.mkstemp(prefix=".vectors-", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            faiss.write_index(self._index, temp_name)
            _fsync_file(Path(temp_name))
            os.replace(temp_name, path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        _fsync_file(path.parent)

    @classmethod
    def load(cls, path: Path, *, mmap: bool = False) -> VectorIndex:
        """Read an index written by ``save``.

        Args:
            path: The index file.
            mmap: Map the codes of an 8-bit compressed index (written by
                earlier releases) from the file instead of reading them (such an
                index must not be changed). FAISS reads fast-scan codes into
                memory whatever the flag.
        """
        index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP if mmap else 0)
        if isinstance(index, faiss.IndexPreTransform):
            faiss.extract_index_ivf(index).nprobe = PROBES
        return cls(index)


def _clear_freed_slots(ivf: Any, numbers: list[int]) -> None:
    """Zero the slots of each listed fast-scan list's last block past its codes.

    Fast-scan lists keep their codes in blocks of 32, four bits of each packed
    among the others'. ``remove_ids`` (FAISS 1.15) moves the last codes into
    the gaps but leaves the old bits in the slots it frees, and a later ``add``
    packs new codes into those slots with a bitwise OR: measured, vectors added
    after a removal were their own nearest neighbour 0.55 of the time instead
    of always. Repacking the kept codes of the last block over zeros gives the
    codes a clean index would hold.
    """
    lists: Any = faiss.downcast_InvertedLists(ivf.invlists)  # BlockInvertedLists, untyped in the stubs
    packer = ivf.get_CodePacker()
    for number in numbers:
        size = lists.list_size(number)
        kept = size % lists.n_per_block
        if not kept:
            continue
        blocks = -(-size // lists.n_per_block)
        table = faiss.rev_swig_ptr(lists.get_codes(number), blocks * lists.block_size).reshape(blocks, -1)
        last = table[-1:].copy()
        codes = [packer.unpack_1(last, slot) for slot in range(kept)]
        last[:] = 0
        for slot, code in enumerate(codes):
            packer.pack_1(code, slot, last)
        table[-1:] = last  # the list's own memory


@contextmanager
def _threads(count: int) -> Iterator[None]:
    """FAISS's OpenMP threads set to ``count`` for the block, restored after."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _main_axes(training: FloatArray, reduced: int) -> Any:
    """A projection on the ``reduced`` main axes of the sample, without centring it.

    FAISS's PCAMatrix subtracts the sample mean, which would add a term
    depending on the stored vector alone to every inner product.
    """
    sample = training.astype(np.float64)
    _, axes = np.linalg.eigh(sample.T @ sample)  # eigenvalues ascending
    main = axes[:, ::-1][:, :reduced].T
    # The main axes' variances fall steeply; a rotation spreads them evenly over the PQ sub-vectors.
    rotation, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((reduced, reduced)))
    transform = faiss.LinearTransform(training.shape[1], reduced, False)
    faiss.copy_array_to_vector(np.ascontiguousarray(rotation.T @ main, np.float32).ravel(), transform.A)
    transform.is_trained = True
    return transform


def check_vectors(vectors: FloatArray, dimension: int) -> None:
    """Refuse arrays FAISS would misread.

    Raises:
        ValueError: Unless ``vectors`` is a C-contiguous float32 (n, dimension) array.
    """
    if not isinstance(vectors, np.ndarray) or vectors.dtype != np.float32:
        raise ValueError(f"vectors must be a float32 numpy array, got {getattr(vectors, 'dtype', type(vectors))}")
    if vectors.ndim != 2 or vectors.shape[1] != dimension:
        raise ValueError(f"vectors must have shape (n, {dimension}), got {vectors.shape}")
    if not vectors.flags.c_contiguous:
        raise ValueError("vectors must be C-contiguous")


def index_file(directory: Path, generation: int) -> Path:
    """Where the index of a given catalog generation lives."""
    return directory / f"vectors.{generation:08d}.faiss"


def index_files(directory: Path) -> dict[int, Path]:
    """Every index file in a folder, by the generation in its name."""
    found = {}
    for entry in directory.iterdir():
        match = _FILE_PATTERN.match(entry.name)
        if match:
            found[int(match.group(1))] = entry
    return found


def remove_other_files(directory: Path, keep: int) -> None:
    """Delete index files and leftover temp files of other generations."""
    for generation, path in index_files(directory).items():
        if generation != keep:
            path.unlink(missing_ok=True)
    for temp in directory.glob(".vectors-*.tmp"):
        temp.unlink(missing_ok=True)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
