"""The vector index: a FAISS file derived from the catalog.

The index maps int64 ids to vectors and answers inner-product k-NN queries
(``database`` decides the ids: one per window vector of each content). Its
file name carries the catalog generation it reflects
(``vectors.00000042.faiss``); a file for any other generation is stale. Saving
writes a temporary file in the same folder, fsyncs it and renames it into
place, so a crash leaves either the old file or the new one, never half.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any, cast

import faiss
import numpy as np
import numpy.typing as npt

IdArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]

_FILE_PATTERN = re.compile(r"^vectors\.(\d+)\.faiss$")


class VectorIndex:
    """Exact inner-product index over vectors, keyed by int64 ids."""

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
        return f"IDMap2,Flat inner product ({self.dimension} dims)"

    def ids(self) -> IdArray:
        """The ids of all vectors held, in storage order."""
        id_map = cast(Any, self._index).id_map  # IndexIDMap2's member, untyped in faiss's stubs
        return np.asarray(faiss.vector_to_array(id_map), np.int64)

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
        return int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))

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
        """The stored vector of one id (KeyError-like RuntimeError if absent)."""
        return np.asarray(self._index.reconstruct(int(vector_id)), np.float32)

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
    def load(cls, path: Path) -> VectorIndex:
        """Read an index written by ``save``."""
        return cls(faiss.read_index(str(path)))


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
