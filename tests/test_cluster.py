"""Scaling out: the describe stage on a Dask cluster, and images in object stores.

Everything is real: a ``LocalCluster`` of two worker processes (one for the
module, to save start-up time), a local S3-compatible server (moto's, in a
thread, on a free port; never a remote service), fsspec's in-memory store, a
real database, and worker processes killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import numpy as np
import pytest
from distributed import Client, LocalCluster
from moto.server import ThreadedMotoServer
from typer.testing import CliRunner

import nearindex
from nearindex import cluster, output, stores, synthetic
from nearindex.cli import app
from nearindex.filetree import FoundFile, read_bytes
from nearindex.settings import DEFAULT_SETTINGS, WINDOW_COUNT
from nearindex.web import thumbnail_jpeg
from nearindex.workers import describe_safely

from .conftest import Collection

runner = CliRunner()
BUCKET = "photos"


class CountingProgress:
    """A Progress that remembers the total and the steps, and may act on the first step."""

    def __init__(self, on_first_step: object = None) -> None:
        self.total: int | None = None
        self.steps = 0
        self._on_first_step = on_first_step

    def start(self, total: int, description: str) -> None:
        self.total = total

    def advance(self, steps: int = 1) -> None:
        if self.steps == 0 and callable(self._on_first_step):
            self._on_first_step()
        self.steps += steps

    def finish(self) -> None:
        pass


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on a free local port, with the AWS variables users would set pointing at it."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
        }.items():  # fmt: skip
            patch.setenv(name, value)
        fsspec.get_filesystem_class("s3").clear_instance_cache()  # an instance made before has other settings
        fsspec.filesystem("s3").mkdir(BUCKET)
        yield endpoint
        fsspec.get_filesystem_class("s3").clear_instance_cache()
    server.stop()


#: Seconds a test waits for killed workers to be replaced: a hang would otherwise be CI's whole budget.
RESTART_TIMEOUT = 120


@contextlib.contextmanager
def two_worker_client() -> Iterator[Client]:
    """A LocalCluster of two single-threaded worker processes, and a client of it."""
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        Client(cluster) as connected,
    ):
        yield connected


@pytest.fixture(scope="module")
def client(s3_endpoint: str) -> Iterator[Client]:
    """Two workers shared by the module's tests (started after the S3 variables are set, so they see them)."""
    with two_worker_client() as connected:
        yield connected


@pytest.fixture
def own_client() -> Iterator[Client]:
    """Two workers of a test's own, for tests that kill them: the shared cluster never waits on their replacements.

    (Once, under load, the replacements of both killed workers never came, and waiting for them hung CI.)
    """
    with two_worker_client() as connected:
        yield connected


def catalog_rows(db: Path) -> dict[str, tuple[bytes, int, int, bool, bytes]]:
    """Each stored path with its content's hash, size, flatness and descriptor."""
    with sqlite3.connect(db / "catalog.sqlite3") as connection:
        rows = connection.execute(
            "SELECT f.path, c.content_hash, c.width, c.height, c.flat, c.descriptor"
            " FROM files f JOIN contents c ON c.id = f.content_id"
        ).fetchall()
    return {path: (digest, width, height, bool(flat), blob) for path, digest, width, height, flat, blob in rows}


def worker_pids(client: Client) -> dict[str, int]:
    return client.run(os.getpid)  # type: ignore[no-any-return]


def kill_one_worker(client: Client) -> int:
    pid = sorted(worker_pids(client).values())[0]
    os.kill(pid, signal.SIGKILL)
    return pid


def upload(folder: Path, url: str) -> None:
    fs, root = fsspec.core.url_to_fs(url)
    for path in sorted(folder.rglob("*.*")):
        fs.pipe_file(f"{root}/{path.relative_to(folder)}", path.read_bytes())


