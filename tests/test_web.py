"""The web app's JSON API through FastAPI's test client, on a real database of generated images.

The contract: the same JSON documents as the CLI's ``--json``; a faked copy uploaded
finds its original first, flagged edited; uploads are size-limited, spooled outside the
collection and deleted; only stored images are read; nothing is ever written to the
collection or the database; every error is ``{"error": "one line"}`` with a 4xx status.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import nearindex
from nearindex import synthetic
from nearindex.cli import app as cli_app
from nearindex.web import create_app

from .conftest import Collection

#: The seed of an original with no edited copy in the collection: the faked copy is new.
FAKED_SEED = 5
JPEG_MAGIC, PNG_MAGIC = b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"


@dataclass
class Served:
    """A test client on a closed, filled database, and what the test needs to know."""

    client: TestClient
    collection: Collection
    db_path: Path
    faked: Path


def write_faked_copy(path: Path, seed: int = FAKED_SEED) -> Path:
    """A copy of scene ``seed`` with a pasted patch of a texture (the "faked" case), outside the collection."""
    scene = synthetic.make_scene(seed)
    synthetic.write_image(path, synthetic.paste_patch(scene, synthetic.make_texture(7), area=0.15))
    return path


def fill_database(db_path: Path, collection: Collection) -> None:
    """Add the collection, then close the database (as an ``add`` run would)."""
    with nearindex.open(db_path) as database:
        assert not database.add(collection.root, workers=0).failed


@pytest.fixture
def served(collection: Collection, db_path: Path, tmp_path: Path) -> Iterator[Served]:
    fill_database(db_path, collection)
    with TestClient(create_app(db_path)) as client:
        yield Served(client, collection, db_path, write_faked_copy(tmp_path / "faked.jpg"))


def upload(path: Path, name: str | None = None) -> dict[str, tuple[str, bytes, str]]:
    return {"file": (name or path.name, path.read_bytes(), "image/jpeg")}


def assert_one_line_error(response: Any, status: int) -> str:
    """The response has ``status`` and a JSON body ``{"error": "one line"}``; returns the line."""
    assert response.status_code == status, response.text
    document = response.json()
    assert set(document) == {"error"} and "\n" not in document["error"] and document["error"]
    return str(document["error"])


# -- reading ---------------------------------------------------------------------------------
def test_info_is_the_cli_document(served: Served) -> None:
    document = served.client.get("/api/info").json()
    assert document["images"] == len(served.collection.all_files)
    assert document["directory"] == str(served.db_path) and document["failures"] == []


def test_a_faked_upload_finds_its_original_first_and_flags_it_edited(served: Served) -> None:
    response = served.client.post("/api/query", params={"k": 3}, files=upload(served.faked))
    assert response.status_code == 200
    document = response.json()
    assert document["query"] == "faked.jpg" and len(document["results"]) == 3
    best = document["results"][0]
    assert best["path"] == str(served.collection.originals[FAKED_SEED])
    assert best["relation"]["edited"] is True
    assert best["score"] > max(r["score"] for r in document["results"][1:])


def test_duplicates_groups_each_original_with_its_edits(served: Served) -> None:
    groups = [set(g["paths"]) for g in served.client.get("/api/duplicates").json()["groups"]]
    for seed, edits in served.collection.edits.items():
        caption = str(edits["caption"])
        assert any({str(served.collection.originals[seed]), caption} <= group for group in groups)


def test_diff_of_two_stored_images_gives_the_regions_and_a_picture(served: Served) -> None:
    pair = {"a": str(served.collection.originals[0]), "b": str(served.collection.edits[0]["caption"])}
    document = served.client.get("/api/diff", params=pair).json()
    assert {"transform", "overlap_a", "overlap_b", "score", "regions", "aligned_by"} == set(document)
    assert document["regions"], "a caption is a changed region"
    picture = served.client.get("/api/diff.png", params=pair)
    assert picture.headers["content-type"] == "image/png" and picture.content.startswith(PNG_MAGIC)


def test_diff_of_a_stored_image_and_an_upload(served: Served) -> None:
    original = str(served.collection.originals[FAKED_SEED])
    response = served.client.post("/api/diff", data={"a": original}, files=upload(served.faked))
    document = response.json()
    assert response.status_code == 200 and (document["a"], document["b"]) == (original, "faked.jpg")
    assert len(document["regions"]) >= 1 and document["picture"].startswith("data:image/png;base64,")


def test_a_stored_image_is_served_as_a_small_jpeg(served: Served) -> None:
    stored = served.collection.originals[0]
    for path in (str(stored), str(stored.parent / "edits" / ".." / stored.name)):
        response = served.client.get("/image", params={"path": path, "side": 100})
        assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
        assert response.content.startswith(JPEG_MAGIC)


def _saved(served: Served, data: bytes) -> Path:
    path = served.collection.root.parent / "thumbnail.jpg"
    path.write_bytes(data)
    return path


def test_the_page_and_its_scripts_are_served(served: Served) -> None:
    page = served.client.get("/")
    assert page.status_code == 200 and 'id="search-file"' in page.text
    assert served.client.get("/static/app.js").status_code == 200


# -- refusals ---------------------------------------------------------------------------------
def test_paths_that_are_not_stored_images_are_refused(served: Served, tmp_path: Path) -> None:
    root = served.collection.root
    outside = write_faked_copy(tmp_path / "outside.jpg", seed=6)
    synthetic.write_image(root / "new-since-add.jpg", synthetic.make_scene(11))
    refused = [
        "/etc/passwd",
        f"{root}/../../../../etc/passwd",
        str(outside),
        str(root / "new-since-add.jpg"),
        str(root),
    ]
    for path in refused:
        error = assert_one_line_error(served.client.get("/image", params={"path": path}), 403)
        assert error == f"{path}: not an image stored in this database"
    assert_one_line_error(served.client.get("/api/diff", params={"a": str(outside), "b": "/etc/passwd"}), 403)
    assert_one_line_error(served.client.get("/image", params={"path": ""}), 400)


def test_a_stored_symlink_to_an_image_outside_the_stored_ones_is_refused(
    collection: Collection, tmp_path: Path
) -> None:
    (tmp_path / "elsewhere").mkdir()
    outside = write_faked_copy(tmp_path / "elsewhere" / "private.jpg")
    link = collection.root / "link.jpg"
    link.symlink_to(outside)
    fill_database(tmp_path / "db", collection)
    with TestClient(create_app(tmp_path / "db")) as client:
        with nearindex.open(tmp_path / "db", read_only=True) as database:
            assert str(link) in {match.path for match in database.query(link, k=2)}, "the link was stored"
        assert_one_line_error(client.get("/image", params={"path": str(link)}), 403)
        assert client.get("/image", params={"path": str(collection.originals[0])}).status_code == 200


def test_an_upload_over_the_limit_is_refused_with_413(served: Served) -> None:
    with TestClient(create_app(served.db_path, max_upload_bytes=10_000)) as client:
        error = assert_one_line_error(client.post("/api/query", files=upload(served.faked)), 413)
        assert error == "upload larger than 10000 bytes"
        huge = {"file": ("big.jpg", b"\xff\xd8" + bytes(200_000), "image/jpeg")}
        assert_one_line_error(client.post("/api/query", files=huge), 413)

        def chunks() -> Iterator[bytes]:  # no Content-Length: the middleware counts the bytes
            yield from (bytes(10_000) for _ in range(20))

        streamed = client.post(
            "/api/query", content=chunks(), headers={"content-type": "multipart/form-data; boundary=xx"}
        )
        assert_one_line_error(streamed, 413)


@pytest.mark.parametrize(
    ("content", "reason"), [(b"just some text", "not an image (unknown format)"), (b"", "empty file")]
)
def test_a_bad_upload_is_a_one_line_400(served: Served, content: bytes, reason: str) -> None:
    response = served.client.post("/api/query", files={"file": ("notes.jpg", content, "image/jpeg")})
    assert assert_one_line_error(response, 400) == f"notes.jpg: {reason}"


def test_a_truncated_upload_is_a_one_line_400(served: Served) -> None:
    data = served.faked.read_bytes()[:3000]
    response = served.client.post("/api/query", files={"file": ("cut.jpg", data, "image/jpeg")})
    assert assert_one_line_error(response, 400).startswith("cut.jpg: ")


def test_invalid_parameters_are_one_line_errors(served: Served) -> None:
    assert assert_one_line_error(served.client.post("/api/query", params={"k": 0}, files=upload(served.faked)), 422)
    assert_one_line_error(served.client.post("/api/query"), 422)
    assert_one_line_error(served.client.get("/image", params={"path": "x", "side": 5}), 422)
    assert_one_line_error(served.client.get("/no/such/page"), 404)


def test_a_missing_database_is_refused_when_the_app_is_made(tmp_path: Path) -> None:
    with pytest.raises(nearindex.DatabaseError):
        create_app(tmp_path / "nodb")
    assert not (tmp_path / "nodb").exists()


# -- nothing written ------------------------------------------------------------------------
def snapshot(folder: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under ``folder``: size, mtime and content hash (SQLite's -wal/-shm left out)."""
    files = (p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(("-wal", "-shm")))
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest()) for p in files}


