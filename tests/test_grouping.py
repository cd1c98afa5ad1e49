"""How ``duplicates`` turns scored pairs into groups: tight groups, and no image with a match left out."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nearindex.duplicates import _split_chain, _union_groups

THRESHOLD = 0.87


class TableScorer:
    """Scores pairs from a symmetric table, as ``PairScorer.score`` scores stored images."""

    def __init__(self, table: np.ndarray) -> None:
        self.table = table

    def score(self, first: int, second: int) -> float:
        return float(self.table[first, second])


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 12).flatmap(lambda n: st.lists(st.floats(0.5, 1.0), min_size=n * n, max_size=n * n)))
def test_groups_are_tight_and_every_image_with_a_match_is_in_one(values: list[float]) -> None:
    size = int(len(values) ** 0.5)
    table = np.array(values).reshape(size, size)
    table = np.maximum(table, table.T)
    edges = {(a, b): float(table[a, b]) for a, b in itertools.combinations(range(size), 2) if table[a, b] >= THRESHOLD}
    scorer = TableScorer(table)
    groups = [
        group
        for members, inside in _union_groups(dict(edges))
        for group, _scores in _split_chain(members, dict(inside), scorer, THRESHOLD)
    ]
    for group in groups:
        assert len(group) >= 2
        assert all(table[a, b] >= THRESHOLD for a, b in itertools.combinations(group, 2))
    grouped = {image for group in groups for image in group}
    assert grouped == {image for pair in edges for image in pair}


@settings(max_examples=150, deadline=None)
@given(
    st.integers(3, 12).flatmap(
        lambda n: st.tuples(
            st.lists(st.floats(0.84, 0.95), min_size=n * n, max_size=n * n),
            st.lists(st.booleans(), min_size=n * n, max_size=n * n),
        )
    )
)
def test_with_pairs_the_vector_stage_missed_groups_stay_tight_and_cover_every_match(
    drawn: tuple[list[float], list[bool]],
) -> None:
    """Pairs not brought by the vector stage are scored on demand; leftovers may then share a satellite."""
    values, missed = drawn
    size = int(len(values) ** 0.5)
    table = np.array(values).reshape(size, size)
    table = np.maximum(table, table.T)
    edges = {
        (a, b): float(table[a, b])
        for a, b in itertools.combinations(range(size), 2)
        if table[a, b] >= THRESHOLD and not missed[a * size + b]
    }
    groups = [
        group
        for members, inside in _union_groups(dict(edges))
        for group, _scores in _split_chain(members, dict(inside), TableScorer(table), THRESHOLD)
    ]
    for group in groups:
        assert len(group) >= 2
        assert all(table[a, b] >= THRESHOLD for a, b in itertools.combinations(group, 2))
    assert {image for group in groups for image in group} == {image for pair in edges for image in pair}


def test_a_satellite_takes_every_left_out_image_that_agrees_with_it() -> None:
    """0 ~ 1, 2 ~ 0 and 3 ~ 0 but neither ~ 1, and 2 ~ 3 unseen by the vector stage: one satellite {0, 2, 3}."""
    table = np.full((4, 4), 0.5)
    for a, b, score in ((0, 1, 0.99), (0, 2, 0.95), (0, 3, 0.94), (2, 3, 0.9)):
        table[a, b] = table[b, a] = score
    edges = {(0, 1): 0.99, (0, 2): 0.95, (0, 3): 0.94}
    (members, inside), *_ = _union_groups(edges)
    groups = sorted(group for group, _ in _split_chain(members, dict(inside), TableScorer(table), THRESHOLD))
    assert groups == [[0, 1], [0, 2, 3]]
