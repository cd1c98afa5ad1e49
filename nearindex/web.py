"""``nearindex serve``: a small read-only web page over one database.

The JSON API renders with ``output``'s documents, the same as the CLI's ``--json``:

    GET  /api/info                 the database info
    POST /api/query?k=10           an uploaded image (multipart field ``file``) -> ranked matches
    POST /api/diff                 stored image ``a`` against an uploaded ``file`` -> difference + picture
    GET  /api/duplicates           the near-duplicate groups
    GET  /api/diff?a=PATH&b=PATH   two stored images -> difference
    GET  /api/diff.png?a=&b=       its picture (A | B | heat map, regions outlined)
    GET  /image?path=PATH&side=N   a JPEG thumbnail of a stored image

Safety: the database is opened read-only and never written; only paths stored in it are
read (``..`` is resolved first, and a stored symlink is served only when its target is
stored too); files are sent as decoded, re-encoded pixels, never as their bytes; uploads
are limited in size, spooled to a temporary folder outside the collection and deleted after
use. Errors are JSON ``{"error": "one line"}`` with a 4xx status.
"""

from __future__ import annotations

import base64
import os
import tempfile
import threading
from collections.abc import Awaitable, Callable, Hashable, Iterator, MutableMapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import api, output
from .database import CATALOG_NAME, Database
from .errors import DatabaseError, DatabaseLockedError, ImageError, NearIndexError
from .filetree import read_bytes
from .intake import load_for_editing
from .settings import Settings
from .synthetic import encode_image

#: Largest accepted request body (an upload), bytes.
MAX_UPLOAD_BYTES = 30 * 1024 * 1024
#: Thumbnail long side: default and largest, pixels.
THUMB_SIDE, MAX_THUMB_SIDE = 256, 1024
#: Most results a query may ask for.
MAX_RESULTS = 100
STATIC = Path(__file__).resolve().parent / "static"
_Scope = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class _Reader:
    """One read-only open database, reopened when its index file changes (an ``add`` ran meanwhile).

    The catalog is read afresh by every call; only the vector index is held in memory.

    Requests take turns: the open database is used by one request at a time.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._database = Database.open(directory, writable=False, create=False)
        self._stamp = self._current_stamp()
        self._remembered: dict[Hashable, Any] = {}
        self._remembered_stamp = self._catalog_stamp()

    def _current_stamp(self) -> tuple[tuple[str, int, int], ...]:
        stamp = []
        for name in sorted(os.listdir(self.directory)):
            if name.startswith("vectors."):  # a new generation of the index: the stored contents changed
                with suppress(FileNotFoundError):  # a writer replaced it meanwhile: the next request sees it
                    info = os.stat(self.directory / name)
                    stamp.append((name, info.st_mtime_ns, info.st_size))
        return tuple(stamp)

    def _catalog_stamp(self) -> tuple[tuple[int, int], ...]:
        """Modification time and size of the catalog and its write-ahead log: they change with every write."""
        stamp = []
        for name in (CATALOG_NAME, CATALOG_NAME + "-wal"):
            with suppress(FileNotFoundError):
                info = os.stat(self.directory / name)
                stamp.append((info.st_mtime_ns, info.st_size))
        return tuple(stamp)

    @contextmanager
    def opened(self) -> Iterator[Database]:
        """The open database, fresh as of now, for the duration of one request."""
        with self._lock:
            stamp = self._current_stamp()
            if stamp != self._stamp:
                self._database.close()
                self._database = Database.open(self.directory, writable=False, create=False)
                self._stamp = stamp
            yield self._database

    def remembered(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """``compute()``'s answer, kept until the catalog changes (call inside ``opened``)."""
        catalog = self._catalog_stamp()
        if catalog != self._remembered_stamp:
            self._remembered, self._remembered_stamp = {}, catalog
        if key not in self._remembered:
            self._remembered[key] = compute()
        return self._remembered[key]

    def close(self) -> None:
        """Release the database."""
        with self._lock:
            self._database.close()


