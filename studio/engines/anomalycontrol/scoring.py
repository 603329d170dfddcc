"""Candidate quality score: BLIP-2 image-text matching of the defect region against the target prompt.

The engine already holds BLIP-2 for CSM, so scoring costs one batched ViT + Q-Former pass for
all candidates: each candidate's region (the mask's bounding box grown by a quarter of its size,
at least 8 px, made square where the image allows) is read through the same image processor as
CSM, and the ITM head's match probability is the score (higher is better). On random weights
(tiny, sd15-random) the number is meaningless but the path is the real one.
"""
from __future__ import annotations

import numpy as np

from studio.engines.anomalycontrol.csm import CrossModalSemantics
from studio.imaging import mask_bbox

SCORE_METHOD = ("BLIP-2 image-text matching probability of the defect region (mask box + margin) "
                "against the target prompt (the reference text when the prompt is empty)")


def region_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """A square-ish box around the mask with a margin of a quarter of its size (at least 8 px), clipped."""
    x0, y0, x1, y1 = mask_bbox(mask)
    side = max(x1 - x0, y1 - y0)
    side += 2 * max(8, side // 4)
    height, width = mask.shape
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    left = int(np.clip(cx - side // 2, 0, max(width - side, 0)))
    top = int(np.clip(cy - side // 2, 0, max(height - side, 0)))
    return left, top, min(left + side, width), min(top + side, height)


def region_match(csm: CrossModalSemantics, images: list[np.ndarray], mask: np.ndarray, text: str) -> list[float]:
    """The ITM match probability of each image's mask region with ``text``, in one batch."""
    x0, y0, x1, y1 = region_box(mask)
    crops = [np.ascontiguousarray(image[y0:y1, x0:x1]) for image in images]
    return [round(float(p), 6) for p in csm.match(crops, text).cpu()]
