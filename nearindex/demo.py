"""``nearindex demo``: a small generated collection with edited copies.

Writes seeded scenes and textures, some with edited copies (crop, caption,
re-encode, downscale, border...), adds them to a database, and answers a
query with a new edit that is not in the collection.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import synthetic
from .api import NearIndex
from .duplicates import DuplicateGroup
from .ingest import IngestReport
from .progress import Progress
from .search import Match

#: Originals in the demo collection, and the edits given to the first few.
DEMO_SCENES = 16
DEMO_TEXTURES = 4
DEMO_EDITS = ("crop75", "caption", "jpeg30", "half", "border", "crop75+caption+jpeg50")


@dataclass(frozen=True)
class DemoResult:
    """What the demo did and found."""

    folder: str
    report: IngestReport
    groups: list[DuplicateGroup]
    query: str
    matches: list[Match]


def write_demo_collection(folder: Path) -> Path:
    """Write the demo images under ``folder/collection``; return the query image.

    Deterministic: the same files every time (existing files are rewritten).
    """
    collection = folder / "collection"
    collection.mkdir(parents=True, exist_ok=True)
    for seed in range(DEMO_SCENES):
        scene = synthetic.make_scene(seed)
        synthetic.write_image(collection / f"scene{seed:02d}.jpg", scene)
        if seed < len(DEMO_EDITS):
            edit = DEMO_EDITS[seed]
            synthetic.write_image(
                collection / f"scene{seed:02d}-{edit.replace('+', '-')}.jpg", synthetic.EDITS[edit](scene)
            )
    for seed in range(DEMO_TEXTURES):
        synthetic.write_image(collection / f"texture{seed:02d}.png", synthetic.make_texture(100 + seed))
    query = folder / "query-screenshot-of-scene00.jpg"
    synthetic.write_image(query, synthetic.screenshot(synthetic.make_scene(0), seed=1))
    return query


def run_demo(database: NearIndex, folder: Path, *, progress: Progress | None = None) -> DemoResult:
    """Write the demo collection, add it, and find its duplicates and a query's matches."""
    query = write_demo_collection(folder)
    report = database.add(folder / "collection", progress=progress)
    return DemoResult(str(folder), report, database.duplicates(), str(query), database.query(query, k=5))
