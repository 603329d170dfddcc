"""A jagged dark fracture along the region with a few tapering branches."""
from __future__ import annotations

import math

import numpy as np

from studio.engines.classic.defects.base import Context, line_tone
from studio.engines.classic.geometry import centreline, draw_polyline, jagged_path, region_frame, resample


def crack(ctx: Context) -> np.ndarray:
    """A jagged dark fracture along the region with a few tapering branches."""
    rng, frame = ctx.rng, region_frame(ctx.region)
    points, half = centreline(ctx.region, frame)
    base = resample(points, 5)
    main = jagged_path(base, rng, float(rng.uniform(0.1, 0.18)), 5)
    hw = float(np.median(half))
    thickness = int(rng.choice([1, 2, 2])) if hw > 3 else 1
    # the opening narrows towards the crack's tips
    u = np.linspace(-1.0, 1.0, len(main))
    coverage = np.zeros(ctx.shape, np.float32)
    for width, level in ((thickness, 1.0), (thickness + 1, 0.35)):
        inner = np.abs(u) < (0.55 if width > thickness else 1.0)
        if inner.sum() >= 2:
            coverage = np.maximum(coverage, draw_polyline(ctx.shape, main[inner], width) * level)
    branches = int(rng.integers(1, 5))
    for _ in range(branches):
        i = int(rng.integers(len(main) // 5, max(len(main) * 4 // 5, len(main) // 5 + 1)))
        start = main[i]
        direction = main[min(i + 1, len(main) - 1)] - main[max(i - 1, 0)]
        ang = math.atan2(direction[1], direction[0]) + rng.choice([-1, 1]) * rng.uniform(0.35, 1.0)
        length = rng.uniform(0.3, 0.7) * frame.a
        end = start + length * np.array([math.cos(ang), math.sin(ang)])
        branch = jagged_path(np.stack([start, end]), rng, 0.15, 4)
        coverage = np.maximum(coverage, draw_polyline(ctx.shape, branch, 1) * 0.8)
    coverage *= ctx.region
    depth = float(rng.uniform(0.6, 0.85))
    out = line_tone(ctx, True, depth, coverage)
    ctx.record(thickness=thickness, branches=branches, depth=depth)
    return out
