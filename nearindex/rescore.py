"""Rescoring: align one blurred thumbnail on the other, then correlate robustly.

The vector index compares images cell by cell, so a crop, a shift or a
caption costs it correlation. The rescorer recovers it. The central part of
one thumbnail (a *template*) is placed on the other at a range of scales, in
both directions (``placement``), on band-pass thumbnails evened out
(``planes``): plain blurred ones let smooth, unrelated images correlate
highly, and one strong edge could pull the template onto a lookalike. At the
best placement the template and the window are cut into a 4x4 grid of blocks
and the score is the median (``BLOCK_QUANTILE``) of the block correlations,
band-pass and plain averaged, so a caption, a watermark or a pasted patch
that spoils a few blocks does not sink a true copy. A patch across the
middle spoils more than half of them, so the planes' correlation where the
two images overlap (the whole source, not just its central part), outside
the one region where they disagree most (``exclusion``), stands in when it
is higher, less ``EXCLUSION_PENALTY``. The "same framing"
placement is scored as well, since a large pasted patch can pull the
template's best match elsewhere. The final score mixes the aligned score
with the vectors' coarse correlation, lightly: a crop's coarse correlation is
low whatever the rescorer finds. A smooth image, with no detail to place or
correlate in blocks, is scored as a whole instead (``smooth``). Two images
with little detail in colours no edit moves apart score 0 (``colour``).

Measured on the public corpus (``scripts/evaluate.py``: 1,919 generated edits
of 101 photos against 20,000 unrelated pairs), the share of true pairs above
the score of the top 0.1 % of unrelated pairs: 0.895 with the 75th
percentile of blocks and coarse weight 0.2; 0.923 with the median, coarse
weight 0.35 and rotation retries gated at 0.45; 0.960 with coarse weight
0.15, the gate at 0.30 and the same-framing placement (recall@1 0.955 ->
0.968; crop60 0.63 -> 0.83, rotate8 0.90 -> 0.99; about 1.8 times the
rescoring time). Scoring the whole window at 128 px instead of blocks at
64 px did worse on retrieval (recall@1 0.904 vs 0.943); a 0.625 or 0.75
block quantile let more unrelated pairs through (0.882, 0.798).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .colour import colours_differ, tie_break
from .exclusion import correlation_outside_region
from .placement import Frame, Placement, best_placement, same_framing
from .planes import Image, Plane, Prepared
from .smooth import is_smooth, smooth_score

#: The aligned template and window are compared in BLOCKS x BLOCKS blocks ...
BLOCKS = 4
#: ... and this quantile of the block correlations is the aligned score.
BLOCK_QUANTILE = 0.5
#: Subtracted from the correlation outside the most disagreeing region (``exclusion``)
#: before it may replace the blocks' median: leaving a region out lifts unrelated pairs a
#: little too. On the public corpus, 0.05 let more of them through, 0.15 found fewer pastes.
#: (A smooth image loses it from its stretched score: ``smooth.smooth_score``.)
EXCLUSION_PENALTY = 0.1
#: Weight of the vectors' coarse correlation in the final score.
COARSE_WEIGHT = 0.15
#: Template rotations (degrees) tried when the unrotated alignment is ambiguous ...
ROTATIONS = (-7.0, 7.0)
#: ... that is, when its score falls inside this range (a clear match or a clear
#: miss is not worth the extra matches). On the public corpus a gate of (0.45, 0.92)
#: found 0.90 instead of 0.39 of 8-degree rotations at 0.1 % false matches, for
#: 18 % more time; (0.30, 0.92) found 0.99 (with the lighter coarse weight).
ROTATION_GATE = (0.30, 0.92)
#: A smooth image is tried at these turns besides none (``smooth.whole_correlation``): half
#: of ``ROTATIONS`` too, since its whole correlation, stretched from ``smooth.NEAR_IDENTICAL``,
#: forgives a turn less than blocks do. On ``scripts/smooth_collection.py``'s collection,
#: 3-degree turns found first 0.81 -> 0.94 (true pairs at 0.1 % false matches 0.77 -> 0.99),
#: while the score 0.1 % of unrelated pairs reach rose from 0.958 to 0.964.
SMOOTH_TURNS = (-7.0, -3.5, 3.5, 7.0)


@dataclass(frozen=True)
class Rescored:
    """A rescored pair.

    Attributes:
        score: 0..1, see ``rescore``.
        frame: Where the first image lies in the second at the best
            placement, or None when no placement was usable.
    """

    score: float
    frame: Frame | None


def rescore(first: Prepared, second: Prepared, *, coarse: float = 0.0, framed_coarse: float | None = None) -> Rescored:
    """Score how well two prepared thumbnails match, allowing shift, crop and scale.

    Args:
        first: One image, from ``prepare``.
        second: The other image.
        coarse: Correlation of the two images' vectors (-1..1).
        framed_coarse: That of their windows alone, without strips (``coarse``
            when None): what a smooth image's score starts from, since it is
            compared in the same framing, and a strip, another shape squashed
            onto the grid, correlates with any ramp.

    Returns:
        The score, in 0..1: ``(1 - COARSE_WEIGHT) * aligned + COARSE_WEIGHT *
        max(coarse, 0)``, where ``aligned`` is the better of the two
        directions' robust block correlation at the best placement (0 when
        either image is flat or their colours differ, ``colour.colours_differ``),
        less what hues and tones that differ short of that cost two images that
        both keep their colours (``colour.tie_break``, at most 0.02); and that
        placement. When either image is smooth, ``smooth.smooth_score``
        instead, with the same framing.
    """
    if not (first.usable and second.usable) or colours_differ(first.colour, second.colour):
        return Rescored(0.0, None)
    colour_cost = tie_break(first.colour, second.colour)
    if is_smooth(first) or is_smooth(second):
        # Without detail, a placement and its blocks are chance: only the whole counts.
        framed = coarse if framed_coarse is None else framed_coarse
        score, where = smooth_score(first, second, coarse=framed, turns=SMOOTH_TURNS, penalty=EXCLUSION_PENALTY)
        return Rescored(float(np.clip(score - colour_cost, 0.0, 1.0)), where)
    forward, (backward, frame) = align_allowing_rotation(first, second), align_allowing_rotation(second, first)
    if forward[0] >= backward:
        aligned, frame = forward
    else:
        aligned, frame = backward, None if frame is None else frame.inverse()
    score = (1 - COARSE_WEIGHT) * aligned + COARSE_WEIGHT * max(coarse, 0.0) - colour_cost
    return Rescored(float(np.clip(score, 0.0, 1.0)), frame)


@dataclass(frozen=True)
class Alignment:
    """The best placement of one image's central part in another.

    Attributes:
        score: Mean of the band-pass and plain ``BLOCK_QUANTILE`` block correlations there (-1..1).
        frame: The source's Frame in the target (None when no placement was usable).
        placement: That placement, in target pixels (None when none was usable).
    """

    score: float
    frame: Frame | None
    placement: Placement | None

    @property
    def scale(self) -> float | None:
        """The placement's template scale (None when none was usable)."""
        return None if self.placement is None else self.placement.scale


