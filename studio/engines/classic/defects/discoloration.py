"""A soft-edged shift of colour and brightness (yellowing, bleaching, heat tint, darkening)."""
from __future__ import annotations


import numpy as np

from studio.engines.classic.defects.base import Context, jagged_blob
from studio.engines.classic.geometry import inside_distance
from studio.engines.classic.keywords import prompt_colour
from studio.engines.classic.noise import fractal
from studio.engines.classic.photometry import surface_mean, tint_away
from studio.imaging import blur


def discoloration(ctx: Context) -> np.ndarray:
    """A soft-edged shift of colour and brightness (yellowing, bleaching, heat tint, darkening)."""
    rng = ctx.rng
    blob = jagged_blob(ctx, float(rng.uniform(0.75, 1.0)), float(rng.uniform(0.15, 0.3)), float(rng.uniform(1.5, 3)))
    peak = float(inside_distance(ctx.region).max()) or 1.0
    weight = blur(blob.astype(np.float32), max(1.0, 0.2 * peak))
    weight = np.clip(weight * (0.75 + 0.25 * fractal(ctx.shape, 2.5, rng, 2)), 0, 1) * ctx.region
    named = prompt_colour(ctx.prompt)
    kinds = ("yellowing", "bleaching", "heat tint", "darkening")
    kind = kinds[int(rng.integers(len(kinds)))]
    if named is not None:
        kind = named[0]
        target = np.array(named[1], np.float32)
    elif kind == "yellowing":
        target = np.array([200, 165, 60], np.float32)
    elif kind == "bleaching":
        target = np.array([235, 232, 225], np.float32)
    elif kind == "heat tint":
        target = np.array([95, 70, 140], np.float32)
    else:
        target = np.array([45, 40, 35], np.float32)
    surface = surface_mean(ctx.crop, ctx.region)
    target = tint_away(target, surface, 55.0)
    strength = float(rng.uniform(0.55, 0.8))
    shifted = ctx.crop + (target - surface) * strength
    w = weight[..., None]
    out = ctx.crop * (1 - w) + shifted * w
    ctx.record(kind=kind, strength=strength, rgb=target)
    return out
