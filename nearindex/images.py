"""Turn a path into a grayscale (or colour) float image, refusing anything unsafe first.

``cv2.imread`` is never used: with the OpenCV 5.0 wheels it crashes the process on a non-UTF-8 file
name, blocks forever on a FIFO and accepts a JPEG cut in half. Instead only a regular file is opened
and read in Python, its format sniffed, its pixel count read from the header *before* decoding (bomb
guard), its completeness checked, and only then is it given to ``cv2.imdecode`` with
``IMREAD_GRAYSCALE | IMREAD_ANYDEPTH`` (16-bit data keeps its precision), or, for the few callers
that need colour (``decode_colour``), ``IMREAD_COLOR | IMREAD_ANYDEPTH``. ``imdecode`` applies EXIF orientation itself
(measured), so a query and an ingested copy of the same photo agree.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import struct
from collections.abc import Callable, Iterator
from typing import Any, Final, TypeVar, cast

import cv2
import numpy as np
import numpy.typing as npt

from .errors import CorruptImageError, ImageTooLargeError, NotAnImageError, UnreadableFileError

#: Lower-case file suffixes (with the dot) of the formats this module decodes.
IMAGE_EXTENSIONS: Final[frozenset[str]] = frozenset({
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".bmp", ".dib", ".tif", ".tiff", ".gif",
    ".pbm", ".pgm", ".ppm", ".pnm",
})  # fmt: skip

_DISPLAY_NAMES: Final = {"webp": "WebP"}  # the others are upper-cased
_SIGNATURES: Final = {b"\xff\xd8\xff": "jpeg", b"\x89PNG\r\n\x1a\n": "png", b"GIF87a": "gif", b"GIF89a": "gif"}
_TIFF_MAGIC: Final = frozenset({b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"})  # classic and BigTIFF
_BMP_INFO_SIZES: Final = frozenset({12, 40, 52, 56, 64, 108, 124})
_PNM_MAGIC: Final = re.compile(rb"P[1-6][ \t\r\n]+[#0-9]")
_PNM_HEADER: Final = re.compile(rb"P[1-6](?:\s|#[^\n]*\n)+(\d+)(?:\s|#[^\n]*\n)+(\d+)")
_JPEG_SOF: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE: Final = frozenset(range(0xD0, 0xDA)) | {0x01}  # RSTn, SOI, EOI, TEM: no length field
_JPEG_SOS: Final = 0xDA
_GRAY_FLAGS: Final[int] = cv2.IMREAD_GRAYSCALE | cv2.IMREAD_ANYDEPTH
_REDUCED_FLAGS: Final[dict[int, int]] = {f: getattr(cv2, f"IMREAD_REDUCED_GRAYSCALE_{f}") for f in (8, 4, 2)}
_COLOUR_FLAGS: Final[int] = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH
_REDUCED_COLOUR_FLAGS: Final[dict[int, int]] = {f: getattr(cv2, f"IMREAD_REDUCED_COLOR_{f}") for f in (8, 4, 2)}
_BGR_WEIGHTS: Final = np.array([0.114, 0.587, 0.299], dtype=np.float32)
_OPEN_FLAGS: Final = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_ERRNO_REASONS: Final = {
    errno.ENOENT: "no such file or directory",
    errno.ENOTDIR: "no such file or directory", errno.EACCES: "permission denied",
    errno.EPERM: "permission denied", errno.ELOOP: "symlink loop", errno.EISDIR: "is a directory",
    errno.ENAMETOOLONG: "file name too long",
}  # fmt: skip

Size = tuple[int, int]
FloatImage = npt.NDArray[np.float32]
_Pixel = TypeVar("_Pixel", np.uint8, np.uint16, np.float32)


def read_file_bytes(path: str | os.PathLike[str]) -> bytes:
    """Read a whole regular file, refusing FIFOs, devices and directories.

    The type is checked with ``stat`` before opening (a device is never opened) and again with
    ``fstat`` on the descriptor, opened with ``O_NONBLOCK`` so a FIFO swapped in cannot block.

    Args:
        path: File to read; a non-UTF-8 name may be a surrogate-escaped ``str``.

    Returns:
        The file's content.

    Raises:
        UnreadableFileError: Missing file, broken symlink, symlink loop, permission denied,
            directory, FIFO, device, socket, or a read error.
    """
    name = os.fsdecode(path)
    try:
        _require_regular(name, os.stat(name).st_mode)
        with open(os.open(name, _OPEN_FLAGS), "rb") as stream:
            _require_regular(name, os.fstat(stream.fileno()).st_mode)
            return stream.read()
    except OSError as exc:
        raise UnreadableFileError(name, describe_os_error(name, exc)) from exc


def _require_regular(name: str, mode: int) -> None:
    problem = irregular_file_reason(mode)
    if problem is not None:
        raise UnreadableFileError(name, problem)


def irregular_file_reason(mode: int) -> str | None:
    """Why a file of this ``st_mode`` cannot be read as an image, or None if it is regular."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory"
    kind = "fifo" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) else "device"
    return f"not a regular file ({kind})"


