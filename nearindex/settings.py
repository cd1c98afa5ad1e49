"""Tunable constants of a database, fixed when it is created.

The descriptor grid and thumbnail size shape every stored vector, so a database
records the values it was created with and keeps using them.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Directory used when neither ``--db`` nor ``$NEARINDEX_DB`` names one.
DEFAULT_DATABASE = "nearindex-db"
#: Environment variable naming the database directory.
DATABASE_ENV_VAR = "NEARINDEX_DB"


@dataclass(frozen=True)
class Settings:
    """Parameters of the descriptor, the rescorer and the input limits.

    Attributes:
        grid: Side of the square descriptor grid, in cells (vector length grid**2).
        thumb_side: Long side of the stored rescore thumbnail, in pixels.
        blur_fraction: Gaussian sigma as a fraction of the image's long side
            (the motivating case blurred ~1000 px photos with sigma 21).
        max_pixels: Largest width*height accepted before decoding (bomb guard).
        duplicate_threshold: Rescored score at or above which two images are
            called duplicates. Calibrated on the public corpus's photos
            (4,793 pairs of unrelated photos, 663 generated edits): at 0.70,
            1 unrelated pair in 4,793 (0.02 %) reaches it (a drawn chessboard
            against a photo of a chessboard) while 92 % of edited copies do.
        candidates: Minimum number of vector-index candidates a query rescores.
    """

    grid: int = 32
    thumb_side: int = 128
    blur_fraction: float = 0.02
    max_pixels: int = 100_000_000
    duplicate_threshold: float = 0.70
    candidates: int = 30

    @property
    def dimension(self) -> int:
        """Length of one descriptor vector."""
        return self.grid * self.grid


DEFAULT_SETTINGS = Settings()
