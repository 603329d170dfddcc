"""Holes: an organic opening with a dark interior that deepens away from the rim, a lit inner wall on
the side away from the light, a raised rim; in textiles the background shows through and frayed
thread ends reach into the opening."""
from __future__ import annotations

import cv2
import numpy as np

from studio.engines.classic.defects.base import Context, organic_blob
from studio.engines.classic.geometry import inside_distance
from studio.engines.classic.keywords import FABRIC_WORDS, mentions
from studio.engines.classic.shading import Maps
from studio.imaging import blur, dilate


def largest(mask: np.ndarray) -> np.ndarray:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 2:
        return mask
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def threads(ctx: Context, opening: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Frayed thread ends: short thin strands from the rim towards the middle of the opening."""
    canvas = np.zeros(ctx.shape, np.uint8)
    ys, xs = np.nonzero(opening & (depth <= 1.0))
    if ys.size == 0:
        return canvas.astype(bool)
    ty, tx = np.unravel_index(int(np.argmax(depth)), depth.shape)
    reach = float(depth.max())
    for _ in range(int(ctx.rng.integers(6, 16))):
        i = int(ctx.rng.integers(ys.size))
        direction = np.array([tx - xs[i], ty - ys[i]], np.float64)
        direction /= max(float(np.linalg.norm(direction)), 1e-6)
        bend = ctx.rng.normal(0.0, 0.35)
        c, s = np.cos(bend), np.sin(bend)
        direction = np.array([c * direction[0] - s * direction[1], s * direction[0] + c * direction[1]])
        end = np.array([xs[i], ys[i]]) + direction * reach * ctx.rng.uniform(0.25, 0.8)
        cv2.line(canvas, (int(xs[i]), int(ys[i])), (int(end[0]), int(end[1])), 1, 1, cv2.LINE_8)
    return canvas.astype(bool) & opening


def hole(ctx: Context) -> Maps:
    rng = ctx.rng
    size = float(np.sqrt(ctx.region.sum()))
    blob, _ = organic_blob(ctx, (0.3, 0.7), float(rng.uniform(0.15, 0.3)), max(4.0, size / 2))
    opening = largest(blob)
    depth = inside_distance(opening)
    peak = max(float(depth.max()), 1.0)
    r = np.clip(depth / peak, 0.0, 1.0)
    level = ctx.base[opening].mean(axis=0) if opening.any() else ctx.base.reshape(-1, 3).mean(axis=0)
    fabric = mentions(ctx.prompt, FABRIC_WORDS)
    rim = dilate(opening, 2) & ~opening & ctx.region
    if fabric:
        # what lies behind the cloth: a darker, differently coloured surface with its own grain
        behind = level * rng.uniform(0.2, 0.45) * rng.uniform(0.8, 1.2, 3)
        paint = np.broadcast_to(behind, ctx.crop.shape) * (1.0 + 0.15 * ctx.noise(3.0))[..., None]
        strands = threads(ctx, opening, depth)
        cover = (opening & ~strands).astype(np.float32)
        height = -0.6 * blur(opening.astype(np.float32), 1.0) + 0.8 * blur(strands.astype(np.float32), 0.7)
    else:
        # the interior darkens with depth; the wall near the rim stays lit by the shading below
        core = float(rng.uniform(0.06, 0.2))
        tone = core + (1.0 - core) * (1.0 - np.sqrt(r)) ** 2 * 0.6
        paint = ctx.base * tone[..., None]
        cover = np.clip(r * 3.0, 0.0, 1.0) * opening
        height = -np.clip(peak * 0.6 * np.sqrt(r), 0.0, 6.0) * opening + 0.8 * blur(rim.astype(np.float32), 1.0)
        strands = None
    ctx.record(style="fabric" if fabric else "solid", opening_px=int(opening.sum()),
               threads=int(strands.sum()) if strands is not None else 0)
    return Maps(height=height.astype(np.float32), cover=cover, paint=paint, relief=1.0)
