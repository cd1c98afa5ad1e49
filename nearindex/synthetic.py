"""Seeded test images and the edits a near-duplicate index must survive.

Used by the tests, ``nearindex demo`` and the evaluation scripts. Generators are
deterministic per seed (``np.random.default_rng``). Edits are pure: BGR uint8 in,
new BGR uint8 out; any other input or an out-of-range argument is a ``ValueError``.

A scene keeps its variance at 1/10 to 1/3 of the image size (smooth luminance
field, soft blobs, filled shapes, a ramp in a random direction), laid out anew per
seed, so unrelated scenes stay uncorrelated after heavy blur while a re-encoded,
captioned or slightly cropped copy still correlates. Contrast fades towards the
borders, as in photos composed around a subject.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
_Float = npt.NDArray[np.float32]
_Rng = np.random.Generator

#: Background of the caption band: a "breaking news" red (BGR).
CAPTION_COLOUR = (40, 40, 220)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_SHAPES = ("circle", "rectangle", "polygon", "line")
_CORNERS = ("tl", "tr", "bl", "br")


def _check_size(width: int, height: int) -> None:
    if width < 8 or height < 8:
        raise ValueError(f"image size must be at least 8x8, got {width}x{height}")


def _check_image(image: Image) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a BGR uint8 (H, W, 3) image, got {image.dtype} {image.shape}")


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")


def _to_image(values: object) -> Image:
    """Round and clip any numeric array to a contiguous uint8 image."""
    array = np.clip(np.rint(np.asarray(values, dtype=np.float32)), 0, 255)
    return np.ascontiguousarray(array.astype(np.uint8))


def _float(values: object) -> _Float:
    return np.asarray(values, dtype=np.float32)


def _flat(levels: npt.ArrayLike, shape: tuple[int, ...]) -> _Float:
    """An (H, W, 3) image of one BGR colour (OpenCV merge: numpy is slow on 3-long rows)."""
    return _float(cv2.merge([np.full(shape[:2], level, np.float32) for level in np.ravel(levels)]))


def _gray3(plane: _Float) -> _Float:
    """Repeat an (H, W) plane into the three channels."""
    return _float(cv2.cvtColor(plane, cv2.COLOR_GRAY2BGR))


def _smooth_noise(rng: _Rng, cells: tuple[int, int], size: tuple[int, int], depth: int) -> _Float:
    """Unit-variance noise on a (rows, cols) grid, bicubically upsampled to size (w, h)."""
    coarse = rng.standard_normal((cells[0], cells[1], depth)).astype(np.float32)
    return _float(cv2.resize(coarse, size, interpolation=cv2.INTER_CUBIC)).reshape(size[1], size[0], depth)


def _unit_ramp(rng: _Rng, width: int, height: int) -> _Float:
    """A linear ramp from -1 to 1 along a random direction."""
    angle = rng.uniform(0.0, 2.0 * np.pi)
    xs = np.linspace(-np.cos(angle), np.cos(angle), width, dtype=np.float32)
    ys = np.linspace(-np.sin(angle), np.sin(angle), height, dtype=np.float32)
    ramp = xs[None, :] + ys[:, None]
    return _float(ramp / max(float(np.abs(ramp).max()), 1e-6))


def _background(rng: _Rng, width: int, height: int) -> _Float:
    """Base colour + strong luminance field (cells ~1/8 image) + coarse colour field + ramp."""
    cells = (int(rng.integers(6, 9)), int(rng.integers(8, 12)))
    light = _smooth_noise(rng, cells, (width, height), 1)[..., 0] * rng.uniform(55.0, 75.0)
    light += _unit_ramp(rng, width, height) * rng.uniform(15.0, 35.0)
    coarse = rng.standard_normal((3, 4, 3)) * rng.uniform(10.0, 25.0) + rng.uniform(70.0, 185.0, 3)
    colour = cv2.resize(coarse.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    return _float(cv2.add(colour, _gray3(light)))


def _colour(rng: _Rng) -> _Float:
    """A random BGR colour with luminance uniform over 0-255 and moderate chroma."""
    chroma = rng.uniform(-60.0, 60.0, 3)
    return _float(np.clip(rng.uniform(0, 255) + chroma - chroma.mean(), 0, 255))


def _blend(canvas: _Float, alpha: _Float, corner: tuple[int, int], colour: _Float) -> None:
    """Blend a flat colour in place through a [0, 1] alpha patch whose top-left is corner."""
    x, y = corner
    region = canvas[y : y + alpha.shape[0], x : x + alpha.shape[1]]
    region[...] = cv2.blendLinear(region, _flat(colour, alpha.shape), 1.0 - alpha, alpha)


def _draw_blobs(rng: _Rng, canvas: _Float) -> None:
    """Two to four soft Gaussian ellipses (sigma 5-12 % of the side), cut at 3 sigma."""
    height, width = canvas.shape[:2]
    for _ in range(int(rng.integers(2, 5))):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        sx, sy = rng.uniform(0.048, 0.12) * width, rng.uniform(0.048, 0.12) * height
        x0, x1 = int(max(0, cx - 3 * sx)), int(min(width, cx + 3 * sx + 1))
        y0, y1 = int(max(0, cy - 3 * sy)), int(min(height, cy + 3 * sy + 1))
        gx = np.exp(-0.5 * ((np.arange(x0, x1, dtype=np.float32) - cx) / sx) ** 2)
        gy = np.exp(-0.5 * ((np.arange(y0, y1, dtype=np.float32) - cy) / sy) ** 2)
        opacity = rng.uniform(0.6, 0.95)
        _blend(canvas, _float(gy[:, None] * gx[None, :] * opacity), (x0, y0), _colour(rng))


def _shape_mask(rng: _Rng, kind: str, width: int, height: int) -> Image:
    """A filled shape (255 inside) about 8-40 % of the image side, at a random place."""
    mask = np.zeros((height, width), np.uint8)
    side = min(width, height)
    centre = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
    if kind == "circle":
        cv2.circle(mask, centre, int(rng.uniform(0.042, 0.154) * side), 255, -1, cv2.LINE_AA)
    elif kind == "rectangle":
        half_w, half_h = (rng.uniform(0.035, 0.175, 2) * (width, height)).astype(int)
        top_left = (centre[0] - half_w, centre[1] - half_h)
        cv2.rectangle(mask, top_left, (centre[0] + half_w, centre[1] + half_h), 255, -1)
    elif kind == "polygon":
        count = int(rng.integers(3, 7))
        angles = np.sort(rng.uniform(0, 2 * np.pi, count))
        radii = rng.uniform(0.056, 0.21, count) * side
        points = np.stack([centre[0] + radii * np.cos(angles), centre[1] + radii * np.sin(angles)])
        cv2.fillPoly(mask, [points.T.astype(np.int32)], 255, cv2.LINE_AA)
    else:
        end = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
        cv2.line(mask, centre, end, 255, max(2, int(rng.uniform(0.02, 0.06) * side)), cv2.LINE_AA)
    return mask


def _draw_shape(canvas: _Float, mask: Image, blur: float, colour: _Float) -> None:
    """Blend colour[:3] at opacity colour[3] through a mask, blurred by sigma blur if > 0."""
    x, y, w, h = cv2.boundingRect(mask)
    pad = int(3 * blur) + 1 if blur > 0 else 0  # only the bounding box (+3 sigma) is touched
    x0, y0 = max(0, x - pad), max(0, y - pad)
    x1, y1 = min(mask.shape[1], x + w + pad), min(mask.shape[0], y + h + pad)
    if x1 <= x0 or y1 <= y0:
        return
    alpha = mask[y0:y1, x0:x1].astype(np.float32) * (colour[3] / 255.0)
    if blur > 0:
        alpha = _float(cv2.GaussianBlur(alpha, (0, 0), blur))
    _blend(canvas, alpha, (x0, y0), colour[:3])


def _draw_shapes(rng: _Rng, canvas: _Float) -> None:
    """Five to fifteen shapes; about a third are soft (mask blurred by 1-4 % of the side)."""
    height, width = canvas.shape[:2]
    for _ in range(int(rng.integers(5, 16))):
        mask = _shape_mask(rng, str(rng.choice(_SHAPES)), width, height)
        soft = rng.random() < 0.35
        blur = rng.uniform(0.01, 0.04) * max(width, height) if soft else 0.0
        colour = np.append(_colour(rng), rng.uniform(0.7, 1.0)).astype(np.float32)
        _draw_shape(canvas, mask, blur, colour)


def _vignette(canvas: _Float) -> None:
    """Fade contrast (not brightness) in place: weight 1 at the centre, 0.25 in the corners."""
    height, width = canvas.shape[:2]
    wx = 1.0 - 0.5 * np.linspace(-1.0, 1.0, width, dtype=np.float32) ** 2
    wy = 1.0 - 0.5 * np.linspace(-1.0, 1.0, height, dtype=np.float32) ** 2
    mean = _flat(cv2.mean(canvas)[:3], canvas.shape)
    canvas -= mean
    canvas *= _gray3(_float(np.outer(wy, wx)))
    canvas += mean


def _expose_and_grain(rng: _Rng, canvas: _Float) -> None:
    """Auto-levels in place (grey mean 95-140, grey std 70-85 before clipping), then grain."""
    gray = _float(cv2.cvtColor(canvas, cv2.COLOR_BGR2GRAY))
    mean, std = (float(np.ravel(value)[0]) for value in cv2.meanStdDev(gray))
    gray -= mean
    gray *= rng.uniform(70.0, 85.0) / max(std, 1e-3) - 1.0
    gray += rng.uniform(95.0, 140.0) - mean
    fine = rng.standard_normal(gray.shape, dtype=np.float32)
    gray += _float(cv2.GaussianBlur(fine, (0, 0), 1.5)) * 12.0
    fine *= rng.uniform(2.0, 5.0)
    gray += fine
    canvas += _gray3(gray)


def make_scene(seed: int, *, width: int = 640, height: int = 480) -> Image:
    """Returns a photo-like (height, width, 3) BGR uint8 scene.

    A smooth random background with a ramp in a random direction, 2-4 soft blobs,
    5-15 circles, rectangles, polygons and thick lines of random colours (a third
    of them blurred), contrast fading towards the borders, auto-levels, mild grain.

    Args:
        seed: Seed of ``np.random.default_rng``; equal seeds give equal images.
        width: Width in pixels, at least 8.
        height: Height in pixels, at least 8.

    Raises:
        ValueError: If a side is below 8 pixels.
    """
    _check_size(width, height)
    rng = np.random.default_rng(seed)
    canvas = _background(rng, width, height)
    _draw_blobs(rng, canvas)
    _draw_shapes(rng, canvas)
    _vignette(canvas)
    _expose_and_grain(rng, canvas)
    return _to_image(canvas)


def make_texture(seed: int, *, width: int = 512, height: int = 512) -> Image:
    """Returns a colourful six-octave noise texture (no shapes), each channel spanning 0-255.

    Args:
        seed: Seed of ``np.random.default_rng``.
        width: Width in pixels, at least 8.
        height: Height in pixels, at least 8.

    Raises:
        ValueError: If a side is below 8 pixels.
    """
    _check_size(width, height)
    rng = np.random.default_rng(seed)
    field = np.zeros((height, width, 3), np.float32)
    for octave in range(6):
        field += _smooth_noise(rng, (3 * 2**octave,) * 2, (width, height), 3) * 0.6**octave
    field -= field.min(axis=(0, 1))
    field /= np.maximum(field.max(axis=(0, 1)), 1e-6)
    return _to_image(field * 255.0)


def make_soft(seed: int, *, width: int = 640, height: int = 480) -> Image:
    """Returns a soft abstract colour field: 2-4 x 2-4 random colours, bicubically blended (a wallpaper).

    Args:
        seed: Seed of ``np.random.default_rng``.
        width: Width in pixels, at least 8.
        height: Height in pixels, at least 8.

    Raises:
        ValueError: If a side is below 8 pixels.
    """
    _check_size(width, height)
    rng = np.random.default_rng(seed)
    cells = (int(rng.integers(2, 5)), int(rng.integers(2, 5)))
    field = _smooth_noise(rng, cells, (width, height), 3) * rng.uniform(20.0, 60.0)
    return _to_image(field + rng.uniform(60.0, 190.0, 3).astype(np.float32))


def make_flat(value: int, *, width: int = 320, height: int = 240) -> Image:
    """Returns a (height, width, 3) image of one grey level.

    Args:
        value: Grey level 0-255 of all three channels.
        width: Width in pixels, at least 1.
        height: Height in pixels, at least 1.

    Raises:
        ValueError: If value is outside 0-255 or a side is below 1.
    """
    _check_range("value", value, 0, 255)
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    return np.full((height, width, 3), value, np.uint8)


def make_gradient(seed: int, *, width: int = 640, height: int = 480) -> Image:
    """Returns a smooth two-colour gradient, linear or radial as the seed decides.

    Args:
        seed: Seed of ``np.random.default_rng``.
        width: Width in pixels, at least 8.
        height: Height in pixels, at least 8.

    Raises:
        ValueError: If a side is below 8 pixels.
    """
    _check_size(width, height)
    rng = np.random.default_rng(seed)
    start, stop = rng.uniform(0, 255, (2, 3)).astype(np.float32)
    if rng.random() < 0.5:
        t = (_unit_ramp(rng, width, height) + 1.0) / 2.0
    else:
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        distance = np.hypot(np.arange(width)[None, :] - cx, np.arange(height)[:, None] - cy)
        t = _float(distance / max(float(distance.max()), 1e-6))
    return _to_image(start + t[..., None] * (stop - start))


def crop(image: Image, *, keep_area: float, seed: int = 0) -> Image:
    """Returns a window keeping ``keep_area`` of the pixels, usually off-centre.

    Both sides shrink by ``sqrt(keep_area)`` (aspect kept); the position is
    uniform over all placements.

    Args:
        image: BGR uint8 image.
        keep_area: Fraction of the area kept, in (0, 1].
        seed: Seed choosing the position.

    Raises:
        ValueError: If keep_area is outside (0, 1].
    """
    _check_image(image)
    _check_range("keep_area", keep_area, 1e-9, 1.0)
    height, width = image.shape[:2]
    new_w, new_h = max(1, round(width * keep_area**0.5)), max(1, round(height * keep_area**0.5))
    rng = np.random.default_rng(seed)
    x0, y0 = int(rng.integers(0, width - new_w + 1)), int(rng.integers(0, height - new_h + 1))
    return image[y0 : y0 + new_h, x0 : x0 + new_w].copy()


def scale(image: Image, *, factor: float) -> Image:
    """Returns a copy resized by ``factor`` (INTER_AREA to shrink, INTER_CUBIC to enlarge).

    Args:
        image: BGR uint8 image.
        factor: Positive scale of both sides; a side never drops below 1 pixel.

    Raises:
        ValueError: If factor is not positive.
    """
    _check_image(image)
    if factor <= 0:
        raise ValueError(f"factor must be positive, got {factor}")
    size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
    method = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    return _to_image(cv2.resize(image, size, interpolation=method))


def _warp(image: Image, matrix: npt.NDArray[np.float64]) -> Image:
    """Affine warp to the same size, replicating edge pixels into uncovered areas."""
    _check_image(image)
    size = (image.shape[1], image.shape[0])
    return _to_image(cv2.warpAffine(image, matrix, size, borderMode=cv2.BORDER_REPLICATE))


def shift(image: Image, *, dx: float, dy: float) -> Image:
    """Returns the content translated, same size; the uncovered side repeats the edge pixels.

    Args:
        image: BGR uint8 image.
        dx: Rightward shift as a fraction of the width (negative: left).
        dy: Downward shift as a fraction of the height (negative: up).
    """
    height, width = image.shape[:2]
    return _warp(image, np.array([[1.0, 0.0, dx * width], [0.0, 1.0, dy * height]]))


def rotate(image: Image, *, degrees: float) -> Image:
    """Returns a copy rotated about the centre, same size, border pixels replicated.

    Args:
        image: BGR uint8 image.
        degrees: Angle in degrees, positive counter-clockwise.
    """
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), degrees, 1.0)
    return _warp(image, np.asarray(matrix, dtype=np.float64))


def _put_text(image: Image, text: str, box: tuple[int, int, int, int]) -> None:
    """Draw white text in place, left-aligned, as large as the (x, y, w, h) box allows."""
    x, y, box_w, box_h = box
    (text_w, text_h), _ = cv2.getTextSize(text, _FONT, 1.0, 2)
    font_scale = max(0.1, min(box_h / max(text_h, 1), box_w / max(text_w, 1)))
    bottom = y + (box_h + round(text_h * font_scale)) // 2
    thickness = max(1, round(font_scale * 2))
    cv2.putText(image, text, (x, bottom), _FONT, font_scale, (255, 255, 255), thickness, cv2.LINE_AA)


def add_caption(image: Image, *, text: str = "BREAKING NEWS", band: float = 0.15) -> Image:
    """Returns a copy whose bottom ``band`` is a solid red banner with white text.

    Args:
        image: BGR uint8 image.
        text: Caption (ASCII: the Hershey font has no other glyphs).
        band: Banner height as a fraction of the image height, in (0, 1].

    Raises:
        ValueError: If band is outside (0, 1].
    """
    _check_image(image)
    _check_range("band", band, 1e-9, 1.0)
    out = image.copy()
    height, width = out.shape[:2]
    band_h = max(1, round(height * band))
    out[height - band_h :] = CAPTION_COLOUR
    _put_text(out, text, (width // 20, height - band_h + band_h // 5, width * 9 // 10, band_h * 3 // 5))
    return out


def add_watermark(image: Image, *, text: str = "(c) nearindex", corner: str = "br") -> Image:
    """Returns a copy with small white text blended at 60 % opacity into one corner.

    Args:
        image: BGR uint8 image.
        text: Watermark (ASCII).
        corner: ``"tl"``, ``"tr"``, ``"bl"`` or ``"br"``.

    Raises:
        ValueError: If corner is none of those.
    """
    _check_image(image)
    if corner not in _CORNERS:
        raise ValueError(f"corner must be one of {_CORNERS}, got {corner!r}")
    height, width = image.shape[:2]
    box_w, box_h = width // 3, max(4, height // 20)
    x = width // 40 if corner[1] == "l" else width - box_w - width // 40
    y = height // 40 if corner[0] == "t" else height - box_h - height // 40
    layer = image.copy()
    _put_text(layer, text, (x, y, box_w, box_h))
    return _to_image(cv2.addWeighted(image, 0.4, layer, 0.6, 0.0))


def jpeg_reencode(image: Image, *, quality: int) -> Image:
    """Returns the image after a JPEG encode and decode through OpenCV.

    Args:
        image: BGR uint8 image.
        quality: JPEG quality, 1-100.

    Raises:
        ValueError: If quality is outside 1-100.
    """
    _check_image(image)
    _check_range("quality", quality, 1, 100)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("OpenCV could not encode the image as JPEG")
    return _to_image(cv2.imdecode(data, cv2.IMREAD_COLOR))


def adjust_brightness(image: Image, *, gain: float = 1.0, offset: float = 0.0, gamma: float = 1.0) -> Image:
    """Returns a copy with every level v mapped to ``255 * (v / 255) ** gamma * gain + offset``, clipped.

    Args:
        image: BGR uint8 image.
        gain: Contrast multiplier, applied after the gamma curve.
        offset: Added level, in 0-255 units.
        gamma: Positive exponent; below 1 brightens mid-tones, above 1 darkens them.

    Raises:
        ValueError: If gamma is not positive.
    """
    _check_image(image)
    if gamma <= 0:
        raise ValueError(f"gamma must be positive, got {gamma}")
    table = _to_image(255.0 * (np.arange(256) / 255.0) ** gamma * gain + offset)
    return np.ascontiguousarray(table[image])


def flip_horizontal(image: Image) -> Image:
    """Returns a left-right mirrored copy.

    Args:
        image: BGR uint8 image.
    """
    _check_image(image)
    return np.ascontiguousarray(image[:, ::-1])


def add_border(image: Image, *, fraction: float = 0.1, value: int = 0) -> Image:
    """Returns a letterboxed copy: flat bars added above and below, width unchanged.

    Args:
        image: BGR uint8 image.
        fraction: Height of each bar relative to the image height, 0-1.
        value: Grey level 0-255 of the bars.

    Raises:
        ValueError: If fraction or value is out of range.
    """
    _check_image(image)
    _check_range("fraction", fraction, 0.0, 1.0)
    _check_range("value", value, 0, 255)
    bar = np.full((round(image.shape[0] * fraction), image.shape[1], 3), value, np.uint8)
    return np.vstack([bar, image, bar])


def to_grayscale(image: Image) -> Image:
    """Returns a grey copy that keeps three (equal) BGR channels.

    Args:
        image: BGR uint8 image.
    """
    _check_image(image)
    return _to_image(cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR))


def paste_patch(image: Image, donor: Image, *, area: float = 0.15, seed: int = 0) -> Image:
    """Returns a copy with a rectangle of ``donor`` pasted over ``area`` of it (a local fake).

    The donor is first resized to the image size, so the patch has the image's
    aspect ratio; source and destination positions are drawn independently.

    Args:
        image: BGR uint8 image receiving the patch.
        donor: BGR uint8 image of any size the patch comes from.
        area: Patch area as a fraction of the image area, in (0, 1].
        seed: Seed choosing both positions.

    Raises:
        ValueError: If area is outside (0, 1].
    """
    _check_image(image)
    _check_image(donor)
    _check_range("area", area, 1e-9, 1.0)
    height, width = image.shape[:2]
    source = cv2.resize(donor, (width, height), interpolation=cv2.INTER_AREA)
    patch_w, patch_h = max(1, round(width * area**0.5)), max(1, round(height * area**0.5))
    rng = np.random.default_rng(seed)
    sx, dx = rng.integers(0, width - patch_w + 1, 2)
    sy, dy = rng.integers(0, height - patch_h + 1, 2)
    out = image.copy()
    out[dy : dy + patch_h, dx : dx + patch_w] = source[sy : sy + patch_h, sx : sx + patch_w]
    return out


def screenshot(image: Image, *, seed: int = 0) -> Image:
    """Returns a simulated screenshot: scaled by 0.3, a grey UI bar prepended on top, JPEG 60.

    Args:
        image: BGR uint8 image.
        seed: Seed choosing the bar's shade and its 2-4 buttons; the bar is 12 % of
            the scaled height, so the result is taller than ``scale(image, factor=0.3)``.
    """
    small = scale(image, factor=0.3)
    height, width = small.shape[:2]
    rng = np.random.default_rng(seed)
    bar = np.full((max(4, height * 12 // 100), width, 3), int(rng.integers(200, 245)), np.uint8)
    for _ in range(int(rng.integers(2, 5))):
        x = int(rng.integers(0, max(1, width - width // 12)))
        cv2.rectangle(bar, (x, bar.shape[0] // 4), (x + width // 12, bar.shape[0] * 3 // 4), (90, 90, 90), -1)
    return jpeg_reencode(np.vstack([bar, small]), quality=60)


def _crop_caption_jpeg(image: Image) -> Image:
    return jpeg_reencode(add_caption(crop(image, keep_area=0.75, seed=3)), quality=50)


#: Standard edits by name (tests, ``nearindex demo``, evaluation). ``paste_patch`` is
#: not here because it needs a donor image.
EDITS: dict[str, Callable[[Image], Image]] = {
    "crop90": partial(crop, keep_area=0.90, seed=1),
    "crop75": partial(crop, keep_area=0.75, seed=2),
    "crop60": partial(crop, keep_area=0.60, seed=3),
    "half": partial(scale, factor=0.5),
    "quarter": partial(scale, factor=0.25),
    "jpeg30": partial(jpeg_reencode, quality=30),
    "caption": add_caption,
    "watermark": add_watermark,
    "rotate3": partial(rotate, degrees=3.0),
    "rotate8": partial(rotate, degrees=8.0),
    "flip": flip_horizontal,
    "gamma": partial(adjust_brightness, gamma=0.7),
    "brighter": partial(adjust_brightness, offset=40.0),
    "contrast": partial(adjust_brightness, gain=1.3, offset=-38.0),
    "border": add_border,
    "grayscale": to_grayscale,
    "shift": partial(shift, dx=0.05, dy=0.03),
    "screenshot": screenshot,
    "crop75+caption+jpeg50": _crop_caption_jpeg,
}


def _encode_params(suffix: str, quality: int) -> list[int]:
    """OpenCV encoder flags for a lower-case suffix; ValueError for a suffix not written here."""
    if suffix in (".jpg", ".jpeg"):
        return [cv2.IMWRITE_JPEG_QUALITY, quality]
    if suffix == ".webp":
        return [cv2.IMWRITE_WEBP_QUALITY, quality]
    if suffix in (".png", ".bmp", ".tif", ".tiff"):
        return []
    raise ValueError(f"unknown image suffix {suffix!r}")


def write_image(path: str | os.PathLike[str], image: Image, *, quality: int = 92) -> None:
    """Encode ``image`` by the path's suffix with ``cv2.imencode`` and write the bytes.

    ``cv2.imwrite`` is avoided: it fails on file names that are not valid UTF-8.

    Args:
        path: Destination ending in .jpg .jpeg .png .webp .bmp .tif or .tiff (any case).
        image: BGR uint8 image.
        quality: JPEG or WebP quality, 1-100; ignored by lossless formats.

    Raises:
        ValueError: If the suffix is unknown or encoding fails (nothing is written).
        OSError: If the file cannot be written.
    """
    data = encode_image(image, Path(path).suffix, quality=quality, name=os.fspath(path))
    with open(path, "wb") as handle:
        handle.write(data)


def encode_image(image: Image, suffix: str, *, quality: int = 92, name: str = "image") -> bytes:
    """``image`` encoded in the format of a file suffix (.jpg .png .webp ...), as bytes.

    Args:
        image: BGR uint8 image.
        suffix: The format, as a file name suffix (any case).
        quality: JPEG or WebP quality, 1-100; ignored by lossless formats.
        name: What the error message calls the image.

    Raises:
        ValueError: If the suffix is unknown or encoding fails.
    """
    _check_image(image)
    _check_range("quality", quality, 1, 100)
    suffix = suffix.lower()
    ok, data = cv2.imencode(suffix, image, _encode_params(suffix, quality))
    if not ok:
        raise ValueError(f"{name}: OpenCV could not encode {suffix}")
    return bytes(data.tobytes())


def apply_edit(image: Image, name: str, *, donor: Image, seed: int = 0) -> Image:
    """Returns ``image`` edited by the named edit of ``EDITS``, or by ``"paste"``: a 15 % patch of ``donor``.

    Raises:
        KeyError: For a name that is neither.
    """
    if name == "paste":
        return paste_patch(image, donor, area=0.15, seed=seed)
    return EDITS[name](image)
