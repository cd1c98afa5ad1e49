"""Finding look-alikes: query and compare (all duplicate groups: ``duplicates``).

Every answer has two numbers: ``coarse``, the best inner product between the
two images' window vectors (what the vector index ranks candidates by: a
Pearson correlation of blurred 16x16 grids; a strip meets only the other
image's whole, ``windows_meet``), and ``score``, the rescored
correlation of the thumbnails allowing shift, crop and scale, which is what
results are ranked and judged by. A horizontally mirrored copy is searched
for too (one more set of vectors per query) and reported as ``mirrored``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import numpy.typing as npt

from .borders import NO_BORDERS, Borders, shows_bars
from .catalog import StoredContent
from .colour import Colour
from .database import Database
from .exclusion import detail_region
from .features import (
    Description,
    cells_kept,
    corners_left_out,
    detail_left_out,
    mirrored_vectors,
    normalise_rows,
    window_vectors,
)
from .intake import FileDescription, describe_file
from .placement import Frame
from .planes import Prepared, prepare
from .relation import EXACT, UNCLAIMED, Relation, relate
from .rescore import rescore
from .settings import DEFAULT_SETTINGS, WINDOW_COUNT, WINDOWS, Settings
from .smooth import LOW_DETAIL

#: Besides the best candidates overall, a query rescores the best few of each window vector.
#: On the public corpus this put the original among the candidates for 0.98 instead of
#: 0.94 of crops to 60 % and 1.0 instead of 0.97 of crop + caption + JPEG (pastes 0.89
#: instead of 0.86), for about 10 more candidates than the 30 by default.
WINDOW_LEADERS = 3
#: A query also rescores the best stored image of each of its whole-image vector's versions
#: with one corner square of the grid left out (``features.corners_left_out``). On the public
#: corpus's generated edits two pastes of a high-contrast patch over a soft picture (a map, a
#: desk) had their original among no window's first 30 contents; with these it was among the
#: candidates of every edit, for 0.5 more candidates per query.
EDIT_LEADERS = 1
#: ... and this many times as many of its whole-image vector with its one region of detail left
#: out (``features.detail_left_out``), when the rest of it is smooth: a patch pasted over a smooth
#: picture, anywhere. Other smooth pictures correlate with the rest about as well as its original.
DETAIL_LEADERS = 10
#: ... ranked by their correlation outside the region among this many nearest (``detail_leaders``).
DETAIL_FETCH = 200
#: A compressed index's candidates are chosen from this many times as many contents, ranked by
#: their stored vectors' exact inner products (``candidate_contents``). On 10^5 images of
#: ``scripts/bench_scale.py``, the exact best 10 among the best 30 went from 0.966 to 0.989
#: with 2 and 0.993 with 3, for about 2 ms per query; 3 makes up for the smaller codes of
#: ``vectors.CODE_BYTES`` (28 bytes: 0.986 with 2, 0.992 with 3). Its 4-bit fast-scan codes
#: scan four times faster but estimate less well, the more so the larger the collection: at
#: 10^5 images (random / near-duplicate queries) 0.939/0.943 with 3, 0.988/0.986 with 8; at
#: 10^6, 0.909/0.929 with 8, 0.960/0.970 with 16, 0.977/0.981 with 24 (IVF probes hardly
#: matter: 256 instead of 128 gave 0.963/0.973 with 16). A shortlist of 720 contents costs
#: the catalog reads of their descriptors, ~17 ms on a 5,000-image catalog (``exact_ranking``).
RERANK_FACTOR = 24
#: The mirrored orientation is rescored when its coarse correlation beats the direct one by
#: more than this. A flipped copy's beats it by far; rescoring whenever it came within 0.05
#: of it (a lead of -0.05, as before) rescored 60 % of unrelated pairs twice. On the public
#: corpus (the verification half of ``scripts/evaluate.py``) a lead of 0.05 found every true
#: pair the old rule found, flips included, in 15 % less time.
MIRROR_LEAD = 0.05

#: Where ``score_pair`` cuts a bar out of a thumbnail blurred with it, it leaves out this many
#: blur sigmas (the blur's sigma is a fraction of the long side; here, of the side across the
#: bar) more of the picture's edge, in both images (see ``borders.Borders.joined``).
BLUR_SEAM = 3.0


@dataclass(frozen=True)
class Match:
    """One stored image similar to a query.

    Attributes:
        path: The stored file.
        score: Rescored correlation, 0..1 (1.0 for a byte-identical copy).
        coarse: Best window-vector inner product, -1..1.
        mirrored: The stored image matches the query flipped left to right.
        relation: How the stored image relates to the query (kind, box,
            scale, edited); kind ``similar`` below the duplicate threshold.
    """

    path: str
    score: float
    coarse: float
    mirrored: bool = False
    relation: Relation = UNCLAIMED


@dataclass(frozen=True)
class Comparison:
    """How alike two images are.

    Attributes:
        a: First file.
        b: Second file.
        score: Rescored correlation, 0..1.
        coarse: Best window-vector inner product, -1..1.
        duplicate: ``score`` reaches the duplicate threshold.
        mirrored: ``b`` matches ``a`` flipped left to right.
        relation: How ``b`` relates to ``a`` (see ``Match.relation``).
    """

    a: str
    b: str
    score: float
    coarse: float
    duplicate: bool
    mirrored: bool = False
    relation: Relation = UNCLAIMED


class Side:
    """One image ready for pair scoring: window vectors and prepared thumbnails.

    Args:
        vectors: (windows, dimension) window vectors, row 0 the whole image.
        thumbnail: The stored or computed uint8 blurred thumbnail.
        settings: Grid and rescoring size.
        size: (width, height) of the image, in pixels.
        colour: Its colours (hues), when kept (images with little detail).
        borders: The uniform borders left out of its thumbnail and vectors.
    """

    def __init__(
        self,
        vectors: npt.NDArray[np.float32],
        thumbnail: npt.NDArray[np.uint8],
        settings: Settings,
        size: tuple[int, int],
        colour: Colour | None = None,
        borders: Borders = NO_BORDERS,
    ) -> None:
        self.vectors = vectors
        self.thumbnail = thumbnail
        self.size = size
        self.colour = colour
        self.borders = borders
        self._settings = settings

    @property
    def settings(self) -> Settings:
        """The settings it was described and is scored with."""
        return self._settings

    def shows(self, borders: Borders) -> bool:
        """True when the bars of ``borders`` (at least its own) show in this image (``borders.shows_bars``)."""
        blur = round(BLUR_SEAM * self._settings.blur_fraction * self._settings.thumb_side)
        return shows_bars(self.thumbnail, self.borders, borders, blur=blur)

    def trimmed_to(self, borders: Borders, *, reported: Borders) -> Side:
        """This image with ``borders`` (as deep as its own at least) left out of its thumbnail and vectors.

        Its relations give ``reported`` as its borders: the bars alone, not
        the seam cut with them (``score_pair``).
        """
        thumbnail = np.ascontiguousarray(borders.cut_after(self.borders).trim(self.thumbnail))
        vectors = window_vectors(
            thumbnail.astype(np.float32), grid=self._settings.grid, ranked=self._settings.ranked_cells
        )
        return Side(vectors, thumbnail, self._settings, self.size, self.colour, reported)

    @classmethod
    def of(cls, described: FileDescription, settings: Settings) -> Side:
        """The Side of a freshly described image file."""
        return cls.of_description(_decoded(described), settings, (described.width, described.height))

    @classmethod
    def of_description(cls, description: Description, settings: Settings, size: tuple[int, int]) -> Side:
        """The Side of an image described in memory, ``size`` (width, height) pixels."""
        return cls(description.vectors, description.thumbnail, settings, size, description.colour, description.borders)

    @cached_property
    def prepared(self) -> Prepared:
        """The thumbnail prepared for rescoring."""
        return prepare(self.thumbnail, side=self._settings.rescore_side, colour=self.colour)

    @cached_property
    def prepared_mirrored(self) -> Prepared:
        """The mirrored thumbnail prepared for rescoring."""
        return prepare(self.thumbnail, side=self._settings.rescore_side, mirrored=True, colour=self.colour)

    @cached_property
    def mirrored_vectors(self) -> npt.NDArray[np.float32]:
        """Window vectors of the mirrored image, as many as ``vectors`` (a stored image may have no strips)."""
        mirrored = mirrored_vectors(self.thumbnail, grid=self._settings.grid, ranked=self._settings.ranked_cells)
        return mirrored[: len(self.vectors)]

    @cached_property
    def corners_left_out(self) -> npt.NDArray[np.float32]:
        """The whole-image vector with each corner square of the grid left out (``features.corners_left_out``)."""
        return corners_left_out(self.vectors[0], grid=self._settings.grid)

    @cached_property
    def detail_region(self) -> tuple[float, float, float, float] | None:
        """The one region holding its detail, if the rest is smooth (``exclusion.detail_region``)."""
        return detail_region(self.prepared.bandpass, below=LOW_DETAIL)

    @cached_property
    def details_left_out(self) -> list[tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]]:
        """The whole-image vector without the one region of its detail, and the cells kept, of it and its mirror.

        ``features.detail_left_out``; none when it has no such region (``detail_region``).
        """
        if self.detail_region is None:
            return []
        top, bottom, left, right = self.detail_region
        thumbnail = self.thumbnail.astype(np.float32)
        grid, ranked = self._settings.grid, self._settings.ranked_cells
        mirrored = (top, bottom, 1 - right, 1 - left)
        found = []
        for image, region in ((thumbnail, self.detail_region), (thumbnail[:, ::-1], mirrored)):
            row = detail_left_out(image, region, grid=grid, ranked=ranked)[0]
            if row.any():
                found.append((row, cells_kept(region, grid=grid)))
        return found


def _decoded(described: FileDescription) -> Description:
    """The description of a file described for a query (always decoded: no known hashes were given)."""
    assert described.description is not None
    return described.description


def best_inner_product(first: npt.NDArray[np.float32], second: npt.NDArray[np.float32]) -> float:
    """Largest inner product between window vectors of two images, without BLAS.

    A strip (``STRIPS``, the rows after ``WINDOWS``) stands for the whole of
    an image of another shape, so it meets the other's whole-image vector
    only: strips met with windows would give unrelated pairs more chances.
    """
    return best_inner_products(first, second)[0]


def best_inner_products(first: npt.NDArray[np.float32], second: npt.NDArray[np.float32]) -> tuple[float, float]:
    """``best_inner_product``, and the same over the windows alone (no strips), from one product matrix."""
    products = (first[:, None, :].astype(np.float64) * second[None, :, :]).sum(axis=2)
    met = windows_meet(np.arange(len(first))[:, None], np.arange(len(second))[None, :])
    masked = np.where(met, products, -np.inf)
    return float(masked.max()), float(masked[: len(WINDOWS), : len(WINDOWS)].max())


def windows_meet(first: npt.NDArray[np.int64], second: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Whether window number ``first`` of one image may be compared with window ``second`` of another.

    Any pair of ``WINDOWS``, or a strip (``STRIPS``, numbered after them) with
    the other's whole image (window 0), which it stands for. (Broadcasts.)
    """
    windows = len(WINDOWS)
    met: npt.NDArray[np.bool_] = ((first < windows) & (second < windows)) | (first == 0) | (second == 0)
    return met


