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
