"""DRAEM-style texture anomalies: a thresholded-noise patch of foreign texture, for prompts the
keywords do not know."""
from __future__ import annotations

import numpy as np

from studio.engines.classic.defects.base import Context
from studio.engines.classic.shading import Maps
from studio.imaging import blur, pixels


def perlin_texture(ctx: Context) -> Maps:
    """A thresholded fractal-noise mask inside the region filled with a foreign texture (the surface
    flipped and inverted or posterised, or a two-colour noise texture) at a seeded opacity."""
    rng = ctx.rng
    size = float(np.sqrt(ctx.region.sum()))
    noise = ctx.noise(max(3.0, size / float(rng.uniform(2.0, 5.0))))
    values = noise[ctx.region]
    threshold = float(np.quantile(values, float(rng.uniform(0.3, 0.7))))
    anomaly = (noise > threshold) & ctx.region
    choice = int(rng.integers(3))
    grain = True
    if choice == 0:  # the surface itself, flipped, then inverted or posterised
        src = ctx.crop[::-1, ::-1]
        if rng.random() < 0.5:
            src, kind, grain = 255.0 - src, "inverted surface", False
        else:
            src, kind = np.floor(src / 64.0) * 64.0 + 32.0, "posterised surface"
    else:
        c1, c2 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        t = (ctx.noise(float(rng.uniform(2.0, 8.0))) + 1.0)[..., None] / 2.0
        src, kind = c1 * (1.0 - t) + c2 * t, "noise texture"
    src = np.asarray(src, np.float32)
    surface = ctx.shared.crop_colour
    if anomaly.any() and abs(float(pixels(src, anomaly).mean() - surface.mean())) < 40:
        src = np.clip(src + (60.0 if surface.mean() < 128 else -60.0), 0, 255)
    opacity = float(rng.uniform(0.6, 1.0))
    cover = blur(anomaly.astype(np.float32), 0.6) * opacity * ctx.region
    ctx.record(threshold=threshold, texture=kind, opacity=opacity)
    return Maps(cover=cover, paint=src, grain=grain)