#: A k-NN search by inner product: (queries, k) -> (scores, content ids, window numbers).
WindowSearch = Callable[
    [npt.NDArray[np.float32], int], tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.int64]]
]


@dataclass(frozen=True)
class PairScore:
    """A rescored pair of images, in the better orientation of the first.

    Attributes:
        score: Rescored correlation, 0..1.
        coarse: Best window-vector inner product, -1..1.
        mirrored: The first image matched flipped left to right.
        frame: Where the first image (so oriented) lies in the second, if placed.
        sides: The two images as compared, when both were trimmed to the
            same borders (``score_pair``); ``frame`` places these.
    """

    score: float
    coarse: float
    mirrored: bool
    frame: Frame | None
    sides: tuple[Side, Side] | None = None


def score_pair(query: Side, stored: Side) -> PairScore:
    """Rescore two images in both orientations of the first.

    When one has a border the other lacks and yet shows (an edit covered part
    of a letterbox's bar, turned it, or clipped a sky into a flat band), they
    are compared a second time with both trimmed to the deeper borders at each
    edge, and the better score counts: a smooth picture is compared as a
    whole, and a bar on one side only costs it as much as the picture. An
    unrelated picture shows no such bar; trimmed alike, two smooth pictures
    would correlate better by chance.

    Returns:
        The better orientation's PairScore; the mirrored one is only
        rescored when its coarse correlation is clearly higher (``MIRROR_LEAD``).
    """
    best = _score_oriented(query, stored)
    if not query.borders.differs_from(stored.borders):
        return best
    deeper = query.borders.joined(stored.borders)
    if not (query.shows(deeper) and stored.shows(deeper)):
        return best
    joined = query.borders.joined(stored.borders, seam=BLUR_SEAM * query.settings.blur_fraction)
    sides = (query.trimmed_to(joined, reported=deeper), stored.trimmed_to(joined, reported=deeper))
    trimmed = _score_oriented(*sides)
    return replace(trimmed, sides=sides) if trimmed.score > best.score else best


