"""Scratches: smooth random grooves with varying width and depth, occasional interruptions, a thin
highlight on the wall facing the light and a faint burr beside them. On a brushed surface (its
finest texture running one way in each small window: brushed or turned metal, wood grain) they are
hairlines about a px wide (wider on a soft photo), with no burr, and one-sided: only one wall of the
groove catches or loses the light, so they read as a single bright or dark line, not an embossed pair."""
from __future__ import annotations

import numpy as np

from studio.engines.classic.defects.base import Context, curve_band, smooth_curve
from studio.engines.classic.keywords import prompt_words
from studio.engines.classic.shading import Maps
from studio.imaging import pixels


#: Texture coherence (:attr:`Shared.brushing`) from which a surface counts as brushed.
BRUSHED = 0.6
#: How much more a hairline's reflectance departs from the surface's than a groove's (a px-wide line,
#: blurred by the camera, must be this much stronger to show as clearly, without a faint fringe).
HAIRLINE_CONTRAST = 1.6
#: Darkest a dark hairline gets (a share of the surface's brightness).
LEAST_EXPOSED = 0.25


def along(rng: np.random.Generator, position: np.ndarray, knots: int, spread: float) -> np.ndarray:
    """A smooth seeded profile over the arc position (0..1): 1 ± ``spread``."""
    values = 1.0 + rng.uniform(-spread, spread, knots)
    return np.interp(position, np.linspace(0.0, 1.0, knots), values).astype(np.float32)


def scratch(ctx: Context) -> Maps:
    rng = ctx.rng
    words = set(prompt_words(ctx.prompt))
    brushed = ctx.shared.brushing >= BRUSHED
    count = int(rng.choice([1, 1, 2, 3]))
    half = max(1.0, min(ctx.frame.b, 8.0))
    paths = [smooth_curve(ctx, float(rng.uniform(0.05, 0.35))) for _ in range(count)]
    band = curve_band(ctx.shape, paths, 6.0)
    side = float(rng.choice([-1.0, 1.0])) if brushed else 0.0  # which wall of a hairline shows
    height = np.zeros(band.distance.shape, np.float32)
    groove = np.zeros(band.distance.shape, np.float32)
    widths = []
    for k in range(count):
        mine = band.path == k
        position = band.position[mine]
        width = float(rng.uniform(0.6, 1.0 if half < 4 else 1.8)) * along(rng, position, 6, 0.45)
        if brushed:  # a hairline a px wide, wider on a soft photo (its blur would wash a px-wide one out)
            width = np.clip(width, 1.3, 1.7) * max(1.0, ctx.photo.blur)
        taper = np.clip(np.sin(np.pi * position) * 3.0, 0.0, 1.0)
        gaps = along(rng, position, int(rng.integers(4, 12)), 1.0) > float(rng.uniform(0.1, 0.45))
        depth = float(rng.uniform(0.6, 1.6)) * along(rng, position, 5, 0.5) * taper * gaps
        x = band.distance[mine] / np.maximum(width, 0.5)
        profile = np.clip(1.0 - x * x, 0.0, 1.0)
        burr = 0.25 * np.exp(-((x - 1.8) ** 2) * 2.0)  # the material pushed up beside the groove
        if brushed:  # a hairline: one wall only, no burr
            profile = np.clip(1.5 - x, 0.0, 1.0) * (band.side[mine] * side >= 0)  # full for half its width
            burr = 0.0
        height[mine] = (burr - profile) * depth
        groove[mine] = profile * (depth > 0)
        widths.append(round(float(width.mean()), 2) if width.size else 0.0)
    height = band.paint(ctx.shape, height) * ctx.region
    groove = band.paint(ctx.shape, groove) * ctx.region
    if words & {"bright", "white", "light", "shiny"}:
        exposed = float(rng.uniform(1.2, 1.45))
    elif words & {"dark", "black", "deep"}:
        exposed = float(rng.uniform(0.45, 0.7))
    else:
        exposed = float(rng.choice([rng.uniform(0.5, 0.75), rng.uniform(1.1, 1.3)]))
    if brushed:  # a hairline is all wall: it catches (or loses) more light than a groove's floor
        exposed = max(1.0 + (exposed - 1.0) * HAIRLINE_CONTRAST, LEAST_EXPOSED)
    # a bright groove stays below saturation (a clipped highlight would lose the sensor noise)
    level = float(pixels(ctx.base, ctx.region).max()) if ctx.region.any() else 128.0
    exposed = min(exposed, max(1.0, 225.0 / max(level, 1.0)))
    albedo = 1.0 + groove[..., None] * (exposed - 1.0)
    ctx.record(strokes=count, width_px=widths, exposed=exposed, brushed=brushed)
    # a hairline is a change of reflectance only (relief would shade it into a bright/dark pair), and
    # a dark one has no glint to cancel its darkening
    if brushed:
        return Maps(albedo=albedo, gloss=groove * 0.25 if exposed > 1.0 else None)
    return Maps(height=height, albedo=albedo, gloss=groove * 0.25, relief=1.0, hollow=0.3)
