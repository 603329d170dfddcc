"""DRAEM-style anomaly: a thresholded Perlin mask filled with a foreign texture (augmented"""
from __future__ import annotations


import cv2
import numpy as np

from studio.engines.classic.defects.base import Context
from studio.engines.classic.noise import fractal
from studio.engines.classic.photometry import surface_mean
from studio.imaging import blur


def perlin_texture(ctx: Context) -> np.ndarray:
    """DRAEM-style anomaly: a thresholded Perlin mask filled with a foreign texture (augmented
    surface or coloured noise), blended with a random opacity."""
    rng = ctx.rng
    h, w = ctx.shape
    area = int(ctx.region.sum())
    scale = int(rng.integers(1, 4))
    periods = max(1.0, min(h, w) / max(8.0, 48.0 / scale))
    noise = fractal(ctx.shape, periods, rng, 2)
    angle = float(rng.uniform(-90, 90))
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    noise = cv2.warpAffine(noise, rot, (w, h), borderMode=cv2.BORDER_REFLECT)
    values = noise[ctx.region]
    threshold = 0.2
    if (values > threshold).sum() < 0.15 * area:  # keep the anomaly a visible part of the region
        threshold = float(np.quantile(values, 0.6))
    anomaly = (noise > threshold) & ctx.region
    choice = int(rng.integers(3))
    if choice == 0:  # the surface itself, flipped and colour-inverted/posterised
        src = ctx.crop[::-1, ::-1]
        src = 255.0 - src if rng.random() < 0.5 else np.floor(src / 64.0) * 64.0 + 32.0
        texture_kind = "augmented surface"
    else:  # a two-colour noise texture
        c1, c2 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        t = (fractal(ctx.shape, float(rng.uniform(4, 16)), rng, 3)[..., None] + 1) / 2
        src = c1 * (1 - t) + c2 * t
        texture_kind = "noise texture"
    src = np.asarray(src, np.float32)
    surface = surface_mean(ctx.crop, ctx.region)
    if abs(float(src[anomaly].mean() - surface.mean())) < 40 if anomaly.any() else False:
        src = np.clip(src + (60.0 if surface.mean() < 128 else -60.0), 0, 255)
    opacity = float(rng.uniform(0.6, 1.0))
    alpha = blur(anomaly.astype(np.float32), 0.6) * opacity * ctx.region
    out = ctx.crop * (1 - alpha[..., None]) + src * alpha[..., None]
    ctx.record(threshold=threshold, rotation=angle, texture=texture_kind, opacity=opacity, scale=scale)
    return out