def describe_os_error(name: str, exc: OSError) -> str:
    """A short reason for an ``OSError`` met while opening ``name``."""
    if exc.errno == errno.ENOENT and os.path.islink(name):
        return "broken symlink"
    if exc.errno in _ERRNO_REASONS:
        return _ERRNO_REASONS[exc.errno]
    return f"cannot read ({(exc.strerror or 'unknown error').lower()})"


def sniff_format(head: bytes) -> str | None:
    """Identify an image format from its signature.

    Args:
        head: The first bytes of the file (32 are enough).

    Returns:
        ``"jpeg"``, ``"png"``, ``"webp"``, ``"bmp"``, ``"tiff"``, ``"gif"``, ``"pnm"``, or None
        when no supported signature matches.
    """
    for magic, fmt in _SIGNATURES.items():
        if head.startswith(magic):
            return fmt
    if head[:4] in _TIFF_MAGIC:
        return "tiff"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:2] == b"BM" and len(head) >= 18 and _u32le(head, 14) in _BMP_INFO_SIZES:
        return "bmp"
    return "pnm" if _PNM_MAGIC.match(head) else None


def _u32le(data: bytes, offset: int) -> int:
    return cast(int, struct.unpack_from("<I", data, offset)[0])


def read_header_size(data: bytes, fmt: str) -> Size | None:
    """Read the image size from the header without decoding any pixel data.

    Args:
        data: The whole file, or at least its header.
        fmt: A format name returned by `sniff_format`.

    Returns:
        ``(width, height)`` in pixels as stored (before EXIF rotation), or None when the header is
        missing or malformed, or not parsed (BigTIFF, a TIFF whose first IFD is beyond ``data``).
    """
    parser = _HEADER_PARSERS.get(fmt)
    try:
        size = parser(data) if parser else None
    except (struct.error, IndexError):
        return None
    return size if size and size[0] > 0 and size[1] > 0 else None


def _jpeg_segments(data: bytes) -> Iterator[tuple[int, int]]:
    """Yield ``(marker, payload offset)`` of each segment, stopping after SOS."""
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF or marker in _JPEG_STANDALONE:  # fill byte or no length field
            pos += 1 if marker == 0xFF else 2
            continue
        yield marker, pos + 4
        length = struct.unpack_from(">H", data, pos + 2)[0]
        if marker == _JPEG_SOS or length < 2:
            return
        pos += 2 + length


def _jpeg_size(data: bytes) -> Size | None:
    for marker, offset in _jpeg_segments(data):
        if marker in _JPEG_SOF:
            height, width = struct.unpack_from(">HH", data, offset + 1)
            return width, height
    return None


def _png_size(data: bytes) -> Size | None:
    return cast(Size, struct.unpack_from(">II", data, 16)) if data[12:16] == b"IHDR" else None


def _gif_size(data: bytes) -> Size | None:
    return cast(Size, struct.unpack_from("<HH", data, 6))


def _bmp_size(data: bytes) -> Size | None:
    if _u32le(data, 14) == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        return cast(Size, struct.unpack_from("<HH", data, 18))
    width, height = struct.unpack_from("<ii", data, 18)
    return width, abs(height)  # negative height means top-down rows