# -- the cluster gives the single-process result ------------------------------------------
def test_cluster_ingest_equals_single_process_ingest(tmp_path: Path, collection: Collection, client: Client) -> None:
    with nearindex.open(tmp_path / "single") as single:
        expected = single.add(collection.root, workers=0)
    progress = CountingProgress()
    with nearindex.open(tmp_path / "cluster") as clustered:
        report = clustered.add(collection.root, client=client, progress=progress)
        rerun_progress = CountingProgress()
        rerun = clustered.add(collection.root, client=client, progress=rerun_progress)
    assert report.counts() == expected.counts() and report.added == len(collection.all_files)
    assert progress.total == progress.steps == report.added  # the bar counts finished images
    assert rerun.unchanged == report.added and rerun_progress.total == 0  # nothing sent again
    single_rows, cluster_rows = catalog_rows(tmp_path / "single"), catalog_rows(tmp_path / "cluster")
    assert single_rows.keys() == cluster_rows.keys()
    for path, (digest, width, height, flat, blob) in single_rows.items():
        assert cluster_rows[path][:4] == (digest, width, height, flat)
        np.testing.assert_allclose(
            np.frombuffer(cluster_rows[path][4], np.float32), np.frombuffer(blob, np.float32), atol=1e-5
        )


def test_killing_a_worker_mid_run_still_stores_every_image_once(
    tmp_path: Path, collection: Collection, own_client: Client
) -> None:
    client = own_client
    before = worker_pids(client)
    killed: list[int] = []
    with nearindex.open(tmp_path / "db") as db:
        report = db.add(
            collection.root, client=client, progress=CountingProgress(lambda: killed.append(kill_one_worker(client)))
        )
        info = db.info()
    client.wait_for_workers(2, timeout=RESTART_TIMEOUT)
    assert killed and killed[0] in before.values() and killed[0] not in worker_pids(client).values()
    assert (report.added, report.failed) == (len(collection.all_files), ())
    assert info.images == len(collection.all_files) and info.vectors == info.contents * WINDOW_COUNT
    assert sorted(catalog_rows(tmp_path / "db")) == sorted(str(p) for p in collection.all_files)


def test_a_batch_that_keeps_killing_workers_is_retried_file_by_file(
    tmp_path: Path, collection: Collection, own_client: Client
) -> None:
    """With no deaths allowed, Dask gives up on the killed worker's batches: each file then goes alone."""
    client = own_client

    def set_allowed_failures(dask_scheduler: object, value: int) -> int:
        previous: int = dask_scheduler.allowed_failures  # type: ignore[attr-defined]
        dask_scheduler.allowed_failures = value  # type: ignore[attr-defined]
        return previous

    client.run_on_scheduler(set_allowed_failures, value=0)
    with nearindex.open(tmp_path / "db") as db:
        report = db.add(collection.root, client=client, progress=CountingProgress(lambda: kill_one_worker(client)))
    assert (report.added, report.failed) == (len(collection.all_files), ())


def test_settings_lost_with_every_worker_are_sent_again(
    tmp_path: Path, collection: Collection, own_client: Client
) -> None:
    """Killing every worker loses the scattered settings; the batches Dask cancels for it are sent once more."""
    client = own_client

    def kill_every_worker() -> None:
        for pid in worker_pids(client).values():
            os.kill(pid, signal.SIGKILL)

    with nearindex.open(tmp_path / "db") as db:
        report = db.add(collection.root, client=client, progress=CountingProgress(kill_every_worker))
    assert (report.added, report.failed) == (len(collection.all_files), ())


# -- stores ----------------------------------------------------------------------------------
def test_a_memory_store_is_ingested_incrementally(tmp_path: Path, collection: Collection) -> None:
    url = f"memory://{uuid.uuid4().hex}/photos"
    upload(collection.root, url)
    fs, root = fsspec.core.url_to_fs(url)
    with nearindex.open(tmp_path / "db") as db:
        first = db.add(url + "/")
        progress = CountingProgress()
        again = db.add(url, progress=progress)
        changed = sorted(fs.find(root))[0]
        fs.pipe_file(changed, synthetic.encode_image(synthetic.make_scene(99), ".png"))
        fs.rm_file(sorted(fs.find(root))[-1])
        synced = db.sync(url)
        stored = sorted(m for m in catalog_rows(tmp_path / "db"))
        removed = db.remove(url + "/edits/")
    assert (first.added, first.failed) == (len(collection.all_files), ())
    assert (again.unchanged, progress.total) == (first.added, 0)  # listed only: nothing read
    assert (synced.updated, synced.removed, synced.unchanged) == (1, 1, first.added - 2)
    assert stored[0] == fs.unstrip_protocol(changed) and all(p.startswith("memory:///") for p in stored)
    assert removed.removed == sum(len(edits) for edits in collection.edits.values())


