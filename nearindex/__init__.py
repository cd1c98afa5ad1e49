"""nearindex: find near-duplicate and doctored images in large collections.

Each image becomes a blurred, normalised low-resolution grayscale vector kept
in a FAISS index (metadata in SQLite); queries take the index's candidates and
rescore them with ``cv2.matchTemplate`` to allow shifts, crops and scale.
"""

import os as _os

# OpenBLAS's worker threads spin against OpenCV's thread pool: measured here,
# a 12,000-element dot product took 8 ms instead of 3 us once cv2 had run.
# nearindex's BLAS calls are tiny, so one BLAS thread is the right default.
# (Only effective when numpy is not imported yet; hot paths avoid BLAS anyway.)
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import importlib as _importlib
import typing as _typing

#: Where each public name lives. They are imported on first use (PEP 562), so a
#: describing worker process, which needs only ``nearindex.workers`` (OpenCV and
#: numpy), does not import SQLAlchemy, Alembic and FAISS too: that took each
#: worker's start-up from about 0.2 to 0.9 s, a third of adding the 540 corpus files.
_HOMES = {
    "Calibration": "calibration",
    "CheckReport": "database",
    "ClusterError": "errors",
    "Comparison": "search",
    "CorruptImageError": "errors",
    "DatabaseError": "errors",
    "DatabaseLockedError": "errors",
    "Difference": "difference",
    "DuplicateGroup": "duplicates",
    "Failed": "errors",
    "ImageError": "errors",
    "ImageTooLargeError": "errors",
    "Info": "api",
    "IngestReport": "ingest",
    "Match": "search",
    "MissingDependencyError": "errors",
    "NearIndex": "api",
    "NearIndexError": "errors",
    "NotAnImageError": "errors",
    "OutputFileError": "errors",
    "Region": "difference",
    "Relation": "relation",
    "SchemaTooNewError": "errors",
    "Settings": "settings",
    "UnreadableFileError": "errors",
    "compare": "search",
    "diff": "api",
    "open": "api",
}

if _typing.TYPE_CHECKING:
    from .api import Info, NearIndex, diff, open
    from .calibration import Calibration
    from .database import CheckReport
    from .difference import Difference, Region
    from .duplicates import DuplicateGroup
    from .errors import (
        ClusterError,
        CorruptImageError,
        DatabaseError,
        DatabaseLockedError,
        Failed,
        ImageError,
        ImageTooLargeError,
        MissingDependencyError,
        NearIndexError,
        NotAnImageError,
        OutputFileError,
        SchemaTooNewError,
        UnreadableFileError,
    )
    from .ingest import IngestReport
    from .relation import Relation
    from .search import Comparison, Match, compare
    from .settings import Settings


if not _typing.TYPE_CHECKING:  # type checkers see the imports above, and flag a misspelt name

    def __getattr__(name: str) -> object:
        """Import a public name's module the first time the name is used."""
        home = _HOMES.get(name)
        if home is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(_importlib.import_module(f".{home}", __name__), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__version__ = "0.1.0"

__all__ = [
    "Calibration",
    "CheckReport",
    "ClusterError",
    "Comparison",
    "CorruptImageError",
    "DatabaseError",
    "DatabaseLockedError",
    "Difference",
    "DuplicateGroup",
    "Failed",
    "ImageError",
    "ImageTooLargeError",
    "Info",
    "IngestReport",
    "Match",
    "MissingDependencyError",
    "NearIndex",
    "NearIndexError",
    "NotAnImageError",
    "OutputFileError",
    "Region",
    "Relation",
    "SchemaTooNewError",
    "Settings",
    "UnreadableFileError",
    "__version__",
    "compare",
    "diff",
    "open",
]