def _webp_size(data: bytes) -> Size | None:
    chunk = data[12:16]
    if len(data) < 30:
        return None
    if chunk == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = _u32le(data, 21)
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    return None


def _tiff_size(data: bytes) -> Size | None:
    order = "<" if data[:2] == b"II" else ">"
    if struct.unpack_from(order + "H", data, 2)[0] != 42:
        return None  # BigTIFF
    ifd = struct.unpack_from(order + "I", data, 4)[0]
    found: dict[int, int] = {}
    for index in range(struct.unpack_from(order + "H", data, ifd)[0]):
        tag, kind, _, value = struct.unpack_from(order + "HHI4s", data, ifd + 2 + 12 * index)
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT (3) or LONG
            found[tag] = struct.unpack_from(order + ("H" if kind == 3 else "I"), value)[0]
    return (found[256], found[257]) if len(found) == 2 else None


def _pnm_size(data: bytes) -> Size | None:
    match = _PNM_HEADER.match(data[:1024])
    return (int(match[1]), int(match[2])) if match else None


_HEADER_PARSERS: Final[dict[str, Callable[[bytes], Size | None]]] = {
    "jpeg": _jpeg_size, "png": _png_size, "gif": _gif_size, "bmp": _bmp_size,
    "webp": _webp_size, "tiff": _tiff_size, "pnm": _pnm_size,
}  # fmt: skip


def check_complete(data: bytes, fmt: str, *, source: str | os.PathLike[str] = "<data>") -> None:
    """Refuse truncated JPEG, PNG and WebP data.

    JPEG needs an end marker after its first scan (data after it, such as a motion photo's video, is
    allowed), PNG a whole IEND chunk, WebP the length its RIFF header announces. GIF is left to
    OpenCV, which (measured) refuses a GIF without its trailer byte; so are the other formats.

    Args:
        data: The whole file.
        fmt: A format name returned by `sniff_format`.
        source: What to name in the error (the file's path).

    Raises:
        CorruptImageError: The data is truncated, e.g. "truncated JPEG (no end marker)".
    """
    check = _COMPLETENESS_CHECKS.get(fmt)
    if check is not None and not check[0](data):
        raise CorruptImageError(source, check[1])


def _jpeg_is_complete(data: bytes) -> bool:
    # 0xFFD9 cannot occur inside entropy-coded data (0xFF is stuffed as 0xFF00).
    scan = next((offset for marker, offset in _jpeg_segments(data) if marker == _JPEG_SOS), None)
    # Searching from the end finds it at once in a whole file; an end marker anywhere after the scan will do.
    return scan is not None and data.rfind(b"\xff\xd9", scan) >= 0


def _png_is_complete(data: bytes) -> bool:
    pos = 8
    while pos + 8 <= len(data):
        length, kind = cast(tuple[int, bytes], struct.unpack_from(">I4s", data, pos))
        pos += 12 + length  # length, type, payload, CRC
        if kind == b"IEND":
            return pos <= len(data)
    return False


def _webp_is_complete(data: bytes) -> bool:
    return len(data) >= 12 and _u32le(data, 4) + 8 <= len(data)


_COMPLETENESS_CHECKS: Final[dict[str, tuple[Callable[[bytes], bool], str]]] = {
    "jpeg": (_jpeg_is_complete, "truncated JPEG (no end marker)"),
    "png": (_png_is_complete, "truncated PNG (no IEND chunk)"),
    "webp": (_webp_is_complete, "truncated WebP (shorter than its RIFF size)"),
}