def exercise(served: Served) -> None:
    """Every endpoint once, with an upload, a refusal and a bad upload among them."""
    client, collection = served.client, served.collection
    pair = {"a": str(collection.originals[0]), "b": str(collection.edits[0]["crop75"])}
    for response in (
        client.get("/api/info"), client.get("/api/duplicates"), client.get("/api/diff", params=pair),
        client.get("/api/diff.png", params=pair), client.get("/image", params={"path": pair["a"]}),
        client.post("/api/query", files=upload(served.faked)),
        client.post("/api/diff", data={"a": pair["a"]}, files=upload(served.faked)),
    ):  # fmt: skip
        assert response.status_code == 200, response.text
    assert client.get("/image", params={"path": "/etc/passwd"}).status_code == 403
    assert client.post("/api/query", files={"file": ("x.jpg", b"nope", "image/jpeg")}).status_code == 400


def test_nothing_is_written_to_the_collection_or_the_database(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    before = (snapshot(served.collection.root), snapshot(served.db_path))
    exercise(served)
    assert (snapshot(served.collection.root), snapshot(served.db_path)) == before
    assert list(spool.iterdir()) == [], "uploads and pictures are deleted after each request"


def test_the_server_takes_no_lock_and_sees_what_a_later_add_stores(served: Served, tmp_path: Path) -> None:
    extra = served.collection.root / "added-later.jpg"
    synthetic.write_image(extra, synthetic.make_scene(FAKED_SEED))

    def grouped() -> set[str]:
        return {p for group in served.client.get("/api/duplicates").json()["groups"] for p in group["paths"]}

    assert str(extra) not in grouped()  # and the groups are now remembered by the server
    with nearindex.open(served.db_path, lock_timeout=0) as writer:  # fails at once if the server held the lock
        writer.add(extra, workers=0)
    assert str(extra) in grouped()  # a copy of a stored image: the remembered groups were dropped
    document = served.client.post("/api/query", params={"k": 2}, files=upload(served.faked)).json()
    assert {r["path"] for r in document["results"]} == {str(extra), str(served.collection.originals[FAKED_SEED])}
    assert served.client.get("/image", params={"path": str(extra)}).status_code == 200


# -- the command ---------------------------------------------------------------------------------
def test_serve_without_the_web_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, db_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "fastapi", None)  # importing it now raises ModuleNotFoundError
    monkeypatch.delitem(sys.modules, "nearindex.web")
    monkeypatch.delattr(nearindex, "web")  # else ``from . import web`` finds the attribute without importing
    result = CliRunner().invoke(cli_app, ["--db", str(db_path), "serve"])
    assert result.exit_code == 1
    assert result.stderr == "nearindex: serve needs the web extra: pip install 'nearindex[web]'\n"


def test_serve_on_a_missing_database_fails_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli_app, ["--db", str(tmp_path / "nodb"), "serve", "--port", "0"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"nearindex: {tmp_path / 'nodb'}: ") and result.stderr.count("\n") == 1
    assert not (tmp_path / "nodb").exists()


def test_a_thumbnail_keeps_the_aspect_and_fits_the_side(served: Served) -> None:
    from nearindex.difference import load_for_diff

    response = served.client.get("/image", params={"path": str(served.collection.originals[1]), "side": 64})
    path = _saved(served, response.content)
    gray = load_for_diff(path)
    assert max(gray.shape) <= 64 and abs(gray.shape[1] / gray.shape[0] - 640 / 480) < 0.1
    assert float(np.std(gray)) > 5, "a picture, not a flat grey"
    os.remove(path)
