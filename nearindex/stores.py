"""Files in object stores and remote filesystems, through fsspec.

A path like ``s3://bucket/photos`` or ``memory://scratch`` names objects in a
store that fsspec understands when the matching package is installed (s3fs
for ``s3://``, gcsfs for ``gs://``...). ``file://`` URLs are not handled here:
they are local paths. fsspec is an optional dependency, imported only when a
URL is met; credentials and endpoints come from each package's usual
environment variables (``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``...).

Change detection needs a number that changes when an object does. A store's
listing gives a size and usually a modification time and an ETag; the
*stamp* kept in the catalog's ``mtime_ns`` column is the modification time in
nanoseconds (so it still orders files by age), with an ETag-derived number
in its sub-second digits when the store's clock has whole seconds only (S3),
so that two writes of the same size within one second still differ. Without
a time, the stamp is the first 63 bits of the ETag's BLAKE2b digest; without
either, 0 (size alone then tells a change).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from .errors import MissingDependencyError, UnreadableFileError

_URL: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")
_NS: Final = 1_000_000_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_TIME_KEYS: Final = ("mtime", "LastModified", "last_modified", "updated", "modified", "created", "mtime_ns")
_TAG_KEYS: Final = ("ETag", "etag", "md5Hash", "content_md5", "crc32c")
#: Protocols whose objects live in one process's memory (not visible to worker processes).
PROCESS_LOCAL_PROTOCOLS: Final = frozenset({"memory"})
_INSTALL_HINT: Final = "pip install 'nearindex[dist]'"


@dataclass(frozen=True)
class StoredObject:
    """An object listed in a store.

    Attributes:
        url: Normalised URL (``protocol://bucket/key``).
        size: Bytes.
        stamp: What changes when the object does (see the module docstring).
    """

    url: str
    size: int
    stamp: int


def is_url(path: str) -> bool:
    """True when ``path`` names a store (``protocol://...``) rather than a local file."""
    return bool(_URL.match(path))


def local_path_of(url: str) -> str | None:
    """The local path a ``file://`` URL names, or None for any other path."""
    if url.lower().startswith("file://"):
        return url[len("file://") :] or "/"
    return None


def protocol_of(url: str) -> str:
    """The lower-case protocol of a URL (``s3`` for ``s3://bucket``)."""
    return url.split("://", 1)[0].lower()


def normalise_url(url: str) -> str:
    """The URL as stored: the store's own spelling, without a trailing slash.

    Falls back to the URL minus trailing slashes when the store's package
    is missing (so ``remove`` works without it).
    """
    try:
        fs, path = _filesystem(url)
    except MissingDependencyError:
        return url.rstrip("/")
    return _unstrip(fs, path)


def list_objects(url: str) -> Iterator[StoredObject]:
    """The objects at or under ``url``, sorted by URL within each folder.

    Args:
        url: A store URL naming an object or a prefix ("folder").

    Yields:
        StoredObject for each object (folders are followed recursively).

    Raises:
        MissingDependencyError: fsspec or the protocol's package is missing.
        UnreadableFileError: Nothing exists at ``url`` or it cannot be listed.
    """
    fs, path = _filesystem(url)
    with _translated(url, "cannot list"):
        # A listing cached by an earlier run in this process would hide changes; s3fs's
        # invalidate_cache(path) keeps the sub-folders' listings, so everything goes.
        fs.invalidate_cache()
        info = fs.info(path)
        if info.get("type") != "directory":
            yield _object(fs, info)
            return
        # fsspec's default omits a sub-folder it cannot list, as if it were empty: sync would
        # then forget everything stored under it. Raising makes the whole listing fail instead.
        for _root, _dirs, files in fs.walk(path, detail=True, on_error="raise"):
            for name in sorted(files):
                yield _object(fs, files[name])


def stat_object(url: str) -> StoredObject:
    """One object's size and stamp, asked of the store now.

    Raises:
        MissingDependencyError: fsspec or the protocol's package is missing.
        UnreadableFileError: The object is missing or cannot be reached.
    """
    fs, path = _filesystem(url)
    with _translated(url, "cannot read"):
        return _object(fs, fs.info(path))


def object_exists(url: str) -> bool:
    """True when the object is there (or the store cannot tell: nothing is forgotten on a doubt)."""
    try:
        stat_object(url)
    except UnreadableFileError as error:
        return error.reason != "no such file or directory"
    except MissingDependencyError:
        return True
    return True


def read_object(url: str, *, size: int | None = None, length: int | None = None) -> bytes:
    """An object's bytes, in one request.

    Args:
        url: The object.
        size: The size the listing gave; a different length read means the
            object changed since (a transient failure, as for a local file).
        length: Read only the first ``length`` bytes (``size`` is then not checked).

    Returns:
        The content (or its first ``length`` bytes).

    Raises:
        MissingDependencyError: fsspec or the protocol's package is missing.
        UnreadableFileError: Missing, no permission, unreachable, or changed while being read.
    """
    fs, path = _filesystem(url)
    with _translated(url, "cannot read"):
        data = bytes(fs.cat_file(path, start=0 if length is not None else None, end=length))
    if length is None and size is not None and len(data) != size:
        raise UnreadableFileError(url, "changed while being read")
    return data


def stamp_of(info: Mapping[str, Any]) -> int:
    """The change stamp of a listing entry (see the module docstring)."""
    mtime = _mtime_ns(info)
    tag = next((str(info[key]) for key in _TAG_KEYS if info.get(key)), None)
    if tag is None:
        return mtime or 0
    digest = int.from_bytes(hashlib.blake2b(tag.encode(), digest_size=8).digest())
    if mtime is None:
        return digest >> 1  # 63 bits: a positive SQLite integer
    return mtime + digest % _NS if mtime % _NS == 0 else mtime


def _mtime_ns(info: Mapping[str, Any]) -> int | None:
    """The modification time in ns, to the microsecond (a float of seconds holds no more)."""
    for key in _TIME_KEYS:
        value = info.get(key)
        if isinstance(value, datetime):
            aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
            return (aware - _EPOCH) // timedelta(microseconds=1) * 1000
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value) if key == "mtime_ns" else round(value * 1_000_000) * 1000
        if isinstance(value, str):
            try:
                return _mtime_ns({key: datetime.fromisoformat(value.replace("Z", "+00:00"))})
            except ValueError:
                continue
    return None


def _object(fs: Any, info: Mapping[str, Any]) -> StoredObject:
    return StoredObject(_unstrip(fs, str(info["name"])), int(info.get("size") or 0), stamp_of(info))


def _unstrip(fs: Any, path: str) -> str:
    return str(fs.unstrip_protocol(path.rstrip("/") or path))


def _filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem and the store's own path for a URL."""
    try:
        import fsspec.core  # optional (the dist extra): imported when a URL is met
    except ImportError as error:
        raise MissingDependencyError(url, f"URLs need fsspec: {_INSTALL_HINT}") from error
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except ImportError as error:
        package = error.name or _package_named_in(str(error))
        raise MissingDependencyError(url, f"{protocol_of(url)}:// needs {package}: pip install {package}") from error
    except ValueError as error:
        raise MissingDependencyError(url, f"unknown protocol {protocol_of(url)}:// ({error})") from error
    return fs, str(path)


def _package_named_in(message: str) -> str:
    """fsspec says "Please install gcsfs to access Google Storage": the package is the third word."""
    words = message.split()
    return words[2] if len(words) > 2 and words[:2] == ["Please", "install"] else "the fsspec package for it"


@contextmanager
def _translated(url: str, what: str) -> Iterator[None]:
    """Turn a store's exceptions into UnreadableFileError naming the URL."""
    try:
        yield
    except (FileNotFoundError, NotADirectoryError) as error:
        raise UnreadableFileError(url, "no such file or directory") from error
    except PermissionError as error:
        raise UnreadableFileError(url, "permission denied") from error
    except MissingDependencyError:
        raise
    except Exception as error:  # each store raises its own (botocore, aiohttp...): all mean "cannot reach it"
        raise UnreadableFileError(url, f"{what} ({type(error).__name__}: {error})") from error
