"""Rendering results for the terminal: aligned tables and JSON documents.

Pure functions from result objects to text; the CLI decides where it goes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from .api import Info
from .calibration import Calibration
from .database import CheckReport
from .difference import Difference
from .duplicates import DuplicateGroup
from .errors import Failed
from .ingest import IngestReport
from .relation import Relation
from .search import Comparison, Match


def to_json(document: dict[str, Any]) -> str:
    """A JSON document, indented for people, parseable by tools."""
    return json.dumps(document, indent=2, ensure_ascii=False)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces, with a header line."""
    cells = [list(headers)] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def _cell(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def failure_line(failure: Failed) -> str:
    """The one-line stderr form of a failure: ``nearindex: PATH: reason``."""
    return f"nearindex: {failure.path}: {failure.reason}"


def ingest_summary(report: IngestReport) -> str:
    """One line of counts: added / updated / unchanged / moved / removed / failed."""
    return ", ".join(f"{count} {name}" for name, count in report.counts().items())


def ingest_json(report: IngestReport) -> dict[str, Any]:
    """An ingest report as a JSON-ready dict."""
    return {**report.counts(), "failed": [{"path": f.path, "reason": f.reason} for f in report.failed]}


def matches_text(matches: Sequence[Match]) -> str:
    """Query results as a table (or a line saying there are none)."""
    if not matches:
        return "no similar images"
    rows = [(m.score, m.coarse, relation_text(m.relation, mirrored=m.mirrored), m.path) for m in matches]
    return table(["score", "coarse", "relation", "path"], rows)


def relation_text(relation: Relation, *, mirrored: bool = False) -> str:
    """A relation in a few words: ``crop of the query (320x240+10+20), x1.00, edited, mirrored``.

    Boxes are width x height + x + y, in pixels of the query (crop) or of the match (contains).
    """
    words = [relation.kind]
    if relation.box is not None:
        x, y, width, height = relation.box
        where = f"{width}x{height}+{x}+{y}"
        words[0] = f"crop of the query ({where})" if relation.kind == "crop" else f"contains the query (at {where})"
    if relation.scale is not None and relation.kind != "exact":
        words.append(f"x{relation.scale:.2f}")
    if relation.edited:
        words.append("edited")
    if mirrored:
        words.append("mirrored")
    return ", ".join(words)


def matches_json(query: str, matches: Sequence[Match]) -> dict[str, Any]:
    """Query results as a JSON-ready dict."""
    return {"query": query, "results": [asdict(m) for m in matches]}


def comparison_text(result: Comparison) -> str:
    """A comparison as labelled lines."""
    verdict = "duplicate" if result.duplicate else "not a duplicate"
    relation = relation_text(result.relation, mirrored=result.mirrored)
    return f"score    {result.score:.3f}\ncoarse   {result.coarse:.3f}\nverdict  {verdict}\nrelation {relation}"


def comparison_json(result: Comparison) -> dict[str, Any]:
    """A comparison as a JSON-ready dict."""
    return asdict(result)


def difference_text(result: Difference) -> str:
    """A diff as labelled lines, one per region."""
    head = [
        f"score     {result.score:.3f}",
        f"aligned   by {result.aligned_by}; B covers {result.overlap_a:.0f} % of A, "
        f"A covers {result.overlap_b:.0f} % of B",
        f"regions   {len(result.regions) or 'none: nothing changed'}",
    ]
    rows = [
        f"  A {_box(region.box_a)}  B {_box(region.box_b)}  difference {region.score:.2f}" for region in result.regions
    ]
    return "\n".join(head + rows)


def _box(box: tuple[int, int, int, int]) -> str:
    x, y, width, height = box
    return f"{width}x{height} at ({x}, {y})"


def difference_json(result: Difference) -> dict[str, Any]:
    """A diff as a JSON-ready dict: transform (B's pixels to A's), overlaps in %, score, regions."""
    return asdict(result)


def groups_text(groups: Sequence[DuplicateGroup]) -> str:
    """Duplicate groups as blocks: a header line, then the paths indented."""
    if not groups:
        return "no duplicate groups"
    blocks = [
        f"group {n}: {len(g.paths)} images, score {g.score:.3f}\n"
        + "\n".join(f"  {p}" + ("  (edited)" if p in g.edited else "") for p in g.paths)
        for n, g in enumerate(groups, 1)
    ]
    return "\n".join(blocks)


def groups_json(groups: Sequence[DuplicateGroup]) -> dict[str, Any]:
    """Duplicate groups as a JSON-ready dict."""
    return {"groups": [{"paths": list(g.paths), "score": g.score, "edited": list(g.edited)} for g in groups]}


def info_text(info: Info) -> str:
    """Database info as labelled lines."""
    borders = f"left out (contents that had some: {info.bordered})" if info.trim_borders else "kept (an older database)"
    rows = [
        ("database", info.directory), ("images", info.images), ("contents", info.contents),
        ("flat", info.flat), ("failed", info.failed), ("vectors", info.vectors), ("index", info.index_kind),
        ("generation", info.generation), ("schema", info.schema), ("catalog bytes", info.catalog_bytes),
        ("index bytes", info.index_bytes), ("bytes/image", f"index {info.index_bytes_per_image:,.0f}, "
        f"catalog {info.catalog_bytes_per_image:,.0f}"),
        ("colours", f"contents keeping theirs: {info.coloured} (little detail, or beside a band of it)"),
        ("borders", borders),
        ("grid", f"{info.grid}x{info.grid}"), ("thumbnail", f"{info.thumb_side} px"),
        ("threshold", f"{info.duplicate_threshold:.4f} ({'calibrated here' if info.calibrated else 'default'})"),
    ]  # fmt: skip
    return "\n".join(f"{name:<14}{value}" for name, value in rows)


def info_json(info: Info) -> dict[str, Any]:
    """Database info as a JSON-ready dict."""
    document = asdict(info)
    document["failures"] = [{"path": f.path, "reason": f.reason} for f in info.failures]
    return document


def calibration_text(result: Calibration, *, stored: bool) -> str:
    """A calibration as labelled lines and a table of the share of each edit found."""
    head = [
        f"threshold    {result.threshold:.4f}" + ("  (stored as this database's default)" if stored else ""),
        f"false pairs  {result.measured_fpr:.4%} of {result.negatives} at or above it (asked {result.target_fpr:.4%})",
        f"true pairs   {result.tpr:.1%} of {result.positives} edits of {result.images} images at or above it",
    ]
    rows = [(name, f"{share:.1%}") for name, share in result.per_edit.items()]
    return "\n".join(head) + "\n\n" + table(["edit", "found"], rows)


def calibration_json(result: Calibration, *, stored: bool) -> dict[str, Any]:
    """A calibration as a JSON-ready dict."""
    return {**result.as_record(), "stored": stored}


def check_text(report: CheckReport) -> str:
    """A check report as lines."""
    if not report.problems:
        return "ok: catalog and index agree"
    lines = [f"problem: {p}" for p in report.problems]
    lines.append(
        "repaired: index rebuilt from the catalog" if report.repaired else "run 'nearindex check --repair' to rebuild"
    )
    return "\n".join(lines)


def check_json(report: CheckReport) -> dict[str, Any]:
    """A check report as a JSON-ready dict."""
    return {"ok": report.ok, "problems": list(report.problems), "repaired": report.repaired}
