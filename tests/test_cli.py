"""The user-visible contract of the ``nearindex`` command line.

Exit codes (0 the command ran, 1 it failed as a whole, 2 usage), the exact
one-line ``nearindex: PATH: reason`` messages on stderr, ``--json`` documents
that parse, and no progress output when the streams are pipes. Everything is
real: generated image files, a real database directory, the real Typer app in
process through ``CliRunner`` and, where the process matters (exit status of a
usage error, environment, terminals and pipes), ``python -m nearindex``.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner, Result

from nearindex import synthetic
from nearindex.cli import app
from nearindex.settings import WINDOW_COUNT

from .conftest import Collection, write_collection

runner = CliRunner()

#: Commands that print a result and so must offer ``--json``.
LISTING_COMMANDS = ("query", "duplicates", "info", "check", "add", "sync", "remove", "compare")
#: Commands that only read a database (they must never create one).
READ_ONLY_COMMANDS = ("query", "duplicates", "info", "check")
#: Reason nearindex.images gives for a zero-byte file.
EMPTY_FILE_REASON = "empty file"
#: Reason nearindex.images gives for a file with no known image signature.
NOT_AN_IMAGE_REASON = "not an image (unknown format)"
SUBPROCESS_TIMEOUT = 120


# -- helpers -----------------------------------------------------------------------------
def invoke(db: Path, *args: str) -> Result:
    """Run ``nearindex --db DB ARGS...`` in process."""
    return runner.invoke(app, ["--db", str(db), *args])


def lines(text: str) -> list[str]:
    """Non-empty lines of an output stream."""
    return [line for line in text.splitlines() if line.strip()]


def summary(
    added: int = 0, updated: int = 0, unchanged: int = 0, moved: int = 0, removed: int = 0, failed: int = 0
) -> str:
    """The one-line ingest summary nearindex prints on stdout."""
    return f"{added} added, {updated} updated, {unchanged} unchanged, {moved} moved, {removed} removed, {failed} failed"


def assert_no_traceback(result: Result) -> None:
    """A failure is reported as lines, never as an escaped Python exception."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.stderr
    assert "Traceback" not in result.stdout


def assert_fails_with(result: Result, line: str) -> None:
    """Exit 1 with exactly ``line`` on stderr and no traceback."""
    assert_no_traceback(result)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert lines(result.stderr) == [line]


def assert_fails_naming(result: Result, path: Path | str) -> None:
    """Exit 1 with one ``nearindex: PATH: reason`` line on stderr and no traceback."""
    assert_no_traceback(result)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    [line] = lines(result.stderr)
    assert line.startswith(f"nearindex: {path}: ")
    assert len(line) > len(f"nearindex: {path}: ")


def parse_json(result: Result) -> Any:
    """The stdout of a successful ``--json`` run, parsed."""
    assert_no_traceback(result)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def families(collection: Collection) -> list[set[str]]:
    """Each edited original with its edits, as sets of path strings."""
    return [
        {str(collection.originals[seed])} | {str(p) for p in edits.values()} for seed, edits in collection.edits.items()
    ]


