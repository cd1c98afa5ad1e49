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
#: Sub-windows described besides the whole image, as (top, bottom, left, right)
#: fractions of the thumbnail: the centre, four corner windows of 3/4 of each
#: side, the top 82 % (an image above a caption band) and the middle 80 % of
#: the height (an image inside a letterbox).
WINDOWS: tuple[tuple[float, float, float, float], ...] = (
    (0.0, 1.0, 0.0, 1.0),
    (0.125, 0.875, 0.125, 0.875),
    (0.0, 0.75, 0.0, 0.75),
    (0.0, 0.75, 0.25, 1.0),
    (0.25, 1.0, 0.0, 0.75),
    (0.25, 1.0, 0.25, 1.0),
    (0.0, 0.82, 0.0, 1.0),
    (0.1, 0.9, 0.0, 1.0),
)
#: Strips across the middle of an image's long side, as fractions of it, the short side
#: whole: the centre of the picture cut to another screen shape (a phone's portrait version
#: of a desktop wallpaper), which keeps too little of it for any window above. 0.56 is
#: 4:3 cut to 3:4 (or 16:9 to 1:1), 0.42 4:3 to 9:16 (or 16:9 to 3:4), 0.32 16:9 to 9:16;
#: a strip's vector still correlates about 0.96 at the median with a cut 10 % wider or
#: narrower. Described after ``WINDOWS``; databases of earlier releases store none.
STRIPS: tuple[float, ...] = (0.56, 0.42, 0.32)
#: Vectors described per image: ``WINDOWS``, then ``STRIPS``.
WINDOW_COUNT = len(WINDOWS) + len(STRIPS)


@dataclass(frozen=True)
class Settings:
    """Parameters of the descriptor, the rescorer and the input limits.

    Attributes:
        grid: Side of the square descriptor grid, in cells (vector length
            grid**2). 16x16 found originals among the first 30 candidates as
            well as 32x32 (0.985 both, public corpus) at a quarter of the size.
        thumb_side: Long side of the stored rescore thumbnail, in pixels.
        rescore_side: Long side the rescorer works at (the stored thumbnail
            downscaled): 64 px matched the public corpus's edits better than
            128 px (recall@1 0.943 vs 0.921) at less cost.
        blur_fraction: Gaussian sigma as a fraction of the image's long side
            (the motivating case blurred ~1000 px photos with sigma 21).
        max_pixels: Largest width*height accepted before decoding (bomb guard).
        duplicate_threshold: Rescored score at or above which two images are
            called duplicates. Calibrated with ``scripts/evaluate.py`` on the
            public corpus: 0.1 % of 19,979 random pairs of different photos
            and figures score 0.851 or more (0.055 % reach 0.87), while 99.7 %
            of 1,919 generated edits of the photos (crops, captions,
            re-encodes, flips, borders, rotations...) do. On a collection of
            smooth gradients and soft colour fields (``scripts/smooth_collection.py``)
            0.7 % of unrelated pairs reach it: ``nearindex calibrate`` measures it
            on a collection of one's own.
        candidates: Minimum number of vector-index candidates a query rescores.
        ranked_cells: Descriptor cells are replaced by their ranks before
            normalising (inner products are Spearman, not Pearson,
            correlations). On the public corpus's generated edits this put
            the original among the first 30 candidates for 0.96 instead of
            0.86 of local pastes (0.995 instead of 0.985 of all edits), and
            the top 0.1 % of unrelated pairs fell from 0.929 to 0.914.
            Databases made before it existed keep plain cells.
        trim_borders: Images are described without their uniform borders
            (letterbox and frame bars, ``borders``). Databases made before
            it existed describe whole images.
    """

    grid: int = 16
    thumb_side: int = 128
    rescore_side: int = 64
    blur_fraction: float = 0.02
    max_pixels: int = 100_000_000
    duplicate_threshold: float = 0.87
    candidates: int = 30
    ranked_cells: bool = True
    trim_borders: bool = True

    @property
    def dimension(self) -> int:
        """Length of one descriptor vector."""
        return self.grid * self.grid


DEFAULT_SETTINGS = Settings()
