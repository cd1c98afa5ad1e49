"""Evaluation metrics against cases whose answers are known by construction."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nearindex.evaluation import (
    pairwise_f1,
    rank_of_any,
    rank_of_target,
    recall_at,
    roc_auc,
    threshold_at_fpr,
    tpr_at_fpr,
    verify,
)

scores = st.lists(st.floats(-1, 1, allow_nan=False), min_size=1, max_size=40)


def test_rank_counts_ties_against_the_target() -> None:
    assert rank_of_target([0.1, 0.9, 0.5], 1) == 1
    assert rank_of_target([0.9, 0.9, 0.5], 1) == 2
    assert rank_of_target([0.2, 0.9, 0.5], 0) == 3


def test_recall_at_k() -> None:
    assert recall_at([1, 2, 11, 1], 1) == 0.5
    assert recall_at([1, 2, 11, 1], 10) == 0.75


@given(scores, scores)
def test_auc_matches_the_pairwise_definition(positives: list[float], negatives: list[float]) -> None:
    pos, neg = np.array(positives), np.array(negatives)
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert roc_auc(pos, neg) == pytest.approx(wins / (len(pos) * len(neg)))


@given(scores, st.sampled_from([0.0, 0.01, 0.1, 0.5]))
def test_threshold_lets_at_most_that_share_of_negatives_through(negatives: list[float], fpr: float) -> None:
    threshold = threshold_at_fpr(np.array(negatives), fpr)
    assert np.mean(np.array(negatives) > threshold) <= fpr


def test_separated_scores_give_perfect_verification() -> None:
    result = verify(np.linspace(0.8, 1.0, 50), np.linspace(0.0, 0.5, 5000))
    assert (result.auc, result.tpr_at_1, result.tpr_at_01) == (1.0, 1.0, 1.0)
    assert tpr_at_fpr(np.array([0.1, 0.2]), np.linspace(0, 1, 1000), 0.001) == 0.0


def test_pairwise_f1_judges_only_labelled_items() -> None:
    truth = [{"a", "b"}, {"c", "d", "e"}]
    found = [{"a", "b", "x"}, {"c", "d", "a"}, {"y", "z"}]
    precision, recall, f1 = pairwise_f1(found, truth)
    assert precision == pytest.approx(2 / 4)  # a-b, c-d right; c-a, d-a wrong; pairs with x, y, z unjudged
    assert recall == pytest.approx(2 / 4)
    assert f1 == pytest.approx(0.5)


def test_rank_of_any_takes_the_best_right_answer() -> None:
    assert rank_of_any([0.9, 0.5, 0.95, 0.1], [1, 2]) == 1
    assert rank_of_any([0.9, 0.5, 0.8, 0.1], [1, 2]) == 2
