"""Pictures for people: attention heat maps and label-mask overlays (no model code)."""
from __future__ import annotations

import cv2
import numpy as np


def heatmap_overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a [0, 1] heat map (any size, resized bilinearly) over an RGB image as a JET colour map."""
    h, w = image.shape[:2]
    heat = np.asarray(heatmap, dtype=np.float32)
    if heat.shape != (h, w):
        heat = cv2.resize(heat, (w, h), interpolation=cv2.INTER_LINEAR)
    span = float(heat.max() - heat.min())
    heat = (heat - heat.min()) / span if span > 0 else np.zeros_like(heat)
    colour = cv2.applyColorMap(np.uint8(np.rint(heat * 255)), cv2.COLORMAP_JET)[..., ::-1]
    out = image.astype(np.float32) * (1 - alpha) + colour.astype(np.float32) * alpha
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def mask_overlay(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int] = (255, 0, 80)) -> np.ndarray:
    """Tint the masked pixels and draw the mask's outline, so a label is visible on any surface."""
    binary = (np.asarray(mask) > 0).astype(np.uint8)
    out = image.copy()
    tint = np.array(colour, dtype=np.float32)
    sel = binary.astype(bool)
    out[sel] = np.rint(out[sel].astype(np.float32) * 0.6 + tint * 0.4).astype(np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    thickness = max(1, round(min(image.shape[:2]) / 300))
    cv2.drawContours(out, contours, -1, colour, thickness)
    return out