def _score_oriented(query: Side, stored: Side) -> PairScore:
    """``score_pair`` without trimming the two alike."""
    coarse, framed = best_inner_products(query.vectors, stored.vectors)
    direct = rescore(query.prepared, stored.prepared, coarse=coarse, framed_coarse=framed)
    best = PairScore(direct.score, coarse, False, direct.frame)
    mirrored_coarse, mirrored_framed = best_inner_products(query.mirrored_vectors, stored.vectors)
    # The windows alone too: a strip squashed onto the grid can lift the direct coarse of two
    # smooth images and hide the lead of the mirrored windows.
    if mirrored_coarse > coarse + MIRROR_LEAD or mirrored_framed > framed + MIRROR_LEAD:
        flipped = rescore(
            query.prepared_mirrored, stored.prepared, coarse=mirrored_coarse, framed_coarse=mirrored_framed
        )
        if flipped.score > best.score:
            best = PairScore(flipped.score, mirrored_coarse, True, flipped.frame)
    return best


def relation_of(query: Side, stored: Side, pair: PairScore, threshold: float) -> Relation:
    """How ``stored`` relates to ``query``, given their PairScore (``similar`` below ``threshold``)."""
    if pair.score < threshold or pair.frame is None:
        return UNCLAIMED
    query, stored = pair.sides or (query, stored)
    prepared = query.prepared_mirrored if pair.mirrored else query.prepared
    return relate(
        prepared, stored.prepared, pair.frame, query_size=query.size, match_size=stored.size,
        mirrored=pair.mirrored, query_borders=query.borders, match_borders=stored.borders,
    )  # fmt: skip


