"""The one validating loader for images and masks, and the pixel helpers engines share.

Every image entering the studio (upload, CLI path, batch spec, API call) goes through
:func:`load_image`; every mask through :func:`load_mask`. Both raise
:class:`~studio.errors.InputError` with one clear sentence for anything unusable.

Decisions:
- Transparent images (RGBA, LA, P with transparency) are composited on **white**.
- 16-bit and 32-bit greyscale (I;16, I, F) are scaled to 8 bits by their full range.
- EXIF orientation is applied, so what the user saw is what the engine gets.
- Masks: any image; a pixel is "defect" where it is non-zero. For masks with an alpha
  channel that is not fully opaque (e.g. a brush layer), the alpha channel decides.
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import BinaryIO, Union

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from studio import config
from studio.atomic import write_bytes
from studio.errors import InputError

ImageSource = Union[str, os.PathLike, bytes, BinaryIO, Image.Image, np.ndarray]

ACCEPTED_FORMATS = frozenset({"PNG", "JPEG", "MPO", "WEBP", "BMP", "TIFF"})
#: File suffixes of those formats: what a folder of images is listed by.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})
ImageFile.LOAD_TRUNCATED_IMAGES = False


def load_image(source: ImageSource, *, what: str = "image", max_pixels: int | None = None) -> np.ndarray:
    """Decode ``source`` to an RGB ``uint8`` array (H, W, 3), or raise :class:`InputError`."""
    limit = config.MAX_PIXELS if max_pixels is None else max_pixels
    if isinstance(source, np.ndarray):
        return _array_to_rgb(source, what, limit)
    pil = source if isinstance(source, Image.Image) else _open(source, what)
    _check_size(pil.size, what, limit)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            pil.load()
            pil = _exif_upright(pil)
            return _pil_to_rgb(pil)
    except InputError:
        raise
    except (Exception, MemoryError) as exc:  # any decoder failure is a property of the file
        raise InputError(f"The {what} could not be decoded ({_reason(exc)}); it may be truncated or corrupt.") from None


def load_mask(source: ImageSource, size: tuple[int, int], *, what: str = "defect mask") -> np.ndarray:
    """Decode a mask and resize it (nearest neighbour) to ``size`` = (width, height); returns bool (H, W)."""
    if isinstance(source, np.ndarray):
        array = source
    else:
        pil = source if isinstance(source, Image.Image) else _open(source, what)
        _check_size(pil.size, what, config.MAX_PIXELS)
        try:
            pil.load()
            pil = _exif_upright(pil)
            array = np.asarray(pil)
        except (Exception, MemoryError) as exc:
            raise InputError(f"The {what} could not be decoded ({_reason(exc)}).") from None
    mask = mask_from_array(array, what)
    width, height = size
    if mask.shape != (height, width):
        mask = cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)
    return mask


def mask_from_array(array: np.ndarray, what: str = "defect mask") -> np.ndarray:
    """Non-zero pixels are defect; an alpha channel that is not fully opaque decides on its own."""
    array = np.asarray(array)
    if array.size == 0 or array.ndim not in (2, 3):
        raise InputError(f"The {what} is empty or not an image.")
    if array.dtype == bool:
        return array if array.ndim == 2 else array.any(axis=2)
    if array.ndim == 2:
        return array != 0
    if array.shape[2] in (2, 4):
        alpha = array[..., -1]
        opaque = np.iinfo(alpha.dtype).max if alpha.dtype.kind in "ui" else 1.0
        if alpha.min() < opaque:
            return alpha != 0
        array = array[..., :-1]
    return (array != 0).any(axis=2)


def label_mask(mask: np.ndarray) -> np.ndarray:
    """A stored label: 0/255 ``uint8`` (H, W) from a bool or numeric mask (a pixel is set if any channel is)."""
    mask = np.asarray(mask)
    if mask.ndim == 3:
        mask = (mask != 0).any(axis=2)
    return np.where(mask != 0, 255, 0).astype(np.uint8)


def check_mask(mask: np.ndarray, what: str = "defect region") -> np.ndarray:
    """Reject an empty mask or one covering more than 90% of the image; returns the mask."""
    if mask.dtype != bool:
        mask = mask != 0
    if not mask.any():
        raise InputError(f"The {what} is empty: sketch the defect region on the image.")
    fraction = float(mask.mean())
    if fraction > config.MAX_MASK_FRACTION:
        raise InputError(
            f"The {what} covers {fraction:.0%} of the image; keep it under "
            f"{config.MAX_MASK_FRACTION:.0%} so there is normal surface around the defect."
        )
    return mask


def mask_bbox(mask: np.ndarray, margin: int = 0) -> tuple[int, int, int, int]:
    """Bounding box (x0, y0, x1, y1), end-exclusive, of a non-empty mask, grown by ``margin`` and clipped."""
    on = np.ascontiguousarray(mask if mask.dtype == bool else mask != 0).view(np.uint8)
    x, y, bw, bh = cv2.boundingRect(on)
    if bw == 0:
        raise InputError("The mask is empty: sketch the defect region on the image.")
    h, w = mask.shape
    return max(x - margin, 0), max(y - margin, 0), min(x + bw + margin, w), min(y + bh + margin, h)


#: Disc radius (px) from which :func:`dilate` and :func:`erode` go by rows (:func:`disc_by_rows`).
WIDE_DISC = 16


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation with a disc of ``radius`` pixels (OpenCV's elliptic structuring element)."""
    if radius <= 0:
        return mask.astype(bool)
    if radius >= WIDE_DISC:
        return disc_by_rows(mask, radius, erode=False)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    if mask.dtype == bool:  # 0/1 bytes either way: no copies
        return cv2.dilate(mask.view(np.uint8), kernel).view(bool)
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def erode(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary erosion with a disc of ``radius`` pixels (OpenCV's elliptic structuring element;
    beyond the border counts as inside)."""
    if radius <= 0:
        return mask.astype(bool)
    if radius >= WIDE_DISC:
        return disc_by_rows(mask, radius, erode=True)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    if mask.dtype == bool:  # 0/1 bytes either way: no copies
        return cv2.erode(mask.view(np.uint8), kernel).view(bool)
    return cv2.erode(mask.astype(np.uint8), kernel).astype(bool)


def disc_by_rows(mask: np.ndarray, radius: int, erode: bool) -> np.ndarray:
    """Exactly ``cv2.dilate`` (or ``cv2.erode``) of ``mask`` by the elliptic structuring element of
    ``radius``, in about 4 ``radius`` whole-array boolean operations instead of one per kernel pixel:
    the mask is spread sideways by every half-width the kernel's rows have (each from the previous
    one), and row ``dy`` of the kernel takes the spread of its own half-width, shifted by ``dy``."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    half = kernel[radius:].sum(axis=1) // 2  # half-width of the kernel's row dy = 0 .. radius
    h, w = mask.shape
    op = np.logical_and if erode else np.logical_or
    padded = np.pad(mask.astype(bool), radius, constant_values=erode)  # beyond the border: as OpenCV
    spread = [padded[:, radius:radius + w]]
    for d in range(1, int(half.max()) + 1):
        spread.append(op(op(spread[-1], padded[:, radius - d:radius - d + w]), padded[:, radius + d:radius + d + w]))
    out = spread[half[0]][radius:radius + h].copy()
    for dy in range(1, radius + 1):
        rows = spread[half[dy]]
        op(out, rows[radius - dy:radius - dy + h], out=out)
        op(out, rows[radius + dy:radius + dy + h], out=out)
    return out


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with edges reflected (kernel truncated at 3 sigma); ``sigma`` <= 0 returns the input."""
    if sigma <= 0:
        return image
    k = 2 * int(np.ceil(3 * sigma)) + 1
    return cv2.GaussianBlur(image, (k, k), sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)


def median(values: np.ndarray) -> float:
    """``np.median`` of a non-empty array's values, the same value by a single-rank partition
    (``np.median`` partitions at two ranks and more: several times slower on 10^5 values)."""
    flat = values.ravel()
    k = flat.size // 2
    part = np.partition(flat, k)
    if flat.size % 2:
        return float(part[k])
    return float(np.mean(np.array([part[:k].max(), part[k]], dtype=flat.dtype)))


def pixels(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``image[mask]`` for an (H, W, C) image and an (H, W) bool mask: the same (N, C) rows in the same
    order, by ``compress`` (boolean indexing with a 2-D mask into a 3-D array is several times slower)."""
    return image.reshape(-1, image.shape[-1]).compress(mask.ravel(), axis=0)


