"""A dark hole: a lit inner wall on the side away from the light, a shadowed near wall,"""
from __future__ import annotations


import numpy as np

from studio.engines.classic.defects.base import Context
from studio.engines.classic.geometry import inside_distance, region_frame
from studio.engines.classic.photometry import luminance, surface_mean
from studio.imaging import blur, erode


def hole(ctx: Context) -> np.ndarray:
    """A dark hole: a lit inner wall on the side away from the light, a shadowed near wall,
    a thin bright lip where the rim faces the light."""
    rng, frame = ctx.rng, region_frame(ctx.region)
    yy, xx = np.mgrid[: ctx.shape[0], : ctx.shape[1]].astype(np.float32)
    t, s = frame.to_local(xx, yy)
    k = float(rng.uniform(0.5, 0.85))
    ct, cs = rng.uniform(-0.12, 0.12) * frame.a, rng.uniform(-0.12, 0.12) * frame.b
    a = max(frame.a * k, 1.5)
    b = max(min(frame.b * k * rng.uniform(0.85, 1.1), a), 1.5)
    theta = np.arctan2((s - cs) / b, (t - ct) / a)
    wobble = 1.0 + 0.1 * rng.uniform(0, 1) * np.sin(3 * theta + rng.uniform(0, 6.3))
    r = np.sqrt(((t - ct) / a) ** 2 + ((s - cs) / b) ** 2) / wobble
    inside = (r <= 1.0) & ctx.region
    if inside.sum() < 4:
        inside = erode(ctx.region, 1) if erode(ctx.region, 1).any() else ctx.region
        r = 1.0 - inside_distance(inside) / max(float(inside_distance(inside).max()), 1.0)
    light = float(rng.uniform(0, 2 * np.pi))
    # direction of each pixel from the hole's centre, in image coordinates
    phi = theta + frame.angle
    towards = np.cos(phi - light)  # +1 on the side of the hole nearer the light
    surface = surface_mean(ctx.crop, ctx.region)
    core = float(rng.uniform(6, 30))
    wall_width = float(rng.uniform(0.25, 0.45))
    wall = np.clip((r - (1.0 - wall_width)) / wall_width, 0.0, 1.0)  # 0 deep inside .. 1 at the rim
    lit = np.clip(-towards, 0.0, 1.0) ** 1.5  # far wall catches the light
    level = core + wall**1.5 * (0.15 + 0.6 * lit) * (float(luminance(surface[None, :])[0]) - core + 20.0)
    colour = level[..., None] * (0.5 * surface / max(float(surface.mean()), 1.0) + 0.5)
    alpha = (blur(inside.astype(np.float32), 0.7) * ctx.region)[..., None]
    out = ctx.crop * (1 - alpha) + colour * alpha
    rim = np.clip(blur(inside.astype(np.float32), 1.2) * 2.0 - 2.0 * inside, 0, 1) * ctx.region
    lip = np.clip(towards, 0, 1) * rim
    out = out + (255.0 - out) * 0.45 * lip[..., None] - out * 0.35 * (rim * np.clip(-towards, 0, 1))[..., None]
    ctx.record(size=k, light_angle=light, core=core, wall=wall_width)
    return out
