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
