"""Colour and luminance helpers: luminance, surface colour, Lab conversion."""
from __future__ import annotations

import cv2
import numpy as np


def luminance(image: np.ndarray) -> np.ndarray:
    return image[..., 0] * 0.299 + image[..., 1] * 0.587 + image[..., 2] * 0.114


def surface_mean(crop: np.ndarray, region: np.ndarray) -> np.ndarray:
    return crop[region].mean(axis=0) if region.any() else crop.reshape(-1, 3).mean(axis=0)


def tint_away(colour: np.ndarray, surface: np.ndarray, minimum: float = 60.0) -> np.ndarray:
    """Push ``colour`` away from the surface colour until they differ visibly."""
    diff = colour - surface
    dist = float(np.abs(diff).mean())
    if dist >= minimum:
        return colour
    lum = float(luminance(surface[None, :])[0])
    direction = -1.0 if lum > 110 else 1.0
    return np.clip(colour + direction * (minimum - dist), 0, 255)


def to_lab(image: np.ndarray) -> np.ndarray:
    """RGB float 0..255 -> Lab float (L 0..100)."""
    return cv2.cvtColor(np.clip(image, 0, 255).astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def from_lab(lab: np.ndarray) -> np.ndarray:
    return np.clip(cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_LAB2RGB) * 255.0, 0, 255)
