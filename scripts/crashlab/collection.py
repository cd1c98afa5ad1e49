"""The image folders and template databases that crash trials start from.

Everything lives under one *slot* directory, reused by every trial a process runs: the catalog
stores absolute paths, so a template database is only valid for the image folder it was built
from. Templates are built lazily, once, and copied per trial with ``shutil.copytree`` (which keeps
mtimes to the nanosecond, so stored files stay "unchanged").
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import nearindex
from nearindex import synthetic
from nearindex.catalog import Batch, FileRecord, NewContent
from nearindex.database import CATALOG_NAME, Database
from nearindex.intake import hash_content
from nearindex.settings import WINDOW_COUNT
from nearindex.vectors import index_files

REPO = Path(__file__).resolve().parents[2]
FIXTURE_0001 = REPO / "tests" / "fixtures" / "schema-0001-db"
#: Stored paths of the made-up contents that make a database big (no such files exist).
FAKE_ROOT = "/nonexistent/crash-trials"
EDIT_NAMES = ("crop75", "caption", "jpeg30", "gamma")

Files = dict[str, bytes]  # path -> content hash


@dataclass(frozen=True)
class Scale:
    """How big the generated material is.

    Attributes:
        scenes: 320x240 JPEG scenes in the collection.
        edited: Scenes that also get an edited PNG copy per edit in ``EDIT_NAMES``.
        textures: PNG textures.
        copies: Byte-identical copies of scenes (one content, two paths).
        fake_contents: Made-up contents (random vectors) in the "big" templates, so that
            loading, rebuilding and saving the index take measurable time.
    """

    scenes: int = 60
    edited: int = 6
    textures: int = 6
    copies: int = 4
    fake_contents: int = 1500


FULL_SCALE = Scale()
TEST_SCALE = Scale(scenes=24, edited=2, textures=2, copies=2, fake_contents=300)


def write_collection(root: Path, scale: Scale) -> None:
    """Write scenes, edits, textures, exact copies and two bad files under ``root``."""
    (root / "edits").mkdir(parents=True, exist_ok=True)
    (root / "copies").mkdir(exist_ok=True)
    for seed in range(scale.scenes):
        scene = synthetic.make_scene(seed, width=320, height=240)
        synthetic.write_image(root / f"scene{seed:03d}.jpg", scene)
        if seed < scale.edited:
            for name in EDIT_NAMES:
                synthetic.write_image(root / "edits" / f"scene{seed:03d}-{name}.png", synthetic.EDITS[name](scene))
    for seed in range(scale.textures):
        synthetic.write_image(
            root / f"texture{seed:02d}.png", synthetic.make_texture(1000 + seed, width=256, height=256)
        )
    for seed in range(scale.copies):
        shutil.copy2(root / f"scene{seed:03d}.jpg", root / "copies" / f"copy-of-scene{seed:03d}.jpg")
    good = (root / "scene000.jpg").read_bytes()
    (root / "broken.jpg").write_bytes(good[: len(good) // 2])
    (root / "notes.png").write_text("not an image\n")


def mutate_for_sync(root: Path, scale: Scale) -> None:
    """Turn a collection into what ``sync`` should find: deletions, changes, moves and new files."""
    last = scale.scenes - 1
    for seed in range(last - 2, last + 1):  # deleted
        (root / f"scene{seed:03d}.jpg").unlink()
    for seed in range(last - 5, last - 2):  # changed in place
        synthetic.write_image(root / f"scene{seed:03d}.jpg", synthetic.make_scene(500 + seed, width=320, height=240))
    (root / "moved").mkdir()
    for seed in range(last - 8, last - 5):  # moved (same bytes, new path)
        os.replace(root / f"scene{seed:03d}.jpg", root / "moved" / f"scene{seed:03d}.jpg")
    (root / "new").mkdir()
    for seed in range(10):
        synthetic.write_image(
            root / "new" / f"new{seed:02d}.jpg", synthetic.make_scene(700 + seed, width=320, height=240)
        )


def good_files(root: Path) -> Files:
    """Every image file under ``root`` that nearindex should store, with its content hash."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name not in ("broken.jpg", "notes.png"):
            found[str(path)] = hash_content(path.read_bytes())
    return found


def bad_files(root: Path) -> set[str]:
    """The files under ``root`` that nearindex must report as failures."""
    return {str(root / "broken.jpg"), str(root / "notes.png")}


def stored_files(database: Path) -> Files:
    """Path -> content hash of every stored file, read with plain read-only sqlite3."""
    uri = f"file:{database / CATALOG_NAME}?mode=ro"
    with sqlite3.connect(uri, uri=True) as connection:
        query = "SELECT files.path, contents.content_hash FROM files JOIN contents ON files.content_id = contents.id"
        rows = dict(connection.execute(query).fetchall())
    connection.close()
    return rows