def decode_grayscale(
    data: bytes, *, source: str | os.PathLike[str], max_pixels: int = 100_000_000, min_long_side: int = 0
) -> FloatImage:
    """Decode image data to a grayscale float32 array in [0, 1].

    Colour is converted by the decoder (libpng's conversion truncates, so PNG gray may be 1/255 below
    the same pixels in another format). Alpha is dropped: stored colour values are used as they are,
    not composited over any background. 8-bit samples are divided by 255, 16-bit ones by 65535
    (keeping their precision); float samples are clipped. EXIF orientation is applied (by
    ``cv2.imdecode``). GIF yields its first frame.

    Args:
        data: The whole file.
        source: What to name in errors (the file's path).
        max_pixels: Largest width * height accepted, checked on the header before decoding and
            again on the decoded image; must be positive.
        min_long_side: When positive, a JPEG is decoded by libjpeg at 1/2, 1/4 or 1/8 scale, the
            smallest keeping its long side >= this many pixels. Other formats: always full size.

    Returns:
        A C-contiguous 2-D float32 array of shape (height, width).

    Raises:
        NotAnImageError: Empty data or no supported signature.
        ImageTooLargeError: More than ``max_pixels`` pixels.
        CorruptImageError: Truncated data, unreadable header, or decoder failure.
        TypeError: ``data`` is not bytes-like.
        ValueError: ``max_pixels`` < 1 or ``min_long_side`` < 0.
    """
    return _to_unit_float(_checked_decode(data, source, max_pixels, min_long_side, colour=False))


def decode_colour(
    data: bytes,
    *,
    source: str | os.PathLike[str],
    max_pixels: int = 100_000_000,
    min_long_side: int = 0,
    long_side: int = 0,
) -> FloatImage:
    """Decode image data to BGR float32 in [0, 1], with the checks of ``decode_grayscale``.

    Samples are scaled as there (16-bit data keeps its precision); a gray
    image comes back with three equal channels, alpha is dropped.

    Args:
        data: The whole file.
        source: What to name in errors (the file's path).
        max_pixels: Largest width * height accepted (see ``decode_grayscale``).
        min_long_side: Allow reduced-size JPEG decoding (see ``decode_grayscale``).
        long_side: When positive, the image is shrunk to at most this long side
            before it becomes float (3 x 4 bytes a pixel: a 100-megapixel PNG
            would take 1.2 GB at full size).

    Returns:
        A C-contiguous (height, width, 3) float32 array.

    Raises:
        NotAnImageError: Empty data or no supported signature.
        ImageTooLargeError: More than ``max_pixels`` pixels.
        CorruptImageError: Truncated data, unreadable header, or decoder failure.
        TypeError: ``data`` is not bytes-like.
        ValueError: ``max_pixels`` < 1, or ``min_long_side`` or ``long_side`` < 0.
    """
    if long_side < 0:
        raise ValueError(f"long_side must be >= 0, got {long_side}")
    image = _checked_decode(data, source, max_pixels, min_long_side, colour=True)
    # A decoder asked for colour has returned gray (defensive), or kept alpha.
    image = np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else np.ascontiguousarray(image[:, :, :3])
    if long_side and image.dtype in (np.uint8, np.uint16, np.float32):
        image = shrink_to_long_side(image, long_side)
    return np.ascontiguousarray(_scaled_to_unit(image), dtype=np.float32)


def _checked_decode(
    data: bytes, source: str | os.PathLike[str], max_pixels: int, min_long_side: int, *, colour: bool
) -> npt.NDArray[Any]:
    _check_arguments(data, max_pixels, min_long_side)
    fmt = _sniff_or_raise(data, source)
    size = _checked_header_size(data, fmt, source, max_pixels)
    check_complete(data, fmt, source=source)
    full, reduced = (_COLOUR_FLAGS, _REDUCED_COLOUR_FLAGS) if colour else (_GRAY_FLAGS, _REDUCED_FLAGS)
    flags = _jpeg_flags(size, min_long_side, full, reduced) if fmt == "jpeg" else full
    image = _decode(data, flags, source, fmt)
    _check_pixel_count(image.shape[1], image.shape[0], max_pixels, source)
    return image


def _check_arguments(data: bytes, max_pixels: int, min_long_side: int) -> None:
    if not isinstance(data, bytes | bytearray):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be >= 1, got {max_pixels}")
    if min_long_side < 0:
        raise ValueError(f"min_long_side must be >= 0, got {min_long_side}")


def _sniff_or_raise(data: bytes, source: str | os.PathLike[str]) -> str:
    if len(data) == 0:
        raise NotAnImageError(source, "empty file")
    fmt = sniff_format(bytes(data[:32]))
    if fmt is None:
        raise NotAnImageError(source, "not an image (unknown format)")
    return fmt