def align_into(source: Prepared, target: Prepared, *, near: float | None = None) -> Alignment:
    """Robust correlation of ``source``'s central part at its best placement in ``target``.

    Besides the placement ``matchTemplate`` prefers, the same framing
    (centred, same relative size) is scored too and the better kept: a
    pasted patch or a caption can pull the template's best match away from
    where a resized copy really lies.

    Returns:
        The better placement's Alignment; score 0 and no frame when no
        placement is usable.
    """
    best = Alignment(0.0, None, None)
    for placement in {best_placement(source, target, near=near), same_framing(source, target)} - {None}:
        assert placement is not None
        score = block_score(source, target, placement)
        if best.frame is None or score > best.score:
            best = Alignment(score, placement.frame(source.plain.shape, target.plain.shape), placement)
    return best


def block_score(source: Prepared, target: Prepared, placement: Placement) -> float:
    """Mean of the band-pass and plain ``BLOCK_QUANTILE`` block correlations at a placement (-1..1)."""
    p, scores = placement, []
    compared: tuple[Plane, ...] = ("bandpass", "plain")
    for plane in compared:
        resized, _ = source.central_resized(plane, size=(p.width, p.height), scale=p.scale)
        window = p.window(getattr(target, plane))
        scores.append(_quantile(block_correlations(resized, window), BLOCK_QUANTILE))
    return (scores[0] + scores[1]) / 2


