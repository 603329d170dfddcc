"""Poisson blending of a source into a crop (solved small for large crops)."""
from __future__ import annotations

import cv2
import numpy as np

from studio.imaging import dilate, erode


#: Width (px) of the surroundings cloned with a reference anomaly (inside the crop margin),
#: counting the 3 px OpenCV's seamlessClone erodes from its mask.
RING = 6

#: Poisson blending modes: the source's own gradients, or the stronger of source and target per pixel.
MODES = {"normal": cv2.NORMAL_CLONE, "mixed": cv2.MIXED_CLONE}
#: Largest side (px) the Poisson equation is solved at (larger crops solve a smooth correction small).
POISSON_SIDE = 128


def solve_size(shape: tuple[int, ...], side: int | None = None) -> tuple[int, int] | None:
    """(w, h) a crop of ``shape`` is solved at by :func:`poisson` (``side``: see there); None when it
    is solved at full size."""
    h, w = shape[:2]
    scale = min(1.0, POISSON_SIDE / (side or max(h, w)))
    return (max(8, round(w * scale)), max(8, round(h * scale))) if scale < 1.0 else None


def poisson(crop: np.ndarray, source: np.ndarray, anomaly: np.ndarray, mode: str = "normal",
            side: int | None = None, small_crop: np.ndarray | None = None) -> tuple[np.ndarray, float | None]:
    """``cv2.seamlessClone`` of ``source`` into ``crop`` over the anomaly plus a ring of its
    surroundings: the anomaly keeps its own gradients, its level follows the target around it,
    and the boundary (where the solution must equal the target) lies in the ring, not on the
    anomaly, so a narrow anomaly is not washed out. The caller's feathered composite keeps only
    the anomaly and a pixel or two around it.

    Large crops are solved at ``POISSON_SIDE`` px: the Poisson solution is the source plus a
    harmonic (smooth) correction, so the correction is solved small, upsampled and added to the
    full-resolution source; the anomaly's detail is never resampled. ``side``: the longest side of
    the crop this is a part of (its own when not given), which sets that scale; ``small_crop``: the
    crop already shrunk to :func:`solve_size` by area averaging. Returns the blend and the scale it
    was solved at (None when the region was too small to solve)."""
    h, w = crop.shape[:2]
    scale = min(1.0, POISSON_SIDE / (side or max(h, w)))
    src = np.clip(np.rint(source), 0, 255).astype(np.uint8)
    size = solve_size(crop.shape, side)
    if size is not None:
        small_src = cv2.resize(src, size, interpolation=cv2.INTER_AREA)
        small_dst = cv2.resize(crop, size, interpolation=cv2.INTER_AREA) if small_crop is None else small_crop
        small_anomaly = cv2.resize(anomaly.astype(np.uint8), size, interpolation=cv2.INTER_AREA) > 0
    else:
        small_src, small_dst, small_anomaly = src, crop, anomaly
    # OpenCV erodes the clone mask by 3 px internally: grow by that plus the ring we want kept
    clone = dilate(small_anomaly, 3 + max(3, round(RING * scale)))
    if np.count_nonzero(erode(clone, 3)) < 4:
        return source, None
    pad = 4
    dst_p = cv2.copyMakeBorder(small_dst, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    src_p = cv2.copyMakeBorder(small_src, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    mask_p = np.pad(clone.astype(np.uint8) * 255, pad)
    x, y, bw, bh = cv2.boundingRect(mask_p)
    result = cv2.seamlessClone(src_p, dst_p, mask_p, (x + bw // 2, y + bh // 2), MODES[mode])
    result = result[pad:-pad, pad:-pad].astype(np.float32)
    if scale == 1.0:
        return result, 1.0
    correction = cv2.resize(result - small_src.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return source + correction, round(scale, 4)
