"""Calibrating the duplicate threshold on the user's own collection.

A threshold measured on someone else's photos says little about a
collection of scanned documents or of sunsets. So a sample of the stored
images is edited in memory the ways copies get made (crops, resizing,
re-encoding, captions, borders, flips, small rotations, a pasted patch),
each edit is scored against its original (true pairs), random pairs of
different stored images are scored (false pairs), and the threshold is the
score that lets through at most the chosen share of false pairs. Random
pairs of a real collection may include real near-duplicates (bursts, series),
so pairs of near neighbours in the vector index are not used as false pairs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import numpy as np

from . import synthetic
from .database import Database
from .errors import DatabaseError, Failed, ImageError
from .evaluation import threshold_at_fpr
from .filetree import read_bytes
from .intake import describe_image, load_for_editing
from .pair_pool import score_pairs
from .progress import NoProgress, Progress
from .search import PairScorer, Side, candidate_contents, score_pair

#: Edits applied to each sampled image (``paste`` takes its patch from another sampled image).
CALIBRATION_EDITS = (
    "crop90", "crop75", "crop60", "half", "quarter", "jpeg30", "caption", "watermark", "rotate3", "rotate8",
    "flip", "gamma", "contrast", "border", "screenshot", "paste", "crop75+caption+jpeg50",
)  # fmt: skip
#: Sampled images are edited at this long side at most (edits of huge images cost time, not accuracy).
EDIT_SIDE = 1024
#: A random pair is not used as a false pair when one image is among the other's
#: this many nearest neighbours in the vector index (by window vectors): a collection holds real
#: near-duplicates (series, bursts, re-saved copies), and at a false-match rate
#: of 0.1 % a handful of them would set the threshold.
EXCLUDED_NEIGHBOURS = 1
#: False pairs are drawn among at most this many stored images (each one scored is held in memory).
NEGATIVE_POOL = 2000
#: Random draws allowed per false pair wanted, before settling for fewer (a tiny collection).
MAX_DRAWS_PER_PAIR = 20


@dataclass(frozen=True)
class Calibration:
    """A threshold measured on a collection.

    Attributes:
        threshold: Score at or above which a pair is called a duplicate.
        target_fpr: The share of false pairs asked for (0..1).
        measured_fpr: The share of the sampled false pairs at or above ``threshold``.
        tpr: The share of generated edits at or above ``threshold``.
        per_edit: That share for each kind of edit.
        images: Stored images sampled and edited.
        positives: True pairs scored (edits of the sampled images).
        negatives: False pairs scored (random pairs of different stored images).
        skipped: Sampled files that could not be read any more.
        measured_at: When, ISO 8601 UTC.
    """

    threshold: float
    target_fpr: float
    measured_fpr: float
    tpr: float
    per_edit: dict[str, float]
    images: int
    positives: int
    negatives: int
    skipped: tuple[Failed, ...]
    measured_at: str

    def as_record(self) -> dict[str, object]:
        """The calibration as a JSON-ready dict (skipped files as ``{"path", "reason"}``)."""
        record = asdict(self)
        record["skipped"] = [{"path": f.path, "reason": f.reason} for f in self.skipped]
        return record


def calibrate(
    database: Database,
    *,
    sample: int = 100,
    negatives: int = 10_000,
    fpr: float = 0.001,
    seed: int = 0,
    workers: int | None = None,
    progress: Progress | None = None,
) -> Calibration:
    """Measure the duplicate threshold that keeps false matches at ``fpr`` on this collection.

    Args:
        database: An open database with at least two stored, non-flat images.
        sample: Stored images to edit (the true pairs are ``sample`` x the edits).
        negatives: Random pairs of different stored images to score.
        fpr: Share of false pairs allowed at or above the threshold (0 < fpr < 1).
        seed: Seed of the sampling, so a calibration can be repeated.
        workers: Processes rescoring the random pairs (``pair_pool.score_pairs``).
        progress: Told about each pair scored.

    Returns:
        The Calibration (not stored; see ``store_calibration``).

    Raises:
        ValueError: On arguments out of range.
        DatabaseError: With fewer than two usable stored images, or none of
            the sampled files readable.
    """
    _check_arguments(sample, negatives, fpr)
    rng = np.random.default_rng(seed)
    content_ids = database.non_flat_content_ids()
    if len(content_ids) < 2:
        raise DatabaseError(database.directory, "calibration needs at least two stored images that are not flat")
    scorer, progress = PairScorer(database), progress or NoProgress()
    chosen = [int(i) for i in rng.choice(content_ids, size=min(sample, len(content_ids)), replace=False)]
    progress.start(len(chosen) * len(CALIBRATION_EDITS) + negatives, "calibrating")
    positives, skipped = _score_edits(database, scorer, chosen, progress)
    drawn = _draw_random_pairs(database, scorer, content_ids, negatives, rng)
    scored = score_pairs(database, sorted(drawn), workers=workers, progress=progress, scorer=scorer)
    false_scores = [score for _, score in scored]
    progress.finish()
    if not positives:
        raise DatabaseError(database.directory, "none of the sampled stored images could be read to make edits")
    return _summarise(positives, false_scores, fpr, len(chosen) - len(skipped), tuple(skipped))


def store_calibration(database: Database, calibration: Calibration) -> None:
    """Make the calibrated threshold this database's default, recording what it came from."""
    database.store_duplicate_threshold(calibration.threshold, json.dumps(calibration.as_record()))


