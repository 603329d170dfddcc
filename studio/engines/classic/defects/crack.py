"""Cracks: a jagged fracture that tapers to its tips, with thinner tapering branches; a sharp,
pixel-jagged opening, darkest at its middle, whose lips catch or lose the light."""
from __future__ import annotations

import math

import numpy as np

from studio.engines.classic.defects.base import Context, curve_band, paint_window, smooth_curve
from studio.engines.classic.geometry import jagged_path, resample
from studio.engines.classic.photometry import luminance
from studio.engines.classic.shading import Maps


def crack(ctx: Context) -> Maps:
    rng, frame = ctx.rng, ctx.frame
    main = jagged_path(resample(smooth_curve(ctx, float(rng.uniform(0.05, 0.3))), 5), rng,
                       float(rng.uniform(0.1, 0.2)), 5)
    half = max(1.0, min(frame.b, 10.0))
    w0 = float(rng.uniform(0.7, 1.0 if half < 4 else 2.0))
    paths = [(main, w0)]
    branches = int(rng.integers(1, 5))
    for _ in range(branches):
        i = int(rng.integers(len(main) // 5, max(len(main) * 4 // 5, len(main) // 5 + 1)))
        direction = main[min(i + 1, len(main) - 1)] - main[max(i - 1, 0)]
        angle = math.atan2(direction[1], direction[0]) + rng.choice([-1, 1]) * rng.uniform(0.35, 1.0)
        length = rng.uniform(0.2, 0.6) * frame.a
        end = main[i] + length * np.array([math.cos(angle), math.sin(angle)])
        paths.append((jagged_path(np.stack([main[i], end]), rng, 0.15, 4), w0 * float(rng.uniform(0.4, 0.7))))
    band = curve_band(ctx.shape, [points for points, _ in paths], 8.0)
    widths = np.array([width for _, width in paths], np.float32)[band.path]
    # the main crack narrows towards both tips, a branch from its root to its tip
    taper = np.where(band.path == 0, np.sqrt(np.clip(1.0 - (2.0 * band.position - 1.0) ** 2, 0.0, 1.0)),
                     1.0 - band.position)
    local = np.maximum(widths * taper, 0.35)
    # a fracture's edges are jagged at the pixel scale: the opening's width wavers from px to px
    jag = 1.0 + 0.45 * ctx.noise(1.2)[band.ys, band.xs]
    across = band.distance / (local * np.maximum(jag, 0.3))
    opening = band.paint(ctx.shape, np.clip(1.6 - across, 0.0, 1.0))
    core = band.paint(ctx.shape, np.clip(1.0 - across, 0.0, 1.0))  # the dark gap at its middle
    lips = band.paint(ctx.shape, np.exp(-band.distance / (1.5 * local + 0.5)) * (taper > 0.05))
    opening *= ctx.region
    lips *= ctx.region
    level = float(luminance(ctx.shared.crop_colour[None, :])[0])
    dark = float(rng.uniform(0.08, 0.25)) * level
    # the gap is darkest at its middle (no light reaches the bottom), grading to the walls' shade
    paint = np.zeros(ctx.shape + (3,), np.float32)
    box = paint_window(ctx, opening)
    paint[box] = ctx.base[box] * ((dark / max(level, 1.0)) * (1.6 - 1.0 * core[box]))[..., None]
    height = -lips * float(rng.uniform(0.3, 0.7))
    ctx.record(branches=branches, width_px=w0, interior=dark)
    return Maps(height=height, cover=np.clip(opening, 0.0, 1.0), paint=paint, relief=1.2)
