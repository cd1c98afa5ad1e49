"""All groups of near-duplicate images in a database.

Two stages. The vector stage (``vector_pairs``) searches the vector index
with each stored image's whole-image vector and that of its mirror image,
in batches; since every image also has vectors for sub-windows and strips in
the index, a crop's whole finds the window of its original it came from, and
the picture cut to another screen shape the strip. Pairs whose
coarse correlation is high enough are then rescored (``search.PairScorer``),
pairs at or above the threshold are joined with union-find, and a chain of
near pairs (A~B, B~C, C~D with A and D unrelated) is split by complete
linkage so that every pair inside a group matches; an image left out of
every group that way still gets a group with the member it matches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from .database import WINDOW_SLOTS, Database
from .features import descriptor_from_thumbnail
from .pair_pool import score_pairs
from .progress import NoProgress, Progress
from .search import PairScorer, relation_of, score_pair

#: Neighbours (vectors) per query vector looked at by ``find_duplicates``.
DUPLICATE_NEIGHBOURS = 32
#: Contents per batch of the vector stage.
BATCH_CONTENTS = 1024
#: Candidates below this coarse correlation are not rescored by ``find_duplicates``.
DUPLICATE_MIN_COARSE = 0.3
#: Larger connected groups are kept whole (splitting costs a rescore per member pair).
CHAIN_SPLIT_LIMIT = 200


class Searchable(Protocol):
    """What the vector stage needs of an index (``vectors.VectorIndex`` has it)."""

    def search(
        self, queries: npt.NDArray[np.float32], k: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]: ...  # pragma: no cover


@dataclass(frozen=True)
class DuplicateGroup:
    """Stored images that are near-duplicates of each other.

    Attributes:
        paths: The files, sorted.
        score: The lowest rescored score between two members (1.0 when all
            are byte-identical copies).
        edited: The members that differ locally from the group's reference
            image (the largest; among equals the oldest file) although the
            rest matches (a pasted patch, a caption: the "faked" case;
            ``Relation.edited``), sorted.
    """

    paths: tuple[str, ...]
    score: float
    edited: tuple[str, ...] = ()


def find_duplicates(
    database: Database,
    *,
    min_score: float | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> list[DuplicateGroup]:
    """All groups of near-duplicate images in the database, largest first.

    Each stored content's whole-image vector (and its mirror image's) fetch
    ``DUPLICATE_NEIGHBOURS`` window vectors each (``vector_pairs``); contents
    with a coarse correlation of at least ``DUPLICATE_MIN_COARSE`` are rescored, pairs
    scoring at least ``min_score`` are joined with union-find, and
    byte-identical copies are always joined. A chain of near pairs (A~B, B~C,
    C~D with A and D unrelated) is then split so that every pair inside a
    group scores at least ``min_score`` (complete linkage, strongest pairs
    first), for groups of up to ``CHAIN_SPLIT_LIMIT`` images; an image left
    out of every group because it matches a member but not the rest joins a
    group around that member, which is then in more than one group
    (``_split_chain``).

    Args:
        database: An open database.
        min_score: Threshold for a pair (default: the duplicate threshold).
        workers: Processes rescoring the pairs (``pair_pool.score_pairs``;
            default one per core for large jobs, 0 in this process).
        progress: Told of the vector stage (images) and the rescoring (pairs).

    Returns:
        Groups of two or more paths, largest first, then by score.
    """
    threshold = database.settings.duplicate_threshold if min_score is None else min_score
    scorer = PairScorer(database)
    edges = _scored_edges(database, scorer, threshold, workers, progress or NoProgress())
    groups = [
        clique
        for component, inside in _union_groups(edges)
        for clique in _split_chain(component, inside, scorer, threshold)
    ]
    paths = database.paths_of([cid for group, _ in groups for cid in group])
    first_seen = _oldest_mtimes(database) if groups else {}
    result = [
        _make_group(group, inside, paths, _edited_members(group, scorer, threshold, first_seen))
        for group, inside in groups
    ]
    grouped = {p for g in result for p in g.paths}
    for copies in database.exact_copy_groups():
        if not grouped.intersection(copies):
            result.append(DuplicateGroup(tuple(copies), 1.0))
    return sorted(result, key=lambda g: (-len(g.paths), -g.score, g.paths))


def vector_pairs(
    index: Searchable,
    batches: Iterable[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]],
    *,
    neighbours: int,
    min_coarse: float,
    slots: int = WINDOW_SLOTS,
) -> dict[tuple[int, int], float]:
    """Pairs of distinct contents whose vectors come close: the vector stage of ``find_duplicates``.

    Args:
        index: The vector index (ids ``content_id * slots + window``).
        batches: (content ids (n,), queries (n * q, dimension)): each content
            contributes q consecutive query rows.
        neighbours: Vectors fetched per query row.
        min_coarse: Lowest inner product kept.
        slots: Id slots per content in the index.

    Returns:
        {(smaller content id, larger): best inner product found}.
    """
    keys, scores = [], []
    for content_ids, queries in batches:
        found, ids = index.search(queries, neighbours)
        owners = np.repeat(np.asarray(content_ids, np.int64), len(queries) // max(len(content_ids), 1))[:, None]
        others = np.where(ids >= 0, ids // slots, -1)
        kept = (others >= 0) & (others != owners) & (found >= min_coarse)
        low, high = np.minimum(owners, others)[kept], np.maximum(owners, others)[kept]
        keys.append(low * (1 << 32) + high)
        scores.append(found[kept])
    if not keys:
        return {}
    key, score = np.concatenate(keys), np.concatenate(scores)
    order = np.lexsort((-score, key))  # by pair, best first
    first = order[np.r_[True, key[order][1:] != key[order][:-1]]]
    return {(int(k >> 32), int(k & 0xFFFFFFFF)): float(v) for k, v in zip(key[first], score[first], strict=True)}


def indexed_contents(database: Database) -> list[int]:
    """The contents with vectors in the index, sorted."""
    return sorted({int(i) for i in database.index.ids() // WINDOW_SLOTS})


def whole_image_queries(
    database: Database, content_ids: list[int], *, batch: int = BATCH_CONTENTS, progress: Progress | None = None
) -> Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]]:
    """Batches of (content ids, queries): each content's whole-image vector and its mirror image's.

    ``progress`` is advanced by a batch's contents when the next batch is asked for.
    """
    grid, ranked = database.settings.grid, database.settings.ranked_cells
    for start in range(0, len(content_ids), batch):
        chunk = content_ids[start : start + batch]
        contents = database.stored_contents(chunk)
        rows = []
        for cid in chunk:
            whole = np.frombuffer(contents[cid].descriptor, np.float32)[: grid * grid]
            mirrored = database.thumbnail(contents[cid])[:, ::-1].astype(np.float32)
            rows += [whole, descriptor_from_thumbnail(mirrored, grid=grid, ranked=ranked)]
        yield np.asarray(chunk, np.int64), np.ascontiguousarray(np.stack(rows), np.float32)
        if progress is not None:
            progress.advance(len(chunk))


def _scored_edges(
    database: Database, scorer: PairScorer, threshold: float, workers: int | None, progress: Progress
) -> dict[tuple[int, int], float]:
    """Rescore the pairs the vectors bring close; keep those at or above threshold."""
    content_ids = indexed_contents(database)
    progress.start(len(content_ids), "searching images")
    try:
        queries = whole_image_queries(database, content_ids, progress=progress)
        pairs = vector_pairs(database.index, queries, neighbours=DUPLICATE_NEIGHBOURS, min_coarse=DUPLICATE_MIN_COARSE)
    finally:
        progress.finish()
    progress.start(len(pairs), "rescoring pairs")
    try:
        scored = score_pairs(database, sorted(pairs), workers=workers, progress=progress, scorer=scorer)
        return {pair: score for pair, score in scored if score >= threshold}
    finally:
        progress.finish()


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
    only when every new pair scores at least ``threshold``. An image left
    out that way still matches an image of some group (a faked copy of an
    original whose group holds its re-encoded copies and annotated
    figures, which the fake may not match): it joins a *satellite* group
    around that image (``_satellites``), which is then in more than one. So
    every image with a match at or above ``threshold`` is in a group with
    one, and every group stays tight.

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
    found = [*groups.values(), *_satellites(inside, set(group_of), agree)]
    return [(group, {(a, b): edges[(a, b)] for n, a in enumerate(group) for b in group[n + 1 :]}) for group in found]


def _satellites(
    inside: list[tuple[float, tuple[int, int]]], grouped: set[int], agree: Callable[[list[int], list[int]], bool]
) -> list[list[int]]:
    """Groups for the images left out of every group, each around one grouped image it matches.

    ``inside`` are the pairs reaching the threshold, strongest first. Every
    such pair has a grouped image (two images left alone would have been
    grouped together), so each image left out has grouped matches: it joins
    the first satellite of one of them (strongest first) that it agrees
    with, or starts one with its strongest match.
    """
    matches: dict[int, list[int]] = {}  # image left out -> its grouped matches, strongest first
    for _score, pair in inside:
        for lone, anchor in (pair, pair[::-1]):
            if lone not in grouped and anchor in grouped:
                matches.setdefault(lone, []).append(anchor)
    satellites: list[list[int]] = []  # each led by its grouped image
    for lone, anchors in matches.items():
        home = next((s for anchor in anchors for s in satellites if s[0] == anchor and agree([lone], s)), None)
        if home is None:
            satellites.append([anchors[0], lone])
        else:
            home.append(lone)
    return [sorted(satellite) for satellite in satellites]


def _pair_score(a: int, b: int, edges: dict[tuple[int, int], float], scorer: PairScorer) -> float:
    pair = (min(a, b), max(a, b))
    if pair not in edges:
        edges[pair] = scorer.score(*pair)
    return edges[pair]


def _oldest_mtimes(database: Database) -> dict[int, int]:
    """Each content's oldest file modification time (ns)."""
    oldest: dict[int, int] = {}
    for state in database.file_states().values():
        oldest[state.content_id] = min(state.mtime_ns, oldest.get(state.content_id, state.mtime_ns))
    return oldest


