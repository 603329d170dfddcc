"""The label mask of a candidate: the sketch (as in the paper) or the sketched pixels that really changed.

With ``label_threshold`` > 0 the label follows the defect: the pixels inside the sketch whose
largest channel difference between the composite and the original exceeds the threshold,
cleaned by a morphological opening (drops isolated pixels) and closing (fills pinholes), and
kept inside the sketch. When nothing changes that much the sketch is kept and the metadata says so.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from studio.imaging import dilate, erode

#: Radius (px) of the opening and closing that clean the changed-pixel label.
CLEAN_RADIUS = 1


def changed_pixels(original: np.ndarray, result: np.ndarray, sketch: np.ndarray, threshold: float) -> np.ndarray:
    """Sketched pixels whose largest channel changed by more than ``threshold``, cleaned (bool)."""
    diff = np.abs(result.astype(np.int16) - original.astype(np.int16)).max(axis=-1)
    changed = (diff > threshold) & sketch
    opened = dilate(erode(changed, CLEAN_RADIUS), CLEAN_RADIUS)
    closed = erode(dilate(opened, CLEAN_RADIUS), CLEAN_RADIUS)
    return closed & sketch


def candidate_label(original: np.ndarray, result: np.ndarray, sketch: np.ndarray,
                    threshold: float) -> tuple[np.ndarray, dict[str, Any]]:
    """The 0/255 label and its metadata (``mode`` sketch or changed, threshold, share of the sketch kept)."""
    if threshold <= 0:
        return sketch.astype(np.uint8) * 255, {"mode": "sketch", "threshold": 0}
    changed = changed_pixels(original, result, sketch, threshold)
    kept = float(changed.sum()) / max(int(sketch.sum()), 1)
    if not changed.any():
        return sketch.astype(np.uint8) * 255, {"mode": "sketch", "threshold": threshold, "kept": 0.0,
                                               "note": "no sketched pixel changed beyond the threshold"}
    return changed.astype(np.uint8) * 255, {"mode": "changed", "threshold": threshold, "kept": round(kept, 6)}
