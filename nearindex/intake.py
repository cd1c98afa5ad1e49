"""One file in, its content hash and description out.

This is the unit of work the ingest pool runs in worker processes: read the
bytes once, hash them, and decode only when the hash is new. Bytes read from
a store (``stores``) go straight to ``describe_content``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Container
from dataclasses import dataclass, replace
from typing import TypeVar

import cv2
import numpy as np
import numpy.typing as npt

from .borders import NO_BORDERS, Borders
from .colour import COLOUR_DETAIL, colour_of
from .errors import UnreadableFileError
from .features import Description, describe
from .images import (
    decode_colour,
    decode_grayscale,
    read_file_bytes,
    read_header_size,
    sniff_format,
)
from .planes import prepare
from .settings import DEFAULT_SETTINGS, Settings
from .smooth import beside_band

#: A BGR image as decoded (0..1) or as edited (8-bit).
ColourImage = TypeVar("ColourImage", npt.NDArray[np.uint8], npt.NDArray[np.float32])

#: Bytes of BLAKE2b digest identifying a content (collisions are negligible).
HASH_BYTES = 16


@dataclass(frozen=True)
class FileDescription:
    """A file's identity and, when its content was new, its description.

    Attributes:
        path: The file, as given.
        size: Bytes, as seen when read.
        mtime_ns: Modification time in nanoseconds, as seen when read.
        content_hash: BLAKE2b-128 of the bytes.
        width: Pixels (0 when the content was already known and not decoded).
        height: Pixels (0 likewise).
        description: Descriptor and thumbnail, or None when the hash was known.
    """

    path: str
    size: int
    mtime_ns: int
    content_hash: bytes
    width: int
    height: int
    description: Description | None


def hash_content(data: bytes) -> bytes:
    """The content hash nearindex uses to recognise copies and moves."""
    return hashlib.blake2b(data, digest_size=HASH_BYTES).digest()


def describe_file(
    path: str, *, settings: Settings = DEFAULT_SETTINGS, known_hashes: Container[bytes] = frozenset()
) -> FileDescription:
    """Read, hash and (if new) decode and describe one file.

    Args:
        path: A regular file.
        settings: Descriptor parameters and the pixel limit.
        known_hashes: Hashes whose description is already stored; such a
            file is hashed but not decoded.

    Returns:
        The file's FileDescription.

    Raises:
        ImageError: If the file cannot be read or is not a usable image.
    """
    data = read_file_bytes(path)
    stat = stat_after_read(path, len(data))
    return describe_content(path, data, mtime_ns=stat.st_mtime_ns, settings=settings, known_hashes=known_hashes)


def describe_content(
    path: str, data: bytes, *, mtime_ns: int, settings: Settings = DEFAULT_SETTINGS,
    known_hashes: Container[bytes] = frozenset(),
) -> FileDescription:  # fmt: skip
    """Hash and (if new) decode and describe bytes already read from ``path``.

    Args:
        path: Where the bytes came from (a local path or a store's URL), for
            the description and for error messages.
        data: The whole file.
        mtime_ns: The modification time (or a store's change stamp) seen
            when the bytes were read.
        settings: Descriptor parameters and the pixel limit.
        known_hashes: Hashes whose description is already stored.

    Returns:
        The FileDescription.

    Raises:
        ImageError: If the bytes are not a usable image.
    """
    digest = hash_content(data)
    if digest in known_hashes:
        return FileDescription(path, len(data), mtime_ns, digest, 0, 0, None)
    limits = {"max_pixels": settings.max_pixels, "min_long_side": 2 * settings.thumb_side}
    gray = decode_grayscale(data, source=path, **limits)
    width, height = image_size(data, decoded_shape=(gray.shape[0], gray.shape[1]))
    description = describe(gray, settings=settings)
    del gray  # the colour decode takes as much again before it is shrunk
    part = colour_part(description, settings=settings)
    if part is not None:
        colour_image = decode_colour(data, source=path, long_side=2 * settings.thumb_side, **limits)
        description = with_colour(description, colour_image, part)
    return FileDescription(path, len(data), mtime_ns, digest, width, height, description)


def colour_part(description: Description, *, settings: Settings = DEFAULT_SETTINGS) -> Borders | None:
    """Which part of an image keeps its colours (``colour``), if any: only they are compared by colour.

    An image with so little detail that grey cannot tell it from another
    (``colour.COLOUR_DETAIL``) keeps the colours of its whole content. So does
    one whose detail lies in a band along one edge (a screenshot's title bar
    or a caption strip over a smooth picture: ``smooth.beside_band``), of the
    rest: the picture's (two such only rank copies, ``Colour.beside_band``:
    another copy may have kept another part's). Only such an image's pixels are
    decoded a second time, in colour. 17 of the public corpus's 540 images keep
    colours beside a band (a photo's sky above a detailed band, a dialog under
    its title bar).

    Args:
        description: The image's grey description.
        settings: Rescoring size (detail is measured as the rescorer sees it).

    Returns:
        What to cut off the content (inside its uniform borders) before taking
        its colours: nothing for a low-detail image, the band for one beside a
        band; None for a flat image or one with detail elsewhere.
    """
    if description.flat:
        return None
    prepared = prepare(description.thumbnail, side=settings.rescore_side)
    if prepared.detail < COLOUR_DETAIL:
        return NO_BORDERS
    return beside_band(prepared, below=COLOUR_DETAIL)


def with_colour(description: Description, image: ColourImage, part: Borders) -> Description:
    """``description`` with the colours of ``part`` (``colour_part``) of its content in ``image`` (BGR, any size)."""
    colour = colour_of(part.trim(description.borders.trim(image)))
    return replace(description, colour=replace(colour, beside_band=part.found))


def stat_after_read(path: str, size: int) -> os.stat_result:
    """Stat a file just read, refusing one that changed or vanished meanwhile.

    Raises:
        UnreadableFileError: If the file is gone or its size is no longer ``size``.
    """
    try:
        stat = os.stat(path)
    except OSError as error:
        raise UnreadableFileError(path, f"vanished while being read ({error.strerror})") from error
    if stat.st_size != size:
        raise UnreadableFileError(path, "changed while being read")
    return stat


def image_size(data: bytes, *, decoded_shape: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of an image as displayed, from its header when known.

    The decode may have been at reduced size, so the header's numbers are
    preferred; they are swapped when the decoder turned the image (EXIF).
    """
    fmt = sniff_format(data[:32])
    header = read_header_size(data, fmt) if fmt else None
    height, width = decoded_shape
    if header is None:
        return width, height
    if (header[0] > header[1]) != (width > height) and header[0] != header[1] and width != height:
        return header[1], header[0]
    return header


def load_for_editing(
    path: str, *, data: bytes, long_side: int, settings: Settings = DEFAULT_SETTINGS
) -> npt.NDArray[np.uint8]:
    """An image file as 8-bit BGR, its long side at most ``long_side``.

    What ``synthetic``'s edits take; the decode may be at reduced size, as
    for describing. Colour is kept: an edit of an image with little detail
    is judged by its colour too (``colour``).

    Args:
        path: The file or store object ``data`` was read from (for error messages).
        data: Its content (``filetree.read_bytes`` reads a file or a store's object).
        long_side: Largest side of the result, in pixels.
        settings: The pixel limit.

    Raises:
        ImageError: If the content is not a usable image.
    """
    sides = {"min_long_side": long_side, "long_side": long_side}
    image = decode_colour(data, source=path, max_pixels=settings.max_pixels, **sides)
    return np.ascontiguousarray(np.rint(image * 255).astype(np.uint8))


def describe_image(image: npt.NDArray[np.uint8], *, settings: Settings = DEFAULT_SETTINGS) -> Description:
    """Describe an 8-bit BGR image held in memory (converted to gray by OpenCV, not by a file decoder)."""
    description = describe(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255, settings=settings)
    part = colour_part(description, settings=settings)
    return description if part is None else with_colour(description, image, part)
