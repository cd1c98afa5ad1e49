"""Finding look-alikes: query, compare and all duplicate groups.

Every answer has two numbers: ``coarse``, the inner product of descriptors
(what the vector index ranks by, the Pearson correlation of the 32x32 grids),
and ``score``, the rescored correlation of the thumbnails allowing shift, crop
and scale, which is what results are ranked and judged by.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .database import Database
from .features import Description
from .intake import FileDescription, describe_file
from .rescore import Prepared, prepare, rescore
from .settings import DEFAULT_SETTINGS, Settings

#: Neighbours per image looked at by ``find_duplicates``.
DUPLICATE_NEIGHBOURS = 10
#: Neighbours below this coarse correlation are not rescored by ``find_duplicates``.
DUPLICATE_MIN_COARSE = 0.3
#: Groups up to this many contents get every pair rescored for their score.
FULL_PAIRS_LIMIT = 16


@dataclass(frozen=True)
class Match:
    """One stored image similar to a query.

    Attributes:
        path: The stored file.
        score: Rescored correlation, 0..1 (1.0 for a byte-identical copy).
        coarse: Descriptor inner product, -1..1.
    """

    path: str
    score: float
    coarse: float


@dataclass(frozen=True)
class Comparison:
    """How alike two images are.

    Attributes:
        a: First file.
        b: Second file.
        score: Rescored correlation, 0..1.
        coarse: Descriptor inner product, -1..1.
        duplicate: ``score`` reaches the duplicate threshold.
    """

    a: str
    b: str
    score: float
    coarse: float
    duplicate: bool


@dataclass(frozen=True)
class DuplicateGroup:
    """Stored images that are near-duplicates of each other.

    Attributes:
        paths: The files, sorted.
        score: The lowest rescored score between two members (1.0 when all
            are byte-identical copies).
    """

    paths: tuple[str, ...]
    score: float


def describe_query(path: str | os.PathLike[str], settings: Settings = DEFAULT_SETTINGS) -> FileDescription:
    """Describe an image file for a query (it need not be stored).

    Raises:
        ImageError: If the file cannot be read or is not an image.
    """
    return describe_file(os.fspath(path), settings=settings)


def inner_product(first: npt.NDArray[np.float32], second: npt.NDArray[np.float32]) -> float:
    """Inner product of two descriptors (their Pearson correlation), without BLAS."""
    return float((first.astype(np.float64) * second).sum())


def compare_descriptions(first: Description, second: Description) -> tuple[float, float]:
    """(score, coarse) of two described images."""
    coarse = inner_product(first.descriptor, second.descriptor)
    return rescore(prepare(first.thumbnail), prepare(second.thumbnail), coarse=coarse), coarse


def compare(
    a: str | os.PathLike[str], b: str | os.PathLike[str], *, settings: Settings = DEFAULT_SETTINGS
) -> Comparison:
    """Compare two image files directly (no database needed).

    Args:
        a: First image file.
        b: Second image file.
        settings: Descriptor parameters and the duplicate threshold.

    Returns:
        Their Comparison; byte-identical files score 1.0.

    Raises:
        ImageError: If either file cannot be read or is not an image.
    """
    first, second = describe_query(a, settings), describe_query(b, settings)
    assert first.description is not None and second.description is not None
    score, coarse = compare_descriptions(first.description, second.description)
    if first.content_hash == second.content_hash:
        score, coarse = 1.0, 1.0
    return Comparison(os.fspath(a), os.fspath(b), score, coarse, score >= settings.duplicate_threshold)


def query(database: Database, image: str | os.PathLike[str], *, k: int = 10, min_score: float = 0.0) -> list[Match]:
    """Stored images most like ``image``, best first.

    Takes the vector index's top candidates (at least ``settings.candidates``,
    and three per requested result), rescores each against the query's
    thumbnail, and ranks by that score. Byte-identical stored copies score 1.0.

    Args:
        database: An open database.
        image: An image file (stored or not).
        k: Most results to return (>= 1).
        min_score: Drop results scoring below this.

    Returns:
        Up to ``k`` Matches, sorted by score then coarse, descending.

    Raises:
        ImageError: If the query file cannot be read or is not an image.
        ValueError: If ``k`` < 1.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    described = describe_query(image, database.settings)
    assert described.description is not None
    scored = _rescore_candidates(database, described.description, max(database.settings.candidates, 3 * k))
    for path in database.paths_with_hash(described.content_hash):
        scored[path] = Match(path, 1.0, 1.0)
    ranked = sorted(scored.values(), key=lambda m: (-m.score, -m.coarse, m.path))
    return [m for m in ranked if m.score >= min_score][:k]


