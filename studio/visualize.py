"""Pictures for people: attention heat maps and label-mask overlays (no model code)."""
from __future__ import annotations

import cv2
import numpy as np


#: The label colour: brush strokes, tinted regions and mask overlays (the page's brush uses it too).
STROKE_RGB = (255, 0, 80)
STROKE_ALPHA = 0.55


def heatmap_overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.5, *,
                    normalise: bool = True) -> np.ndarray:
    """Blend a heat map (any size, resized bilinearly) over an RGB image as a JET colour map.

    ``normalise`` stretches the map's own range to [0, 1] (attention); otherwise values are
    read on an absolute [0, 1] scale (probabilities) and clipped.
    """
    h, w = image.shape[:2]
    heat = np.asarray(heatmap, dtype=np.float32)
    if heat.shape != (h, w):
        heat = cv2.resize(heat, (w, h), interpolation=cv2.INTER_LINEAR)
    if normalise:
        span = float(heat.max() - heat.min())
        heat = (heat - heat.min()) / span if span > 0 else np.zeros_like(heat)
    else:
        heat = np.clip(heat, 0.0, 1.0)
    colour = cv2.applyColorMap(np.uint8(np.rint(heat * 255)), cv2.COLORMAP_JET)[..., ::-1]
    out = image.astype(np.float32) * (1 - alpha) + colour.astype(np.float32) * alpha
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def tint(image: np.ndarray, mask: np.ndarray | None, colour: tuple[int, int, int] = STROKE_RGB,
         alpha: float = STROKE_ALPHA) -> np.ndarray:
    """A copy of ``image`` with ``mask`` painted over it like a brush stroke (display only)."""
    if mask is None or not np.asarray(mask).any():
        return image.copy()
    out = image.astype(np.float32)
    sel = np.asarray(mask).astype(bool)
    out[sel] = out[sel] * (1 - alpha) + np.array(colour, np.float32) * alpha
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def mask_overlay(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int] = STROKE_RGB) -> np.ndarray:
    """Tint the masked pixels and draw the mask's outline, so a label is visible on any surface.

    A mask of another size is resized (nearest) to the image."""
    binary = _binary(mask, image.shape[:2])
    out = tint(image, binary, colour, 0.4)
    _draw_outline(out, binary, colour, _line_width(image, 300))
    return out


def mask_outline(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int] = (255, 255, 255),
                 thickness: int | None = None) -> np.ndarray:
    """Draw only the outline of ``mask`` (resized to the image if needed) on a copy of ``image``.

    ``thickness`` defaults to about 1/250 of the image's shorter side (at least 1 pixel)."""
    out = image.copy()
    _draw_outline(out, _binary(mask, out.shape[:2]), colour, thickness or _line_width(out, 250))
    return out


def _binary(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``mask > 0`` as uint8 0/1 of ``shape`` = (height, width), resized nearest when it differs."""
    binary = (np.asarray(mask) > 0).astype(np.uint8)
    if binary.shape != tuple(shape):
        binary = cv2.resize(binary, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return binary


def _line_width(image: np.ndarray, per: float) -> int:
    """One pixel of line per ``per`` pixels of the image's shorter side (at least 1)."""
    return max(1, round(min(image.shape[:2]) / per))


def _draw_outline(out: np.ndarray, binary: np.ndarray, colour: tuple[int, int, int], thickness: int) -> None:
    """Draw the outer contours of a 0/1 mask on ``out`` in place."""
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, colour, thickness)
