"""Tests of nearindex.images on real files written to tmp_path and decoded by OpenCV."""

from __future__ import annotations

import functools
import os
import struct
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nearindex.errors import (
    CorruptImageError,
    ImageError,
    ImageTooLargeError,
    NearIndexError,
    NotAnImageError,
    UnreadableFileError,
)
from nearindex.images import (
    IMAGE_EXTENSIONS,
    check_complete,
    decode_colour,
    decode_grayscale,
    load_grayscale,
    read_file_bytes,
    read_header_size,
    sniff_format,
)

U8 = npt.NDArray[np.uint8]


def make_scene(height: int, width: int, seed: int = 0) -> U8:
    """A smooth colour scene with some structure: gradients plus blurred noise blobs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    blobs = cv2.resize(rng.random((4, 4, 3), dtype=np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    base = np.dstack([xx / max(width, 1), yy / max(height, 1), 0.5 * (xx / max(width, 1) + yy / max(height, 1))])
    scene: U8 = np.clip((0.6 * base + 0.4 * blobs) * 255, 0, 255).astype(np.uint8)
    return scene


def gray_of(bgr: U8) -> npt.NDArray[np.float32]:
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32) / np.float32(255)


def encode(ext: str, image: npt.NDArray[Any], params: list[int] | None = None) -> bytes:
    ok, buffer = cv2.imencode(ext, image, params or [])
    assert ok
    return bytes(buffer.tobytes())


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def make_png(width: int, height: int, color_type: int, rows: bytes | None = None) -> bytes:
    """A hand-made 8-bit PNG (rows without filter bytes), or only its header when ``rows`` is None."""
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0))
    body = b""
    if rows is not None:
        stride = len(rows) // height
        raw = b"".join(b"\x00" + rows[i * stride : (i + 1) * stride] for i in range(height))
        body = png_chunk(b"IDAT", zlib.compress(raw))
    return b"\x89PNG\r\n\x1a\n" + ihdr + body + png_chunk(b"IEND", b"")


def jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def split_jpeg(jpeg: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Segments of an OpenCV-written baseline JPEG up to SOS, and its entropy-coded scan."""
    pos, segments = 2, []
    while True:
        marker, length = jpeg[pos + 1], struct.unpack(">H", jpeg[pos + 2 : pos + 4])[0]
        segments.append((marker, jpeg[pos + 4 : pos + 2 + length]))
        pos += 2 + length
        if marker == 0xDA:
            return segments, jpeg[pos : jpeg.rindex(b"\xff\xd9")]