def channel_medians(image: np.ndarray) -> np.ndarray:
    """``np.median(image, axis=(0, 1))`` of an (H, W, C) array, to the bit, by :func:`median` per channel
    (several times quicker)."""
    return np.array([median(image[..., c]) for c in range(image.shape[2])], image.dtype)


def labels_in(labels: np.ndarray, chosen: np.ndarray, count: int) -> np.ndarray:
    """Where ``labels`` (non-negative ints below ``count``) is one of ``chosen``: ``np.isin`` by a
    lookup table (several times faster on a label image)."""
    table = np.zeros(count, bool)
    table[chosen] = True
    return np.take(table, labels)


def mask_coords(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.nonzero`` of a 2-D array: the (rows, columns) of its non-zero elements, in the same order, by
    ``flatnonzero`` (several times quicker on an image)."""
    return np.divmod(np.flatnonzero(mask), mask.shape[1])


def slope_at(image: np.ndarray, where: np.ndarray) -> np.ndarray:
    """|gradient| of ``image`` at the ``where`` pixels only, as ``np.gradient`` gives it (central
    differences inside, one-sided on the border)."""
    h, w = image.shape
    ys, xs = mask_coords(where)
    half, whole = np.float32(0.5), np.float32(1.0)
    left, right = np.maximum(xs - 1, 0), np.minimum(xs + 1, w - 1)
    up, down = np.maximum(ys - 1, 0), np.minimum(ys + 1, h - 1)
    gx = (image[ys, right] - image[ys, left]) * np.where(right - left == 2, half, whole)
    gy = (image[down, xs] - image[up, xs]) * np.where(down - up == 2, half, whole)
    return np.hypot(gx, gy)


def soft_mask(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-blurred mask in [0, 1] (float32) with compact support (kernel truncated at 3 sigma)."""
    soft = mask.astype(np.float32)
    if sigma <= 0:
        return soft
    k = 2 * int(np.ceil(3 * sigma)) + 1
    return cv2.GaussianBlur(soft, (k, k), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_CONSTANT)


def composite(original: np.ndarray, generated: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """Blend ``generated`` into ``original`` through the blurred mask; outside its support the original stays exact."""
    alpha = soft_mask(mask, sigma)[..., None]
    out = original.astype(np.float32) * (1.0 - alpha) + generated.astype(np.float32) * alpha
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    untouched = alpha[..., 0] == 0
    out[untouched] = original[untouched]
    return out


#: The quick-shape vocabulary (UI and batch mask generator); "box" is the UI's older word for a rectangle.
SHAPES = ("ellipse", "rectangle", "line")
SHAPE_ALIASES = {"box": "rectangle"}


def shape_name(shape: str) -> str:
    """The canonical shape name (aliases resolved, case-insensitive), or :class:`InputError`."""
    name = str(shape).strip().lower()
    name = SHAPE_ALIASES.get(name, name)
    if name not in SHAPES:
        raise InputError(f"Unknown shape {shape!r}; choose one of: {', '.join(SHAPES)}.")
    return name


def shape_mask(size: tuple[int, int], shape: str, centre: tuple[float, float], half_size: tuple[float, float],
               *, angle: float = 0.0, thickness: int = 1) -> np.ndarray:
    """One filled shape as a bool mask of ``size`` = (width, height).

    ``centre`` = (x, y) in pixels; ``half_size`` = (a, b): the ellipse's semi-axes, the
    rectangle's half width and height, or the line's end offset from the centre; ``angle``
    in degrees (clockwise in image coordinates); ``thickness`` is the line's width.
    """
    name = shape_name(shape)
    width, height = size
    cx, cy = centre
    a, b = half_size
    drawn = np.zeros((height, width), np.uint8)
    if name == "ellipse":
        cv2.ellipse(drawn, (round(cx), round(cy)), (round(a), round(b)), angle, 0, 360, 255, -1)
    elif name == "rectangle":
        corners = cv2.boxPoints(((cx, cy), (2 * a, 2 * b), angle))
        cv2.fillPoly(drawn, [np.rint(corners).astype(np.int32)], 255)
    else:
        turn = np.deg2rad(angle)
        dx, dy = a * np.cos(turn) - b * np.sin(turn), a * np.sin(turn) + b * np.cos(turn)
        cv2.line(drawn, (round(cx - dx), round(cy - dy)), (round(cx + dx), round(cy + dy)), 255, max(1, thickness))
    return drawn > 0


def to_png_bytes(array: np.ndarray, *, fast: bool = False) -> bytes:
    """The one PNG encoder: RGB, RGBA or greyscale ``uint8`` (bool becomes 0/255); deterministic bytes.

    zlib level 3 by default (about 3x faster than level 6 and no larger on photos); ``fast``
    uses level 1 for scratch files that are written often and kept briefly.
    """
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.ndim == 3 and array.shape[2] in (3, 4):
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR if array.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    ok, encoded = cv2.imencode(".png", array, [cv2.IMWRITE_PNG_COMPRESSION, 1 if fast else 3])
    if not ok:
        raise InputError(f"An array of shape {array.shape} and type {array.dtype} cannot be stored as PNG.")
    return encoded.tobytes()


def png_header(data: bytes) -> tuple[int, int, str] | None:
    """(width, height, mode) from a PNG's header without decoding its pixels; None when ``data`` is no PNG."""
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as pil:
            return (*pil.size, pil.mode)
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def write_png(path: str | os.PathLike, array: np.ndarray, *, fast: bool = False) -> Path:
    """Encode ``array`` (:func:`to_png_bytes`) and write it atomically to ``path``; returns the path."""
    return write_bytes(path, to_png_bytes(array, fast=fast))


def _open(source: ImageSource, what: str) -> Image.Image:
    data: bytes
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise InputError(f"The {what} file {str(path)!r} does not exist.")
        size = path.stat().st_size
        _check_bytes(size, what)
        data = path.read_bytes()
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif hasattr(source, "read"):
        data = source.read(config.MAX_FILE_BYTES + 1)
    else:
        raise InputError(f"The {what} must be an image file, got {type(source).__name__}.")
    _check_bytes(len(data), what)
    if not data:
        raise InputError(f"The {what} file is empty (0 bytes).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            pil = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
            raise InputError(f"The {what} is too large to decode safely (decompression bomb).") from None
        raise InputError(f"The {what} is not an image this studio can read (PNG, JPEG, WebP, BMP or TIFF).") from None
    except (Exception, MemoryError) as exc:
        raise InputError(f"The {what} could not be opened ({_reason(exc)}).") from None
    if pil.format not in ACCEPTED_FORMATS:
        raise InputError(
            f"The {what} is a {pil.format or 'unknown'} file; use PNG, JPEG, WebP, BMP or TIFF."
        )
    return pil


def _check_bytes(size: int, what: str) -> None:
    if size > config.MAX_FILE_BYTES:
        raise InputError(
            f"The {what} file is larger than the {config.MAX_FILE_BYTES // (1024 * 1024)} MB upload limit."
        )


def _check_size(size: tuple[int, int], what: str, limit: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise InputError(f"The {what} has zero size ({width}x{height}).")
    if width * height > limit:
        raise InputError(
            f"The {what} is {width}x{height} = {width * height / 1e6:.1f} MP, over the "
            f"{limit / 1e6:.0f} MP limit; downscale it first."
        )


def _exif_upright(pil: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(pil)
    except Exception:  # unreadable EXIF: keep the pixels as stored
        return pil


def _pil_to_rgb(pil: Image.Image) -> np.ndarray:
    mode = pil.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _array_to_rgb(np.asarray(pil), "image", config.MAX_PIXELS)
    if mode == "P" and "transparency" in pil.info:
        pil = pil.convert("RGBA")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or pil.mode == "RGBA":
        rgba = pil.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        pil = Image.alpha_composite(white, rgba)
    return np.ascontiguousarray(np.asarray(pil.convert("RGB"), dtype=np.uint8))


def _array_to_rgb(array: np.ndarray, what: str, limit: int) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim not in (2, 3) or array.size == 0:
        raise InputError(f"The {what} must be a 2-D greyscale or 3-D colour array.")
    _check_size((array.shape[1], array.shape[0]), what, limit)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif array.dtype != np.uint8:
        array = _to_uint8(array, what)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    channels = array.shape[2]
    if channels == 1:
        array = np.repeat(array, 3, axis=2)
    elif channels in (2, 4):
        alpha = array[..., -1:].astype(np.float32) / 255.0
        colour = array[..., :-1]
        if colour.shape[2] == 1:
            colour = np.repeat(colour, 3, axis=2)
        array = np.rint(colour * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    elif channels != 3:
        raise InputError(f"The {what} has {channels} channels; expected 1, 3 or 4.")
    return np.ascontiguousarray(array)


def _to_uint8(array: np.ndarray, what: str) -> np.ndarray:
    data = array.astype(np.float64)
    if not np.isfinite(data).all():
        raise InputError(f"The {what} contains non-finite values.")
    if array.dtype.kind == "f" and data.min() >= 0 and data.max() <= 1:
        return np.rint(data * 255).astype(np.uint8)
    if array.dtype.kind in "ui" and array.dtype.itemsize == 2:
        return np.rint(data / 257.0).clip(0, 255).astype(np.uint8)
    lo, hi = float(data.min()), float(data.max())
    if lo >= 0 and hi <= 255:
        return np.rint(data).astype(np.uint8)
    span = hi - lo if hi > lo else 1.0
    return np.rint((data - lo) / span * 255).astype(np.uint8)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:120]