def describe_query(path: str | os.PathLike[str], settings: Settings = DEFAULT_SETTINGS) -> FileDescription:
    """Describe an image file for a query (it need not be stored).

    Raises:
        ImageError: If the file cannot be read or is not an image.
    """
    return describe_file(os.fspath(path), settings=settings)


def compare(
    a: str | os.PathLike[str], b: str | os.PathLike[str], *, settings: Settings = DEFAULT_SETTINGS
) -> Comparison:
    """Compare two image files directly (no database needed).

    Args:
        a: First image file.
        b: Second image file.
        settings: Descriptor parameters and the duplicate threshold.

    Returns:
        Their Comparison, with how ``b`` relates to ``a``; byte-identical
        files score 1.0.

    Raises:
        ImageError: If either file cannot be read or is not an image.
    """
    first, second = describe_query(a, settings), describe_query(b, settings)
    if first.content_hash == second.content_hash:
        return Comparison(os.fspath(a), os.fspath(b), 1.0, 1.0, True, relation=Relation(EXACT, scale=1.0))
    query_side, other_side = Side.of(first, settings), Side.of(second, settings)
    pair = score_pair(query_side, other_side)
    relation = relation_of(query_side, other_side, pair, settings.duplicate_threshold)
    duplicate = pair.score >= settings.duplicate_threshold
    return Comparison(os.fspath(a), os.fspath(b), pair.score, pair.coarse, duplicate, pair.mirrored, relation)


