"""One to three thin, nearly straight strokes along the region, dark or specular, tapered."""
from __future__ import annotations


import numpy as np

from studio.engines.classic.defects.base import Context, line_tone
from studio.engines.classic.geometry import centreline, draw_polyline, region_frame, resample
from studio.engines.classic.keywords import prompt_words
from studio.engines.classic.noise import perlin


def scratch(ctx: Context) -> np.ndarray:
    """One to three thin, nearly straight strokes along the region, dark or specular, tapered."""
    rng, frame = ctx.rng, region_frame(ctx.region)
    points, half = centreline(ctx.region, frame)
    n = int(rng.choice([1, 1, 2, 3]))
    words = set(prompt_words(ctx.prompt))
    if words & {"dark", "black", "deep"}:
        dark = True
    elif words & {"bright", "white", "light", "shiny"}:
        dark = False
    else:
        dark = bool(rng.random() < 0.7)
    depth = float(rng.uniform(0.45, 0.7))
    coverage = np.zeros(ctx.shape, np.float32)
    normal = np.array([-frame.uy, frame.ux], np.float32)
    hw = float(np.median(half))
    along = ctx.along(frame)
    thicknesses = []
    for i in range(n):
        pts = resample(points, 32)
        u = np.linspace(-1.0, 1.0, len(pts))
        keep = float(rng.uniform(0.7, 1.0))
        start = float(rng.uniform(-1.0, 1.0 - 2.0 * keep)) if keep < 1.0 else -1.0
        sel = (u >= start) & (u <= start + 2.0 * keep)
        pts, u = pts[sel], u[sel]
        offset = rng.uniform(-0.5, 0.5) * hw if n > 1 else rng.uniform(-0.2, 0.2) * hw
        bow = rng.uniform(-0.25, 0.25) * min(hw, 6.0)
        wobble = perlin((1, len(pts)), (1, 2), rng)[0] * min(0.1 * hw, 1.0)
        pts = pts + normal[None, :] * (offset + bow * (1 - u**2) + wobble)[:, None]
        thickness = int(rng.choice([1, 1, 2])) if hw > 4 else 1
        thicknesses.append(thickness)
        line = draw_polyline(ctx.shape, pts, thickness)
        # taper: strongest in the middle of the stroke, fading at its ends
        mid = float(u.mean())
        taper = np.clip(1.0 - ((along - mid) / max(keep, 0.1)) ** 4, 0.2, 1.0)
        coverage = np.maximum(coverage, line * taper * rng.uniform(0.85, 1.0))
    coverage *= ctx.region
    out = line_tone(ctx, dark, depth, coverage)
    # a faint highlight along one flank reads as a groove edge
    shifted = np.roll(coverage, shift=(int(round(normal[1])), int(round(normal[0]))), axis=(0, 1)) * ctx.region
    out = out + (255.0 - out) * 0.25 * np.clip(shifted - coverage, 0, 1)[..., None]
    ctx.record(strokes=n, dark=dark, depth=depth, thickness=thicknesses)
    return out