def align_allowing_rotation(source: Prepared, target: Prepared) -> tuple[float, Frame | None]:
    """``align_into``, retried with ``source`` turned when ambiguous, and scored outside a local edit.

    When the unturned score falls inside ``ROTATION_GATE``, ``source`` is
    turned by each of ``ROTATIONS`` and the best kept; a turned source is
    searched for only at the scales within a step of the unturned placement's
    (a small turn does not change the scale; on the public corpus's edits
    every score stayed the same, and unrelated candidate pairs rescored about
    1.2 times faster, two of them no longer reaching 0.87). Then, unless the
    blocks already score ``1 - EXCLUSION_PENALTY`` or more, the images are
    scored where they overlap at the unturned placement (``Placement.overlap``),
    outside the one region where they disagree most (``exclusion``); less
    ``EXCLUSION_PENALTY``, that stands in when higher. The gate sees the
    blocks' score alone: lifted by the exclusion, many unrelated pairs would
    be turned too, for nothing.

    Returns:
        The score (-1..1) and the source's Frame in the target, which
        ignores a rotation (it is small); None when nothing was placed.
    """
    unturned = best = align_into(source, target)
    if ROTATION_GATE[0] < best.score < ROTATION_GATE[1]:
        for degrees in ROTATIONS:
            turned = align_into(source.turned(degrees), target, near=unturned.scale)
            best = max(best, turned, key=lambda found: found.score)
    score, frame = best.score, best.frame
    if unturned.placement is not None and score < 1 - EXCLUSION_PENALTY:
        outside = correlation_outside_region(*unturned.placement.overlap(source, target)) - EXCLUSION_PENALTY
        if outside > score:
            score, frame = outside, unturned.frame
    return score, frame


def block_correlations(
    first: Image, second: Image, *, blocks: int = BLOCKS, min_relative_spread: float = 0.0
) -> npt.NDArray[np.float64]:
    """Pearson correlations of corresponding blocks of two equally shaped images.

    Args:
        first: One image.
        second: The other, same shape.
        blocks: The images are cut into ``blocks`` x ``blocks`` blocks, row-major.
        min_relative_spread: Leave out blocks whose larger standard deviation
            (of the two images) is below this times the median of that over all
            blocks: near-flat blocks correlate by chance.

    Returns:
        The correlations of the blocks kept (flat blocks are always left
        out); with none kept, or images smaller than the grid, the whole
        images' correlation is the only value.
    """
    rows, cols = first.shape[0] // blocks, first.shape[1] // blocks
    if rows == 0 or cols == 0:
        return np.array([correlation(first, second)])
    a, b = (_blocks(image[: rows * blocks, : cols * blocks], blocks, rows, cols) for image in (first, second))
    # The mean as sum / count: the same values, without np.mean's overhead (tens of calls per pair).
    a -= a.sum(axis=1, keepdims=True) / a.shape[1]
    b -= b.sum(axis=1, keepdims=True) / b.shape[1]
    energy_a, energy_b = (a * a).sum(axis=1), (b * b).sum(axis=1)
    usable = energy_a * energy_b > 1e-18
    if min_relative_spread > 0:
        spread = np.maximum(energy_a, energy_b)
        usable &= spread >= min_relative_spread**2 * np.median(spread)
    if not usable.any():
        return np.array([0.0])
    return np.asarray((a * b).sum(axis=1)[usable] / np.sqrt(energy_a * energy_b)[usable], np.float64)


def _blocks(image: Image, blocks: int, rows: int, cols: int) -> npt.NDArray[np.float64]:
    """(blocks**2, rows*cols) matrix of the image's blocks, row-major."""
    tiles = image.astype(np.float64).reshape(blocks, rows, blocks, cols).transpose(0, 2, 1, 3)
    return tiles.reshape(blocks * blocks, rows * cols)


def correlation(first: Image, second: Image) -> float:
    """Pearson correlation of two equally shaped images (0 if either is flat).

    Written with element-wise products, not BLAS: see the note in
    ``nearindex/__init__.py`` on OpenBLAS threads.
    """
    a = first.astype(np.float64).ravel()
    b = second.astype(np.float64).ravel()
    a -= a.mean()
    b -= b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denominator) if denominator > 1e-12 else 0.0


def _quantile(values: npt.NDArray[np.float64], q: float) -> float:
    """``np.quantile(values, q)`` (linear interpolation) of a few values, without its overhead.

    Rescoring takes this of 16 block correlations tens of times per pair, where
    ``np.quantile``'s argument handling cost more than the sort.
    """
    ordered = np.sort(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))