def stored_path(database: Database, requested: str) -> str:
    """The stored path ``requested`` names, after resolving ``..``; HTTP 403 for any other path.

    Args:
        database: The open database.
        requested: A path from a request.

    Returns:
        The normalised absolute path, which is stored in ``database`` (open this, not ``requested``).

    Raises:
        HTTPException: 400 for an empty path or a NUL byte, 403 for a path that is not
            stored, or a stored symlink whose target is not stored.
    """
    if not requested or "\x00" in requested:
        raise HTTPException(400, "no path given" if not requested else "a path cannot contain a NUL byte")
    path = os.path.abspath(requested)
    real = os.path.realpath(path)
    if not _is_stored(database, path) or (os.path.islink(path) and not _is_stored(database, real)):
        raise HTTPException(403, f"{requested}: not an image stored in this database")
    return path


def _is_stored(database: Database, path: str) -> bool:
    return path in database.paths_under(path)


def thumbnail_jpeg(path: str, *, side: int, settings: Settings) -> bytes:
    """A JPEG of an image file, its long side at most ``side`` pixels.

    Raises:
        ImageError: If the file cannot be read or decoded.
    """
    image = load_for_editing(path, data=read_bytes(path), long_side=side, settings=settings)  # a file or an object
    return encode_image(image, ".jpg", quality=85)


def diff_files(a: str, b: str) -> tuple[dict[str, Any], bytes]:
    """``api.diff`` of two files: the difference JSON document and the PNG picture."""
    with tempfile.TemporaryDirectory(prefix="nearindex-web-") as folder:
        picture = Path(folder) / "diff.png"
        result = api.diff(a, b, out=picture)
        return output.difference_json(result), picture.read_bytes()


@contextmanager
def spooled_upload(upload: UploadFile, limit: int) -> Iterator[Path]:
    """The upload copied to a new temporary folder (outside any collection), deleted afterwards.

    Raises:
        HTTPException: 413 when the upload is larger than ``limit`` bytes, 400 when it is empty.
    """
    with tempfile.TemporaryDirectory(prefix="nearindex-upload-") as folder:
        target = Path(folder) / "upload"
        written = 0
        with open(target, "wb") as handle:
            while chunk := upload.file.read(1 << 20):
                written += len(chunk)
                if written > limit:
                    raise HTTPException(413, _too_large(limit))
                handle.write(chunk)
        if written == 0:
            raise HTTPException(400, f"{_upload_name(upload)}: empty file")
        yield target


def _upload_name(upload: UploadFile) -> str:
    return os.path.basename(upload.filename or "") or "upload"


@contextmanager
def _upload_errors(upload: UploadFile, spooled: Path) -> Iterator[None]:
    """An ImageError about the spooled copy names the uploaded file instead of the temporary path."""
    try:
        yield
    except ImageError as error:
        if error.subject != str(spooled):
            raise
        raise HTTPException(400, f"{_upload_name(upload)}: {error.reason}") from None


