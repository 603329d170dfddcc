"""Reading and writing ``gr.ImageEditor`` values: background + brush layers <-> image + mask.

The editor's value is ``{"background": RGBA array, "layers": [RGBA arrays], "composite": ...}``.

Gradio 6.31's editor drops a layer that the server sent as soon as the user paints the first
stroke over it, so everything the *server* marks (an example's region, quick shapes, the
suggested region) is kept server-side instead, as a *source* dict held in a ``gr.State`` per
editor: the clean image's file, the preset mask's file and the size. The editor then shows the
clean image with the preset tinted into its background (in the brush's colour), and only the
user's own strokes live in its layers. The region is ``preset ∪ strokes``; the image used for
synthesis is always the clean file, never the tinted background.

With no source (e.g. a value built by hand), the background is the image and the layers alone
are the mask.
"""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Callable

import numpy as np

from studio.errors import InputError
from studio import imaging
from studio.imaging import load_image, load_mask
from studio.ui.files import write_png
from studio.visualize import tint

#: The quick shapes the page offers ("box" is imaging's rectangle).
SHAPES = ("ellipse", "line", "box")

Source = dict[str, Any]


# --------------------------------------------------------------------------- reading
def editor_background(value: Any, what: str) -> np.ndarray | None:
    """The editor's background as RGB uint8 through the validating loader, or None if empty."""
    if not isinstance(value, dict) or value.get("background") is None:
        return None
    return load_image(value["background"], what=what)


def editor_mask(value: Any, size: tuple[int, int], what: str) -> np.ndarray:
    """Union of the drawn layers as a bool mask of ``size`` = (width, height); empty if none."""
    width, height = size
    mask = np.zeros((height, width), bool)
    for layer in (value or {}).get("layers") or []:
        if layer is None:
            continue
        mask |= load_mask(layer, size, what=what)
    return mask


def has_image(source: Source | None) -> bool:
    """Whether ``source`` names a clean image file that is still there."""
    return isinstance(source, dict) and bool(source.get("image")) and Path(source["image"]).is_file()


def matches(value: Any, source: Source | None) -> bool:
    """Whether ``source`` describes the image the editor shows (same size, file still there)."""
    if not has_image(source):
        return False
    background = (value or {}).get("background") if isinstance(value, dict) else None
    if background is None:
        return False
    shape = np.asarray(background).shape
    return tuple(shape[:2]) == (source["height"], source["width"])


def image_and_mask(value: Any, what: str, missing: str, source: Source | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(clean RGB image, bool region) of an editor: preset ∪ strokes when ``source`` matches."""
    if matches(value, source):
        image = load_image(source["image"], what=what)
        size = (image.shape[1], image.shape[0])
        mask = editor_mask(value, size, f"{what} sketch")
        if source.get("preset"):
            mask |= load_mask(source["preset"], size, what=f"{what} region")
        return image, mask
    image = editor_background(value, what)
    if image is None:
        raise InputError(missing)
    return image, editor_mask(value, (image.shape[1], image.shape[0]), f"{what} sketch")


# --------------------------------------------------------------------------- writing
def show(image: np.ndarray, preset: np.ndarray | None, folder: Path,
         image_path: str | None = None) -> tuple[dict[str, Any], Source]:
    """An editor value showing ``image`` with ``preset`` tinted in, and its new source.

    ``image_path``: a file already holding exactly ``image`` (a shipped asset, or the current
    source's file); otherwise the image is written under ``folder``.
    """
    height, width = image.shape[:2]
    folder.mkdir(parents=True, exist_ok=True)
    if image_path is None:
        image_path = write_png(folder / f"{uuid.uuid4().hex}.png", image)
    preset_path, display = None, str(image_path)
    if preset is not None and preset.any():
        stem = uuid.uuid4().hex
        preset_path = write_png(folder / f"{stem}_mask.png", preset.astype(np.uint8) * 255)
        display = write_png(folder / f"{stem}_shown.png", tint(image, preset))
    # Files, not arrays: Gradio copies a file into its cache once, atomically (an array it re-encodes
    # and rewrites in place every time, which races with a browser still reading the old copy).
    value = {"background": display, "layers": [], "composite": display}
    return value, {"image": str(image_path), "preset": preset_path, "width": width, "height": height}


def bake(value: Any, source: Source | None, extra: Callable[[tuple[int, int]], np.ndarray] | None, folder: Path,
         what: str, missing: str) -> tuple[dict[str, Any], Source]:
    """Fold the user's strokes and ``extra(size)`` (a bool mask of that size) into the preset."""
    image, mask = image_and_mask(value, what, missing, source)
    if extra is not None:
        mask = mask | extra((image.shape[1], image.shape[0])).astype(bool)
    return show(image, mask, folder, source["image"] if matches(value, source) else None)


def shape_mask(size: tuple[int, int], shape: str, extent: float, x: float, y: float) -> np.ndarray:
    """A quick shape as a bool mask of ``size`` = (width, height) (drawn by :func:`studio.imaging.shape_mask`).

    ``extent`` is the shape's size as a percentage of the shorter image side; ``x`` and ``y``
    its centre as percentages of the width and height (50, 50 = the centre).
    """
    if shape not in SHAPES:
        raise InputError(f"Unknown shape {shape!r}; choose one of: {', '.join(SHAPES)}.")
    width, height = size
    extent = float(np.clip(_number(extent, 15), 1, 90)) / 100.0
    centre = (float(np.clip(_number(x, 50), 0, 100)) / 100.0 * (width - 1),
              float(np.clip(_number(y, 50), 0, 100)) / 100.0 * (height - 1))
    r = max(2, int(round(extent * min(width, height) / 2)))
    half = {"ellipse": (r, max(1, int(r * 0.6))), "line": (r, r // 3), "box": (r * 0.7, r * 0.45)}[shape]
    return imaging.shape_mask(size, shape, centre, half, thickness=max(2, r // 6))


def clear(value: Any, source: Source | None, folder: Path, what: str) -> tuple[dict[str, Any] | None, Source | None]:
    """The clean image with no region at all (strokes and preset removed)."""
    if matches(value, source):
        return show(load_image(source["image"], what=what), None, folder, source["image"])
    image = editor_background(value, what)
    if image is None:
        return None, None
    return show(image, None, folder)


def _number(value: Any, default: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if np.isfinite(number) else default
