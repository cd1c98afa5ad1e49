"""The describing workers: files go in bounded chunks, and a worker imports only what describing needs.

A ``spawn``-ed worker imports ``nearindex.workers`` and re-runs the program's main
script, which for the console script is the generated launcher of its entry point.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import tomllib
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from nearindex import synthetic
from nearindex.filetree import FoundFile
from nearindex.workers import CHUNK_BYTES, CHUNK_FILES, chunks_of, crashed

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


CRASHING_RUN = """
import json, os, sys, time
import nearindex.workers as workers

describe = workers.describe_safely


def describe_or_die(found, settings, known):
    if "crash" in found.path:
        time.sleep(0.3)
        os._exit(3)  # the worker process dies, as a decoder crash kills it
    return describe(found, settings, known)


# A spawn-ed worker re-runs this script, so it dies on that file too.
workers.describe_safely = describe_or_die

if __name__ == "__main__":
    from nearindex.filetree import walk
    from nearindex.settings import DEFAULT_SETTINGS

    files = sorted((f for f in walk([sys.argv[1]])), key=lambda f: f.path)
    outcomes = []
    for result in workers.describe_files(files, settings=DEFAULT_SETTINGS, known_hashes=frozenset(), workers=1):
        time.sleep(0.02)  # a slow consumer: the worker may die while results wait to be taken
        outcomes.append([os.path.basename(result.path), getattr(result, "reason", None)])
    print(json.dumps(sorted(outcomes)))
"""


def test_a_file_that_kills_its_worker_fails_alone_and_the_rest_of_its_chunk_is_described(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    # More files than the chunks in flight, so chunks are still sent after the worker died.
    names = [f"scene{i:02d}.jpg" for i in range(80)]
    names[45] = "crash.jpg"
    for seed, name in enumerate(names):
        synthetic.write_image(folder / name, synthetic.make_scene(seed, width=160, height=120))
    script = tmp_path / "crashing_run.py"
    script.write_text(CRASHING_RUN)
    result = subprocess.run(
        [sys.executable, str(script), str(folder)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    outcomes = dict(json.loads(result.stdout))
    assert sorted(outcomes) == sorted(names)  # every file reported once
    assert outcomes.pop("crash.jpg") == crashed("crash.jpg").reason
    assert set(outcomes.values()) == {None}


def fresh_python(code: str) -> str:
    """What ``code`` prints in a new interpreter (nothing imported before it)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60).stdout


def test_a_worker_imports_neither_the_database_nor_the_index() -> None:
    probe = "import sys, nearindex.workers; print(sorted({'sqlalchemy', 'alembic', 'faiss'} & set(sys.modules)))"
    assert fresh_python(probe).strip() == "[]"


def test_the_console_script_imports_nothing_heavy_until_it_runs() -> None:
    pyproject = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    module, _, function = pyproject["project"]["scripts"]["nearindex"].partition(":")
    probe = (
        f"import sys, {module}; assert callable({module}.{function}); "
        "print(sorted({'sqlalchemy', 'alembic', 'faiss', 'typer', 'rich'} & set(sys.modules)))"
    )
    assert fresh_python(probe).strip() == "[]"


def test_the_public_names_are_there_when_used() -> None:
    probe = "import nearindex; print(nearindex.open.__module__, nearindex.Match.__module__)"
    assert fresh_python(probe).split() == ["nearindex.api", "nearindex.search"]
