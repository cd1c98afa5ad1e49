"""Shared fixtures: generated image collections on disk and open databases.

Everything is real: images are drawn by ``nearindex.synthetic`` with fixed
seeds, encoded to files by OpenCV, and stored in a real SQLite catalog and a
real FAISS index in a temporary directory.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

import nearindex
from nearindex import synthetic
from nearindex.catalog import NewContent
from nearindex.settings import WINDOW_COUNT

#: Edits applied to each edited original in the standard collection.
EDIT_NAMES = ("crop90", "crop75", "half", "jpeg30", "caption", "border", "gamma", "shift")


@dataclass
class Collection:
    """A generated folder of images.

    Attributes:
        root: The folder holding every image of the collection.
        originals: Path of each original, by seed.
        edits: For edited originals, edit name -> path of the edited copy.
        unrelated: Images with no copy anywhere (other scenes and textures).
    """

    root: Path
    originals: dict[int, Path] = field(default_factory=dict)
    edits: dict[int, dict[str, Path]] = field(default_factory=dict)
    unrelated: list[Path] = field(default_factory=list)

    @property
    def all_files(self) -> list[Path]:
        """Every image file of the collection."""
        return sorted(self.root.rglob("*.*"))


def write_collection(
    root: Path, *, seeds: range = range(8), edited: tuple[int, ...] = (0, 1, 2), textures: int = 3
) -> Collection:
    """Write a scene per seed (those in ``edited`` with every edit) and ``textures`` textures."""
    collection = Collection(root=root)
    root.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        image = synthetic.make_scene(seed)
        path = root / f"scene{seed:02d}.jpg"
        synthetic.write_image(path, image)
        collection.originals[seed] = path
        if seed in edited:
            collection.edits[seed] = {}
            for name in EDIT_NAMES:
                edit_path = root / "edits" / f"scene{seed:02d}-{name}.png"
                edit_path.parent.mkdir(exist_ok=True)
                synthetic.write_image(edit_path, synthetic.EDITS[name](image))
                collection.edits[seed][name] = edit_path
        else:
            collection.unrelated.append(path)
    for seed in range(textures):
        path = root / f"texture{seed:02d}.png"
        synthetic.write_image(path, synthetic.make_texture(1000 + seed))
        collection.unrelated.append(path)
    return collection


@pytest.fixture(scope="session")
def _pristine_collection(tmp_path_factory: pytest.TempPathFactory) -> Collection:
    return write_collection(tmp_path_factory.mktemp("pristine") / "images")


@pytest.fixture
def collection(tmp_path: Path, _pristine_collection: Collection) -> Collection:
    """A fresh standard collection under ``tmp_path/images`` (a copy: tests may edit it)."""
    root = tmp_path / "images"
    shutil.copytree(_pristine_collection.root, root)
    moved = {
        seed: root / path.relative_to(_pristine_collection.root)
        for seed, path in _pristine_collection.originals.items()
    }
    return Collection(
        root=root,
        originals=moved,
        edits={
            seed: {name: root / path.relative_to(_pristine_collection.root) for name, path in edits.items()}
            for seed, edits in _pristine_collection.edits.items()
        },
        unrelated=[root / path.relative_to(_pristine_collection.root) for path in _pristine_collection.unrelated],
    )


def new_content(seed: int, dimension: int, *, flat: bool = False) -> NewContent:
    """A catalog content with random unit window vectors and a small random thumbnail."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((WINDOW_COUNT, dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return NewContent(
        content_hash=hashlib.sha256(f"content {seed}".encode()).digest(),
        width=80, height=60, flat=flat, descriptor=vectors.tobytes(),
        thumbnail=rng.integers(0, 256, 48, dtype=np.uint8).tobytes(), thumb_width=8, thumb_height=6,
    )  # fmt: skip


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where a test's database directory goes (not created)."""
    return tmp_path / "db"


@pytest.fixture
def database(db_path: Path) -> Iterator[nearindex.NearIndex]:
    """An open, writable, empty database; closed after the test."""
    with nearindex.open(db_path) as opened:
        yield opened


@pytest.fixture
def filled(database: nearindex.NearIndex, collection: Collection) -> nearindex.NearIndex:
    """The standard collection added to the database (in-process decoding)."""
    report = database.add(collection.root, workers=0)
    assert not report.failed
    return database
