"""Holes: one to three roughly round, slightly irregular openings (pitting) sized to the region's
narrow axis, with a dark interior that deepens away from the rim, a lit inner wall on the side away
from the light, a shadowed wall towards it and a thin raised rim (burr). In textiles the background
shows through and broken threads of the weave reach into the opening; a cut or tear in a textile is
a long, narrow, gaping slit along a seeded direction with frayed edges."""
from __future__ import annotations

import math

import cv2
import numpy as np

from studio.engines.classic.defects.base import Context, cavity, paint_window, patch_window, place, window
from studio.engines.classic.defects.substrate import FLOOR_DEPTH, beside_shading, substrate
from studio.engines.classic.geometry import inside_distance
from studio.engines.classic.keywords import CUT_WORDS, FABRIC_WORDS, mentions
from studio.engines.classic.photometry import luminance
from studio.engines.classic.shading import Maps, light_weight
from studio.imaging import blur, dilate, mask_coords

#: Darkening of a hole's floor by its occlusion where the light is unknown (:attr:`Maps.hollow`).
HOLLOW = 0.3


def openings(ctx: Context, rough: float, count: int) -> tuple[np.ndarray, float]:
    """``count`` roughly round openings inside the region, the first sized by the region's narrow
    axis, the others smaller: (mask, radius of the first)."""
    rng = ctx.rng
    deepest = float(ctx.depth.max())
    radius = max(1.5, min(deepest * 0.9, ctx.frame.b * float(rng.uniform(0.45, 0.85))))
    if count > 1:  # pitting: several smaller pits
        radius = max(1.5, 0.6 * radius)
    out = np.zeros(ctx.shape, bool)
    for k in range(count):
        r = radius if k == 0 else radius * float(rng.uniform(0.3, 0.6))
        room = ctx.depth >= 1.1 * r
        if k:  # a separate pit, clear of the others
            room &= inside_distance(~out) > r + 0.4 * radius + 2.0
            if not room.any():
                break
        ys, xs = mask_coords(room if room.any() else ctx.depth >= float(ctx.depth.max()))
        i = int(rng.integers(ys.size))
        box, field_ = patch_window(ctx, (float(xs[i]), float(ys[i])), (r, r * float(rng.uniform(0.8, 1.0))),
                                   float(rng.uniform(0, math.pi)), rough)
        if box is not None:
            out[box] |= field_ > 0
    out &= ctx.region
    return (out if out.sum() >= 3 else ctx.depth >= 0.5 * deepest), radius


def slit(ctx: Context) -> tuple[np.ndarray, float]:
    """A cut in a textile: a long, narrow opening gaping most in its middle, its edges frayed (roughened
    at the scale of the threads), along a seeded direction near the region's: (mask, half-width)."""
    rng, frame = ctx.rng, ctx.frame
    length = frame.a * float(rng.uniform(0.45, 0.8))
    gape = float(np.clip(frame.b * rng.uniform(0.12, 0.25), 1.5, 5.0))
    angle = frame.angle + float(rng.normal(0.0, 0.2))
    cx, cy = place(ctx, gape + 2.0)
    yy, xx = ctx.shared.grid()
    u = (xx - cx) * math.cos(angle) + (yy - cy) * math.sin(angle)
    v = -(xx - cx) * math.sin(angle) + (yy - cy) * math.cos(angle)
    along = np.clip(1.0 - (u / length) ** 2, 0.0, 1.0)
    v = v + 0.25 * gape * ctx.noise(max(2.0, 0.3 * length))  # the cut wanders a little
    edge = gape * np.sqrt(along) * (1.0 + 0.35 * ctx.noise(1.5))  # frayed at the threads' scale
    opening = (np.abs(v) < edge) & ctx.region & (ctx.depth > 2.0)
    return (opening if opening.sum() >= 3 else ctx.depth >= 0.5 * float(ctx.depth.max())), gape


