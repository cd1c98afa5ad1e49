#!/usr/bin/env python3
"""Scale of the vector index: build, query latency, candidate recall and all-groups at 10^5 to 10^7 images.

Synthetic window vectors (what nearindex stores per image: 11 zero-mean, unit-norm
256-d vectors, ids ``content_id * WINDOW_SLOTS + window``), generated in seeded
chunks of ``CHUNK`` images so that no scale needs all its vectors in memory:

* an image is a 128x128 field, a sum of the 255 two-dimensional cosines of up to
  15 half-cycles per side, each with a Gaussian weight of spectral power
  ``1 / f**beta`` (``beta`` drawn per image in ``SLOPES``: smooth and detailed
  images). Each of its windows (``features.window_rectangles``) is cut from the field, resized to 16x16
  (INTER_AREA, as ``features.window_vectors`` does), centred and normalised, so
  the windows of an image are correlated through the field they share. A
  linear model, so a chunk is one matrix product. Cells are not ranked (the
  product's Spearman step is skipped). ``SLOPES`` was fitted to the public
  corpus's descriptors: the realism table printed first compares them (inner
  products of random pairs, the window-by-window "coarse" of random pairs, correlation
  of window 0 with the others, variance in the first 32 principal axes);
* ``COPY_SHARE`` of the images of each chunk are planted near-duplicates of
  another image of the chunk: an *edit* (same field), a *crop* (a rectangle from
  a seeded bank keeping 50-90 % of the area, its windows cut from it) or a
  *mirror* (left-right flip), in ``EDIT_SHARES``; then every window is mixed
  with an unrelated image's window, orthogonalised, to a correlation of
  ``1 - 0.15 u**2`` (u uniform: median 0.96, at least 0.85) with the clean copy.
  The best inner product ``duplicates`` can see for a planted pair then has
  percentiles 5/10/50 of 0.49/0.59/0.92; for the corpus photos and their 19
  generated edits of ``scripts/evaluate.py``: 0.42/0.60/0.99;
* queries are not in the index: *random* queries are fresh images; *near-dup*
  queries are fresh copies (same three edits) of indexed images. The mirrored
  vectors of a synthetic image are exact: each window's grid flipped left-right
  and the windows permuted into their mirror images (they are left-right symmetric).

For each scale (``--sizes``), two indexes are built from the same chunks in one
pass (generation time excluded): the exact flat index (``VectorIndex.empty``, the
recall ceiling; only up to ``--flat-max`` images, it needs 1 KB per vector) and
the compressed one (``VectorIndex.compressed`` trained on a sample of the first
chunks' vectors, as many as the product's database takes (``training_size``), with
``list_count`` of the vectors it will hold, as the database does; then filled). From
``--disk-from`` images on, the compressed index is saved and loaded back as a reader
opens it (``VectorIndex.load(path, mmap=True)``, which FAISS honours only for the
8-bit codes of earlier releases: fast-scan codes are read into memory). Measured, per index:

* build seconds (training + adding) and bytes per image (``memory_bytes``; the
  file size per image too when saved);
* query latency: one query = its 11 window vectors and their 11 mirrored ones,
  each with k = 30 neighbours it may meet (``search.meeting_neighbours``), then
  the product's candidate list (the best 30 contents by best inner product, plus
  the first 3 contents of each vector);
  p50 and p99 over all queries (flat: over ``--flat-queries``; FAISS computes
  fewer than 20 query vectors without BLAS, as a user's single query would). The full
  pipeline adds candidates x the per-candidate rescore cost measured on real
  thumbnails: an *estimate*, labelled so;
* candidate recall@10: of the 10 best contents by exact coarse (a query's 11
  direct window vectors against the stored windows they may meet, computed by brute force in
  numpy over regenerated chunks, for ``--exact-queries`` queries of each kind),
  the share among the index's best 30 contents from the same 11 vectors, k = 30
  each; on random and on near-dup queries; and how often a near-dup query's
  source is among the full candidate list;
* duplicates, vector stage: ``duplicates.vector_pairs`` with the product's
  neighbours and minimum coarse, two query rows per content (its whole-image
  vector and that vector mirrored), in the product's batches of
  ``BATCH_CONTENTS`` contents, over all contents in slices of
  ``PAIR_SLICE`` contents (pairs found from both sides are merged afterwards);
  seconds (chunk generation excluded), candidate pairs, the share of planted
  pairs found (and the share whose exact coarse reaches the minimum, ignoring
  the neighbour limit), and candidate pairs x the measured per-pair rescore cost
  as the *estimated* rescoring time. ``--pair-contents N`` queries only the
  first chunks' N contents and extrapolates (at 10^6, 25,000 take ~9 minutes
  with the index of this writing; all would take hours). The flat index answers
  a sample of ``--pair-sample`` planted pairs (both members queried); its time is
  extrapolated to all contents.

Peers, once per run: the motivating case's brute force (``peers.brute_blur``: a
43x43 sigma 21 Gaussian blur at full size, then ``peers.brute_similarity``:
matchTemplate TM_CCOEFF_NORMED for every pair), timed on a sample of the public
corpus's photos and extrapolated to one query and to all groups over 10^6
images, in one process. Rescoring (``search.score_pair``) is timed on the
corpus's photos and figures: per candidate of a query (the stored side prepared
each time, as ``query`` does) and per pair of ``duplicates`` (sides prepared once).

Usage:
    python scripts/bench_scale.py [--quick] [--sizes 100000,1000000] [--ten-million]
        [--queries N] [--exact-queries N] [--flat-queries N] [--pair-sample N] [--pair-contents N]
        [--flat-max N] [--disk-from N] [--scratch DIR] [--corpus DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import math
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from nearindex import vectors
from nearindex.database import WINDOW_SLOTS
from nearindex.duplicates import BATCH_CONTENTS, DUPLICATE_MIN_COARSE, DUPLICATE_NEIGHBOURS, vector_pairs
from nearindex.features import corners_left_out, window_rectangles
from nearindex.intake import describe_file
from nearindex.search import (
    EDIT_LEADERS,
    WINDOW_LEADERS,
    Side,
    _distinct,
    meeting_neighbours,
    score_pair,
    shortlist_length,
    windows_meet,
    with_leaders,
)
from nearindex.settings import DEFAULT_SETTINGS, WINDOW_COUNT
from nearindex.vectors import VectorIndex

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus_pairs import DEFAULT_CORPUS, ensure_corpus
from peers import brute_blur, brute_similarity

SEED = 20261126
DIMENSION, GRID = DEFAULT_SETTINGS.dimension, DEFAULT_SETTINGS.grid
#: Images generated (and added) at a time: 25,000 x 11 x 1 KB = 275 MB of vectors.
CHUNK = 25_000
#: Side of the synthetic field (pixels, like the stored thumbnail) and cosines per side.
FIELD_SIDE, FREQUENCIES = 128, 16
#: Range of the per-image spectral slope (power 1 / f**beta), fitted to the public corpus.
SLOPES = (0.5, 1.4)
#: Share of images that are planted near-duplicates, their edits and correlation with the clean copy.
COPY_SHARE = 0.01
EDIT_SHARES = {"edit": 0.5, "crop": 0.35, "mirror": 0.15}
#: A copy's windows correlate 1 - (1 - this) * u**2 (u uniform in 0..1) with the clean copy: median 0.96.
COPY_CORRELATION_MIN = 0.85
#: Crop rectangles in the bank, and the range of the kept share of each side.
CROP_BANK, CROP_SIDES, CROP_MIN_AREA = 16, (0.65, 0.95), 0.5
#: Random-number streams besides the chunks' (which use the chunk number).
CROP_STREAM, RANDOM_QUERY_STREAM, COPY_QUERY_STREAM, PLAN_STREAM = 10**9, 10**9 + 1, 10**9 + 2, 10**9 + 3
#: The product's candidates per query (settings.candidates) and the recall cut-off.
CANDIDATES, RECALL_AT = DEFAULT_SETTINGS.candidates, 10
#: Contents per ``vector_pairs`` call (its dict of pairs stays a few GB at most).
PAIR_SLICE = 100_000
#: Contents per block of the exact brute-force pass (block of scores: queries x 11 x 32,768 x 11 floats).
EXACT_BLOCK = 4096
#: Targets from the issue.
TARGETS = {
    "query_p50_ms_at_1e6": 10.0, "bytes_per_image_at_1e7": 300.0, "candidate_recall_at_10": 0.98,
    "all_groups_s_at_1e6": 300.0, "all_groups_s_at_1e7": 3600.0, "planted_found": 0.999,
}  # fmt: skip


# -- synthetic window vectors ---------------------------------------------------


def cosine_basis() -> tuple[np.ndarray, np.ndarray]:
    """The 255 cosine fields (k, side, side) without the constant one, and their squared frequencies (k,)."""
    u, v = (axis.ravel()[1:] for axis in np.meshgrid(np.arange(FREQUENCIES), np.arange(FREQUENCIES), indexing="ij"))
    x = (np.arange(FIELD_SIDE) + 0.5) / FIELD_SIDE
    basis = np.cos(np.pi * v[:, None, None] * x[None, :, None]) * np.cos(np.pi * u[:, None, None] * x[None, None, :])
    return basis.astype(np.float32), (u * u + v * v).astype(np.float64)


def window_operator(basis: np.ndarray, rectangle: tuple[float, float, float, float]) -> np.ndarray:
    """(k, WINDOW_COUNT * 256) matrix: coefficients -> centred window grids of the field cut to ``rectangle``.

    The cutting and resizing follow ``features.window_vectors`` on the cut field.
    """
    top, bottom, left, right = rectangle
    y0, x0 = round(top * FIELD_SIDE), round(left * FIELD_SIDE)
    cut = basis[:, y0 : round(bottom * FIELD_SIDE), x0 : round(right * FIELD_SIDE)]
    height, width = cut.shape[1:]
    rows = []
    for w_top, w_bottom, w_left, w_right in window_rectangles(height, width):
        wy, wx = round(w_top * height), round(w_left * width)
        window = cut[:, wy : max(round(w_bottom * height), wy + 1), wx : max(round(w_right * width), wx + 1)]
        grids = np.stack([cv2.resize(plane, (GRID, GRID), interpolation=cv2.INTER_AREA).ravel() for plane in window])
        rows.append(grids - grids.mean(axis=1, keepdims=True))
    return np.ascontiguousarray(np.concatenate(rows, axis=1), np.float32)


def crop_rectangles(rng: np.random.Generator, count: int) -> list[tuple[float, float, float, float]]:
    """``count`` seeded crops (top, bottom, left, right) keeping at least ``CROP_MIN_AREA`` of the image."""
    found: list[tuple[float, float, float, float]] = []
    while len(found) < count:
        height, width = rng.uniform(*CROP_SIDES, 2)
        if height * width >= CROP_MIN_AREA:
            top, left = rng.uniform(0, 1 - height), rng.uniform(0, 1 - width)
            found.append((top, top + height, left, left + width))
    return found


def mirror_order() -> list[int]:
    """For each window, the window that is its mirror image (the windows must be left-right symmetric)."""
    order = []
    rectangles = window_rectangles(FIELD_SIDE, FIELD_SIDE)  # the strips are centred: alike in every shape
    for top, bottom, left, right in rectangles:
        twins = [n for n, w in enumerate(rectangles) if np.allclose(w, (top, bottom, 1 - right, 1 - left))]
        if not twins:
            raise ValueError(f"window {(top, bottom, left, right)} has no mirror image among the windows")
        order.append(twins[0])
    return order


MIRROR_ORDER = mirror_order()


def mirror(stack: np.ndarray) -> np.ndarray:
    """Window vectors (n, WINDOW_COUNT, 256) of the left-right mirrored images: grids flipped, windows swapped."""
    grids = stack[:, MIRROR_ORDER].reshape(len(stack), WINDOW_COUNT, GRID, GRID)
    return np.ascontiguousarray(grids[..., ::-1].reshape(len(stack), WINDOW_COUNT, DIMENSION))


def mirror_whole(whole: np.ndarray) -> np.ndarray:
    """Whole-image vectors (n, 256) of the mirrored images."""
    return np.ascontiguousarray(whole.reshape(-1, GRID, GRID)[..., ::-1].reshape(-1, DIMENSION))


def normalised(values: np.ndarray) -> np.ndarray:
    """Rows of the last axis divided by their L2 norm (the operators already centred them)."""
    values /= np.linalg.norm(values, axis=-1, keepdims=True)
    return values


def mix(clean: np.ndarray, other: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Each window of ``clean`` (unit) moved to correlation ``rho`` with itself, towards ``other``."""
    apart = other - np.sum(other * clean, axis=-1, keepdims=True) * clean
    apart = normalised(apart)
    rho = rho[:, None, None]
    return np.asarray(rho * clean + np.sqrt(1 - rho * rho) * apart, np.float32)


