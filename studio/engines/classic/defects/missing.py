"""Missing material: an angular broken-off piece; the void shows the dim layer below (the remaining
edge casts a shadow into it, away from the light), the fracture face along the break is lit or
shadowed by the image's light."""
from __future__ import annotations

import cv2
import numpy as np

from studio.engines.classic.defects.base import Context, organic_blob
from studio.engines.classic.shading import Maps
from studio.imaging import blur, erode


def missing(ctx: Context) -> Maps:
    rng = ctx.rng
    size = float(np.sqrt(ctx.region.sum()))
    blob, _ = organic_blob(ctx, (0.4, 0.9), float(rng.uniform(0.25, 0.45)), max(4.0, size / 2.5))
    contours, _ = cv2.findContours(blob.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    shard = np.zeros(ctx.shape, np.uint8)
    for contour in contours:
        eps = max(1.0, 0.035 * cv2.arcLength(contour, True)) * rng.uniform(0.5, 1.0)
        cv2.fillPoly(shard, [cv2.approxPolyDP(contour, eps, True)], 1)
    shard = shard.astype(bool) & ctx.region
    if shard.sum() < 4:
        shard = blob if blob.any() else ctx.region
    face = shard & ~erode(shard, int(rng.integers(1, 4)))
    # what shows through: the layer below, a dim and blurred copy of the surface, lit from one side
    depth = float(rng.uniform(0.15, 0.35))
    below = blur(ctx.base, 3.0) * depth
    shift = np.array(ctx.photo.light) * float(rng.uniform(2.0, 5.0))
    lit = blur(shard.astype(np.float32), 1.5)
    # a void pixel is in shadow when the surface lies between it and the light: sample towards the light
    toward = cv2.warpAffine(lit, np.float32([[1, 0, -shift[0]], [0, 1, -shift[1]]]), lit.shape[::-1])
    shadow = np.clip(lit - toward, 0.0, 1.0)
    paint = below * (1.0 - 0.6 * shadow)[..., None] * (1.0 + 0.15 * ctx.noise(4.0))[..., None]
    fracture = ctx.base * float(rng.uniform(0.85, 1.2))
    paint = np.where(face[..., None], fracture, paint)
    height = -blur(shard.astype(np.float32), 1.0) * float(rng.uniform(3.0, 6.0))
    ctx.record(depth=depth, vertices=int(sum(len(c) for c in contours)))
    return Maps(height=height, cover=shard.astype(np.float32), paint=paint, relief=1.0)
