"""Walking the paths given to ``add``/``sync``: which files may be images.

Only regular files are yielded; directories are followed recursively
(symlinked ones too, each real directory once, so a symlink loop ends);
everything else is either skipped or reported, never opened. A URL
(``s3://bucket/photos``) is listed through ``stores``: its objects are found
files like any other, their ``mtime_ns`` being the store's change stamp.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from . import stores
from .errors import Failed, NearIndexError
from .images import IMAGE_EXTENSIONS, describe_os_error, irregular_file_reason, read_file_bytes


@dataclass(frozen=True)
class FoundFile:
    """A regular file found by the walk.

    Attributes:
        path: Absolute path (not resolved through symlinks), or a store's normalised URL.
        size: Bytes.
        mtime_ns: Modification time, nanoseconds (for a URL: the store's change stamp).
        must_be_image: Named explicitly or has an image suffix: if it is not
            an image, that is reported rather than silently skipped.
    """

    path: str
    size: int
    mtime_ns: int
    must_be_image: bool


def has_image_suffix(path: str) -> bool:
    """True when the file name ends in a known image suffix."""
    return os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS


def display_path(path: str) -> str:
    """A path as text that can be printed and stored (undecodable bytes escaped)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def location(given: str) -> str:
    """The form a given path is stored under: an absolute local path or a normalised URL.

    A ``file://`` URL is the local path it names.
    """
    local = stores.local_path_of(given)
    if local is not None:
        return os.path.abspath(local)
    return stores.normalise_url(given) if stores.is_url(given) else os.path.abspath(given)


def read_bytes(path: str) -> bytes:
    """The content of a stored path: a local file, or a store's object for a URL.

    Raises:
        ImageError: If it cannot be read.
        MissingDependencyError: A URL's store needs a package that is not installed.
    """
    return stores.read_object(path) if stores.is_url(path) else read_file_bytes(path)


def walk(paths: list[str]) -> Iterator[FoundFile | Failed]:
    """Yield the regular files under each path, and the problems met.

    Args:
        paths: Files or directories, as given by the user.

    Yields:
        FoundFile for each regular file; Failed for a missing top-level
        path, an unreadable directory, a file name that is not UTF-8, a
        broken link / non-regular file that looks like an image, or a URL
        whose store cannot be listed (or needs a package to be installed).
    """
    visited: set[tuple[int, int]] = set()
    for given in paths:
        path = location(given)
        if stores.is_url(path):
            yield from _walk_store(path)
            continue
        try:
            info = os.stat(path)
        except OSError as error:
            yield Failed(display_path(path), describe_os_error(path, error))
            continue
        if stat.S_ISDIR(info.st_mode):
            yield from _walk_directory(path, info, visited)
        else:
            yield _classify(path, info, explicit=True)


def _walk_store(url: str) -> Iterator[FoundFile | Failed]:
    """The objects under a URL; every object named explicitly or with an image suffix must be an image."""
    try:
        for found in stores.list_objects(url):
            yield FoundFile(found.url, found.size, found.stamp, found.url == url or has_image_suffix(found.url))
    except NearIndexError as error:
        yield Failed(error.subject, error.reason)


def _walk_directory(path: str, info: os.stat_result, visited: set[tuple[int, int]]) -> Iterator[FoundFile | Failed]:
    key = (info.st_dev, info.st_ino)
    if key in visited:
        return
    visited.add(key)
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError as error:
        yield Failed(display_path(path), f"cannot list directory ({error.strerror})")
        return
    for entry in entries:
        yield from _walk_entry(entry, visited)


def _walk_entry(entry: os.DirEntry[str], visited: set[tuple[int, int]]) -> Iterator[FoundFile | Failed]:
    try:
        info = entry.stat(follow_symlinks=True)
    except OSError as error:
        if has_image_suffix(entry.path):
            yield Failed(display_path(entry.path), describe_os_error(entry.path, error))
        return
    if stat.S_ISDIR(info.st_mode):
        yield from _walk_directory(entry.path, info, visited)
        return
    found = _classify(entry.path, info, explicit=False)
    if isinstance(found, FoundFile) or has_image_suffix(entry.path):
        yield found


def _classify(path: str, info: os.stat_result, *, explicit: bool) -> FoundFile | Failed:
    problem = irregular_file_reason(info.st_mode)
    if problem is not None:
        return Failed(display_path(path), problem)
    if display_path(path) != path:
        return Failed(display_path(path), "file name is not valid UTF-8")
    return FoundFile(path, info.st_size, info.st_mtime_ns, explicit or has_image_suffix(path))
