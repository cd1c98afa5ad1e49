"""The ``nearindex`` command line: parse, call one library function, render.

Exit codes: 0 the command ran (a batch may have reported bad files on
stderr), 1 the command failed as a whole, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress

from . import api, cluster, output
from .database import DEFAULT_LOCK_TIMEOUT
from .demo import run_demo
from .errors import NearIndexError
from .filetree import location
from .ingest import IngestInterrupted, IngestReport
from .search import compare as compare_files
from .settings import DATABASE_ENV_VAR, DEFAULT_DATABASE
from .workers import DEFAULT_TIMEOUT

app = typer.Typer(
    name="nearindex", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Find near-duplicate and doctored images in large collections.",
)  # fmt: skip

T = TypeVar("T")
JsonOption = Annotated[bool, typer.Option("--json", help="Print a JSON document instead of text.")]
WorkersOption = Annotated[
    int | None, typer.Option("--workers", min=0, help="Decoding processes (default: one per core).")
]
RescoringWorkersOption = Annotated[
    int | None, typer.Option("--workers", min=0, help="Rescoring processes (default: one per core for many pairs).")
]
MaxPixelsOption = Annotated[
    int | None, typer.Option("--max-pixels", min=1, help="Refuse images larger than this (default 100000000).")
]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", min=0.1, help="Seconds one file may take to decode before it fails.")
]
ClusterOption = Annotated[
    str | None,
    typer.Option(
        "--cluster", metavar="ADDRESS",
        help="Decode on a Dask cluster: a scheduler address (tcp://host:8786), or 'local' for one on this machine.",
    ),
]  # fmt: skip


class _State:
    database: Path = Path(DEFAULT_DATABASE)
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT


@app.callback()
def main_options(
    db: Annotated[Path, typer.Option("--db", envvar=DATABASE_ENV_VAR, help="Database directory.")] = Path(
        DEFAULT_DATABASE
    ),
    wait: Annotated[
        float, typer.Option("--wait", min=0, help="Seconds to wait while another nearindex process writes.")
    ] = DEFAULT_LOCK_TIMEOUT,
) -> None:
    """Find near-duplicate and doctored images in large collections."""
    _State.database, _State.lock_timeout = db, wait


class BarProgress:
    """A rich progress bar on stderr."""

    def __init__(self, unit: str = "images") -> None:
        self._unit = unit  # "" when the task's description names what is counted
        self._bar = RichProgress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), transient=True, console=Console(stderr=True),
        )  # fmt: skip
        self._task: Any = None
        self._started = 0.0
        self._done = 0

    def start(self, total: int, description: str) -> None:
        """Show a bar for ``total`` steps."""
        self._bar.start()
        self._task = self._bar.add_task(description, total=total, rate="")
        self._started, self._done = time.monotonic(), 0

    def advance(self, steps: int = 1) -> None:
        """Move the bar and show the rate."""
        self._done += steps
        rate = self._done / max(time.monotonic() - self._started, 1e-9)
        per_second = f"{rate:.1f} {self._unit}/s" if self._unit else f"{rate:.1f}/s"
        self._bar.update(self._task, advance=steps, rate=per_second)

    def finish(self) -> None:
        """Remove the bar (another task may start one again)."""
        if self._task is not None:
            self._bar.remove_task(self._task)
            self._task = None
        self._bar.stop()


def _progress(json_output: bool, *, unit: str = "images") -> BarProgress | None:
    return BarProgress(unit) if sys.stderr.isatty() and not json_output else None


def _fail(error: NearIndexError) -> typer.Exit:
    typer.echo(f"nearindex: {error}", err=True)
    return typer.Exit(1)


@contextmanager
def _opened(*, read_only: bool = False, create: bool = True) -> Iterator[api.NearIndex]:
    """Open the database; a NearIndexError in opening or in the body becomes one stderr line and exit 1."""
    try:
        opened = api.open(_State.database, read_only=read_only, create=create, lock_timeout=_State.lock_timeout)
        with opened as database:
            yield database
    except NearIndexError as error:
        raise _fail(error) from None


@contextmanager
def _cluster(address: str | None) -> Iterator[Any]:
    """A Dask client for ``--cluster`` (None without it); errors become one stderr line and exit 1."""
    if address is None:
        yield None
        return
    try:
        with cluster.connect(address) as client:
            yield client
    except NearIndexError as error:
        raise _fail(error) from None


def _run(action: Callable[[], T]) -> T:
    """Run a library call outside ``_opened`` with the same error rendering."""
    try:
        return action()
    except NearIndexError as error:
        raise _fail(error) from None


def _report_ingest(report: IngestReport, json_output: bool, *, all_failed_is_error: bool) -> None:
    for failure in report.failed:
        typer.echo(output.failure_line(failure), err=True)
    typer.echo(output.to_json(output.ingest_json(report)) if json_output else output.ingest_summary(report))
    done = sum(v for k, v in report.counts().items() if k != "failed")
    if all_failed_is_error and report.failed and done == 0:
        raise typer.Exit(1)


def _interruptible(run: Callable[[], IngestReport]) -> IngestReport:
    """Run an ingest; on Ctrl-C say what was committed and exit 130."""
    try:
        return run()
    except IngestInterrupted as interrupted:
        typer.echo(f"nearindex: interrupted; committed {output.ingest_summary(interrupted.report)}", err=True)
        raise typer.Exit(130) from None


def _between_zero_and_one(value: float) -> float:
    if not 0.0 < value < 1.0:
        raise typer.BadParameter(f"must be between 0 and 1 (exclusive), got {value}")
    return value


# Text, not Path: pathlib would turn s3://bucket into s3:/bucket.
PathsArgument = Annotated[
    list[str], typer.Argument(help="Files or folders (searched recursively), or URLs (s3://bucket/photos).")
]


@app.command()
def add(
    paths: PathsArgument, workers: WorkersOption = None, timeout: TimeoutOption = DEFAULT_TIMEOUT,
    max_pixels: MaxPixelsOption = None, cluster_address: ClusterOption = None, json_output: JsonOption = False,
) -> None:  # fmt: skip
    """Add new and changed images; unchanged files are skipped."""
    with _cluster(cluster_address) as client, _opened() as database:
        bar = _progress(json_output)
        report = _interruptible(
            lambda: database.add(
                *paths, workers=workers, timeout=timeout, max_pixels=max_pixels, progress=bar, client=client
            )
        )
    _report_ingest(report, json_output, all_failed_is_error=_all_missing(report, paths))


@app.command()
def sync(
    paths: PathsArgument, workers: WorkersOption = None, timeout: TimeoutOption = DEFAULT_TIMEOUT,
    max_pixels: MaxPixelsOption = None, cluster_address: ClusterOption = None, json_output: JsonOption = False,
) -> None:  # fmt: skip
    """Like add, and forget stored images under PATHS that no longer exist."""
    with _cluster(cluster_address) as client, _opened() as database:
        bar = _progress(json_output)
        report = _interruptible(
            lambda: database.sync(
                *paths, workers=workers, timeout=timeout, max_pixels=max_pixels, progress=bar, client=client
            )
        )
    _report_ingest(report, json_output, all_failed_is_error=_all_missing(report, paths))


@app.command()
def remove(
    paths: Annotated[list[Path], typer.Argument(help="Stored files or folders to forget.")],
    json_output: JsonOption = False,
) -> None:
    """Forget stored images (the files are not touched)."""
    with _opened(create=False) as database:
        report = database.remove(*paths)
    _report_ingest(report, json_output, all_failed_is_error=True)


def _all_missing(report: IngestReport, paths: list[str] | list[Path]) -> bool:
    """True when every given path failed at the top level (nothing to do at all)."""
    given = {location(os.fspath(p)) for p in paths}
    return bool(given) and given <= {f.path for f in report.failed}


@app.command()
def query(
    image: Annotated[Path, typer.Argument(help="The image to look for (need not be stored).")],
    k: Annotated[int, typer.Option("-k", "--top", min=1, help="Most results.")] = 10,
    min_score: Annotated[float, typer.Option("--min-score", help="Drop results below this score.")] = 0.0,
    json_output: JsonOption = False,
) -> None:
    """Stored images most like IMAGE, best first."""
    with _opened(read_only=True) as database:
        matches = database.query(image, k=k, min_score=min_score)
    typer.echo(
        output.to_json(output.matches_json(str(image), matches)) if json_output else output.matches_text(matches)
    )


@app.command()
def compare(
    a: Annotated[Path, typer.Argument(help="First image.")],
    b: Annotated[Path, typer.Argument(help="Second image.")],
    json_output: JsonOption = False,
) -> None:
    """Score two image files against each other (no database needed)."""
    result = _run(lambda: compare_files(a, b))
    typer.echo(output.to_json(output.comparison_json(result)) if json_output else output.comparison_text(result))


@app.command()
def diff(
    a: Annotated[Path, typer.Argument(help="First image (boxes box_a are in its pixels).")],
    b: Annotated[Path, typer.Argument(help="Second image, aligned onto the first.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write a side-by-side picture with the regions and a heat map.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Align B onto A and show the regions that differ (no database needed)."""
    result = _run(lambda: api.diff(a, b, out=out))
    typer.echo(output.to_json(output.difference_json(result)) if json_output else output.difference_text(result))