def threads(ctx: Context, opening: np.ndarray, radius: float) -> np.ndarray:
    """Broken thread ends: thin strands from the rim into the opening along the weave's two directions."""
    canvas = np.zeros(ctx.shape, np.uint8)
    ring = opening & ~cv2.erode(opening.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    ys, xs = mask_coords(ring)
    if ys.size == 0:
        return canvas.astype(bool)
    cy, cx = float(ys.mean()), float(xs.mean())
    base = ctx.shared.weave_angle
    for _ in range(int(ctx.rng.integers(8, 20))):
        i = int(ctx.rng.integers(ys.size))
        inward = np.array([cx - xs[i], cy - ys[i]])
        # of the weave's four directions, the one pointing most into the opening
        options = [base + k * math.pi / 2 for k in range(4)]
        angle = max(options, key=lambda t: math.cos(t) * inward[0] + math.sin(t) * inward[1])
        angle += float(ctx.rng.normal(0.0, 0.12))
        length = radius * float(ctx.rng.uniform(0.2, 0.7))
        mid = np.array([xs[i], ys[i]]) + 0.5 * length * np.array([math.cos(angle), math.sin(angle)])
        mid += ctx.rng.normal(0.0, 0.8, 2)  # a slight curl
        end = np.array([xs[i], ys[i]]) + length * np.array([math.cos(angle + ctx.rng.normal(0, 0.25)),
                                                             math.sin(angle + ctx.rng.normal(0, 0.25))])
        pts = np.rint(np.stack([[xs[i], ys[i]], mid, end])).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(canvas, [pts], False, 1, int(ctx.rng.choice([1, 1, 2])), cv2.LINE_8)
    return canvas.astype(bool) & dilate(opening, 1) & ctx.region


def hole(ctx: Context) -> Maps:
    rng = ctx.rng
    fabric = mentions(ctx.prompt, FABRIC_WORDS)
    cut = fabric and mentions(ctx.prompt, CUT_WORDS)
    count = 1 if fabric else int(rng.choice([1, 1, 2, 3]))
    if cut:
        opening, radius = slit(ctx)
    else:
        opening, radius = openings(ctx, float(rng.uniform(0.25, 0.4) if fabric else rng.uniform(0.08, 0.18)), count)
    level = ctx.shared.colour
    rim = dilate(opening, max(1, round(0.15 * radius))) & ~opening & ctx.region
    depth = inside_distance(opening, open_border=True)
    wall, side = cavity(ctx, opening, max(1.0, 0.35 * radius), depth)
    if fabric:
        # what lies behind the cloth: a darker, differently coloured surface, out of focus
        behind = level * float(rng.uniform(0.15, 0.35)) * rng.uniform(0.8, 1.2, 3)
        shade = 1.0 - 0.5 * wall * np.clip(-side, 0.0, 1.0)  # the cloth's edge shadows the background
        paint = behind * ((1.0 + 0.2 * ctx.noise(6.0)) * shade)[..., None]
        strands = threads(ctx, opening, 2.5 * radius if cut else radius)
        tone = np.clip(1.45 + 0.3 * ctx.noise(2.0), 1.0, 1.9)  # loose threads catch more light than the weave
        paint = np.where(strands[..., None], level * tone[..., None], paint)
        cover = np.maximum(opening.astype(np.float32), strands.astype(np.float32))
        height = -0.6 * blur(opening.astype(np.float32), 1.0)
    else:
        # new material deepening from the rim into shadow; with a known light the wall facing it (far
        # side) is lit and the near side dark, with an unknown one the walls darken evenly with depth
        sure = light_weight(ctx.photo.light_confidence, least=0.0)
        core = float(rng.uniform(0.2, 0.4))
        win = paint_window(ctx, opening)  # (worked as far as the rendered, blurred opening reaches)
        lit = 0.15 + 0.75 * (sure * np.clip(side[win], 0.0, 1.0) ** 0.8 + (1.0 - sure) * 0.35)
        tone = (core + (1.0 - core) * wall[win] * lit).astype(np.float32)
        floor = depth > FLOOR_DEPTH
        colour, detail, _ = substrate(ctx, 1.0, floor, win)
        detail = beside_shading(ctx, detail, luminance(colour) * tone, floor[win])
        # the cavity's occlusion (``hollow``) darkens the floor, its detail with it: the detail is
        # raised by as much, so the floor shows the surround's grain as the camera sees it
        grain = 1.0 / (1.0 - HOLLOW * (1.0 - 0.6 * sure))
        paint = np.zeros(ctx.shape + (3,), np.float32)
        paint[win] = colour * tone[..., None] + (grain * detail)[..., None]
        # (the opening's relief reaches its rim and the blurs' 3 px beyond)
        near = window(rim | opening, 4)
        cover = np.clip(depth / 1.2, 0.0, 1.0) * opening
        burr = blur(rim[near].astype(np.float32), 0.6)  # a thin raised rim, barely catching the light
        height = np.zeros(ctx.shape, np.float32)
        height[near] = -blur(np.clip(depth[near], 0.0, 3.0), 0.8) + float(rng.uniform(0.1, 0.3)) * burr
        strands = None
    ctx.record(style="cut" if cut else "fabric" if fabric else "solid", holes=count, radius_px=radius,
               opening_px=int(opening.sum()), threads=int(strands.sum()) if strands is not None else 0)
    # the rim is shaded only as far as the light was measured (render scales relief by light_weight)
    walls = light_weight(ctx.photo.light_confidence, least=0.0) / light_weight(ctx.photo.light_confidence)
    return Maps(height=height.astype(np.float32), cover=cover.astype(np.float32), paint=paint,
                relief=walls, grain=fabric, hollow=HOLLOW)