def run_module(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m nearindex ARGS...`` with stdout and stderr as pipes."""
    return subprocess.run(
        [sys.executable, "-m", "nearindex", *args], capture_output=True, text=True,
        env=env, cwd=cwd, timeout=SUBPROCESS_TIMEOUT, check=False,
    )  # fmt: skip


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without NEARINDEX_DB, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if key != "NEARINDEX_DB"}
    return {**env, **extra}


def add_bad_files(root: Path, original: Path) -> dict[str, Path]:
    """Write a truncated JPEG, a text file named like a JPEG and a zero-byte PNG."""
    data = original.read_bytes()
    bad = {"truncated": root / "truncated.jpg", "text": root / "bad.jpg", "empty": root / "empty.png"}
    bad["truncated"].write_bytes(data[: len(data) // 2])
    bad["text"].write_text("this is not a picture\n")
    bad["empty"].write_bytes(b"")
    return bad


@dataclass
class Stored:
    """A collection with three bad files, added twice through the CLI to one database."""

    collection: Collection
    bad: dict[str, Path]
    db: Path
    first: Result
    second: Result

    @property
    def good(self) -> int:
        """Number of good image files."""
        return len(self.collection.all_files) - len(self.bad)


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Stored:
    """The standard collection plus bad files, stored (read-only use by tests)."""
    root = tmp_path_factory.mktemp("cli")
    collection = write_collection(root / "images")
    bad = add_bad_files(collection.root, collection.originals[0])
    db = root / "db"
    first = invoke(db, "add", "--workers", "0", str(collection.root))
    second = invoke(db, "add", "--workers", "0", str(collection.root))
    return Stored(collection, bad, db, first, second)


@pytest.fixture
def small(tmp_path: Path) -> Collection:
    """A small collection (3 scenes, one with every edit, 1 texture) for tests that change the database."""
    return write_collection(tmp_path / "small", seeds=range(3), edited=(0,), textures=1)


@pytest.fixture
def small_db(small: Collection, db_path: Path) -> Path:
    """The small collection added through the CLI."""
    result = invoke(db_path, "add", "--workers", "0", str(small.root))
    assert result.exit_code == 0, result.stderr
    return db_path


# -- add -----------------------------------------------------------------------------------
def test_add_reports_counts_and_one_line_per_bad_file(stored: Stored) -> None:
    result = stored.first
    assert_no_traceback(result)
    assert result.exit_code == 0
    assert lines(result.stdout) == [summary(added=stored.good, failed=3)]
    errors = lines(result.stderr)
    assert len(errors) == 3
    assert f"nearindex: {stored.bad['empty']}: {EMPTY_FILE_REASON}" in errors
    assert f"nearindex: {stored.bad['text']}: {NOT_AN_IMAGE_REASON}" in errors
    [truncated] = [line for line in errors if line.startswith(f"nearindex: {stored.bad['truncated']}: ")]
    assert "truncated" in truncated.removeprefix(f"nearindex: {stored.bad['truncated']}: ")


def test_second_add_changes_nothing(stored: Stored) -> None:
    result = stored.second
    assert_no_traceback(result)
    assert result.exit_code == 0
    [line] = lines(result.stdout)
    assert line.startswith(f"0 added, 0 updated, {stored.good} unchanged, 0 moved, 0 removed, ")


def test_add_json_lists_counts_and_failures(stored: Stored) -> None:
    document = parse_json(invoke(stored.db, "add", "--workers", "0", "--json", str(stored.collection.root)))
    assert set(document) == {"added", "updated", "unchanged", "moved", "removed", "failed"}
    assert (document["added"], document["unchanged"], document["removed"]) == (0, stored.good, 0)
    assert all(set(item) == {"path", "reason"} for item in document["failed"])
    reasons = {item["path"]: item["reason"] for item in document["failed"]}
    assert set(reasons) == {str(p) for p in stored.bad.values()}
    assert reasons[str(stored.bad["empty"])] == EMPTY_FILE_REASON


def test_add_of_a_missing_path_fails(tmp_path: Path, db_path: Path) -> None:
    missing = tmp_path / "missing"
    assert_fails_with(invoke(db_path, "add", str(missing)), f"nearindex: {missing}: no such file or directory")


def test_add_of_a_missing_path_spelled_with_dotdot_fails(tmp_path: Path, db_path: Path) -> None:
    spelled = tmp_path / "elsewhere" / ".." / "missing"
    missing = tmp_path / "missing"
    assert_fails_with(invoke(db_path, "add", str(spelled)), f"nearindex: {missing}: no such file or directory")


def test_add_of_good_and_missing_paths_still_succeeds(small: Collection, tmp_path: Path, db_path: Path) -> None:
    missing = tmp_path / "missing"
    result = invoke(db_path, "add", "--workers", "0", str(small.root), str(missing))
    assert_no_traceback(result)
    assert result.exit_code == 0
    assert lines(result.stdout) == [summary(added=len(small.all_files), failed=1)]
    assert lines(result.stderr) == [f"nearindex: {missing}: no such file or directory"]


# -- query ---------------------------------------------------------------------------------
def test_query_json_lists_matches_best_first(stored: Stored) -> None:
    image = stored.collection.originals[0]
    document = parse_json(invoke(stored.db, "query", str(image), "--json"))
    assert set(document) == {"query", "results"}
    assert document["query"] == str(image)
    results = document["results"]
    assert results and all(set(match) == {"path", "score", "coarse", "mirrored", "relation"} for match in results)
    scores = [match["score"] for match in results]
    assert scores == sorted(scores, reverse=True)
    exact = {"kind": "exact", "box": None, "scale": 1.0, "edited": False}
    assert results[0] == {"path": str(image), "score": 1.0, "coarse": 1.0, "mirrored": False, "relation": exact}
    by_path = {match["path"]: match for match in results}
    assert by_path[str(stored.collection.edits[0]["jpeg30"])]["relation"]["kind"] == "resized"
    crop = by_path[str(stored.collection.edits[0]["crop75"])]["relation"]
    assert crop["kind"] == "crop" and len(crop["box"]) == 4


def test_query_k_limits_the_results(stored: Stored) -> None:
    document = parse_json(invoke(stored.db, "query", str(stored.collection.originals[1]), "-k", "2", "--json"))
    assert 1 <= len(document["results"]) <= 2


def test_query_text_is_a_table(stored: Stored) -> None:
    result = invoke(stored.db, "query", str(stored.collection.originals[0]), "-k", "3")
    assert_no_traceback(result)
    assert result.exit_code == 0
    table = lines(result.stdout)
    assert table[0].split() == ["score", "coarse", "relation", "path"]
    assert len(table) == 4
    assert table[1].split()[-1] == str(stored.collection.originals[0])


def test_query_of_a_missing_file_fails(stored: Stored, tmp_path: Path) -> None:
    missing = tmp_path / "missing.jpg"
    assert_fails_naming(invoke(stored.db, "query", str(missing)), missing)


def test_query_of_a_non_image_fails(stored: Stored, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    assert_fails_with(invoke(stored.db, "query", str(text)), f"nearindex: {text}: {NOT_AN_IMAGE_REASON}")


def test_query_k_zero_is_a_usage_error(stored: Stored) -> None:
    result = invoke(stored.db, "query", "-k", "0", str(stored.collection.originals[0]))
    assert_no_traceback(result)
    assert result.exit_code == 2


# -- compare -------------------------------------------------------------------------------
def test_compare_calls_an_edit_a_duplicate_and_a_texture_not(stored: Stored, tmp_path: Path) -> None:
    original, edit = stored.collection.originals[0], stored.collection.edits[0]["jpeg30"]
    texture = next(p for p in stored.collection.unrelated if p.name.startswith("texture"))
    same = parse_json(invoke(tmp_path / "nodb", "compare", str(original), str(edit), "--json"))
    assert set(same) == {"a", "b", "score", "coarse", "duplicate", "mirrored", "relation"}
    assert same["relation"]["kind"] == "resized"
    assert (same["a"], same["b"], same["duplicate"]) == (str(original), str(edit), True)
    other = parse_json(invoke(tmp_path / "nodb", "compare", str(original), str(texture), "--json"))
    assert other["duplicate"] is False
    assert isinstance(other["score"], float) and other["score"] < same["score"]


def test_compare_needs_and_creates_no_database(stored: Stored, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEARINDEX_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    original, edit = stored.collection.originals[1], stored.collection.edits[1]["crop90"]
    result = runner.invoke(app, ["compare", str(original), str(edit)])
    assert_no_traceback(result)
    assert result.exit_code == 0
    assert "verdict  duplicate" in lines(result.stdout)
    assert lines(result.stdout)[-1].startswith("relation crop of the query (")
    result = invoke(tmp_path / "nodb", "compare", str(original), str(edit))
    assert result.exit_code == 0
    assert sorted(os.listdir(tmp_path)) == []


def test_compare_of_a_missing_file_fails(stored: Stored, tmp_path: Path) -> None:
    missing = tmp_path / "missing.png"
    assert_fails_naming(
        invoke(tmp_path / "nodb", "compare", str(stored.collection.originals[0]), str(missing)), missing
    )
    assert not (tmp_path / "nodb").exists()


# -- duplicates, info, check ---------------------------------------------------------------
def test_duplicates_json_groups_stay_within_one_family(stored: Stored) -> None:
    document = parse_json(invoke(stored.db, "duplicates", "--json"))
    assert set(document) == {"groups"}
    groups = document["groups"]
    assert groups
    known = families(stored.collection)
    for group in groups:
        assert set(group) == {"paths", "score", "edited"} and set(group["edited"]) <= set(group["paths"])
        assert isinstance(group["score"], float) and len(group["paths"]) >= 2
        assert any(set(group["paths"]) <= family for family in known), group["paths"]
    for seed, edits in stored.collection.edits.items():
        pair = {str(stored.collection.originals[seed]), str(edits["jpeg30"])}
        assert any(pair <= set(group["paths"]) for group in groups)


def test_duplicates_text_lists_groups(stored: Stored) -> None:
    result = invoke(stored.db, "duplicates")
    assert_no_traceback(result)
    assert result.exit_code == 0
    assert result.stdout.startswith("group 1: ")


def test_info_json_counts_images_and_failures(stored: Stored) -> None:
    document = parse_json(invoke(stored.db, "info", "--json"))
    assert document["images"] == stored.good
    assert document["failed"] == 3
    assert {item["path"] for item in document["failures"]} == {str(p) for p in stored.bad.values()}
    index_file = next(stored.db.glob("vectors.*.faiss"))
    assert document["index_bytes_per_image"] == index_file.stat().st_size / document["contents"]
    # Eight 256-float window vectors per image, plus FAISS's id map.
    vectors = WINDOW_COUNT * 256 * 4  # float32 vectors and their int64 ids
    assert vectors <= document["index_bytes_per_image"] < vectors + WINDOW_COUNT * 8 + 512


def test_check_on_a_healthy_database(stored: Stored) -> None:
    result = invoke(stored.db, "check")
    assert_no_traceback(result)
    assert result.exit_code == 0
    assert result.stdout.startswith("ok")
    document = parse_json(invoke(stored.db, "check", "--json"))
    assert document["ok"] is True
    assert document["problems"] == []


# -- remove and sync -------------------------------------------------------------------------
def test_remove_forgets_a_stored_image(small: Collection, small_db: Path) -> None:
    gone = small.originals[2]
    result = invoke(small_db, "remove", str(gone))
    assert_no_traceback(result)
    assert result.exit_code == 0
    assert lines(result.stdout) == [summary(removed=1)]
    assert parse_json(invoke(small_db, "info", "--json"))["images"] == len(small.all_files) - 1
    matches = parse_json(invoke(small_db, "query", str(gone), "--json"))["results"]
    assert str(gone) not in {match["path"] for match in matches}


def test_remove_json_of_a_folder(small: Collection, small_db: Path) -> None:
    edits = small.root / "edits"
    document = parse_json(invoke(small_db, "remove", str(edits), "--json"))
    assert document["removed"] == len(small.edits[0])
    assert document["failed"] == []


def test_remove_of_a_path_not_in_the_database_fails(small: Collection, small_db: Path, tmp_path: Path) -> None:
    stranger = tmp_path / "never-added.jpg"
    assert_fails_with(invoke(small_db, "remove", str(stranger)), f"nearindex: {stranger}: not in the database")


def test_sync_forgets_a_deleted_image(small: Collection, small_db: Path) -> None:
    small.originals[2].unlink()
    result = invoke(small_db, "sync", "--workers", "0", str(small.root))
    assert_no_traceback(result)
    assert result.exit_code == 0
    assert lines(result.stdout) == [summary(unchanged=len(small.all_files), removed=1)]


def test_sync_json_reports_a_moved_image(small: Collection, small_db: Path) -> None:
    small.originals[2].rename(small.root / "renamed.jpg")
    document = parse_json(invoke(small_db, "sync", "--workers", "0", "--json", str(small.root)))
    expected = {"added": 0, "updated": 0, "unchanged": len(small.all_files) - 1, "moved": 1, "removed": 0, "failed": []}
    assert document == expected


def test_sync_forgets_the_failure_of_a_deleted_file(small: Collection, db_path: Path) -> None:
    empty = small.root / "empty.png"
    empty.write_bytes(b"")
    assert invoke(db_path, "add", "--workers", "0", str(small.root)).exit_code == 0
    assert parse_json(invoke(db_path, "info", "--json"))["failed"] == 1
    empty.unlink()
    assert invoke(db_path, "sync", "--workers", "0", str(small.root)).exit_code == 0
    document = parse_json(invoke(db_path, "info", "--json"))
    assert (document["failed"], document["failures"]) == (0, [])


# -- bad databases -------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["add", "query", "info"])
def test_a_regular_file_as_database_fails(command: str, stored: Stored, tmp_path: Path) -> None:
    not_a_db = tmp_path / "file.db"
    not_a_db.write_text("not a database\n")
    argument = {"add": [str(stored.collection.root)], "query": [str(stored.collection.originals[0])], "info": []}
    assert_fails_naming(invoke(not_a_db, command, *argument[command]), not_a_db)
    assert not_a_db.read_text() == "not a database\n"


@pytest.mark.parametrize("command", READ_ONLY_COMMANDS)
def test_reading_a_missing_database_fails_and_creates_nothing(command: str, stored: Stored, tmp_path: Path) -> None:
    missing = tmp_path / "nodb"
    argument = [str(stored.collection.originals[0])] if command == "query" else []
    assert_fails_naming(invoke(missing, command, *argument), missing)
    assert not missing.exists()


# -- help and options ------------------------------------------------------------------------
COMMANDS = typer.main.get_command(app).commands  # type: ignore[attr-defined]


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert set(LISTING_COMMANDS) | {"demo"} <= set(COMMANDS)
    for name in COMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(name: str) -> None:
    result = runner.invoke(app, [name, "--help"])
    assert_no_traceback(result)
    assert result.exit_code == 0
    assert "Usage" in result.stdout


@pytest.mark.parametrize("name", [*LISTING_COMMANDS, "demo"])
def test_every_listing_command_accepts_json(name: str) -> None:
    options = {opt for param in COMMANDS[name].params for opt in param.opts}
    assert "--json" in options
    assert "--json" in runner.invoke(app, [name, "--help"]).stdout


# -- demo ------------------------------------------------------------------------------------
def test_demo_prints_groups_and_json(tmp_path: Path, db_path: Path) -> None:
    folder = tmp_path / "demo"
    result = invoke(db_path, "demo", "--folder", str(folder))
    assert_no_traceback(result)
    assert result.exit_code == 0, result.stderr
    assert "group 1: " in result.stdout
    document = parse_json(invoke(db_path, "demo", "--folder", str(folder), "--json"))
    assert {"add", "groups", "query", "results"} <= set(document)
    assert document["groups"] and document["results"]
    assert document["add"]["failed"] == []


# -- real processes ----------------------------------------------------------------------------
def test_unknown_option_is_a_usage_error(tmp_path: Path) -> None:
    result = run_module("--db", str(tmp_path / "db"), "add", "--no-such-option", str(tmp_path), env=clean_env())
    assert result.returncode == 2
    assert result.stdout == ""
    assert "--no-such-option" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "db").exists()


def test_environment_variable_chooses_the_database(small: Collection, tmp_path: Path) -> None:
    chosen = tmp_path / "from-env"
    env = clean_env(NEARINDEX_DB=str(chosen))
    added = run_module("add", "--workers", "0", str(small.root), env=env, cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == summary(added=len(small.all_files))
    assert not (tmp_path / "nearindex-db").exists()
    info = run_module("info", "--json", env=env, cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    document = json.loads(info.stdout)
    assert (document["directory"], document["images"]) == (str(chosen), len(small.all_files))


def test_no_progress_output_when_piped(stored: Stored, db_path: Path) -> None:
    result = run_module("--db", str(db_path), "add", "--workers", "0", str(stored.collection.root), env=clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout == summary(added=stored.good, failed=3) + "\n"
    assert "\r" not in result.stderr and "\x1b" not in result.stderr
    assert "\u2501" not in result.stderr  # rich's bar character
    assert all(line.startswith("nearindex: ") for line in result.stderr.splitlines())
    assert len(result.stderr.splitlines()) == 3


def _drain(fd: int, into: list[bytes]) -> None:
    """Read a pty master until the other side is closed (EIO on Linux)."""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            return
        if not chunk:
            return
        into.append(chunk)


def run_with_terminal_stderr(args: list[str]) -> tuple[int, str, str]:
    """Run a command with stderr on a pseudo-terminal and stdout piped: (exit code, stdout, what the terminal got)."""
    master, slave = pty.openpty()
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=slave, env=clean_env(), text=True)
    os.close(slave)
    chunks: list[bytes] = []
    reader = threading.Thread(target=_drain, args=(master, chunks))
    reader.start()
    try:
        stdout, _ = process.communicate(timeout=SUBPROCESS_TIMEOUT)
    finally:
        reader.join(timeout=SUBPROCESS_TIMEOUT)
        os.close(master)
    return process.returncode, stdout, b"".join(chunks).decode("utf-8", "replace")


def test_progress_bar_goes_to_a_terminal_stderr_never_to_piped_stdout(stored: Stored, db_path: Path) -> None:
    add = ["add", "--workers", "0", str(stored.collection.root)]
    code, stdout, terminal = run_with_terminal_stderr([sys.executable, "-m", "nearindex", "--db", str(db_path), *add])
    assert code == 0
    assert stdout == summary(added=stored.good, failed=3) + "\n"
    assert "describing" in terminal


#: Images in the Ctrl-C test: two and a half commit batches.
COUNT_PAST_ONE_BATCH = 640


def test_ctrl_c_keeps_committed_work_and_exits_130(tmp_path: Path) -> None:
    images = tmp_path / "many"
    images.mkdir()
    # More files than one commit batch (ingest.BATCH_ITEMS), so the first commit comes mid-run.
    for seed in range(COUNT_PAST_ONE_BATCH):
        synthetic.write_image(images / f"s{seed:03d}.jpg", synthetic.make_scene(seed, width=160, height=120))
    db = tmp_path / "db"
    argv = [sys.executable, "-m", "nearindex", "--db", str(db), "add", str(images), "--workers", "1"]
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=_default_sigint,  # a background launcher (nohup, `cmd &`) leaves SIGINT ignored
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline and _stored_files(db) == 0:
        time.sleep(0.05)
    if process.poll() is not None:
        pytest.skip("the add finished before it could be interrupted")
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    if process.returncode == 0 and stdout.startswith(f"{COUNT_PAST_ONE_BATCH} added"):
        pytest.skip("the add finished before the interrupt arrived (a loaded machine)")
    assert process.returncode == 130
    match = re.fullmatch(r"nearindex: interrupted; committed (\d+) added, .* failed\n", stderr)
    assert match, stderr
    committed = int(match.group(1))
    rerun = subprocess.run([*argv[:-2], "--workers", "0"], capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0
    assert rerun.stdout.startswith(f"{COUNT_PAST_ONE_BATCH - committed} added, 0 updated, {committed} unchanged")


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stored_files(db: Path) -> int:
    """Files committed so far, read through a separate SQLite connection."""
    catalog = db / "catalog.sqlite3"
    if not catalog.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(catalog, timeout=1)) as connection:
            return int(connection.execute("SELECT count(*) FROM files").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_max_pixels_refuses_larger_images_by_their_header(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    synthetic.write_image(folder / "small.jpg", synthetic.make_scene(1, width=320, height=240))
    synthetic.write_image(folder / "large.jpg", synthetic.make_scene(2, width=640, height=480))
    document = parse_json(
        invoke(tmp_path / "db", "add", "--workers", "0", "--max-pixels", "100000", str(folder), "--json")
    )
    assert document["added"] == 1
    assert document["failed"] == [
        {"path": str(folder / "large.jpg"), "reason": "image too large (640 x 480 pixels, limit 100000)"}
    ]
