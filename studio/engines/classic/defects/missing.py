"""Missing material: a chip broken out of the surface with a fractal fracture boundary; the exposed
floor is rough and a little darker than the surface (not black), the fracture walls are lit on the
side facing the light and shadowed on the other, and the remaining edge casts a short shadow. A region
on the image's border gets a bite out of that edge (a chipped edge)."""
from __future__ import annotations

import cv2
import numpy as np

from studio.engines.classic.defects.base import Context, cavity, main_parts, organic_patch, paint_window
from studio.engines.classic.defects.substrate import FLOOR_DEPTH, beside_shading, substrate
from studio.engines.classic.geometry import inside_distance
from studio.engines.classic.photometry import luminance
from studio.engines.classic.shading import Maps, light_weight
from studio.imaging import blur


def missing(ctx: Context) -> Maps:
    rng = ctx.rng
    chip, _ = organic_patch(ctx, (0.3, 0.75), float(rng.uniform(0.35, 0.55)), (0.4, 0.9), 0.12, at_edge=True)
    chip = main_parts(chip, 0.2)
    if chip.sum() < 4:
        chip = ctx.region
    size = float(np.sqrt(chip.sum()))
    depth = inside_distance(chip, open_border=True)
    wall_px = float(np.clip(float(rng.uniform(0.06, 0.14)) * size, 1.0, max(1.0, 0.4 * float(depth.max()))))
    wall, side = cavity(ctx, chip, wall_px, depth)
    # the floor: new, rough material (the surface's broken core or what lies under a coat)
    floor = depth > FLOOR_DEPTH
    inside = chip.astype(np.float32)
    win = paint_window(ctx, inside)
    colour, detail, _ = substrate(ctx, float(rng.uniform(0.5, 0.75)), floor, win)
    sure = light_weight(ctx.photo.light_confidence, least=0.0)
    reach = sure * min(float(np.clip(0.15 * size, 2.0, 6.0)), 0.6 * float(depth.max()))  # narrow chips cast short shadows
    shift = np.array(ctx.photo.light) * reach
    toward = cv2.warpAffine(inside, np.float32([[1, 0, -shift[0]], [0, 1, -shift[1]]]), inside.shape[::-1],
                            borderMode=cv2.BORDER_REPLICATE)
    shadow = np.clip(inside - toward, 0.0, 1.0)  # the remaining edge stands between it and the light
    tone = np.zeros(ctx.shape, np.float32)
    # walls: with a known light brighter where they face it, darker in their own shadow; with an
    # unknown one evenly darker near the rim
    facing = side[win]
    wall_light = 1.0 + sure * np.where(facing > 0, 0.5, 0.3) * facing - (1.0 - sure) * 0.25
    tone[win] = ((1.0 - wall[win]) + wall[win] * wall_light) * (1.0 - 0.4 * blur(shadow[win], 1.0))
    detail = beside_shading(ctx, detail, luminance(colour) * tone[win], floor[win])
    paint = np.zeros(ctx.shape + (3,), np.float32)
    paint[win] = colour * tone[win][..., None] + detail[..., None]
    height = -blur(inside, 1.0) * float(rng.uniform(0.5, 1.2))  # the walls are painted; this only shades the rim
    ctx.record(wall_px=wall_px, chipped_edge=bool((chip & ctx.at_image_edge).any()))
    return Maps(height=height, cover=inside, paint=paint, relief=1.0, grain=False)
