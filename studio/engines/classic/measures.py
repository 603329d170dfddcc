"""Quality measures of a candidate: seams, noise match, texture kept, variation of the change, overlap."""
from __future__ import annotations

import cv2
import numpy as np

from studio.engines.classic.geometry import ring
from studio.engines.classic.photometry import immerkaer_sigma, luminance, residual_noise
from studio.imaging import blur, erode


def sobel(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(gx, gy): 3x3 Sobel derivatives (float32) of an RGB image's grey (its uint8 luma)."""
    grey = cv2.cvtColor(image.astype(np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32)
    return cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)


def seam_ratio(original: np.ndarray, output: np.ndarray, label: np.ndarray, width: int = 2,
               derivatives: tuple[np.ndarray, np.ndarray] | None = None) -> float:
    """Mean gradient magnitude on the label mask's boundary band in ``output``, relative to the same
    band in ``original`` (1.0 = the boundary is as smooth as the untouched surface); ``derivatives``:
    :func:`sobel` of ``original``, when already made."""
    lab = label > 0
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    band = cv2.dilate(lab.astype(np.uint8), kernel).astype(bool) & ~erode(lab, width)
    if not band.any():
        return 1.0

    def magnitude(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
        gx, gy = gx[band], gy[band]  # the magnitude only on the band
        return np.sqrt(gx * gx + gy * gy)

    before = float(magnitude(*(sobel(original) if derivatives is None else derivatives)).mean())
    return float(magnitude(*sobel(output)).mean()) / max(before, 1e-6)


def _grey(image: np.ndarray) -> np.ndarray:
    return luminance(image.astype(np.float32)).astype(np.float32)


def label_ring(label: np.ndarray, inner: int = 2, outer: int = 8) -> np.ndarray:
    """The band of untouched surface around the label mask."""
    return ring(label > 0, inner, outer)


def noise_ratio(output: np.ndarray, label: np.ndarray) -> float:
    """Noise inside the label over that of the ring around it, both measured on the output with
    :func:`residual_noise` tuned to the ring's noise (1.0 = the changed pixels are as noisy as their
    surroundings)."""
    grey = _grey(output)
    around = label_ring(label)
    level = immerkaer_sigma(grey, around)
    return residual_noise(grey, label > 0, level) / max(residual_noise(grey, around, level), 1e-3)


def texture_correlation(original: np.ndarray, output: np.ndarray, label: np.ndarray, erosion: int = 2) -> float:
    """Correlation of the high-pass (grey minus a sigma-2 blur) of output and input inside the eroded
    label: 1.0 = the surface's texture shows through the change unchanged in shape."""
    core = erode(label > 0, erosion)
    if core.sum() < 16:
        core = label > 0
    a, b = _grey(original), _grey(output)
    ha, hb = (a - blur(a, 2.0))[core], (b - blur(b, 2.0))[core]
    ha, hb = ha - ha.mean(), hb - hb.mean()
    return float((ha * hb).sum() / max(float(np.sqrt((ha * ha).sum() * (hb * hb).sum())), 1e-6))


#: The mean |x| of a normal texture per unit of its robust spread (1.4826 × median |x|): sqrt(2 / pi) × 1.4826.
MEAN_ABS_PER_MEDIAN = 0.7979 * 1.4826


def texture_level(image: np.ndarray, where: np.ndarray) -> float:
    """How textured the surface over ``where`` is: the mean absolute high-pass (grey levels) a texture of the
    same robust spread would have, the median |high-pass| scaled, so a few strong edges there (a joint, a
    rim, a hole's edge) do not make a smooth surface count as textured."""
    grey = _grey(image)
    values = np.abs(grey - blur(grey, 2.0))[where]
    return float(np.median(values)) * MEAN_ABS_PER_MEDIAN if values.size else 0.0


def change_variation(original: np.ndarray, output: np.ndarray, label: np.ndarray) -> float:
    """Coefficient of variation of |output - input| (channel mean) inside the label: ~0 for a flat patch."""
    delta = np.abs(output.astype(np.float32) - original.astype(np.float32)).mean(axis=2)[label > 0]
    return float(delta.std() / max(float(delta.mean()), 1e-6))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    union = int((a | b).sum())
    return float((a & b).sum() / union) if union else 1.0