def query(database: Database, image: str | os.PathLike[str], *, k: int = 10, min_score: float = 0.0) -> list[Match]:
    """Stored images most like ``image``, best first.

    The query's window vectors, and those of its mirror image, pick the
    vector index's top candidates (at least ``settings.candidates``, and
    three per requested result); each is rescored against the query's
    thumbnail and ranked by that score. Byte-identical stored copies score
    1.0. Each match says how it relates to the query (``Match.relation``).

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
    count = max(database.settings.candidates, 3 * k)
    exact = set(database.paths_with_hash(described.content_hash))
    side = Side.of(described, database.settings)
    scored = _rescore_candidates(database, side, count, skip=exact)
    for path in exact:
        scored[path] = (Match(path, 1.0, 1.0, relation=Relation(EXACT, scale=1.0)), None)
    ranked = sorted(scored.values(), key=lambda found: (-found[0].score, -found[0].coarse, found[0].path))
    kept = [found for found in ranked if found[0].score >= min_score][:k]
    # Relations need an ECC alignment each: only for the results returned.
    threshold = database.settings.duplicate_threshold
    return [
        match if scoring is None else replace(match, relation=relation_of(side, scoring[0], scoring[1], threshold))
        for match, scoring in kept
    ]


def candidate_contents(
    database: Database,
    side: Side,
    count: int,
    *,
    window_leaders: int = WINDOW_LEADERS,
    edit_leaders: int = EDIT_LEADERS,
) -> list[int]:
    """Stored contents worth rescoring against ``side``, best coarse first.

    The ``count`` contents whose window vectors best match either
    orientation, plus the ``window_leaders`` best of each window on its own
    (an edit that spoils most windows, a strong crop or a caption, may still
    leave one window whose best match is the original, though other images
    outrank it overall), plus the ``edit_leaders`` best of each of
    ``Side.corners_left_out`` (a pasted patch may spoil every window), plus
    ``DETAIL_LEADERS`` times as many by ``detail_leaders`` (a patch over a
    smooth picture outweighs it anywhere). A compressed index only estimates inner products, so there
    ``RERANK_FACTOR`` times the default candidates (or ``count``, if more)
    are fetched and ranked by their stored vectors' exact ones (24 times a
    ``count`` of 300 would read 7,200 contents' descriptors).
    """
    compressed = database.index.is_compressed
    shortlist = shortlist_length(count, database.settings.candidates, compressed=compressed)
    best, leaders = best_coarse(database, side, shortlist, window_leaders=window_leaders, edit_leaders=edit_leaders)
    ranked = sorted(best, key=lambda cid: -best[cid])
    if compressed:
        ranked = exact_ranking(database, side, ranked[:shortlist])
    return with_leaders(ranked, count, leaders)


def shortlist_length(count: int, candidates: int, *, compressed: bool) -> int:
    """How many contents a query's vector stage fetches for ``count`` candidates.

    ``count`` from an exact index; from a compressed one, ``RERANK_FACTOR``
    times the default ``candidates`` when that is more (ranked exactly after).
    """
    return max(count, candidates * RERANK_FACTOR) if compressed else count


def with_leaders(ranked: list[int], count: int, leaders: set[int]) -> list[int]:
    """The first ``count`` of ``ranked``, then the ``leaders`` among the rest in their order, then the others."""
    return ranked[:count] + [cid for cid in ranked[count:] if cid in leaders] + sorted(leaders - set(ranked))


def exact_ranking(database: Database, side: Side, content_ids: list[int]) -> list[int]:
    """``content_ids`` by the exact best inner product of their stored vectors with ``side``'s, either orientation.

    One matrix product for all of them: a shortlist of a few hundred contents
    took 24 ms one at a time, most of it reading their thumbnails too.
    """
    stored = database.stored_descriptors(content_ids)
    found = [cid for cid in content_ids if stored.get(cid)]  # a flat image has no vectors
    if not found:
        return []
    dimension = database.settings.dimension
    queries = np.concatenate([side.vectors, side.mirrored_vectors]).astype(np.float32)
    rows = [np.frombuffer(stored[cid], np.float32).reshape(-1, dimension) for cid in found]
    products = np.concatenate(rows) @ queries.T
    stored_windows = np.concatenate([np.arange(len(r)) for r in rows])[:, None]
    query_windows = np.concatenate([np.arange(len(side.vectors)), np.arange(len(side.mirrored_vectors))])[None, :]
    products[~windows_meet(stored_windows, query_windows)] = -np.inf
    starts = np.cumsum([0] + [len(r) for r in rows[:-1]])
    best = np.maximum.reduceat(products.max(axis=1), starts)
    return [found[i] for i in np.argsort(-best, kind="stable")]


def best_coarse(
    database: Database, side: Side, neighbours: int, *, window_leaders: int = 0, edit_leaders: int = 0
) -> tuple[dict[int, float], set[int]]:
    """Contents among the ``neighbours`` of any window vector (either orientation), with their best coarse.

    A window vector's neighbours are those it may meet (``meeting_neighbours``).

    Returns:
        That mapping, and the set of the first ``window_leaders`` distinct
        contents found by each window vector and the first ``edit_leaders``
        found by each of ``side.corners_left_out`` and ``DETAIL_LEADERS`` times
        as many by ``detail_leaders`` (which add nothing to the mapping: they
        are not the image's vectors).
    """
    best: dict[int, float] = {}
    leaders: set[int] = set()
    searches = [(side.vectors, window_leaders, True), (side.mirrored_vectors, window_leaders, True)]
    if edit_leaders:
        searches.append((side.corners_left_out, edit_leaders, False))
        leaders.update(detail_leaders(database, side, edit_leaders * DETAIL_LEADERS))
    for vectors, leading, own in searches:
        rows = np.flatnonzero(np.abs(vectors).sum(axis=1) > 0)
        if not len(rows):
            continue
        if own:
            coarse, ids = meeting_neighbours(database.search_windows, vectors, rows, neighbours)
        else:  # the corners left out stand for the whole image: they meet anything
            coarse, ids = database.search(np.ascontiguousarray(vectors[rows]), neighbours)
        for values, row in zip(coarse, ids, strict=True):
            if leading:
                leaders.update(_distinct(row, leading))
            if own:
                _keep_best(best, values, row)
    return best, leaders


def detail_leaders(database: Database, side: Side, keep: int) -> list[int]:
    """The stored images that correlate best with ``side`` (or its mirror) outside its one region of detail, if any.

    The whole-image vectors nearest to each of ``side.details_left_out``
    (``DETAIL_FETCH`` of them) are ranked by their correlation with it over
    the cells it keeps alone: a stored vector's inner product with it is also
    weighted by how little of that vector's spread lies in the region left
    out, which ranked other smooth pictures above its own original.

    Returns:
        Up to ``keep`` content ids, best first; none when ``side`` has no such region.
    """
    best: dict[int, float] = {}
    for row, kept in side.details_left_out:
        _, contents, windows = database.search_windows(row[None, :], DETAIL_FETCH * WINDOW_COUNT)
        whole_hits = contents[0][windows[0] == 0]
        found = _distinct(whole_hits, len(whole_hits))
        stored = database.stored_descriptors(found)
        found = [content for content in found if stored.get(content)]  # a flat image has no vectors
        if not found:
            continue
        wholes = np.array([np.frombuffer(stored[content], np.float32)[: len(row)][kept] for content in found])
        for content, correlation in zip(found, normalise_rows(wholes) @ row[kept], strict=True):
            best[content] = max(best.get(content, -1.0), float(correlation))
    return sorted(best, key=lambda content: -best[content])[:keep]


def meeting_neighbours(
    search_windows: WindowSearch, vectors: npt.NDArray[np.float32], rows: npt.NDArray[np.int64], neighbours: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """The first ``neighbours`` stored vectors that each of ``vectors[rows]`` may meet (``windows_meet``).

    The rule of the pairs' coarse (``best_inner_product``). A row fetches more
    than it keeps, or the vectors it may not meet would use up its neighbours:
    a strip meets only whole images' vectors (one stored vector in
    ``WINDOW_COUNT``), a window all but the strips.

    Args:
        search_windows: ``Database.search_windows`` or the like.
        vectors: An image's window vectors.
        rows: The numbers of those searched with.
        neighbours: Kept per row.

    Returns:
        (scores, content ids), one row each, padded with -inf and -1.
    """
    scores = np.full((len(rows), neighbours), -np.inf, np.float32)
    ids = np.full((len(rows), neighbours), -1, np.int64)
    fetch = np.where(rows == 0, 1, np.where(rows >= len(WINDOWS), WINDOW_COUNT, 2))
    for factor in np.unique(fetch):
        chosen = np.flatnonzero(fetch == factor)
        query = np.ascontiguousarray(vectors[rows[chosen]])
        found, contents, windows = search_windows(query, neighbours * int(factor))
        met = windows_meet(rows[chosen][:, None], windows) & (contents >= 0)
        for row, keep, row_scores, row_contents in zip(chosen, met, found, contents, strict=True):
            kept = np.flatnonzero(keep)[:neighbours]
            scores[row, : len(kept)], ids[row, : len(kept)] = row_scores[kept], row_contents[kept]
    return scores, ids


def _keep_best(best: dict[int, float], values: npt.NDArray[np.float32], row: npt.NDArray[np.int64]) -> None:
    """Raise ``best[content]`` to each found content's value in one result row."""
    for value, content_id in zip(values, row, strict=True):
        if content_id >= 0 and value > best.get(int(content_id), -2.0):
            best[int(content_id)] = float(value)