def _edited_members(members: list[int], scorer: PairScorer, threshold: float, first_seen: dict[int, int]) -> list[int]:
    """Members whose relation to the group's reference says ``edited`` (an ECC alignment each).

    The reference is the member with the most pixels and, among equals, the
    oldest file: an edit rarely adds pixels and usually comes later. (Pixels
    inside the borders would prefer a picture to its letterboxed copy, but
    also a caption over a bar, which hides the bar, to the picture: every
    other member would then be marked edited.)
    """
    if len(members) > CHAIN_SPLIT_LIMIT:
        return []

    def rank(cid: int) -> tuple[int, int, int]:
        width, height = scorer.side(cid).size
        return width * height, -first_seen.get(cid, 0), -cid

    largest = max(members, key=rank)
    reference = scorer.side(largest)
    edited = []
    for member in members:
        if member != largest:
            side = scorer.side(member)
            if relation_of(reference, side, score_pair(reference, side), threshold).edited:
                edited.append(member)
    return edited


def _make_group(
    members: list[int], edges: dict[tuple[int, int], float], paths: dict[int, list[str]], edited: list[int]
) -> DuplicateGroup:
    """A group's paths, edited paths and lowest pairwise score (of every pair, unless too large to split)."""
    all_paths = tuple(sorted(p for cid in members for p in paths.get(cid, [])))
    edited_paths = tuple(sorted(p for cid in edited for p in paths.get(cid, [])))
    return DuplicateGroup(all_paths, float(min(edges.values())), edited_paths)
