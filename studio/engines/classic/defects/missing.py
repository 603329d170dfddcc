"""A broken-off piece: an angular void (dark) with a pale fracture edge and a drop shadow."""
from __future__ import annotations


import cv2
import numpy as np

from studio.engines.classic.defects.base import Context, jagged_blob
from studio.engines.classic.noise import fractal
from studio.engines.classic.photometry import surface_mean
from studio.imaging import blur, erode


def missing(ctx: Context) -> np.ndarray:
    """A broken-off piece: an angular void (dark) with a pale fracture edge and a drop shadow."""
    rng = ctx.rng
    blob = jagged_blob(ctx, float(rng.uniform(0.6, 0.95)), float(rng.uniform(0.25, 0.45)), float(rng.uniform(1.5, 3)))
    contours, _ = cv2.findContours(blob.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    shard = np.zeros(ctx.shape, np.uint8)
    for contour in contours:
        eps = max(1.0, 0.04 * cv2.arcLength(contour, True)) * rng.uniform(0.5, 1.0)
        poly = cv2.approxPolyDP(contour, eps, True)
        cv2.fillPoly(shard, [poly], 1)
    shard = shard.astype(bool) & ctx.region
    if shard.sum() < 4:
        shard = blob if blob.any() else ctx.region
    void_level = float(rng.uniform(10, 40))
    yy = np.linspace(0.0, 1.0, ctx.shape[0], dtype=np.float32)[:, None]
    void = void_level + 15.0 * yy + 4.0 * fractal(ctx.shape, 4.0, rng, 2)
    edge = shard & ~erode(shard, int(rng.integers(1, 3)))
    surface = surface_mean(ctx.crop, ctx.region)
    pale = np.clip(surface * 0.6 + 110.0, 0, 255)
    out = ctx.crop.copy()
    out[shard] = void[shard][:, None] * np.array([1.0, 0.97, 0.93], np.float32)
    out[edge] = pale * rng.uniform(0.85, 1.0)
    shadow = (np.clip(blur(shard.astype(np.float32), 1.2) - shard, 0, 1) * ctx.region)[..., None]
    out = out * (1.0 - 0.45 * shadow)
    ctx.record(void=void_level, vertices=int(sum(len(c) for c in contours)))
    return out