def _distinct(row: npt.NDArray[np.int64], limit: int) -> list[int]:
    """The first ``limit`` distinct content ids of a result row (-1 is no result)."""
    found: dict[int, None] = {}  # ordered, and a set for the lookups (a row may hold thousands)
    for content_id in row.tolist():
        if content_id >= 0 and content_id not in found:
            found[content_id] = None
            if len(found) == limit:
                break
    return list(found)


def _rescore_candidates(
    database: Database, side: Side, count: int, *, skip: set[str]
) -> dict[str, tuple[Match, tuple[Side, PairScore] | None]]:
    """Rescore the candidates, each path with its Match (relation not yet judged) and what scored it.

    Contents whose every path is in ``skip`` (exact copies) are not worth it.
    """
    ids = candidate_contents(database, side, count)
    paths = database.paths_of(ids)
    ids = [cid for cid in ids if not set(paths.get(cid, [])) <= skip]
    stored = database.stored_contents(ids)
    matches: dict[str, tuple[Match, tuple[Side, PairScore] | None]] = {}
    for content_id in ids:
        stored_side = _stored_side(database, stored[content_id])
        pair = score_pair(side, stored_side)
        for path in paths[content_id]:
            matches[path] = (Match(path, pair.score, pair.coarse, pair.mirrored), (stored_side, pair))
    return matches


