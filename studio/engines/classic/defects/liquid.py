"""Liquid defects: dried stains (density variation, drying ring, satellite droplets) and glossy oil."""
from __future__ import annotations

import cv2
import numpy as np

from studio.engines.classic.defects.base import Context, organic_blob
from studio.engines.classic.geometry import inside_distance
from studio.engines.classic.keywords import prompt_colour
from studio.engines.classic.shading import Maps
from studio.imaging import blur

#: Stain colours (RGB) when the prompt names none: tea/coffee brown, rust brown, grime, dried yellow.
STAIN_COLOURS = ((120, 78, 40), (150, 85, 45), (70, 66, 60), (160, 140, 70))


def droplets(ctx: Context, blob: np.ndarray, count: int, size: float) -> np.ndarray:
    """``count`` small seeded droplets scattered around the blob's edge, inside the region."""
    canvas = np.zeros(ctx.shape, np.uint8)
    ys, xs = np.nonzero(blob & ~np.roll(blob, 2, axis=0))
    if ys.size == 0:
        return canvas.astype(bool)
    for _ in range(count):
        i = int(ctx.rng.integers(ys.size))
        angle = ctx.rng.uniform(0, 2 * np.pi)
        reach = ctx.rng.uniform(1.5, 3.5) * size
        centre = (int(xs[i] + reach * np.cos(angle)), int(ys[i] + reach * np.sin(angle)))
        axes = (max(1, int(size * ctx.rng.uniform(0.5, 1.0))), max(1, int(size * ctx.rng.uniform(0.4, 0.9))))
        cv2.ellipse(canvas, centre, axes, float(ctx.rng.uniform(0, 180)), 0, 360, 1, -1, cv2.LINE_8)
    return canvas.astype(bool) & ctx.region


def stain_colour(ctx: Context) -> tuple[str, np.ndarray]:
    named = prompt_colour(ctx.prompt)
    if named is not None:
        return named[0], np.array(named[1], np.float32)
    return "default", np.array(STAIN_COLOURS[int(ctx.rng.integers(len(STAIN_COLOURS)))], np.float32)


def stain(ctx: Context) -> Maps:
    """A dried liquid stain: absorbed colour (multiplicative, so the texture shows through) with
    uneven density, a darker ring where the liquid dried, and a few satellite droplets."""
    rng = ctx.rng
    size = float(np.sqrt(ctx.region.sum()))
    blob, lift = organic_blob(ctx, (0.35, 0.85), float(rng.uniform(0.2, 0.45)), max(4.0, size / 3))
    satellites = int(rng.integers(0, 6))
    drops = droplets(ctx, blob, satellites, max(1.0, 0.05 * size))
    shape = blob | drops
    edge = inside_distance(shape)
    ring_width = float(rng.uniform(1.0, 3.0))
    ring = np.exp(-edge / ring_width) * shape
    density = np.clip(0.5 + 0.6 * ctx.noise(max(3.0, size / 5)), 0.1, 1.0)
    strength = float(rng.uniform(0.5, 0.85))
    alpha = np.clip(strength * (density * (0.45 + 0.55 * np.sqrt(lift)) + float(rng.uniform(0.3, 0.7)) * ring), 0, 1)
    alpha = blur((alpha * shape).astype(np.float32), 0.6)
    name, colour = stain_colour(ctx)
    transmit = np.clip(colour / 255.0, 0.08, 1.0)
    albedo = 1.0 - alpha[..., None] * (1.0 - transmit)
    ctx.record(colour=name, rgb=colour, strength=strength, satellites=satellites, ring_px=ring_width)
    return Maps(albedo=albedo)


def oil(ctx: Context) -> Maps:
    """An oil film: a dark, slightly warm translucent patch with a crisp-ish edge and a seeded sheen
    (a brighter glossy streak) over it."""
    rng = ctx.rng
    size = float(np.sqrt(ctx.region.sum()))
    blob, lift = organic_blob(ctx, (0.4, 0.9), float(rng.uniform(0.15, 0.35)), max(5.0, size / 2.5))
    drops = droplets(ctx, blob, int(rng.integers(0, 4)), max(1.0, 0.04 * size))
    film = blur((blob | drops).astype(np.float32), float(rng.uniform(0.6, 1.4))) * ctx.region
    thickness = np.clip(0.6 + 0.6 * np.sqrt(lift) + 0.2 * ctx.noise(max(4.0, size / 4)), 0.3, 1.0)
    darkness = float(rng.uniform(0.3, 0.55))
    tone = np.array([0.92, 0.88, 0.80], np.float32)
    albedo = 1.0 - (film * thickness)[..., None] * darkness * (2.0 - tone)
    sheen = np.clip(ctx.noise(max(6.0, size / 2)) * 1.5, 0.0, 1.0) * film * float(rng.uniform(0.05, 0.15))
    ctx.record(darkness=darkness)
    return Maps(albedo=albedo, gloss=sheen)