class BodyLimit:
    """ASGI middleware: a request body past ``limit`` bytes of upload is refused with 413, declared or not."""

    #: Room for the multipart framing around an upload of ``limit`` bytes.
    FRAMING = 64 * 1024

    def __init__(self, app: Callable[[_Scope, _Receive, _Send], Awaitable[None]], limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        most = self.limit + self.FRAMING
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > most:
            await JSONResponse({"error": _too_large(self.limit)}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def limited() -> MutableMapping[str, Any]:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > most:
                raise HTTPException(413, _too_large(self.limit))
            return message

        await self.app(scope, limited, send)


def _too_large(limit: int) -> str:
    return f"upload larger than {limit} bytes"


def _error_status(error: NearIndexError) -> int:
    if isinstance(error, ImageError):
        return 400
    if isinstance(error, DatabaseLockedError):
        return 423
    return 409 if isinstance(error, DatabaseError) else 400


def _add_error_handlers(app: FastAPI) -> None:
    async def nearindex_error(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, NearIndexError)
        return JSONResponse({"error": str(error)}, status_code=_error_status(error))

    async def http_error(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code)

    async def invalid_request(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())[1:]) or "request"
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid')}".lower()}, status_code=422)

    app.add_exception_handler(NearIndexError, nearindex_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)


def _add_api(app: FastAPI, reader: _Reader, limit: int) -> None:
    @app.get("/api/info")
    def info() -> dict[str, Any]:
        with reader.opened() as database:
            return output.info_json(api.NearIndex(database).info())

    @app.post("/api/query")
    def query(file: Annotated[UploadFile, File()], k: Annotated[int, Query(ge=1, le=MAX_RESULTS)] = 10) -> Any:
        with spooled_upload(file, limit) as upload, _upload_errors(file, upload), reader.opened() as database:
            matches = api.NearIndex(database).query(upload, k=k)
        return output.matches_json(_upload_name(file), matches)

    @app.get("/api/duplicates")
    def duplicates(min_score: Annotated[float | None, Query(ge=0.0, le=1.0)] = None) -> dict[str, Any]:
        with reader.opened() as database:
            # All groups rescore every near pair: worth computing once per version of the database.
            find = api.NearIndex(database).duplicates
            groups = reader.remembered(("duplicates", min_score), lambda: find(min_score=min_score))
            return output.groups_json(groups)

    @app.get("/api/diff")
    def diff(a: str, b: str) -> dict[str, Any]:
        with reader.opened() as database:
            first, second = stored_path(database, a), stored_path(database, b)
        return diff_files(first, second)[0]

    @app.get("/api/diff.png")
    def diff_png(a: str, b: str) -> Response:
        with reader.opened() as database:
            first, second = stored_path(database, a), stored_path(database, b)
        return Response(diff_files(first, second)[1], media_type="image/png")

    @app.post("/api/diff")
    def diff_upload(a: Annotated[str, Form()], file: Annotated[UploadFile, File()]) -> dict[str, Any]:
        with reader.opened() as database:
            first = stored_path(database, a)
        with spooled_upload(file, limit) as upload, _upload_errors(file, upload):
            document, picture = diff_files(first, str(upload))
        picture_url = "data:image/png;base64," + base64.b64encode(picture).decode("ascii")
        return {"a": first, "b": _upload_name(file), **document, "picture": picture_url}


def _add_pages(app: FastAPI, reader: _Reader) -> None:
    @app.get("/image")
    def image(path: str, side: Annotated[int, Query(ge=16, le=MAX_THUMB_SIDE)] = THUMB_SIDE) -> Response:
        with reader.opened() as database:
            stored, settings = stored_path(database, path), database.settings
        data = thumbnail_jpeg(stored, side=side, settings=settings)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=60"})

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")


def create_app(database_path: str | os.PathLike[str], *, max_upload_bytes: int = MAX_UPLOAD_BYTES) -> FastAPI:
    """The web application over one database, opened read-only now (and reopened when it changes).

    Args:
        database_path: The database directory (it must exist).
        max_upload_bytes: Largest request body accepted (413 beyond), bytes.

    Returns:
        A FastAPI application; serve it with ``run`` or any ASGI server.

    Raises:
        DatabaseError: If the directory is not a nearindex database.
        ValueError: If ``max_upload_bytes`` is not positive.
    """
    if max_upload_bytes <= 0:
        raise ValueError(f"max_upload_bytes must be positive, got {max_upload_bytes}")
    reader = _Reader(Path(database_path))
    app = FastAPI(title="nearindex", docs_url="/api/docs", redoc_url=None, openapi_url="/api/openapi.json")
    app.state.reader = reader
    _add_error_handlers(app)
    _add_api(app, reader, max_upload_bytes)
    _add_pages(app, reader)
    app.add_middleware(BodyLimit, limit=max_upload_bytes)
    return app


def run(app: FastAPI, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve ``app`` with uvicorn until interrupted, then close its database."""
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        app.state.reader.close()
