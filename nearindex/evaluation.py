"""Scoring found matches against ground truth: retrieval, verification, groups.

Used by ``scripts/evaluate.py`` (nearindex against its peers) and by
threshold calibration. Pure numpy; scores are "higher means more alike"
(a hash distance is passed in negated or converted to a similarity).

Model: imagededup's ``evaluation/evaluation.py`` and autofaiss's
``metrics/recalls.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Scores = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Verification:
    """How well a score separates true pairs from false ones.

    Attributes:
        auc: Area under the ROC curve (probability a true pair outscores a false one).
        tpr_at_1: Share of true pairs above the threshold that 1 % of false pairs reach.
        tpr_at_01: The same at 0.1 % of false pairs.
        positive_median: Median score of true pairs.
        negative_p999: 99.9th percentile of false-pair scores.
    """

    auc: float
    tpr_at_1: float
    tpr_at_01: float
    positive_median: float
    negative_p999: float


def rank_of_target(scores: Sequence[float] | Scores, target: int) -> int:
    """1-based rank of ``scores[target]`` among all scores, ties counted against it.

    Args:
        scores: One score per candidate, higher is better.
        target: Index of the right answer.

    Returns:
        1 + the number of other candidates scoring at least as high.
    """
    values = np.asarray(scores, np.float64)
    return int(np.sum(values >= values[target]))  # counts the target itself once


def rank_of_any(scores: Sequence[float] | Scores, targets: Iterable[int]) -> int:
    """1-based rank of the best-scoring of several right answers (ties count against it).

    Args:
        scores: One score per candidate, higher is better.
        targets: Indices of every acceptable answer (an original and its copies).

    Returns:
        1 + the number of wrong candidates scoring at least as high as the best right one.
    """
    values = np.asarray(scores, np.float64)
    right = np.zeros(len(values), bool)
    right[list(targets)] = True
    return 1 + int(np.sum(values[~right] >= values[right].max()))


def recall_at(ranks: Iterable[int], k: int) -> float:
    """Share of queries whose right answer ranked within the top ``k``."""
    values = np.asarray(list(ranks))
    return float(np.mean(values <= k)) if values.size else float("nan")


def threshold_at_fpr(negatives: Scores, fpr: float) -> float:
    """The smallest score that at most ``fpr`` of the negatives exceed.

    A pair is called a match when its score is strictly above the threshold.
    """
    ordered = np.sort(np.asarray(negatives, np.float64))[::-1]
    allowed = int(np.floor(fpr * len(ordered)))
    return float(ordered[min(allowed, len(ordered) - 1)])


def tpr_at_fpr(positives: Scores, negatives: Scores, fpr: float) -> float:
    """Share of positives strictly above the threshold set by ``fpr`` of the negatives."""
    threshold = threshold_at_fpr(negatives, fpr)
    return float(np.mean(np.asarray(positives) > threshold))


def roc_auc(positives: Scores, negatives: Scores) -> float:
    """Area under the ROC curve by the rank-sum (Mann-Whitney) formula, ties halved."""
    pos, neg = np.asarray(positives, np.float64), np.asarray(negatives, np.float64)
    if not pos.size or not neg.size:
        return float("nan")
    _, inverse, counts = np.unique(np.concatenate([pos, neg]), return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    average_ranks = (ends - counts + 1 + ends) / 2  # tied values share their mean rank
    positive_rank_sum = float(average_ranks[inverse[: len(pos)]].sum())
    return (positive_rank_sum - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def verify(positives: Scores, negatives: Scores) -> Verification:
    """All verification metrics of true-pair and false-pair scores."""
    return Verification(
        auc=roc_auc(positives, negatives),
        tpr_at_1=tpr_at_fpr(positives, negatives, 0.01),
        tpr_at_01=tpr_at_fpr(positives, negatives, 0.001),
        positive_median=float(np.median(positives)),
        negative_p999=float(np.quantile(negatives, 0.999)),
    )


def pairs_of_groups(groups: Iterable[Iterable[str]]) -> set[frozenset[str]]:
    """Every unordered pair of members inside each group."""
    pairs: set[frozenset[str]] = set()
    for group in groups:
        members = sorted(set(group))
        pairs.update(frozenset((a, b)) for i, a in enumerate(members) for b in members[i + 1 :])
    return pairs


def pairwise_f1(found: Iterable[Iterable[str]], truth: Iterable[Iterable[str]]) -> tuple[float, float, float]:
    """Pairwise precision, recall and F1 of found groups against true groups.

    Only pairs whose two items both appear in some true group are judged for
    precision, so unlabelled extras (a corpus figure that really contains a
    labelled photo) do not count as false matches.
    """
    true_pairs = pairs_of_groups(truth)
    labelled = {item for pair in true_pairs for item in pair}
    found_pairs = {pair for pair in pairs_of_groups(found) if pair <= labelled}
    hits = len(found_pairs & true_pairs)
    precision = hits / len(found_pairs) if found_pairs else 1.0
    recall = hits / len(true_pairs) if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1