@dataclass
class Chunk:
    """Generated images: content ids, coefficients, window vectors and the planted pairs among them."""

    ids: np.ndarray
    coefficients: np.ndarray
    vectors: np.ndarray
    pairs: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))

    def whole_queries(self) -> np.ndarray:
        """Two query rows per content, as ``duplicates`` asks: the whole-image vector and its mirror."""
        whole = np.ascontiguousarray(self.vectors[:, 0])
        return np.ascontiguousarray(np.stack([whole, mirror_whole(whole)], axis=1).reshape(-1, DIMENSION))


class Synthesis:
    """The seeded generator of window vectors (see the module docstring)."""

    def __init__(self, seed: int = SEED) -> None:
        self.seed = seed
        basis, self.squared_frequency = cosine_basis()
        self.whole = window_operator(basis, (0.0, 1.0, 0.0, 1.0))
        rectangles = crop_rectangles(np.random.default_rng([seed, CROP_STREAM]), CROP_BANK)
        self.crops = [window_operator(basis, rectangle) for rectangle in rectangles]

    def coefficients(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """Gaussian weights of the cosines, power 1 / f**beta with beta drawn per image."""
        slope = rng.uniform(*SLOPES, count)[:, None]
        scale = self.squared_frequency[None, :] ** (-slope / 2)
        return np.asarray(rng.standard_normal(scale.shape) * scale, np.float32)

    def render(self, coefficients: np.ndarray, operator: np.ndarray) -> np.ndarray:
        """(n, WINDOW_COUNT, 256) unit window vectors of the fields through one operator."""
        return normalised((coefficients @ operator).reshape(len(coefficients), WINDOW_COUNT, DIMENSION))

    def images(self, stream: int, count: int) -> np.ndarray:
        """``count`` fresh unrelated images' window vectors from one random stream."""
        return self.render(self.coefficients(np.random.default_rng([self.seed, stream]), count), self.whole)

    def copies(self, chunk: Chunk, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Near-duplicates of some images of a chunk: edited, cropped or mirrored, then mixed."""
        kinds = rng.choice(len(EDIT_SHARES), size=len(rows), p=list(EDIT_SHARES.values()))
        clean = chunk.vectors[rows].copy()
        banks = rng.integers(len(self.crops), size=len(rows))
        for bank in np.unique(banks[kinds == 1]):
            chosen = (kinds == 1) & (banks == bank)
            clean[chosen] = self.render(chunk.coefficients[rows[chosen]], self.crops[bank])
        clean[kinds == 2] = mirror(clean[kinds == 2])
        other = self.render(self.coefficients(rng, len(rows)), self.whole)
        return mix(clean, other, 1 - (1 - COPY_CORRELATION_MIN) * rng.random(len(rows)) ** 2)

    def chunk(self, number: int, count: int) -> Chunk:
        """Chunk ``number`` (images ``number * CHUNK`` on), with its planted pairs."""
        rng = np.random.default_rng([self.seed, number])
        coefficients = self.coefficients(rng, count)
        chunk = Chunk(
            number * CHUNK + np.arange(count, dtype=np.int64), coefficients, self.render(coefficients, self.whole)
        )
        planted = round(count * COPY_SHARE)
        chosen = rng.choice(count, size=2 * planted, replace=False)
        originals, copies = chosen[:planted], chosen[planted:]
        chunk.vectors[copies] = self.copies(chunk, originals, rng)
        chunk.pairs = np.stack([chunk.ids[originals], chunk.ids[copies]], axis=1)
        return chunk

    def chunks(self, size: int, first: int = 0, last: int | None = None) -> Iterator[Chunk]:
        """The chunks of a collection of ``size`` images (chunks ``first`` to ``last`` excluded)."""
        stop = math.ceil(size / CHUNK) if last is None else last
        for number in range(first, stop):
            yield self.chunk(number, min(CHUNK, size - number * CHUNK))


def vector_ids(content_ids: np.ndarray) -> np.ndarray:
    """Index ids of every window of these contents, in order."""
    return (content_ids[:, None] * WINDOW_SLOTS + np.arange(WINDOW_COUNT)).ravel()


#: (WINDOW_COUNT, WINDOW_COUNT): which window of one image may meet which of another (``search.windows_meet``).
MEET = windows_meet(np.arange(WINDOW_COUNT)[:, None], np.arange(WINDOW_COUNT)[None, :])


def flat_rows(stack: np.ndarray) -> np.ndarray:
    """(n, WINDOW_COUNT, 256) -> C-contiguous (n * WINDOW_COUNT, 256)."""
    return np.ascontiguousarray(stack.reshape(-1, DIMENSION))


def pair_coarse(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Best inner product ``duplicates`` can see per pair: either's whole vector (or mirror) vs the other's windows."""
    best = np.full(len(first), -1.0, np.float32)
    for a, b in ((first, second), (second, first)):
        for whole in (a[:, 0], mirror_whole(np.ascontiguousarray(a[:, 0]))):
            best = np.maximum(best, np.einsum("nd,nwd->nw", whole, b).max(axis=1))
    return best


# -- building the indexes ---------------------------------------------------------


@dataclass
class Queries:
    """Query images (not in the index): window vectors, and the source content of a near-dup (-1: none)."""

    vectors: np.ndarray
    sources: np.ndarray


@dataclass
class Built:
    """One scale's indexes and what the build pass collected."""

    size: int
    compressed: VectorIndex
    flat: VectorIndex | None
    seconds: dict[str, float]
    random: Queries
    near: Queries
    pairs: np.ndarray
    coarse: np.ndarray
    sample: tuple[np.ndarray, np.ndarray, np.ndarray]
    file_bytes: int = 0


def training_sample(synthesis: Synthesis, size: int) -> np.ndarray:
    """Training vectors, as many as the product's database takes: a seeded sample of the first chunks' vectors."""
    wanted = vectors.training_size(size * WINDOW_COUNT)
    wanted = min(wanted, size * WINDOW_COUNT)
    chunks = math.ceil(wanted / WINDOW_COUNT / CHUNK)
    pool = np.concatenate([flat_rows(chunk.vectors) for chunk in synthesis.chunks(size, 0, chunks)])
    rng = np.random.default_rng([SEED, PLAN_STREAM])
    return np.ascontiguousarray(pool[np.sort(rng.choice(len(pool), size=wanted, replace=False))])


def add_timed(
    index: VectorIndex | None, ids: np.ndarray, rows: np.ndarray, seconds: dict[str, float], key: str
) -> None:
    """Add to an index (if any) and count the seconds under ``key``."""
    if index is not None:
        started = time.perf_counter()
        index.add(ids, rows)
        seconds[key] += time.perf_counter() - started


class BuildPass:
    """What one pass over the chunks collects besides the indexes: near-dup queries, planted pairs, a sample."""

    def __init__(self, synthesis: Synthesis, size: int, queries: int, sample_pairs: int) -> None:
        self.synthesis, self.size = synthesis, size
        rng = np.random.default_rng([SEED, PLAN_STREAM, size])
        self.sources = np.sort(rng.choice(size, size=queries, replace=False))
        self.per_chunk = math.ceil(sample_pairs / math.ceil(size / CHUNK))
        self.near: list[np.ndarray] = []
        self.pairs: list[np.ndarray] = []
        self.coarse: list[np.ndarray] = []
        self.sample: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def collect(self, chunk: Chunk) -> None:
        """Keep the chunk's near-dup queries, planted pairs (with their coarse) and sampled pairs."""
        base = int(chunk.ids[0])
        rows = self.sources[(self.sources >= base) & (self.sources < base + len(chunk.ids))] - base
        if len(rows):
            rng = np.random.default_rng([SEED, COPY_QUERY_STREAM, base])
            self.near.append(self.synthesis.copies(chunk, rows, rng))
        local = chunk.pairs - base
        self.pairs.append(chunk.pairs)
        self.coarse.append(pair_coarse(chunk.vectors[local[:, 0]], chunk.vectors[local[:, 1]]))
        picked = local[: self.per_chunk].ravel()
        self.sample.append(
            (
                chunk.ids[picked],
                Chunk(chunk.ids[picked], chunk.coefficients[:0], chunk.vectors[picked]).whole_queries(),
                chunk.pairs[: self.per_chunk],
            )
        )

    def sampled(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(content ids, their two query rows each, the sampled planted pairs)."""
        return tuple(np.concatenate(parts) for parts in zip(*self.sample, strict=True))  # type: ignore[return-value]


def build(synthesis: Synthesis, size: int, args: argparse.Namespace) -> Built:
    """Train the compressed index, then fill it (and the flat one) from one pass over the chunks."""
    seconds = {"train": 0.0, "add_compressed": 0.0, "add_flat": 0.0, "generate": 0.0}
    training = training_sample(synthesis, size)
    started = time.perf_counter()
    compressed = VectorIndex.compressed(DIMENSION, training, lists=vectors.list_count(size * WINDOW_COUNT))
    seconds["train"] = time.perf_counter() - started
    del training
    flat = VectorIndex.empty(DIMENSION) if size <= args.flat_max else None
    collected = BuildPass(synthesis, size, args.queries, args.pair_sample)
    chunks = synthesis.chunks(size)
    while True:
        started = time.perf_counter()
        chunk = next(chunks, None)
        seconds["generate"] += time.perf_counter() - started
        if chunk is None:
            break
        ids, rows = vector_ids(chunk.ids), flat_rows(chunk.vectors)
        add_timed(compressed, ids, rows, seconds, "add_compressed")
        add_timed(flat, ids, rows, seconds, "add_flat")
        collected.collect(chunk)
    random = Queries(synthesis.images(RANDOM_QUERY_STREAM, args.queries), np.full(args.queries, -1, np.int64))
    near = Queries(np.concatenate(collected.near), collected.sources)
    pairs, coarse = np.concatenate(collected.pairs), np.concatenate(collected.coarse)
    return Built(size, compressed, flat, seconds, random, near, pairs, coarse, collected.sampled())


def move_to_disk(built: Built, scratch: Path) -> None:
    """Save the compressed index and load it back as a reader opens it (``mmap=True``)."""
    path = scratch / f"bench-scale-{built.size}.faiss"
    started = time.perf_counter()
    built.compressed.save(path)
    built.seconds["save"] = time.perf_counter() - started
    built.compressed = None  # type: ignore[assignment]
    gc.collect()
    started = time.perf_counter()
    built.compressed = VectorIndex.load(path, mmap=True)
    built.seconds["load"] = time.perf_counter() - started
    built.file_bytes = path.stat().st_size


# -- queries ---------------------------------------------------------------------


def contents_of(ids: np.ndarray) -> np.ndarray:
    """Content ids of index ids (-1 stays -1)."""
    return np.where(ids >= 0, ids // WINDOW_SLOTS, -1)


def best_contents(scores: np.ndarray, contents: np.ndarray, count: int) -> list[int]:
    """The ``count`` contents with the best score anywhere in these result rows."""
    order = np.argsort(-scores, axis=None, kind="stable")
    ranked = contents.ravel()[order]
    ranked = ranked[ranked >= 0]
    _, first = np.unique(ranked, return_index=True)
    return [int(c) for c in ranked[np.sort(first)][:count]]


def leaders(contents: np.ndarray, count: int = WINDOW_LEADERS) -> set[int]:
    """The first ``count`` distinct contents of each result row."""
    found: set[int] = set()
    for row in contents:
        found.update(_distinct(row, count))
    return found


def product_candidates(
    scores: np.ndarray,
    contents: np.ndarray,
    rerank: Callable[[list[int]], list[int]] | None = None,
    edit_contents: np.ndarray | None = None,
) -> list[int]:
    """What ``query`` rescores: the best ``CANDIDATES`` contents, plus each vector's leaders.

    With ``rerank`` (a compressed index), the best ``RERANK_FACTOR`` times as many are put in
    exact order first, as ``search.candidate_contents`` does with the stored vectors.
    ``edit_contents`` are the result rows of the whole vector's corners left out, which add
    their ``EDIT_LEADERS`` only.
    """
    ranked = best_contents(scores, contents, len(contents) * CANDIDATES)
    if rerank is not None:
        ranked = rerank(ranked[: shortlist_length(CANDIDATES, CANDIDATES, compressed=True)])
    lead = leaders(contents)
    if edit_contents is not None:
        lead |= leaders(edit_contents, EDIT_LEADERS)
    return with_leaders(ranked, CANDIDATES, lead)


@dataclass
class Answers:
    """Per query: latency, the product's candidates, and the best 30 contents of the direct vectors."""

    milliseconds: list[float] = field(default_factory=list)
    candidates: list[list[int]] = field(default_factory=list)
    top: list[list[int]] = field(default_factory=list)


def exact_order(exact: VectorIndex, rows: np.ndarray, contents: list[int]) -> list[int]:
    """``contents`` by the exact best inner product of their vectors (from ``exact``) with ``rows``."""
    stored = exact.reconstruct_many(vector_ids(np.asarray(contents, np.int64)))
    products = (rows @ stored.T).reshape(len(rows), len(contents), WINDOW_COUNT)
    meet = MEET[np.arange(len(rows)) % WINDOW_COUNT][:, None, :]  # rows: direct then mirrored windows
    best = np.where(meet, products, -np.inf).max(axis=(0, 2))
    return [contents[i] for i in np.argsort(-best, kind="stable")]


def ask(index: VectorIndex, queries: Queries, count: int, exact: VectorIndex | None = None) -> Answers:
    """Run the first ``count`` queries one at a time, as ``query`` does (its windows and strips, direct and
    mirrored, each with the neighbours it may meet, and the 4 of the whole vector's corners left out, k = 30).

    A compressed index fetches a shortlist of ``RERANK_FACTOR`` times as many contents, as the
    product does. With ``exact`` (the flat index, standing in for the catalog's stored vectors)
    the shortlist is ranked exactly, timed; without it (no flat index at this size) it stays in
    the index's estimated order, and the whole shortlist is kept as the answer checked for
    recall: the exact best 10 found in it are the ones its exact ranking would put first, so
    that recall is the product's, though the ranking is not timed.
    """
    answers = Answers()
    shortlist = shortlist_length(CANDIDATES, CANDIDATES, compressed=index.is_compressed)
    windows = np.arange(WINDOW_COUNT)  # each half of a query's rows: direct, then mirrored

    def search_windows(queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        scores, ids = index.search(queries, k)
        return scores, contents_of(ids), np.where(ids >= 0, ids % WINDOW_SLOTS, -1)

    stacks = np.concatenate([queries.vectors[:count], mirror(queries.vectors[:count])], axis=1)
    for stack in stacks:
        rows = np.ascontiguousarray(stack)
        started = time.perf_counter()
        halves = [
            meeting_neighbours(search_windows, half, windows, shortlist)
            for half in (rows[:WINDOW_COUNT], rows[WINDOW_COUNT:])
        ]
        scores, own = np.concatenate([h[0] for h in halves]), np.concatenate([h[1] for h in halves])
        _corner_scores, corner_ids = index.search(corners_left_out(rows[0], grid=GRID), shortlist)
        contents = np.concatenate([own, contents_of(corner_ids)])
        rerank = None if exact is None else (lambda found, rows=rows: exact_order(exact, rows, found))
        candidates = product_candidates(scores, contents[: len(rows)], rerank, contents[len(rows) :])
        answers.milliseconds.append((time.perf_counter() - started) * 1000)
        answers.candidates.append(candidates)
        direct = best_contents(scores[:WINDOW_COUNT], contents[:WINDOW_COUNT], shortlist)
        if exact is not None:
            direct = exact_order(exact, rows[:WINDOW_COUNT], direct)
        answers.top.append(direct[:CANDIDATES] if exact is not None or not index.is_compressed else direct)
    return answers


def exact_top(synthesis: Synthesis, size: int, stacks: np.ndarray) -> np.ndarray:
    """(q, 10) best contents by exact coarse of each query's direct vectors: numpy over regenerated chunks."""
    query_rows = flat_rows(stacks)
    best = np.full((len(stacks), RECALL_AT), -2.0, np.float32)
    best_ids = np.full((len(stacks), RECALL_AT), -1, np.int64)
    for chunk in synthesis.chunks(size):
        for start in range(0, len(chunk.ids), EXACT_BLOCK):
            block = flat_rows(chunk.vectors[start : start + EXACT_BLOCK])
            products = (query_rows @ block.T).reshape(len(stacks), WINDOW_COUNT, -1, WINDOW_COUNT)
            scores = np.where(MEET[None, :, None, :], products, -np.inf).max(axis=(1, 3))
            ids = np.broadcast_to(chunk.ids[start : start + EXACT_BLOCK], scores.shape)
            merged, merged_ids = np.concatenate([best, scores], axis=1), np.concatenate([best_ids, ids], axis=1)
            keep = np.argpartition(-merged, RECALL_AT - 1, axis=1)[:, :RECALL_AT]
            best, best_ids = np.take_along_axis(merged, keep, 1), np.take_along_axis(merged_ids, keep, 1)
    return best_ids


def recall(answers: Answers, truth: np.ndarray) -> float:
    """Mean share of each query's exact best 10 contents among its index's best 30."""
    shares = [len(set(row.tolist()) & set(top)) / RECALL_AT for row, top in zip(truth, answers.top, strict=False)]
    return float(np.mean(shares)) if shares else float("nan")


def source_found(answers: Answers, sources: np.ndarray) -> float:
    """Share of near-dup queries whose source is among the product's candidates."""
    found = [int(source) in set(c) for source, c in zip(sources, answers.candidates, strict=False)]
    return float(np.mean(found)) if found else float("nan")


def query_report(answers: dict[str, Answers], truth: dict[str, np.ndarray], sources: np.ndarray) -> dict[str, Any]:
    """Latency percentiles, candidate counts and recalls of one index."""
    times = np.concatenate([a.milliseconds for a in answers.values()])
    counts = [len(c) for a in answers.values() for c in a.candidates]
    return {
        "queries": len(times), "p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99)),
        "candidates_mean": float(np.mean(counts)),
        "recall_random": recall(answers["random"], truth["random"]),
        "recall_near": recall(answers["near"], truth["near"]),
        "source_found": source_found(answers["near"], sources),
        "recall_queries": min(len(truth["random"]), len(answers["random"].top)),
    }  # fmt: skip


# -- duplicates ------------------------------------------------------------------


class TimedBatches:
    """``vector_pairs`` batches from regenerated chunks, timing the generation so it can be taken out."""

    def __init__(self, synthesis: Synthesis, size: int, first: int, last: int) -> None:
        self.synthesis, self.size, self.first, self.last = synthesis, size, first, last
        self.seconds = 0.0

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        chunks = self.synthesis.chunks(self.size, self.first, self.last)
        while True:
            started = time.perf_counter()
            chunk = next(chunks, None)
            queries = None if chunk is None else chunk.whole_queries()
            self.seconds += time.perf_counter() - started
            if chunk is None or queries is None:
                return
            for start in range(0, len(chunk.ids), BATCH_CONTENTS):  # the product's batches
                yield chunk.ids[start : start + BATCH_CONTENTS], queries[2 * start : 2 * (start + BATCH_CONTENTS)]


def pair_keys(pairs: Any, size: int) -> np.ndarray:
    """Pairs (a < b) as sorted unique int64 keys a * size + b."""
    array = np.fromiter(itertools.chain.from_iterable(pairs), np.int64, count=2 * len(pairs)).reshape(-1, 2)
    return np.unique(array.min(axis=1) * size + array.max(axis=1))


def all_pairs(index: VectorIndex, synthesis: Synthesis, size: int, total: int) -> tuple[np.ndarray, float]:
    """Candidate pairs found by the contents of the first ``total`` chunks, and seconds (generation excluded)."""
    slice_chunks = max(1, PAIR_SLICE // CHUNK)
    keys, seconds = [], 0.0
    for first in range(0, total, slice_chunks):
        batches = TimedBatches(synthesis, size, first, min(total, first + slice_chunks))
        started = time.perf_counter()
        found = vector_pairs(index, batches, neighbours=DUPLICATE_NEIGHBOURS, min_coarse=DUPLICATE_MIN_COARSE)
        seconds += time.perf_counter() - started - batches.seconds
        keys.append(pair_keys(found, size))
        del found
    return np.unique(np.concatenate(keys)), seconds


def found_share(planted: np.ndarray, keys: np.ndarray, size: int) -> float:
    """Share of planted pairs among the found pair keys."""
    return float(np.isin(pair_keys(planted, size), keys).mean()) if len(planted) else float("nan")


def duplicates_compressed(built: Built, synthesis: Synthesis, costs: dict[str, float], limit: int) -> dict[str, Any]:
    """The compressed index's vector stage, planted pairs found, estimated rescoring.

    With ``limit`` under the size, only the first chunks' contents (at least ``limit``) query and
    their planted pairs (always inside a chunk) are checked; seconds are extrapolated in proportion,
    and pairs from those found between two queried contents (a share ``f**2`` of all, as the
    contents are alike).
    """
    chunks = math.ceil(min(limit, built.size) / CHUNK)
    queried = min(built.size, chunks * CHUNK)
    keys, seconds = all_pairs(built.compressed, synthesis, built.size, chunks)
    share = queried / built.size
    pairs = round(np.count_nonzero(keys % built.size < queried) / share**2)
    rescore = pairs * costs["pair_ms"] / 1000
    inside = built.pairs[built.pairs[:, 1] < queried]
    return {
        "queried_contents": queried, "vector_s": seconds / share, "candidate_pairs": pairs,
        "rescore_s_est": rescore, "total_s_est": seconds / share + rescore,
        "planted_found": found_share(inside, keys, built.size),
        "sample_found": found_share(built.sample[2][built.sample[2][:, 1] < queried], keys, built.size),
    }  # fmt: skip


def duplicates_flat(built: Built) -> dict[str, Any]:
    """The flat index's vector stage on the sampled planted pairs, its time extrapolated to all contents."""
    assert built.flat is not None
    ids, rows, pairs = built.sample
    started = time.perf_counter()
    found = vector_pairs(built.flat, [(ids, rows)], neighbours=DUPLICATE_NEIGHBOURS, min_coarse=DUPLICATE_MIN_COARSE)
    seconds = time.perf_counter() - started
    return {
        "sample_contents": len(ids), "sample_s": seconds, "vector_s": seconds * built.size / max(len(ids), 1),
        "sample_found": found_share(pairs, pair_keys(found, built.size), built.size),
    }  # fmt: skip


# -- one scale -------------------------------------------------------------------

KINDS = ("random", "near")


def index_facts(built: Built) -> dict[str, dict[str, Any]]:
    """Kind, build seconds and bytes per image of both indexes (the flat one only when built)."""
    seconds, size = built.seconds, built.size
    compressed = built.compressed
    facts = {"compressed": {
        "kind": compressed.kind, "build_s": seconds["train"] + seconds["add_compressed"] + seconds.get("save", 0.0),
        "train_s": seconds["train"], "bytes_per_image": compressed.memory_bytes() / size,
        "file_bytes_per_image": built.file_bytes / size if built.file_bytes else None,
    }}  # fmt: skip
    if built.flat is not None:
        facts["flat"] = {"kind": built.flat.kind, "build_s": seconds["add_flat"],
                         "bytes_per_image": built.flat.memory_bytes() / size}  # fmt: skip
    return facts


def query_numbers(
    answers: dict[str, Answers], truth: dict[str, np.ndarray], sources: np.ndarray, costs: dict[str, float]
) -> dict[str, Any]:
    """``query_report`` plus the full pipeline's estimated latency (candidates x rescore cost added)."""
    report = query_report(answers, truth, sources)
    rescoring = report["candidates_mean"] * costs["query_ms"]
    return {**report, "full_p50_ms_est": report["p50_ms"] + rescoring, "full_p99_ms_est": report["p99_ms"] + rescoring}


def first_answers(answers: Answers, count: int) -> Answers:
    """The answers to the first ``count`` queries."""
    return Answers(answers.milliseconds[:count], answers.candidates[:count], answers.top[:count])


def ask_all(
    index: VectorIndex, built: Built, count: int | None, exact: VectorIndex | None = None
) -> dict[str, Answers]:
    """Random and near-dup queries (the first ``count`` of each, or all) against one index."""
    queries = {"random": built.random, "near": built.near}
    return {kind: ask(index, q, count or len(q.vectors), exact) for kind, q in queries.items()}


def bench_scale(synthesis: Synthesis, size: int, args: argparse.Namespace, costs: dict[str, float]) -> dict[str, Any]:
    """Build, query, check recall and find all pairs at one scale; the numbers of both indexes."""
    progress(f"{size:,} images ({size * WINDOW_COUNT:,} vectors): building")
    on_disk = size >= args.disk_from
    built = build(synthesis, size, args)
    rss = {"after_build_gb": rss_gb()}
    if on_disk:
        move_to_disk(built, args.scratch)
        rss["after_load_gb"] = rss_gb()
    result: dict[str, Any] = {"size": size, "product_kind": vectors.choose_index_kind(size * WINDOW_COUNT),
                              "seconds": built.seconds, "on_disk": on_disk, **index_facts(built)}  # fmt: skip
    progress("querying")
    # Re-ranking needs the exact vectors: the flat index holds them when it is built.
    answers = {"compressed": ask_all(built.compressed, built, None, built.flat)}
    if built.flat is not None:
        answers["flat"] = ask_all(built.flat, built, args.flat_queries)
        progress("flat index: duplicates on the sample")
        result["flat"]["duplicates"] = duplicates_flat(built)
    built.flat = None
    gc.collect()
    progress("exact answers by brute force")
    exact = min(args.exact_queries, 100 if on_disk else args.exact_queries)
    truth = {kind: exact_top(synthesis, size, getattr(built, kind).vectors[:exact]) for kind in KINDS}
    for name, by_kind in answers.items():
        result[name].update(query_numbers(by_kind, truth, built.near.sources, costs))
    if "flat" in answers:  # the compressed index on the flat index's queries, for the ratios
        subset = {kind: first_answers(a, args.flat_queries) for kind, a in answers["compressed"].items()}
        result["compressed"]["on_flat_queries"] = query_report(subset, truth, built.near.sources)
    progress("compressed index: duplicates over all contents")
    result["compressed"]["duplicates"] = duplicates_compressed(built, synthesis, costs, args.pair_contents)
    reachable = float(np.mean(built.coarse >= DUPLICATE_MIN_COARSE))
    result["planted"] = {"pairs": len(built.pairs), "reachable": reachable, "sample_pairs": len(built.sample[2])}
    result["rss"] = {**rss, "after_all_gb": rss_gb(), "peak_gb": peak_rss_gb()}
    return result


# -- peers and costs, once per run -------------------------------------------------


def corpus_files(corpus: Path) -> list[Path]:
    """The corpus's photos then figures, sorted."""
    suffixes = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
    return [
        p
        for folder in ("photos", "figures")
        for p in sorted((corpus / folder).iterdir())
        if p.suffix.lower() in suffixes
    ]


def describe_corpus(corpus: Path, count: int) -> list[Side]:
    """Sides (vectors and thumbnails) of up to ``count`` non-flat corpus images, spread over it."""
    files = corpus_files(corpus)
    step = max(1, len(files) // count)
    sides = []
    for path in files[::step][:count]:
        described = describe_file(str(path))
        if described.description is not None and not described.description.flat:
            sides.append(Side.of(described, DEFAULT_SETTINGS))
    return sides


def fresh(side: Side) -> Side:
    """The same image with nothing prepared yet (as ``query`` loads a stored side for every candidate)."""
    return Side(side.vectors, side.thumbnail, DEFAULT_SETTINGS, side.size, side.colour, side.borders)


def rescore_costs(sides: list[Side], queries: int = 10, stored: int = 30) -> dict[str, float]:
    """Milliseconds of ``score_pair``: per query candidate (sides prepared each time) and per cached pair."""
    asking, kept = sides[:queries], sides[queries : queries + stored]
    started = time.perf_counter()
    for side in asking:
        query = fresh(side)
        for other in kept:
            score_pair(query, fresh(other))
    query_ms = (time.perf_counter() - started) * 1000 / (len(asking) * len(kept))
    for side in sides:
        _ = side.prepared, side.prepared_mirrored, side.mirrored_vectors
    chosen = np.random.default_rng(SEED).choice(len(sides), size=(600, 2))
    pairs = [(sides[a], sides[b]) for a, b in chosen.tolist() if a != b][:500]
    started = time.perf_counter()
    for a, b in pairs:
        score_pair(a, b)
    return {"query_ms": query_ms, "pair_ms": (time.perf_counter() - started) * 1000 / len(pairs), "pairs": len(pairs)}


def brute_force(corpus: Path, count: int, size: int = 1_000_000) -> dict[str, float]:
    """The motivating case on ``count`` corpus photos: blur ms per image, matchTemplate ms per pair, extrapolated."""
    photos = [p for p in corpus_files(corpus) if p.parent.name == "photos"][:count]
    started = time.perf_counter()
    thumbs = [brute_blur(p) for p in photos]
    blur_ms = (time.perf_counter() - started) * 1000 / len(thumbs)
    pairs = [(a, b) for n, a in enumerate(thumbs) for b in thumbs[n + 1 :]]
    repeats = max(1, 5000 // len(pairs))
    started = time.perf_counter()
    for _ in range(repeats):
        for a, b in pairs:
            brute_similarity(a, b)
    pair_ms = (time.perf_counter() - started) * 1000 / (repeats * len(pairs))
    return {
        "images": len(thumbs), "blur_ms": blur_ms, "pair_ms": pair_ms, "size": size,
        "query_s": (blur_ms + size * pair_ms) / 1000,
        "all_groups_s": (size * blur_ms + size * (size - 1) / 2 * pair_ms) / 1000,
    }  # fmt: skip


def descriptor_statistics(stack: np.ndarray) -> dict[str, float]:
    """Random-pair inner products (whole, and best of the windows that meet), window-whole correlation, PCA share."""
    whole = stack[:, 0]
    upper = np.triu_indices(len(stack), 1)
    wholes = (whole @ whole.T)[upper]
    rows = flat_rows(stack)
    products = (rows @ rows.T).reshape(len(stack), WINDOW_COUNT, len(stack), WINDOW_COUNT)
    coarse = np.where(MEET[None, :, None, :], products, -np.inf).max(axis=(1, 3))[upper]
    within = np.einsum("nd,nwd->nw", whole, stack[:, 1:]).mean()
    used = rows[np.abs(rows).sum(axis=1) > 0]
    power = np.linalg.svd(used - used.mean(axis=0), compute_uv=False) ** 2
    return {
        "whole_p50": float(np.percentile(wholes, 50)), "whole_p99": float(np.percentile(wholes, 99)),
        "coarse_p50": float(np.percentile(coarse, 50)), "coarse_p99": float(np.percentile(coarse, 99)),
        "window_vs_whole": float(within), "pca32_share": float(power[:32].sum() / power.sum()),
    }  # fmt: skip


def realism(sides: list[Side], synthesis: Synthesis) -> dict[str, dict[str, float]]:
    """Descriptor statistics of the corpus and of as many synthetic images."""
    corpus = np.stack([side.vectors for side in sides]).astype(np.float32)
    return {
        "corpus": descriptor_statistics(corpus),
        "synthetic": descriptor_statistics(synthesis.images(0, len(sides))),
    }


# -- printing --------------------------------------------------------------------


def progress(message: str) -> None:
    """A timestamped line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def rss_gb() -> float:
    """The process's resident memory now, in GB."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9


def peak_rss_gb() -> float:
    """The process's peak resident memory so far, in GB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def print_table(rows: list[list[str]]) -> None:
    """Left-aligned first column, right-aligned others, widths from the content."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)]
        print("  ".join(cells).rstrip())


def cell(value: Any, digits: int = 1) -> str:
    """A number with thousands separators or fixed decimals; '-' for none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def ratio(flat: Any, compressed: Any, *, cost: bool) -> str:
    """How the compressed index compares: 'N x less/more' for a cost, compressed / flat for a quality."""
    if flat is None or compressed is None or not compressed or not flat:
        return "-"
    if not cost:
        return f"{compressed / flat:.3f}"
    return f"{flat / compressed:,.1f}x less" if flat >= compressed else f"{compressed / flat:,.1f}x more"


#: Rows of a scale's table: label, where the value is, decimals, and whether lower is better.
ROWS = [
    ("build s (train + add)", ("build_s",), 1, True),
    ("RAM bytes per image (memory_bytes)", ("bytes_per_image",), 0, True),
    ("file bytes per image", ("file_bytes_per_image",), 0, True),
    ("query p50 ms (vector stage)", ("p50_ms",), 2, True),
    ("query p99 ms (vector stage)", ("p99_ms",), 2, True),
    ("candidates per query", ("candidates_mean",), 1, True),
    ("query p50 ms full pipeline (est.)", ("full_p50_ms_est",), 1, True),
    ("query p99 ms full pipeline (est.)", ("full_p99_ms_est",), 1, True),
    ("candidate recall@10, random", ("recall_random",), 4, False),
    ("candidate recall@10, near-dup", ("recall_near",), 4, False),
    ("near-dup source among candidates", ("source_found",), 4, False),
    ("duplicates vector stage s", ("duplicates", "vector_s"), 1, True),
    ("candidate pairs", ("duplicates", "candidate_pairs"), 0, True),
    ("rescoring s (est.)", ("duplicates", "rescore_s_est"), 0, True),
    ("all groups s (est.)", ("duplicates", "total_s_est"), 0, True),
    ("planted pairs found, all", ("duplicates", "planted_found"), 4, False),
    ("planted pairs found, sample", ("duplicates", "sample_found"), 4, False),
]


#: Quality rows whose ratio compares the compressed index on the flat index's (fewer) queries.
SUBSET_KEYS = {"recall_random", "recall_near", "source_found"}


def lookup(side: dict[str, Any] | None, path: tuple[str, ...]) -> Any:
    """A nested value, or None."""
    value: Any = side
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def print_scale(result: dict[str, Any]) -> None:
    """One scale: flat and compressed side by side, with ratios."""
    flat, compressed = result.get("flat"), result["compressed"]
    planted = result["planted"]
    where = "saved and loaded back as a reader opens it" if result["on_disk"] else "in RAM"
    print(f"\n{result['size']:,} images ({result['size'] * WINDOW_COUNT:,} vectors); the product would pick: "
          f"{result['product_kind']}; compressed index {where}")  # fmt: skip
    print(f"  flat: {flat['kind'] if flat else 'not built (over --flat-max)'}\n  compressed: {compressed['kind']}")
    rows = [["", "flat (exact)", "compressed", "compressed vs flat (same queries)"]]
    for label, path, digits, cost in ROWS:
        values = [lookup(flat, path), lookup(compressed, path)]
        same = lookup(compressed, ("on_flat_queries", *path)) if path[0] in SUBSET_KEYS else values[1]
        rows.append([label, *(cell(v, digits) for v in values), ratio(values[0], same, cost=cost)])
    print_table(rows)
    flat_note = ""
    if flat:
        sample = flat["duplicates"]
        flat_note = f"; flat vector stage from {sample['sample_contents']:,} contents in {sample['sample_s']:.1f} s"
    print(f"  queries: {compressed['queries']} (flat {flat['queries'] if flat else 0}), checked on the first "
          f"{compressed['recall_queries']} of each kind{flat_note}")  # fmt: skip
    if not flat:
        shortlist = shortlist_length(CANDIDATES, CANDIDATES, compressed=True)
        print(f"  no flat index at this size: the compressed index's shortlist of {shortlist} "
              "contents is not ranked exactly (the product ranks it by the catalog's vectors): recall is checked "
              "on the whole shortlist, which gives the product's, and the latency lacks that ranking")  # fmt: skip
    queried = compressed["duplicates"]["queried_contents"]
    if queried < result["size"]:
        print(f"  compressed duplicates: {queried:,} contents queried; seconds and pairs extrapolated to all")
    print(f"  planted pairs: {planted['pairs']:,}, sample {planted['sample_pairs']:,}; share whose exact coarse "
          f"reaches {DUPLICATE_MIN_COARSE} (ignoring the neighbour limit): {planted['reachable']:.4f}")  # fmt: skip
    rss = result["rss"]
    print("  RSS GB: " + ", ".join(f"{k.removesuffix('_gb')} {v:.2f}" for k, v in rss.items()))


def print_realism(stats: dict[str, dict[str, float]]) -> None:
    """Synthetic descriptors against the corpus's."""
    keys = list(stats["corpus"])
    print(
        "realism of the synthetic descriptors (random pairs; window = mean inner product of the other windows with 0)"
    )
    print_table([["", *keys], *([name, *(f"{s[k]:.3f}" for k in keys)] for name, s in stats.items())])


def print_peers(brute: dict[str, float], costs: dict[str, float], results: list[dict[str, Any]]) -> None:
    """Rescoring costs and the brute force, extrapolated to 10^6 images, against nearindex."""
    print(f"\nrescoring (score_pair, {DEFAULT_SETTINGS.rescore_side} px): {costs['query_ms']:.2f} ms per query "
          f"candidate (sides prepared each time), {costs['pair_ms']:.2f} ms per pair of duplicates")  # fmt: skip
    size = brute["size"]
    print(f"brute force (blur 43x43 sigma 21 at full size, matchTemplate), {brute['images']} photos, one process: "
          f"{brute['blur_ms']:.1f} ms per image, {brute['pair_ms'] * 1000:.1f} us per pair")  # fmt: skip
    at = next((r for r in results if r["size"] == size), None)
    rows = [["at 10^6 images", "brute force (extrapolated)", "nearindex compressed", "brute / nearindex"]]
    ours_query = at["compressed"]["full_p50_ms_est"] / 1000 if at else None
    ours_groups = at["compressed"]["duplicates"]["total_s_est"] if at else None
    rows.append(
        ["one query s", cell(brute["query_s"], 2), cell(ours_query, 3), ratio(brute["query_s"], ours_query, cost=True)]
    )
    rows.append(["all groups s", cell(brute["all_groups_s"], 0), cell(ours_groups, 0),
                 ratio(brute["all_groups_s"], ours_groups, cost=True)])  # fmt: skip
    rows.append(
        ["all groups days", cell(brute["all_groups_s"] / 86400, 1), cell(ours_groups and ours_groups / 86400, 4), ""]
    )
    print_table(rows)


def targets(results: list[dict[str, Any]]) -> list[tuple[str, Any, str]]:
    """(target, measured value, verdict) for each target of the issue that this run measured."""
    by_size = {r["size"]: r["compressed"] for r in results}
    found: list[tuple[str, Any, str]] = []
    if 1_000_000 in by_size:
        at = by_size[1_000_000]
        found.append(
            (
                "query p50 full pipeline (est.) < 10 ms at 10^6",
                at["full_p50_ms_est"],
                verdict(at["full_p50_ms_est"] < 10),
            )
        )
        found.append(("  (vector stage alone) < 10 ms at 10^6", at["p50_ms"], verdict(at["p50_ms"] < 10)))
        groups = at["duplicates"]["total_s_est"]
        found.append(("all groups (est.) < 300 s at 10^6", groups, verdict(groups < 300)))
    if 10_000_000 in by_size:
        at = by_size[10_000_000]
        found.append(
            ("RAM bytes per image <= 300 at 10^7", at["bytes_per_image"], verdict(at["bytes_per_image"] <= 300))
        )
        groups = at["duplicates"]["total_s_est"]
        found.append(("all groups (est.) < 3600 s at 10^7", groups, verdict(groups < 3600)))
    for size, at in by_size.items():
        for kind in ("random", "near"):
            value = at[f"recall_{kind}"]
            found.append((f"candidate recall@10 {kind} >= 0.98 at {size:,}", value, verdict(value >= 0.98)))
        share = at["duplicates"]["planted_found"]
        found.append((f"planted pairs found >= 0.999 at {size:,}", share, verdict(share >= 0.999)))
    return found


def verdict(met: bool) -> str:
    """The word printed for a target."""
    return "met" if met else "MISSED"


def print_targets(found: list[tuple[str, Any, str]]) -> None:
    """The targets table."""
    print("\ntargets (compressed index)")
    print_table([["target", "measured", ""], *([name, cell(value, 4), word] for name, value, word in found)])


# -- main ------------------------------------------------------------------------


def parse_arguments() -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", help="comma-separated image counts (default 100000,1000000; quick 20000)")
    parser.add_argument("--ten-million", action="store_true", help="also 10^7 images (disk, about 2 GB of file)")
    parser.add_argument("--quick", action="store_true", help="20,000 images and fewer queries, a smoke run")
    parser.add_argument("--queries", type=int, help="queries of each kind (default 250; quick 100)")
    parser.add_argument("--exact-queries", type=int, help="of which checked by brute force (default all; 100 on disk)")
    parser.add_argument("--flat-queries", type=int, help="queries of each kind timed on the flat index (default 30)")
    parser.add_argument(
        "--pair-sample", type=int, help="planted pairs the flat index's duplicates run on (default 250)"
    )
    parser.add_argument(
        "--pair-contents", type=int, help="contents whose duplicates are searched, the rest extrapolated (default all)"
    )
    parser.add_argument(
        "--flat-max", type=int, default=2_000_000, help="largest scale with a flat index (1 KB per vector)"
    )
    parser.add_argument("--disk-from", type=int, default=5_000_000, help="scales from here save and reload the index")
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()), help="where index files go")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="public corpus (fetched if missing)")
    parser.add_argument(
        "--corpus-images", type=int, default=300, help="corpus images described for realism and rescoring"
    )
    parser.add_argument("--brute-images", type=int, default=12, help="corpus photos timed for the brute force")
    parser.add_argument("--json", type=Path, help="also write all numbers here")
    args = parser.parse_args()
    quick = args.quick
    args.sizes = [int(s) for s in (args.sizes or ("20000" if quick else "100000,1000000")).split(",")]
    args.sizes += [10_000_000] if args.ten_million else []
    args.queries = args.queries or (100 if quick else 250)
    args.exact_queries = args.exact_queries or args.queries
    args.flat_queries = args.flat_queries or (20 if quick else 30)
    args.pair_sample = args.pair_sample or (100 if quick else 250)
    args.pair_contents = args.pair_contents or max(args.sizes)
    return args


def main() -> None:
    """Measure the peers and costs, then each scale; print the tables and write the JSON."""
    args = parse_arguments()
    started = time.perf_counter()
    ensure_corpus(args.corpus)
    sides = describe_corpus(args.corpus, args.corpus_images)
    synthesis = Synthesis()
    output: dict[str, Any] = {"realism": realism(sides, synthesis), "costs": rescore_costs(sides)}
    output["brute_force"] = brute_force(args.corpus, args.brute_images)
    print(f"{os.cpu_count()} cores; {WINDOW_COUNT} window vectors of {DIMENSION} floats per image; "
          f"duplicates: {DUPLICATE_NEIGHBOURS} neighbours, min coarse {DUPLICATE_MIN_COARSE}\n")  # fmt: skip
    print_realism(output["realism"])
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-", dir=args.scratch) as scratch:
        args.scratch = Path(scratch)
        for size in args.sizes:
            results.append(bench_scale(synthesis, size, args, output["costs"]))
            print_scale(results[-1])
    print_peers(output["brute_force"], output["costs"], results)
    output.update(scales=results, targets=targets(results), seconds=time.perf_counter() - started)
    print_targets(output["targets"])
    print(f"\n{time.perf_counter() - started:.0f} s in all; peak RSS {peak_rss_gb():.2f} GB")
    if args.json:
        args.json.write_text(json.dumps(output, indent=2) + "\n")


if __name__ == "__main__":
    main()