@app.command()
def duplicates(
    min_score: Annotated[
        float | None, typer.Option("--min-score", help="Pair threshold (default: the duplicate threshold).")
    ] = None,
    workers: RescoringWorkersOption = None,
    json_output: JsonOption = False,
) -> None:
    """All groups of near-duplicate images, largest first."""
    with _opened(read_only=True) as database:
        groups = database.duplicates(min_score=min_score, workers=workers, progress=_progress(json_output, unit=""))
    typer.echo(output.to_json(output.groups_json(groups)) if json_output else output.groups_text(groups))


@app.command()
def info(json_output: JsonOption = False) -> None:
    """Counts, sizes, index type and schema of the database."""
    with _opened(read_only=True) as database:
        summary = database.info()
    typer.echo(output.to_json(output.info_json(summary)) if json_output else output.info_text(summary))


@app.command()
def check(
    repair: Annotated[
        bool, typer.Option("--repair", help="Rebuild the index from the catalog if they disagree.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Verify that the catalog and the vector index agree."""
    with _opened(read_only=not repair, create=False) as database:
        report = database.check(repair=repair)
    typer.echo(output.to_json(output.check_json(report)) if json_output else output.check_text(report))
    if not report.ok:
        raise typer.Exit(1)


class IndexKind(StrEnum):
    """Kinds of vector index ``reindex`` can build."""

    auto = "auto"
    flat = "flat"
    compressed = "compressed"


@app.command()
def reindex(
    kind: Annotated[
        IndexKind, typer.Option("--kind", help="flat (exact), compressed, or auto: by the number of vectors.")
    ] = IndexKind.auto,
    json_output: JsonOption = False,
) -> None:
    """Rebuild the vector index from the catalog (compressed above a million vectors)."""
    with _opened(create=False) as database:
        info = database.reindex(None if kind is IndexKind.auto else kind.value)
    typer.echo(output.to_json(output.info_json(info)) if json_output else output.info_text(info))


@app.command()
def calibrate(
    sample: Annotated[int, typer.Option("--sample", min=1, help="Stored images to edit (true pairs).")] = 100,
    negatives: Annotated[int, typer.Option("--negatives", min=1, help="Random pairs of different images.")] = 10_000,
    fpr: Annotated[
        float, typer.Option("--fpr", callback=_between_zero_and_one, help="False-match rate wanted, 0..1.")
    ] = 0.001,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sampling.")] = 0,
    store: Annotated[bool, typer.Option("--store", help="Make the threshold this database's default.")] = False,
    workers: RescoringWorkersOption = None,
    json_output: JsonOption = False,
) -> None:
    """Measure the duplicate threshold for a false-match rate on your own images."""
    with _opened(read_only=not store, create=False) as database:
        bar = _progress(json_output, unit="pairs")
        result = database.calibrate(
            sample=sample, negatives=negatives, fpr=fpr, seed=seed, store=store, workers=workers, progress=bar
        )
    document = output.calibration_json(result, stored=store)
    typer.echo(output.to_json(document) if json_output else output.calibration_text(result, stored=store))


@app.command()
def demo(
    folder: Annotated[Path, typer.Option("--folder", help="Where to write the demo images.")] = Path("nearindex-demo"),
    json_output: JsonOption = False,
) -> None:
    """Write a small generated collection with edited copies, add it, show its duplicates and a query."""
    with _opened() as database:
        result = run_demo(database, folder, progress=_progress(json_output))
    if json_output:
        document = {
            "add": output.ingest_json(result.report),
            **output.groups_json(result.groups),
            **output.matches_json(result.query, result.matches),
        }
        typer.echo(output.to_json(document))
        return
    typer.echo(f"added the demo collection in {result.folder}/collection: {output.ingest_summary(result.report)}\n")
    typer.echo(output.groups_text(result.groups))
    typer.echo(f"\nquery {result.query} (an edit that is not in the collection):")
    typer.echo(output.matches_text(result.matches))


#: Modules of the ``web`` extra: without one of them, ``serve`` says how to install it.
WEB_EXTRA_MODULES = frozenset({"fastapi", "starlette", "uvicorn", "multipart", "python_multipart"})


@app.command()
def serve(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")] = 8000,
) -> None:
    """Serve a read-only web page: search by image, duplicates, diffs and info."""
    try:
        from . import web
    except ModuleNotFoundError as error:
        if error.name not in WEB_EXTRA_MODULES:
            raise
        typer.echo("nearindex: serve needs the web extra: pip install 'nearindex[web]'", err=True)
        raise typer.Exit(1) from None
    application = _run(lambda: web.create_app(_State.database))
    typer.echo(f"nearindex: serving {_State.database} read-only at http://{host}:{port}/ (Ctrl-C stops)", err=True)
    web.run(application, host=host, port=port)


def main() -> None:
    """Entry point of the ``nearindex`` console script."""
    app()
