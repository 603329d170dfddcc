"""A bent pin (a lead, a prong, a wire): the part of the sketched region beyond a seeded pivot swings
sideways about it, carrying the pin with it, and the background closes in behind. Nothing is painted:
the crop is resampled, and the swing fades out before the sketch's outline (a pin running on beyond
the sketch kinks back into place), so the outline never shows."""
from __future__ import annotations

import math

import cv2
import numpy as np

from studio.engines.classic.defects.base import Context
from studio.engines.classic.shading import Maps


def bend(ctx: Context) -> Maps:
    rng, frame = ctx.rng, ctx.frame
    end = float(rng.choice([-1.0, 1.0]))  # which end of the pin swings
    pivot_u = end * frame.a * float(rng.uniform(-0.35, 0.15))
    reach = max(frame.a - end * pivot_u, 1.0)  # from the pivot to the swinging end
    # the far end moves sideways by up to ~half the sketch's width
    angle = float(rng.choice([-1.0, 1.0])) * min(math.radians(float(rng.uniform(12.0, 30.0))),
                                                 0.55 * frame.b / reach)
    yy, xx = ctx.shared.grid()
    dx, dy = xx - frame.cx, yy - frame.cy
    u = dx * frame.ux + dy * frame.uy  # along the pin
    # how far past the pivot (smoothly: the pin bends over ~the sketch's half-width, it does not kink)
    soft = max(1.5, 0.5 * frame.b)
    past = end * (u - pivot_u)
    lever = 0.5 * (past + np.sqrt(past * past + soft * soft)) - 0.5 * soft
    # fade the swing out before the sketch's outline
    weight = np.clip((ctx.depth - 2.5) / max(2.0, 0.35 * frame.b), 0.0, 1.0)
    shift = -angle * lever * weight  # sideways (along v) displacement of the content
    # inverse map: the output at (u, v) shows what was at (u, v - shift)
    src_x = (xx - shift * -frame.uy).astype(np.float32)
    src_y = (yy - shift * frame.ux).astype(np.float32)
    # the whole crop moves (the pin's edges with it; leaving the detail behind would leave its ghost)
    source = cv2.remap(ctx.crop, src_x, src_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    ctx.footprint = (np.abs(shift) > 0.75) & ctx.region
    ctx.record(style="bent", angle_deg=math.degrees(angle), pivot_px=pivot_u,
               tip_shift_px=float(np.abs(shift).max()))
    return Maps(source=source.astype(np.float32))