def make_cmyk_jpeg(planes: list[U8]) -> bytes:
    """A 4-component (Adobe CMYK) JPEG built from four 1-component JPEG scans, one per ink.

    Baseline JPEG allows one non-interleaved scan per component, and with 1x1 sampling such a scan
    is byte-identical to the scan of a grayscale JPEG of the same plane.
    """
    parts = [split_jpeg(encode(".jpg", plane, [cv2.IMWRITE_JPEG_QUALITY, 95])) for plane in planes]
    tables = [(m, p) for m, p in parts[0][0] if m in (0xDB, 0xC4)]  # quantisation and Huffman tables
    assert all([(m, p) for m, p in segs if m in (0xDB, 0xC4)] == tables for segs, _ in parts)
    height, width = planes[0].shape
    sof = struct.pack(">BHHB", 8, height, width, 4) + b"".join(bytes([i + 1, 0x11, 0]) for i in range(4))
    out = b"\xff\xd8" + jpeg_segment(0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x00")
    out += b"".join(jpeg_segment(m, p) for m, p in tables) + jpeg_segment(0xC0, sof)
    for index, (_, scan) in enumerate(parts):
        out += jpeg_segment(0xDA, bytes([1, index + 1, 0x00, 0, 63, 0])) + scan
    return out + b"\xff\xd9"


def exif_orientation_segment(orientation: int) -> bytes:
    """A minimal APP1 Exif segment: little-endian TIFF header and one IFD entry (Orientation)."""
    ifd = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    return jpeg_segment(0xE1, b"Exif\x00\x00" + b"II*\x00" + struct.pack("<I", 8) + ifd)


def call_with_timeout(function: Callable[[], object], seconds: float = 5.0) -> BaseException | None:
    """Run ``function`` in a daemon thread; fail the test if it blocks; return what it raised."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            function()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "call blocked"
    return outcome[0]


# --- round trips -----------------------------------------------------------------------------------

# (suffix, largest mean absolute error against OpenCV's own BGR->gray, in [0, 1] units)
ROUND_TRIPS = [(".jpg", 0.02), (".png", 0.01), (".webp", 0.02), (".bmp", 0.002), (".tiff", 0.002)]


@pytest.mark.parametrize(("ext", "tolerance"), ROUND_TRIPS)
def test_round_trip_keeps_size_and_values(tmp_path: Path, ext: str, tolerance: float) -> None:
    scene = make_scene(90, 130)
    path = write(tmp_path, "a" + ext, encode(ext, scene))
    image = load_grayscale(path)
    assert image.shape == (90, 130)
    assert image.dtype == np.float32 and image.flags.c_contiguous
    assert image.min() >= 0.0 and image.max() <= 1.0
    assert np.abs(image - gray_of(scene)).mean() < tolerance


@pytest.mark.parametrize(("ext", "tolerance"), [(".gif", 0.06), (".pgm", 0.002), (".ppm", 0.002), (".pbm", 0.002)])
def test_gray_formats_round_trip(tmp_path: Path, ext: str, tolerance: float) -> None:
    gray = (np.mgrid[0:40, 0:50][1] * 5).astype(np.uint8)
    if ext == ".pbm":
        gray = np.where(gray > 127, 255, 0).astype(np.uint8)
    source = cv2.merge([gray] * 3) if ext in (".gif", ".ppm") else gray  # OpenCV's GIF encoder: colour only
    image = load_grayscale(write(tmp_path, "a" + ext, encode(ext, source)))
    assert image.shape == (40, 50)
    assert np.abs(image - gray / 255).mean() < tolerance  # OpenCV's GIF encoder quantises coarsely


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp", ".bmp", ".tiff", ".gif", ".pgm"])
def test_header_size_and_sniffed_format(ext: str) -> None:
    data = encode(ext, make_scene(37, 61) if ext != ".pgm" else make_scene(37, 61)[:, :, 0])
    fmt = sniff_format(data[:32])
    assert fmt == {".jpg": "jpeg", ".tiff": "tiff", ".pgm": "pnm"}.get(ext, ext[1:])
    assert read_header_size(data, fmt) == (61, 37)
    assert ext in IMAGE_EXTENSIONS


def test_webp_lossy_and_extended_headers() -> None:
    scene = make_scene(33, 47)
    lossy = encode(".webp", scene, [cv2.IMWRITE_WEBP_QUALITY, 80])
    assert lossy[12:16] == b"VP8 " and read_header_size(lossy, "webp") == (47, 33)
    vp8x = b"RIFF" + struct.pack("<I", 22) + b"WEBPVP8X" + struct.pack("<I", 10) + b"\x00" * 4
    vp8x += (4999).to_bytes(3, "little") + (2999).to_bytes(3, "little")
    assert read_header_size(vp8x, "webp") == (5000, 3000)


def test_sixteen_bit_png_keeps_precision(tmp_path: Path) -> None:
    ramp = np.tile(np.linspace(0, 65535, 1000).astype(np.uint16), (4, 1))
    image = load_grayscale(write(tmp_path, "deep.png", encode(".png", ramp)))
    assert len(np.unique(image)) > 256
    np.testing.assert_allclose(image, ramp / 65535, atol=1e-6)


def test_float_tiff_is_clipped_to_unit_range(tmp_path: Path) -> None:
    values = np.linspace(-0.5, 1.5, 64, dtype=np.float32).reshape(8, 8)
    image = load_grayscale(write(tmp_path, "f.tiff", encode(".tiff", values)))
    np.testing.assert_allclose(image, np.clip(values, 0, 1), atol=1e-6)


def test_cmyk_jpeg_decodes(tmp_path: Path) -> None:
    ramp = np.tile((np.arange(64) * 4).astype(np.uint8), (48, 1))
    no_ink = np.full((48, 64), 255, np.uint8)  # Adobe CMYK JPEGs store inverted ink amounts
    path = write(tmp_path, "cmyk.jpg", make_cmyk_jpeg([no_ink, no_ink, no_ink, ramp]))
    image = load_grayscale(path)
    assert image.shape == (48, 64)
    assert np.abs(image - ramp / 255).mean() < 0.02


def test_png_alpha_is_dropped(tmp_path: Path) -> None:
    scene = make_scene(20, 30)
    alpha = np.tile(np.linspace(0, 255, 30).astype(np.uint8), (20, 1))
    with_alpha = load_grayscale(write(tmp_path, "rgba.png", encode(".png", np.dstack([scene, alpha]))))
    without = load_grayscale(write(tmp_path, "rgb.png", encode(".png", scene)))
    np.testing.assert_array_equal(with_alpha, without)


def test_gray_alpha_png_gives_gray_channel(tmp_path: Path) -> None:
    gray = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (6, 1))
    alpha = np.zeros_like(gray)  # fully transparent: the stored gray must still come back
    data = make_png(gray.shape[1], gray.shape[0], 4, np.dstack([gray, alpha]).tobytes())
    image = load_grayscale(write(tmp_path, "ga.png", data))
    np.testing.assert_allclose(image, gray / 255, atol=1e-6)


def test_gif_gives_first_frame(tmp_path: Path) -> None:
    animation = cv2.Animation()
    animation.frames = [np.full((20, 30, 3), 50, np.uint8), np.full((20, 30, 3), 200, np.uint8)]
    animation.durations = [100, 100]
    ok, buffer = cv2.imencodeanimation(".gif", animation)
    assert ok
    image = load_grayscale(write(tmp_path, "anim.gif", buffer.tobytes()))
    assert image.shape == (20, 30)
    assert abs(float(image.mean()) - 50 / 255) < 0.01


@pytest.mark.parametrize(("height", "width"), [(1, 1), (1, 10000), (10000, 1)])
@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_extreme_shapes(tmp_path: Path, ext: str, height: int, width: int) -> None:
    gray = np.full((height, width), 128, np.uint8)
    image = load_grayscale(write(tmp_path, "thin" + ext, encode(ext, gray)))
    assert image.shape == (height, width)
    assert abs(float(image.mean()) - 128 / 255) < 0.02


# --- EXIF orientation and reduced decoding ------------------------------------------------------------


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    scene = make_scene(60, 100)
    plain = encode(".jpg", scene, [cv2.IMWRITE_JPEG_QUALITY, 95])
    rotated = plain[:2] + exif_orientation_segment(6) + plain[2:]
    upright = load_grayscale(write(tmp_path, "plain.jpg", plain))
    image = load_grayscale(write(tmp_path, "exif.jpg", rotated))
    assert image.shape == (100, 60)
    np.testing.assert_allclose(image, np.rot90(upright, k=-1), atol=0.02)  # 6 = turn 90 degrees clockwise
    assert load_grayscale(tmp_path / "exif.jpg", min_long_side=50).shape == (50, 30)


def test_reduced_jpeg_decode_is_close_to_full_decode(tmp_path: Path) -> None:
    path = write(tmp_path, "big.jpg", encode(".jpg", make_scene(1500, 2000, seed=3)))
    full = load_grayscale(path)
    reduced = load_grayscale(path, min_long_side=256)
    assert 256 <= max(reduced.shape) < 2000
    assert reduced.shape == (375, 500)  # 2000 // 8 < 256, so 1/4
    shrunk = cv2.resize(full, (reduced.shape[1], reduced.shape[0]), interpolation=cv2.INTER_AREA)
    assert np.abs(shrunk - reduced).mean() < 0.01


def test_min_long_side_never_shrinks_other_formats(tmp_path: Path) -> None:
    path = write(tmp_path, "big.png", encode(".png", make_scene(400, 600)))
    assert load_grayscale(path, min_long_side=50).shape == (400, 600)


def test_colour_decode_keeps_the_pixels_and_turns_gray_into_three_channels(tmp_path: Path) -> None:
    scene = make_scene(120, 160, seed=4)
    assert np.array_equal(np.rint(decode_colour(encode(".png", scene), source="scene.png") * 255), scene)
    gray = decode_colour(encode(".png", cv2.cvtColor(scene, cv2.COLOR_BGR2GRAY)), source="gray.png")
    assert gray.shape == (120, 160, 3) and gray.dtype == np.float32
    assert np.array_equal(gray[:, :, 0], gray[:, :, 1]) and np.array_equal(gray[:, :, 0], gray[:, :, 2])


def test_reduced_colour_decode_is_close_to_full_decode() -> None:
    data = encode(".jpg", make_scene(1500, 2000, seed=3), [cv2.IMWRITE_JPEG_QUALITY, 95])
    full, reduced = decode_colour(data, source="big.jpg"), decode_colour(data, source="big.jpg", min_long_side=256)
    assert reduced.shape == (375, 500, 3)
    shrunk = cv2.resize(full, (500, 375), interpolation=cv2.INTER_AREA)
    assert np.abs(shrunk - reduced).mean() < 0.01


def test_sixteen_bit_colour_keeps_its_precision(tmp_path: Path) -> None:
    deep = (make_scene(40, 60).astype(np.uint16) * 257 + 128).astype(np.uint16)
    decoded = decode_colour(encode(".png", deep), source="deep.png")
    assert np.abs(decoded - deep / 65535).max() < 1e-6


def test_colour_decode_refuses_what_gray_decode_refuses() -> None:
    data = encode(".jpg", make_scene(60, 80))
    with pytest.raises(CorruptImageError, match="truncated JPEG"):
        decode_colour(data[: len(data) // 2], source="half.jpg")
    with pytest.raises(ImageTooLargeError):
        decode_colour(data, source="big.jpg", max_pixels=100)
    with pytest.raises(NotAnImageError):
        decode_colour(b"not an image", source="text.jpg")


# --- bad content ---------------------------------------------------------------------------------


def assert_image_error(kind: type[NearIndexError], path: Path, reason: str, **kwargs: int) -> None:
    with pytest.raises(kind) as caught:
        load_grayscale(path, **kwargs)
    assert caught.value.reason == reason
    assert str(caught.value) == f"{path}: {reason}"


def test_empty_file(tmp_path: Path) -> None:
    assert_image_error(NotAnImageError, write(tmp_path, "empty.png", b""), "empty file")


def test_text_named_jpg(tmp_path: Path) -> None:
    path = write(tmp_path, "notes.jpg", b"shopping list: eggs, milk\n")
    assert_image_error(NotAnImageError, path, "not an image (unknown format)")


def test_random_bytes(tmp_path: Path) -> None:
    data = np.random.default_rng(7).bytes(4096)
    assert_image_error(NotAnImageError, write(tmp_path, "noise.png", data), "not an image (unknown format)")


def test_truncated_jpeg(tmp_path: Path) -> None:
    data, reason = encode(".jpg", make_scene(300, 400)), "truncated JPEG (no end marker)"
    assert_image_error(CorruptImageError, write(tmp_path, "half.jpg", data[: len(data) // 2]), reason)
    assert_image_error(CorruptImageError, write(tmp_path, "noeoi.jpg", data[:-2]), reason)


def test_jpeg_with_trailing_data_decodes(tmp_path: Path) -> None:
    data = encode(".jpg", make_scene(30, 40)) + np.random.default_rng(1).bytes(100_000)  # like a motion photo
    assert load_grayscale(write(tmp_path, "motion.jpg", data)).shape == (30, 40)


def test_truncated_png(tmp_path: Path) -> None:
    data, reason = encode(".png", make_scene(100, 100)), "truncated PNG (no IEND chunk)"
    assert_image_error(CorruptImageError, write(tmp_path, "half.png", data[: len(data) // 2]), reason)
    assert_image_error(CorruptImageError, write(tmp_path, "crc.png", data[:-1]), reason)


@pytest.mark.parametrize("ext", [".webp", ".bmp", ".tiff", ".gif"])
def test_truncated_other_formats_are_corrupt(tmp_path: Path, ext: str) -> None:
    data = encode(ext, make_scene(64, 64))
    with pytest.raises(CorruptImageError):
        load_grayscale(write(tmp_path, "half" + ext, data[: len(data) // 2]))


def test_check_complete_accepts_whole_files() -> None:
    for ext, fmt in [(".jpg", "jpeg"), (".png", "png"), (".webp", "webp"), (".gif", "gif")]:
        check_complete(encode(ext, make_scene(10, 10)), fmt)
    with pytest.raises(CorruptImageError, match=r"^<data>: truncated WebP"):
        check_complete(encode(".webp", make_scene(10, 10))[:-10], "webp")


def test_huge_png_header_is_refused_before_decoding(tmp_path: Path) -> None:
    path = write(tmp_path, "bomb.png", make_png(50000, 50000, 0))  # header only: decoding would fail
    assert_image_error(ImageTooLargeError, path, "image too large (50000 x 50000 pixels, limit 100000000)")


def test_max_pixels_applies_to_every_format(tmp_path: Path) -> None:
    for ext in (".jpg", ".png", ".webp", ".bmp", ".tiff", ".gif"):
        path = write(tmp_path, "a" + ext, encode(ext, make_scene(20, 30)))
        assert_image_error(ImageTooLargeError, path, "image too large (30 x 20 pixels, limit 599)", max_pixels=599)
        assert load_grayscale(path, max_pixels=600).shape == (20, 30)


def test_bad_arguments_are_refused() -> None:
    data = encode(".png", make_scene(4, 4))
    with pytest.raises(ValueError, match="max_pixels"):
        decode_grayscale(data, source="x", max_pixels=0)
    with pytest.raises(ValueError, match="min_long_side"):
        decode_grayscale(data, source="x", min_long_side=-1)


# --- files that are not regular or not readable ------------------------------------------------------


def assert_unreadable(path: str | os.PathLike[str], reason: str) -> None:
    for reader in (read_file_bytes, load_grayscale):
        error = call_with_timeout(functools.partial(reader, path))
        assert isinstance(error, UnreadableFileError)
        assert error.reason == reason
        assert str(error) == f"{os.fsdecode(path)}: {reason}"


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    assert_unreadable(fifo, "not a regular file (fifo)")


def test_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "folder.png").mkdir()
    assert_unreadable(tmp_path / "folder.png", "is a directory")


def test_device_is_refused() -> None:
    assert_unreadable("/dev/null", "not a regular file (device)")


def test_missing_file(tmp_path: Path) -> None:
    assert_unreadable(tmp_path / "nothing.png", "no such file or directory")


def test_broken_symlink(tmp_path: Path) -> None:
    (tmp_path / "dangling.png").symlink_to(tmp_path / "gone.png")
    assert_unreadable(tmp_path / "dangling.png", "broken symlink")


def test_symlink_loop(tmp_path: Path) -> None:
    (tmp_path / "a.png").symlink_to(tmp_path / "b.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    assert_unreadable(tmp_path / "a.png", "symlink loop")


def test_symlink_to_image_is_followed(tmp_path: Path) -> None:
    target = write(tmp_path, "real.png", encode(".png", make_scene(5, 7)))
    (tmp_path / "link.png").symlink_to(target)
    assert load_grayscale(tmp_path / "link.png").shape == (5, 7)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_permission_denied(tmp_path: Path) -> None:
    path = write(tmp_path, "secret.png", encode(".png", make_scene(5, 5)))
    path.chmod(0)
    assert_unreadable(path, "permission denied")


def test_non_utf8_file_name(tmp_path: Path) -> None:
    raw_name = os.path.join(os.fsencode(tmp_path), b"caf\xe9-\xff.png")
    with open(raw_name, "wb") as stream:
        stream.write(encode(".png", make_scene(8, 9)))
    name = os.fsdecode(raw_name)  # surrogate-escaped str
    assert load_grayscale(name).shape == (8, 9)
    assert load_grayscale(Path(name)).shape == (8, 9)
    missing = os.fsdecode(os.path.join(os.fsencode(tmp_path), b"gone-\xff.png"))
    assert_unreadable(missing, "no such file or directory")


# --- robustness ----------------------------------------------------------------------------------

SEEDS = [encode(ext, make_scene(24, 32)) for ext in (".jpg", ".png", ".webp", ".gif", ".bmp", ".tiff")]
SEEDS.append(encode(".jpg", make_scene(16, 16)[..., 0]))


@st.composite
def damaged_images(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))  # a real image, then damaged
    for _ in range(draw(st.integers(0, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))] if draw(st.booleans()) else data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=512), damaged_images()))
def test_any_bytes_give_an_image_or_an_image_error(data: bytes) -> None:
    try:
        image = decode_grayscale(data, source="fuzz", max_pixels=1_000_000)
    except ImageError:
        return
    assert image.ndim == 2 and image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 1.0
