"""Missing material: an angular broken-off piece; the void shows a dark background, the fracture
face along the break is lit or shadowed by the image's light."""
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
    void = shard & ~face
    level = ctx.base[shard].mean(axis=0)
    background = level * float(rng.uniform(0.1, 0.3))
    yy = np.linspace(0.0, 1.0, ctx.shape[0], dtype=np.float32)[:, None, None]
    paint = background * (0.85 + 0.3 * yy) * (1.0 + 0.1 * ctx.noise(4.0))[..., None]
    fracture = ctx.base * float(rng.uniform(0.9, 1.25))
    paint = np.where(face[..., None], fracture, paint)
    height = -blur(void.astype(np.float32), 0.8) * float(rng.uniform(2.0, 4.0))
    ctx.record(background=float(background.mean()), vertices=int(sum(len(c) for c in contours)))
    return Maps(height=height, cover=shard.astype(np.float32), paint=paint, relief=1.0)
