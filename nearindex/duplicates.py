"""All groups of near-duplicate images in a database.

Each stored image's nearest neighbours in the vector index are rescored
(``search.PairScorer``), pairs at or above the threshold are joined with
union-find, and a chain of near pairs (A~B, B~C, C~D with A and D unrelated)
is split by complete linkage so that every pair inside a group matches.
"""

from __future__ import annotations

from dataclasses import dataclass

from .database import WINDOW_SLOTS, Database
from .search import PairScorer, Side, best_coarse

#: Neighbours per vector looked at by ``find_duplicates``.
DUPLICATE_NEIGHBOURS = 10
#: Candidates below this coarse correlation are not rescored by ``find_duplicates``.
DUPLICATE_MIN_COARSE = 0.3
#: Larger connected groups are kept whole (splitting costs a rescore per member pair).
CHAIN_SPLIT_LIMIT = 200


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


def find_duplicates(database: Database, *, min_score: float | None = None) -> list[DuplicateGroup]:
    """All groups of near-duplicate images in the database, largest first.

    Each stored content's window vectors (and its mirror image's) fetch
    ``DUPLICATE_NEIGHBOURS`` neighbours each; neighbours with a coarse
    correlation of at least ``DUPLICATE_MIN_COARSE`` are rescored, pairs
    scoring at least ``min_score`` are joined with union-find, and
    byte-identical copies are always joined. A chain of near pairs (A~B, B~C,
    C~D with A and D unrelated) is then split so that every pair inside a
    group scores at least ``min_score`` (complete linkage, strongest pairs
    first), for groups of up to ``CHAIN_SPLIT_LIMIT`` images.

    Args:
        database: An open database.
        min_score: Threshold for a pair (default: the duplicate threshold).

    Returns:
        Groups of two or more paths, largest first, then by score.
    """
    threshold = database.settings.duplicate_threshold if min_score is None else min_score
    scorer = PairScorer(database)
    edges = _scored_edges(database, scorer, threshold)
    groups = [
        clique
        for component, inside in _union_groups(edges)
        for clique in _split_chain(component, inside, scorer, threshold)
    ]
    paths = database.paths_of([cid for group, _ in groups for cid in group])
    result = [_make_group(group, inside, paths) for group, inside in groups]
    grouped = {p for g in result for p in g.paths}
    for copies in database.exact_copy_groups():
        if not grouped.intersection(copies):
            result.append(DuplicateGroup(tuple(copies), 1.0))
    return sorted(result, key=lambda g: (-len(g.paths), -g.score, g.paths))


def _scored_edges(database: Database, scorer: PairScorer, threshold: float) -> dict[tuple[int, int], float]:
    """Rescore each content's near neighbours; keep pairs at or above threshold."""
    content_ids = sorted({int(i) for i in database.index.ids() // WINDOW_SLOTS})
    scored: dict[tuple[int, int], float] = {}
    for start in range(0, len(content_ids), 256):
        chunk = content_ids[start : start + 256]
        scorer.load(chunk)
        for first in chunk:
            for second in _near_contents(database, scorer.side(first)):
                pair = (min(first, second), max(first, second))
                if second != first and pair not in scored:
                    scored[pair] = scorer.score(*pair)
    return {pair: score for pair, score in scored.items() if score >= threshold}


def _near_contents(database: Database, side: Side) -> set[int]:
    best, _ = best_coarse(database, side, DUPLICATE_NEIGHBOURS)
    return {content_id for content_id, coarse in best.items() if coarse >= DUPLICATE_MIN_COARSE}


def _union_groups(edges: dict[tuple[int, int], float]) -> list[tuple[list[int], dict[tuple[int, int], float]]]:
    """Connected components of the pair graph, each with its own edges (union-find, path halving)."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for first, second in edges:
        parent[find(first)] = find(second)
    members: dict[int, list[int]] = {}
    for node in parent:
        members.setdefault(find(node), []).append(node)
    inside: dict[int, dict[tuple[int, int], float]] = {root: {} for root in members}
    for pair, score in edges.items():
        inside[find(pair[0])][pair] = score
    return [(members[root], inside[root]) for root in members]


def _split_chain(
    members: list[int], edges: dict[tuple[int, int], float], scorer: PairScorer, threshold: float
) -> list[tuple[list[int], dict[tuple[int, int], float]]]:
    """Split a connected group into groups whose every pair reaches ``threshold``.

    Pairs are taken strongest first; an image joins (or two groups merge)
    only when every new pair scores at least ``threshold``. Members left
    alone are dropped (they have no duplicate that agrees with the rest).

    Returns:
        The groups (sorted content ids), each with the scores of all its pairs.
    """
    if len(members) > CHAIN_SPLIT_LIMIT:
        return [(members, edges)]
    inside = sorted(((s, p) for p, s in edges.items()), reverse=True)
    group_of: dict[int, int] = {}
    groups: dict[int, list[int]] = {}

    def agree(first: list[int], second: list[int]) -> bool:
        return all(_pair_score(a, b, edges, scorer) >= threshold for a in first for b in second)

    for _score, (a, b) in inside:
        ga, gb = group_of.get(a, a), group_of.get(b, b)  # an ungrouped image is its own key
        if ga == gb:
            continue
        left, right = groups.get(ga, [a]), groups.get(gb, [b])
        if not agree(left, right):
            continue
        groups.pop(gb, None)
        groups[ga] = sorted(left + right)
        group_of.update(dict.fromkeys(groups[ga], ga))
    return [
        (group, {(a, b): edges[(a, b)] for n, a in enumerate(group) for b in group[n + 1 :]})
        for group in groups.values()
    ]


def _pair_score(a: int, b: int, edges: dict[tuple[int, int], float], scorer: PairScorer) -> float:
    pair = (min(a, b), max(a, b))
    if pair not in edges:
        edges[pair] = scorer.score(*pair)
    return edges[pair]


def _make_group(members: list[int], edges: dict[tuple[int, int], float], paths: dict[int, list[str]]) -> DuplicateGroup:
    """A group's paths and its lowest pairwise score (of every pair, unless the group was too large to split)."""
    all_paths = tuple(sorted(p for cid in members for p in paths.get(cid, [])))
    return DuplicateGroup(all_paths, float(min(edges.values())))