def add_fake_contents(database: Path, count: int, *, seed: int = 7) -> None:
    """Store ``count`` made-up contents (random unit window vectors), one fake path each."""
    rng = np.random.default_rng(seed)
    with Database.open(database) as db:
        for start in range(0, count, 500):
            contents = [
                _fake_content(rng, number, db.settings.dimension) for number in range(start, min(count, start + 500))
            ]
            files = [
                FileRecord(f"{FAKE_ROOT}/{n:05d}.jpg", 1000 + n, n, c.content_hash)
                for n, c in enumerate(contents, start)
            ]
            db.write(Batch(contents=contents, files=files))


def _fake_content(rng: np.random.Generator, number: int, dimension: int) -> NewContent:
    vectors = rng.standard_normal((WINDOW_COUNT, dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return NewContent(
        content_hash=hash_content(f"fake content {number}".encode()), width=320, height=240, flat=False,
        descriptor=vectors.tobytes(), thumbnail=rng.integers(0, 256, 48, dtype=np.uint8).tobytes(),
        thumb_width=8, thumb_height=6,
    )  # fmt: skip


def delete_index_files(database: Path) -> None:
    """Remove every index file, so the next open must rebuild the index from the catalog."""
    for path in index_files(database).values():
        path.unlink()


def add_in_process(database: Path, *paths: Path) -> None:
    """Add files or folders to a database in this process (building templates)."""
    with nearindex.open(database) as db:
        db.add(*paths, workers=0)


@dataclass
class Slot:
    """One process's working area: image folders, lazily built templates, the trial database.

    Attributes:
        root: The slot directory.
        scale: Size of the generated material.
    """

    root: Path
    scale: Scale = FULL_SCALE
    _built: set[str] = field(default_factory=set)

    @property
    def images(self) -> Path:
        """The collection ``add`` trials read (never modified)."""
        return self.root / "images"

    @property
    def sync_images(self) -> Path:
        """The collection ``sync`` trials read: the sync template's folder after changes."""
        return self.root / "sync-images"

    @property
    def database(self) -> Path:
        """Where each trial's database is put."""
        return self.root / "db"

    def template(self, name: str) -> Path:
        """A template database directory (built on first use); see ``TEMPLATES``."""
        path = self.root / "templates" / name
        if name not in self._built:
            if path.exists():
                shutil.rmtree(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            TEMPLATES[name](self, path)
            self._built.add(name)
        return path

    def ensure_images(self) -> None:
        """Write the ``add`` collection once."""
        if not self.images.exists():
            write_collection(self.images, self.scale)

    def fresh_database(self, template: str | None) -> Path:
        """Replace the trial database with a copy of a template (or nothing)."""
        if self.database.exists():
            shutil.rmtree(self.database)
        if template is not None:
            shutil.copytree(self.template(template), self.database)
        return self.database


def _build_big(slot: Slot, path: Path) -> None:
    add_fake_contents(path, slot.scale.fake_contents)


def _build_full(slot: Slot, path: Path) -> None:
    shutil.copytree(slot.template("big"), path)
    slot.ensure_images()
    add_in_process(path, slot.images)


def _build_half(slot: Slot, path: Path) -> None:
    """Big plus the first half of the collection, with the index file gone (a crashed run's leftovers)."""
    shutil.copytree(slot.template("big"), path)
    slot.ensure_images()
    scenes = sorted(slot.images.glob("scene*.jpg"))
    add_in_process(path, *scenes[: len(scenes) // 2])
    delete_index_files(path)


def _build_sync(slot: Slot, path: Path) -> None:
    shutil.copytree(slot.template("big"), path)
    if slot.sync_images.exists():
        shutil.rmtree(slot.sync_images)
    write_collection(slot.sync_images, slot.scale)
    add_in_process(path, slot.sync_images)
    mutate_for_sync(slot.sync_images, slot.scale)


def _build_stale(slot: Slot, path: Path) -> None:
    shutil.copytree(slot.template("full"), path)
    delete_index_files(path)


def _build_fixture(_slot: Slot, path: Path) -> None:
    shutil.copytree(FIXTURE_0001, path)


#: Template name -> builder(slot, destination).
TEMPLATES: dict[str, Callable[[Slot, Path], None]] = {
    "big": _build_big,
    "full": _build_full,
    "half": _build_half,
    "sync": _build_sync,
    "stale": _build_stale,
    "fixture-0001": _build_fixture,
}
