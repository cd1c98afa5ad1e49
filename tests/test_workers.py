"""The describing workers: files go in bounded chunks, and a worker imports only what describing needs.

A ``spawn``-ed worker imports ``nearindex.workers`` and re-runs the program's main
script, which for the console script is the generated launcher of its entry point.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import tomllib
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from nearindex.filetree import FoundFile
from nearindex.workers import CHUNK_BYTES, CHUNK_FILES, chunks_of

sizes = st.lists(st.integers(min_value=0, max_value=3 * CHUNK_BYTES), max_size=60)


@given(sizes)
def test_chunks_keep_every_file_in_order_within_the_bounds(sizes: list[int]) -> None:
    files = [FoundFile(f"/photos/{i}.jpg", size, 0, True) for i, size in enumerate(sizes)]
    chunks = list(chunks_of(iter(files)))
    assert [found for chunk in chunks for found in chunk] == files
    for chunk in chunks:
        assert 1 <= len(chunk) <= CHUNK_FILES
        assert len(chunk) == 1 or sum(found.size for found in chunk) <= CHUNK_BYTES
    for chunk, following in itertools.pairwise(chunks):
        # A chunk is closed only when the next file would not fit in it.
        assert len(chunk) == CHUNK_FILES or sum(f.size for f in chunk) + following[0].size > CHUNK_BYTES


def test_a_worker_imports_neither_the_database_nor_the_index() -> None:
    probe = "import sys, nearindex.workers; print(sorted({'sqlalchemy', 'alembic', 'faiss'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"


def test_the_console_script_imports_nothing_heavy_until_it_runs() -> None:
    pyproject = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    module, _, function = pyproject["project"]["scripts"]["nearindex"].partition(":")
    probe = (
        f"import sys, {module}; assert callable({module}.{function}); "
        "print(sorted({'sqlalchemy', 'alembic', 'faiss', 'typer', 'rich'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"


def test_the_public_names_are_there_when_used() -> None:
    probe = "import nearindex; print(nearindex.open.__module__, nearindex.Match.__module__)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.split() == ["nearindex.api", "nearindex.search"]
