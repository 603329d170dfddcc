"""Quality measures of a candidate: the seam measure."""
from __future__ import annotations

import cv2
import numpy as np

from studio.imaging import erode


def seam_ratio(original: np.ndarray, output: np.ndarray, label: np.ndarray, width: int = 2) -> float:
    """Mean gradient magnitude on the label mask's boundary band in ``output``, relative to the same
    band in ``original`` (1.0 = the boundary is as smooth as the untouched surface)."""
    lab = label > 0
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    band = cv2.dilate(lab.astype(np.uint8), kernel).astype(bool) & ~erode(lab, width)
    if not band.any():
        return 1.0

    def grad(image: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(image.astype(np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32)
        gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
        return np.sqrt(gx * gx + gy * gy)

    before = float(grad(original)[band].mean())
    return float(grad(output)[band].mean()) / max(before, 1e-6)
