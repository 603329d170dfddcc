"""A smooth depression: the texture is pulled along the slope, shaded by a raking light and"""
from __future__ import annotations

import math

import cv2
import numpy as np

from studio.engines.classic.defects.base import Context
from studio.engines.classic.geometry import inside_distance
from studio.imaging import blur


def dent(ctx: Context) -> np.ndarray:
    """A smooth depression: the texture is pulled along the slope, shaded by a raking light and
    darkened a little in its hollow."""
    rng = ctx.rng
    depth = inside_distance(ctx.region)
    peak = float(depth.max()) or 1.0
    reach = float(rng.uniform(0.5, 0.8)) * peak
    # 0 on the region's edge, rising smoothly to 1 on a plateau in the middle
    height = 0.5 - 0.5 * np.cos(np.pi * np.clip(depth / reach, 0.0, 1.0))
    height = blur(height.astype(np.float32), max(0.7, 0.08 * peak)) * ctx.region
    gy, gx = np.gradient(height)
    amount = float(rng.uniform(0.7, 1.0))
    light = float(rng.uniform(0, 2 * np.pi))
    lx, ly = math.cos(light), math.sin(light)
    shading = np.clip((gx * lx + gy * ly) * reach * amount * 0.25, -0.3, 0.3)
    yy, xx = np.mgrid[: ctx.shape[0], : ctx.shape[1]].astype(np.float32)
    push = amount * min(4.0, 0.3 * peak) * reach / 2.0  # texture displacement, px at the steepest slope
    map_x = (xx + gx * push).astype(np.float32)
    map_y = (yy + gy * push).astype(np.float32)
    warped = cv2.remap(ctx.crop, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    hollow = float(rng.uniform(0.08, 0.15))
    out = warped * (1.0 + shading - hollow * height)[..., None]
    out = out + (255.0 - out) * np.clip(shading - 0.15, 0, 1)[..., None] * 0.4  # glint on the lit slope
    ctx.record(amount=amount, light_angle=light, hollow=hollow, reach_px=reach)
    return out