def _check_arguments(sample: int, negatives: int, fpr: float) -> None:
    if sample < 1 or negatives < 1:
        raise ValueError(f"sample and negatives must be >= 1, got {sample} and {negatives}")
    if not 0 < fpr < 1:
        raise ValueError(f"fpr must be between 0 and 1, got {fpr}")


def _score_edits(
    database: Database, scorer: PairScorer, chosen: list[int], progress: Progress
) -> tuple[dict[str, list[float]], list[Failed]]:
    """Scores of every edit of every readable sampled image against its stored original, by edit."""
    images, skipped = _load_originals(database, chosen)
    scores: dict[str, list[float]] = {}
    readable = list(images)
    for position, content_id in enumerate(readable):
        donor = images[readable[(position + 1) % len(readable)]]
        for name in CALIBRATION_EDITS:
            edited = synthetic.apply_edit(images[content_id], name, donor=donor, seed=position)
            scores.setdefault(name, []).append(_score_image(edited, scorer.side(content_id), database))
            progress.advance(1)
    progress.advance(len(skipped) * len(CALIBRATION_EDITS))
    return scores, skipped


def _load_originals(database: Database, chosen: list[int]) -> tuple[dict[int, np.ndarray], list[Failed]]:
    """Each sampled content's image, from the first of its files that reads; the others as failures."""
    images, skipped = {}, []
    for content_id, paths in database.paths_of(chosen).items():
        failure = None
        for path in paths:
            try:
                data = read_bytes(path)  # a local file or a store's object
                images[content_id] = load_for_editing(path, data=data, long_side=EDIT_SIDE, settings=database.settings)
                break
            except ImageError as error:
                failure = Failed(error.subject, error.reason)
        if content_id not in images and failure is not None:
            skipped.append(failure)
    return images, skipped


def _score_image(edited: np.ndarray, original: Side, database: Database) -> float:
    """Score of an edited image (BGR uint8, in memory, not encoded to a file) against a stored original."""
    description = describe_image(edited, settings=database.settings)
    side = Side.of_description(description, database.settings, (edited.shape[1], edited.shape[0]))
    return score_pair(side, original).score


def _draw_random_pairs(
    database: Database, scorer: PairScorer, content_ids: list[int], count: int, rng: np.random.Generator
) -> list[tuple[int, int]]:
    """Up to ``count`` random pairs of different contents that are not each other's nearest neighbours.

    Raises:
        DatabaseError: If no such pair turns up (every image is another's nearest neighbour).
    """
    nearest: dict[int, set[int]] = {}

    def neighbours(content_id: int) -> set[int]:
        if content_id not in nearest:
            found = candidate_contents(
                database, scorer.side(content_id), EXCLUDED_NEIGHBOURS + 1, window_leaders=0, edit_leaders=0
            )
            nearest[content_id] = set(found) - {content_id}
        return nearest[content_id]

    # Pairs come from a bounded subset, so that memory stays bounded however large the collection.
    pool = rng.choice(content_ids, size=min(len(content_ids), NEGATIVE_POOL), replace=False)
    pairs: list[tuple[int, int]] = []
    for _attempt in range(count * MAX_DRAWS_PER_PAIR):
        first, second = (int(i) for i in rng.choice(pool, size=2, replace=False))
        if second not in neighbours(first) and first not in neighbours(second):
            pairs.append((first, second))
            if len(pairs) == count:
                return pairs
    if not pairs:
        raise DatabaseError(database.directory, "too few stored images to draw pairs that are not nearest neighbours")
    return pairs


def _summarise(
    positives: dict[str, list[float]], negatives: list[float], fpr: float, images: int, skipped: tuple[Failed, ...]
) -> Calibration:
    """The threshold for ``fpr`` and the rates it gives."""
    false_scores = np.asarray(negatives)
    # threshold_at_fpr counts a pair as a match strictly above it; the product uses >=.
    threshold = float(np.nextafter(threshold_at_fpr(false_scores, fpr), np.inf))
    true_scores = np.concatenate([np.asarray(v) for v in positives.values()])
    return Calibration(
        threshold=threshold,
        target_fpr=fpr,
        measured_fpr=float(np.mean(false_scores >= threshold)),
        tpr=float(np.mean(true_scores >= threshold)),
        per_edit={name: float(np.mean(np.asarray(v) >= threshold)) for name, v in positives.items()},
        images=images,
        positives=len(true_scores),
        negatives=len(false_scores),
        skipped=skipped,
        measured_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
