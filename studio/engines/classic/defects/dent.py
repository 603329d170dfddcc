"""Dents: a smooth depression of organic outline, shaded by the image's light (a lit and a shadowed
slope), its texture pulled along the slope and its highlight shifted."""
from __future__ import annotations

import cv2
import numpy as np

from studio.engines.classic.defects.base import Context, organic_patch, wide_blur, window
from studio.engines.classic.shading import Maps


def dent(ctx: Context) -> Maps:
    rng = ctx.rng
    size = float(np.sqrt(ctx.region.sum()))
    _, lift = organic_patch(ctx, (0.45, 0.9), float(rng.uniform(0.1, 0.25)), (0.6, 1.0))
    # a bowl: deepest in the middle, no flat floor (shaped on the patch's box: beyond, nothing)
    bowl = np.zeros(ctx.shape, np.float32)
    own = window(lift, 0)
    bowl[own] = np.sin(0.5 * np.pi * np.clip(lift[own] * 1.2, 0.0, 1.0)) ** 1.5
    smooth = wide_blur(bowl, max(1.0, 0.06 * size))
    depth = float(rng.uniform(0.04, 0.1)) * min(ctx.frame.b, 0.5 * size)  # slopes set by the narrow axis
    height = -(smooth * depth * ctx.region).astype(np.float32)
    # only the smooth base is pulled (resampling would average the sensor noise away), and only
    # where the slope moves it (the depression's box)
    box = window(height, 2)
    gy, gx = np.gradient(height[box])
    push = float(rng.uniform(0.5, 1.5))
    yy, xx = ctx.shared.grid(box)
    warped = ctx.crop.copy()
    warped[box] = cv2.remap(ctx.base, xx + gx * push, yy + gy * push, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    warped[box] += ctx.crop[box] - ctx.base[box]
    ctx.footprint = (smooth > 0.5) & ctx.region  # the whole depression is the defect, floor included
    ctx.record(depth_px=depth, push=push)
    return Maps(height=height, gloss=smooth * 0.08, relief=1.0, source=warped, hollow=0.45)