def _checked_header_size(data: bytes, fmt: str, source: str | os.PathLike[str], max_pixels: int) -> Size | None:
    size = read_header_size(data, fmt)
    if size is None and fmt != "tiff":  # every other parser is complete for valid files
        raise CorruptImageError(source, f"cannot read {_DISPLAY_NAMES.get(fmt, fmt.upper())} header")
    if size is not None:
        _check_pixel_count(size[0], size[1], max_pixels, source)
    return size


def _check_pixel_count(width: int, height: int, max_pixels: int, source: str | os.PathLike[str]) -> None:
    if width * height > max_pixels:
        raise ImageTooLargeError(source, f"image too large ({width} x {height} pixels, limit {max_pixels})")


def _jpeg_flags(size: Size | None, min_long_side: int, full: int, reduced: dict[int, int]) -> int:
    if size is None or min_long_side <= 0:
        return full
    for factor in (8, 4, 2):
        if max(size) // factor >= min_long_side:
            return reduced[factor]
    return full


def _decode(data: bytes, flags: int, source: str | os.PathLike[str], fmt: str) -> npt.NDArray[Any]:
    reason = f"cannot decode {_DISPLAY_NAMES.get(fmt, fmt.upper())} data"
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except cv2.error as exc:
        raise CorruptImageError(source, reason) from exc
    if image is None or image.size == 0:
        raise CorruptImageError(source, reason)
    return cast(npt.NDArray[Any], image)


def _to_unit_float(image: npt.NDArray[Any]) -> FloatImage:
    scaled = _scaled_to_unit(image)
    if scaled.ndim == 3:  # defensive: decoders asked for gray have returned colour
        scaled = scaled[:, :, 0] if scaled.shape[2] < 3 else scaled[:, :, :3] @ _BGR_WEIGHTS
    return np.ascontiguousarray(scaled, dtype=np.float32)


def shrink_to_long_side(image: npt.NDArray[_Pixel], long_side: int) -> npt.NDArray[_Pixel]:
    """The image with its long side at most ``long_side`` pixels (``INTER_AREA``, aspect kept; never enlarged).

    Args:
        image: 2-D, or 3-D with channels last: uint8, uint16 or float32.
        long_side: Largest side of the result, pixels.

    Returns:
        The image itself when it is small enough, else a shrunk copy of the same dtype.

    Raises:
        ValueError: If ``long_side`` < 1.
    """
    if long_side < 1:
        raise ValueError(f"long_side must be >= 1, got {long_side}")
    ratio = long_side / max(image.shape[:2])
    if ratio >= 1:
        return image
    size = (max(1, round(image.shape[1] * ratio)), max(1, round(image.shape[0] * ratio)))
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), image.dtype)


def _scaled_to_unit(image: npt.NDArray[Any]) -> FloatImage:
    """Samples as float32 in [0, 1]: integers divided by their type's maximum, floats clipped."""
    if image.dtype in (np.uint8, np.uint16):  # in range already: one pass, no clipping
        scaled: FloatImage = np.multiply(image, np.float32(1 / np.iinfo(image.dtype).max), dtype=np.float32)
        return scaled
    if np.issubdtype(image.dtype, np.integer):
        scaled = image.astype(np.float32) / np.float32(np.iinfo(image.dtype).max)
    else:
        scaled = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(scaled, 0.0, 1.0, out=scaled)


def load_grayscale(
    path: str | os.PathLike[str], *, max_pixels: int = 100_000_000, min_long_side: int = 0
) -> FloatImage:
    """Read an image file as a grayscale float32 array in [0, 1].

    Args:
        path: Image file; a non-UTF-8 name may be a surrogate-escaped ``str``.
        max_pixels: Largest width * height accepted (see `decode_grayscale`).
        min_long_side: Allow reduced-size JPEG decoding (see `decode_grayscale`).

    Returns:
        A C-contiguous 2-D float32 array of shape (height, width).

    Raises:
        ImageError: The subclasses raised by `read_file_bytes` and `decode_grayscale`.
    """
    data = read_file_bytes(path)
    return decode_grayscale(data, source=os.fsdecode(path), max_pixels=max_pixels, min_long_side=min_long_side)