def test_an_object_changed_after_listing_is_a_transient_failure() -> None:
    url = f"memory://{uuid.uuid4().hex}/a.png"
    fs, path = fsspec.core.url_to_fs(url)
    fs.pipe_file(path, synthetic.encode_image(synthetic.make_scene(1), ".png"))
    [listed] = stores.list_objects(url)
    fs.pipe_file(path, synthetic.encode_image(synthetic.make_scene(2), ".png"))
    result = describe_safely(FoundFile(listed.url, listed.size, listed.stamp, True), DEFAULT_SETTINGS, frozenset())
    assert result == nearindex.Failed(listed.url, "changed while being read", transient=True)


def test_s3_bucket_on_the_cluster_stores_good_objects_and_reports_a_corrupt_one(
    tmp_path: Path, collection: Collection, client: Client
) -> None:
    url = f"s3://{BUCKET}/{uuid.uuid4().hex}"
    upload(collection.root, url)
    good = collection.originals[0].read_bytes()
    fs, root = fsspec.core.url_to_fs(url)
    fs.pipe_file(f"{root}/broken.jpg", good[: len(good) // 2])
    with nearindex.open(tmp_path / "db") as db:
        report = db.add(url, client=client)
        progress = CountingProgress()
        rerun = db.add(url, client=client, progress=progress)
    assert report.added == len(collection.all_files)
    assert [output.failure_line(f) for f in report.failed] == [
        f"nearindex: {url}/broken.jpg: truncated JPEG (no end marker)"
    ]
    # Listed only: the good objects are unchanged, the corrupt one's failure is repeated without reading it.
    assert (rerun.unchanged, [f.path for f in rerun.failed], progress.total) == (report.added, [f"{url}/broken.jpg"], 0)
    assert all(path.startswith(f"{url}/") for path in catalog_rows(tmp_path / "db"))


def test_a_second_run_in_the_same_process_sees_new_and_deleted_objects_in_sub_folders(
    tmp_path: Path, collection: Collection, s3_endpoint: str
) -> None:
    url = f"s3://{BUCKET}/{uuid.uuid4().hex}"
    upload(collection.root, url)  # the collection has sub-folders
    fs, root = fsspec.core.url_to_fs(url)
    [nested, *_] = sorted(path for path in fs.find(root) if path.count("/") > root.count("/") + 1)
    folder = nested.rsplit("/", 1)[0]
    with nearindex.open(tmp_path / "db") as db:
        added = db.add(url, workers=0).added
        elsewhere = fsspec.filesystem("s3", skip_instance_cache=True)  # another writer: our listings do not hear of it
        elsewhere.pipe_file(f"{folder}/new.png", collection.originals[0].read_bytes())
        elsewhere.rm_file(nested)
        synced = db.sync(url, workers=0)
    assert (synced.added, synced.removed, synced.failed) == (1, 1, ())
    assert added == len(collection.all_files)


def test_a_scheduler_without_workers_is_one_line_and_changes_nothing(
    tmp_path: Path, collection: Collection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster, "WORKER_WAIT_SECONDS", 1.0)
    with (
        LocalCluster(n_workers=0, processes=True, dashboard_address=":0") as empty,
        Client(empty) as connected,
        nearindex.open(tmp_path / "db") as db,
    ):
        with pytest.raises(nearindex.ClusterError, match="no Dask worker joined the scheduler within 1 s"):
            db.add(collection.root, client=connected)
        assert db.info().images == 0


def test_a_sync_whose_listing_fails_forgets_nothing(
    tmp_path: Path, collection: Collection, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"s3://{BUCKET}/{uuid.uuid4().hex}"
    upload(collection.root, url)
    with nearindex.open(tmp_path / "db") as db:
        added = db.add(url, workers=0).added
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")  # the store stops answering
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
        fsspec.get_filesystem_class("s3").clear_instance_cache()
        synced = db.sync(url, workers=0)
        kept = db.info().images
    fsspec.get_filesystem_class("s3").clear_instance_cache()
    [failure] = synced.failed
    assert failure.path == url and failure.reason.startswith("cannot list (EndpointConnectionError")
    assert (synced.removed, kept) == (0, added)


def test_one_command_ingests_a_bucket_on_a_scheduler(tmp_path: Path, collection: Collection, client: Client) -> None:
    url = f"s3://{BUCKET}/{uuid.uuid4().hex}"
    upload(collection.originals[0].parent, url)  # the top folder (recursively)
    address = client.scheduler.address  # type: ignore[union-attr]
    result = runner.invoke(app, ["--db", str(tmp_path / "db"), "add", url, "--cluster", address, "--json"])
    assert result.exit_code == 0, result.stderr
    assert f'"added": {len(collection.all_files)}' in result.stdout and result.stderr == ""


def test_cluster_local_starts_and_closes_a_cluster_on_this_machine(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for seed in range(3):
        synthetic.write_image(folder / f"scene{seed}.jpg", synthetic.make_scene(seed))
    result = runner.invoke(app, ["--db", str(tmp_path / "db"), "add", str(folder), "--cluster", "local"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("3 added")


# -- what the user sees without the packages -------------------------------------------------
def run_without(modules: list[str], *argv: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a fresh interpreter where importing ``modules`` fails, as if not installed."""
    code = (
        "import sys\n"
        f"for name in {modules!r}: sys.modules[name] = None\n"
        f"sys.argv = ['nearindex', *{list(argv)!r}]\n"
        "from nearindex.cli import main\n"
        "main()\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_cluster_without_dask_says_how_to_install_it_and_changes_nothing(tmp_path: Path) -> None:
    result = run_without(
        ["dask", "distributed"], "--db", str(tmp_path / "db"), "add", str(tmp_path), "--cluster", "local"
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["nearindex: --cluster: needs Dask: pip install 'nearindex[dist]'"]
    assert not (tmp_path / "db").exists()


def test_a_url_without_its_package_is_one_line_naming_the_path_and_the_package(tmp_path: Path) -> None:
    result = run_without(["gcsfs"], "--db", str(tmp_path / "db"), "add", "gs://bucket/photos")
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["nearindex: gs://bucket/photos: gs:// needs gcsfs: pip install gcsfs"]
    no_fsspec = run_without(["fsspec"], "--db", str(tmp_path / "db"), "add", "s3://bucket/photos")
    assert no_fsspec.stderr.splitlines() == [
        "nearindex: s3://bucket/photos: URLs need fsspec: pip install 'nearindex[dist]'"
    ]


# -- change stamps ------------------------------------------------------------------------------
def test_the_change_stamp_follows_etag_and_time() -> None:
    from datetime import UTC, datetime

    second = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    stamp = stores.stamp_of({"LastModified": second, "ETag": '"a"'})
    assert stamp == stores.stamp_of({"LastModified": second, "ETag": '"a"'})
    assert stamp != stores.stamp_of({"LastModified": second, "ETag": '"b"'})  # rewritten within the second
    assert stamp // 10**9 == int(second.timestamp())  # still a time, to the second
    precise = datetime(2026, 1, 2, 3, 4, 5, 250_000, tzinfo=UTC)  # a clock finer than seconds: the time alone
    assert stores.stamp_of({"LastModified": precise, "ETag": "x"}) == int(second.timestamp()) * 10**9 + 250_000_000
    assert 0 < stores.stamp_of({"ETag": "x"}) < 2**63 and stores.stamp_of({}) == 0


def test_a_stored_object_is_read_again_from_its_url_for_thumbnails_and_calibration() -> None:
    url = f"memory://{uuid.uuid4().hex}/scene.png"
    fs, path = fsspec.core.url_to_fs(url)
    fs.pipe_file(path, synthetic.encode_image(synthetic.make_scene(3), ".png"))
    stored = stores.normalise_url(url)
    thumbnail = thumbnail_jpeg(stored, side=64, settings=DEFAULT_SETTINGS)
    assert thumbnail.startswith(b"\xff\xd8") and read_bytes(stored) == fs.cat_file(path)