def _rescore_candidates(database: Database, description: Description, count: int) -> dict[str, Match]:
    if description.flat:
        return {}
    coarse, ids = database.search(description.descriptor[None, :], count)
    pairs = [(int(i), float(c)) for i, c in zip(ids[0], coarse[0], strict=True) if i >= 0]
    stored = database.stored_contents([i for i, _ in pairs])
    paths = database.paths_of([i for i, _ in pairs])
    matches = {}
    prepared = prepare(description.thumbnail)
    for content_id, coarse_score in pairs:
        score = rescore(prepared, prepare(database.thumbnail(stored[content_id])), coarse=coarse_score)
        for path in paths.get(content_id, []):
            matches[path] = Match(path, score, coarse_score)
    return matches


def find_duplicates(database: Database, *, min_score: float | None = None) -> list[DuplicateGroup]:
    """All groups of near-duplicate images in the database, largest first.

    Each stored vector's nearest neighbours (``DUPLICATE_NEIGHBOURS``, coarse
    at least ``DUPLICATE_MIN_COARSE``) are rescored; pairs scoring at least
    ``min_score`` are joined with union-find; byte-identical copies are always
    joined.

    Args:
        database: An open database.
        min_score: Threshold for a pair (default: the duplicate threshold).

    Returns:
        Groups of two or more paths, largest first, then by score.
    """
    threshold = database.settings.duplicate_threshold if min_score is None else min_score
    scorer = _PairScorer(database)
    edges = _scored_edges(database, scorer, threshold)
    groups = _union_groups(edges)
    paths = database.paths_of([cid for group in groups for cid in group])
    result = [_make_group(sorted(group), edges, scorer, paths) for group in groups]
    grouped = {p for g in result for p in g.paths}
    for copies in database.exact_copy_groups():
        if not grouped.intersection(copies):
            result.append(DuplicateGroup(tuple(copies), 1.0))
    return sorted(result, key=lambda g: (-len(g.paths), -g.score, g.paths))


class _PairScorer:
    """Rescores pairs of stored contents, preparing each thumbnail once."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._prepared: dict[int, Prepared] = {}
        self._descriptors: dict[int, npt.NDArray[np.float32]] = {}

    def load(self, content_ids: list[int]) -> None:
        """Fetch and prepare the contents not seen yet."""
        missing = [cid for cid in content_ids if cid not in self._prepared]
        for cid, content in self._database.stored_contents(missing).items():
            self._prepared[cid] = prepare(self._database.thumbnail(content))
            self._descriptors[cid] = np.frombuffer(content.descriptor, np.float32)

    def descriptors(self, content_ids: list[int]) -> npt.NDArray[np.float32]:
        """The descriptors of loaded contents as one C-contiguous matrix."""
        return np.ascontiguousarray(np.stack([self._descriptors[cid] for cid in content_ids]))

    def score(self, first: int, second: int) -> float:
        """Rescored score of two contents (loads them if needed)."""
        self.load([first, second])
        coarse = inner_product(self._descriptors[first], self._descriptors[second])
        return rescore(self._prepared[first], self._prepared[second], coarse=coarse)


def _scored_edges(database: Database, scorer: _PairScorer, threshold: float) -> dict[tuple[int, int], float]:
    """Rescore each vector's near neighbours; keep pairs at or above threshold."""
    ids = [int(i) for i in database.index.ids()]
    scored: dict[tuple[int, int], float] = {}
    for start in range(0, len(ids), 1024):
        chunk = ids[start : start + 1024]
        scorer.load(chunk)
        coarse, neighbours = database.search(scorer.descriptors(chunk), DUPLICATE_NEIGHBOURS + 1)
        for row, first in enumerate(chunk):
            for value, second in zip(coarse[row], neighbours[row], strict=True):
                pair = (min(first, int(second)), max(first, int(second)))
                if second >= 0 and second != first and value >= DUPLICATE_MIN_COARSE and pair not in scored:
                    scored[pair] = scorer.score(*pair)
    return {pair: score for pair, score in scored.items() if score >= threshold}


def _union_groups(edges: dict[tuple[int, int], float]) -> list[list[int]]:
    """Connected components of the pair graph (union-find with path halving)."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for first, second in edges:
        parent[find(first)] = find(second)
    groups: dict[int, list[int]] = {}
    for node in parent:
        groups.setdefault(find(node), []).append(node)
    return list(groups.values())


def _make_group(
    members: list[int], edges: dict[tuple[int, int], float], scorer: _PairScorer, paths: dict[int, list[str]]
) -> DuplicateGroup:
    """A group's paths and its lowest pairwise score (every pair when small)."""
    if len(members) <= FULL_PAIRS_LIMIT:
        pairs = [(a, b) for n, a in enumerate(members) for b in members[n + 1 :]]
        scores = [edges[pair] if pair in edges else scorer.score(*pair) for pair in pairs]
    else:
        member_set = set(members)
        scores = [score for (a, b), score in edges.items() if a in member_set and b in member_set]
    all_paths = tuple(sorted(p for cid in members for p in paths.get(cid, [])))
    return DuplicateGroup(all_paths, float(min(scores)))