def _stored_side(database: Database, content: StoredContent) -> Side:
    vectors = np.frombuffer(content.descriptor, np.float32).reshape(-1, database.settings.dimension)
    colour = Colour.from_stored(content.colour)
    borders = Borders(content.border_left, content.border_top, content.border_right, content.border_bottom)
    size = (content.width, content.height)
    return Side(vectors, database.thumbnail(content), database.settings, size, colour, borders)


#: Loaded images a ``PairScorer`` keeps. With its turned versions and the templates resized
#: for its partners, one holds about 720 KB (measured over the public corpus's candidate
#: pairs: 383 MB for 531 images), so a scorer holds at most about 370 MB.
SIDES_KEPT = 512


class PairScorer:
    """Rescores pairs of stored contents, loading and preparing each one once.

    Loaded contents are kept until more than ``keep`` would be: then all but
    those asked for are dropped, and loaded again when needed. Pairs come in runs that share
    images (sorted pairs; the members of one group), so that costs little,
    and memory stays bounded over any number of pairs.

    Args:
        database: The open database the contents are in.
        keep: Most contents kept loaded (default ``SIDES_KEPT``; more while one
            ``load`` asks for more).
    """

    def __init__(self, database: Database, *, keep: int | None = None) -> None:
        self._database = database
        self._keep = SIDES_KEPT if keep is None else keep
        self._sides: dict[int, Side] = {}

    def side(self, content_id: int) -> Side:
        """The Side of a stored content (loaded once)."""
        if content_id not in self._sides:
            self.load([content_id])
        return self._sides[content_id]

    def load(self, content_ids: list[int]) -> None:
        """Fetch the contents not loaded yet (first dropping the others, when more than ``keep`` would be loaded)."""
        missing = [cid for cid in content_ids if cid not in self._sides]
        if missing and len(self._sides) + len(missing) > self._keep:
            wanted = set(content_ids)
            self._sides = {cid: side for cid, side in self._sides.items() if cid in wanted}
        for cid, content in self._database.stored_contents(missing).items():
            self._sides[cid] = _stored_side(self._database, content)

    @property
    def loaded(self) -> int:
        """How many contents are loaded."""
        return len(self._sides)

    def score(self, first: int, second: int) -> float:
        """Rescored score of two contents, either orientation."""
        return score_pair(self.side(first), self.side(second)).score
