"""The one exception tree of nearindex.

Every error names what it is about (a file, a database) and why, and renders as
one line: ``nearindex: photos/a.jpg: not an image (truncated JPEG)``.

    NearIndexError                  base class, never raised directly
    ├── ImageError                  one input file cannot be used
    │   ├── UnreadableFileError     missing, not a regular file, no permission
    │   ├── NotAnImageError         no known image signature, empty file
    │   ├── CorruptImageError       truncated or undecodable image data
    │   └── ImageTooLargeError      header claims more pixels than allowed
    ├── DatabaseError               a database directory cannot be used
    │   ├── SchemaTooNewError       written by a newer nearindex
    │   └── DatabaseLockedError     another writer holds the database
    ├── OutputFileError             a file nearindex was asked to write cannot be written
    ├── MissingDependencyError      an optional package (an extra) is needed and not installed
    └── ClusterError                the Dask scheduler cannot be reached
"""

from __future__ import annotations

import os
from dataclasses import dataclass


class NearIndexError(Exception):
    """Base of every error nearindex raises on purpose.

    Args:
        subject: What the error is about (a path or a database directory).
        reason: Why, in a few words, lower case, no trailing period.
    """

    def __init__(self, subject: str | os.PathLike[str], reason: str) -> None:
        self.subject = os.fspath(subject)
        self.reason = reason
        super().__init__(f"{self.subject}: {reason}")

    def __str__(self) -> str:
        return f"{self.subject}: {self.reason}"


class ImageError(NearIndexError):
    """One input file cannot be turned into a descriptor."""


class UnreadableFileError(ImageError):
    """The file is missing, not a regular file, or cannot be opened."""


class NotAnImageError(ImageError):
    """The file's content is not in any image format nearindex reads."""


class CorruptImageError(ImageError):
    """The file looks like an image but its data is truncated or broken."""


class ImageTooLargeError(ImageError):
    """The image header claims more pixels than the configured limit."""


class DatabaseError(NearIndexError):
    """A database directory cannot be opened or used."""


class SchemaTooNewError(DatabaseError):
    """The catalog was written by a newer nearindex than this one."""


class DatabaseLockedError(DatabaseError):
    """Another process is writing to the database."""


class OutputFileError(NearIndexError):
    """A file nearindex was asked to write (a picture) cannot be written."""


class MissingDependencyError(NearIndexError):
    """What was asked needs an optional package; the reason says how to install it."""


class ClusterError(NearIndexError):
    """The Dask scheduler given with ``--cluster`` cannot be reached."""


@dataclass(frozen=True)
class Failed:
    """One item of a batch that could not be used: the path and the reason.

    Batches return these as data instead of raising, so the good items finish.
    """

    path: str
    reason: str
    #: The cause may pass by itself (no permission, out of memory, a crashed
    #: decoder): the file is tried again by the next run even if unchanged.
    transient: bool = False

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"
