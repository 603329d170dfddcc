"""Seeded gradient (Perlin) and fractal noise for the classic engine and the asset renderer."""
from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np


def perlin(shape: tuple[int, int], periods: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """2-D gradient (Perlin) noise of ``shape`` with about ``periods`` cells per axis, values ~[-1, 1]."""
    h, w = shape
    py, px = max(1, int(round(periods[0]))), max(1, int(round(periods[1])))
    angles = rng.uniform(0.0, 2.0 * np.pi, (py + 1, px + 1))
    gx, gy = np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)
    y = np.linspace(0.0, py, h, endpoint=False, dtype=np.float32)
    x = np.linspace(0.0, px, w, endpoint=False, dtype=np.float32)
    yi, xi = y.astype(np.int64), x.astype(np.int64)
    yf, xf = (y - yi)[:, None], (x - xi)[None, :]
    Y0, X0 = yi[:, None], xi[None, :]

    def corner(dy: int, dx: int) -> np.ndarray:
        return gx[Y0 + dy, X0 + dx] * (xf - dx) + gy[Y0 + dy, X0 + dx] * (yf - dy)

    def fade(t: np.ndarray) -> np.ndarray:
        return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)

    u, v = fade(xf), fade(yf)
    top = corner(0, 0) * (1 - u) + corner(0, 1) * u
    bottom = corner(1, 0) * (1 - u) + corner(1, 1) * u
    return (np.sqrt(2.0) * (top * (1 - v) + bottom * v)).astype(np.float32)


def fractal(shape: tuple[int, int], periods: float, rng: np.random.Generator, octaves: int = 3) -> np.ndarray:
    """Sum of Perlin octaves (persistence 0.5), normalised to about [-1, 1]."""
    out = np.zeros(shape, np.float32)
    amp, total = 1.0, 0.0
    for k in range(octaves):
        p = periods * 2**k
        out += amp * perlin(shape, (p, p), rng)
        total += amp
        amp *= 0.5
    return out / total


#: Side (px) of the cached fractal noise base every candidate samples its noise from.
BASE_SIDE = 512
#: Pixels per noise cell of the base's coarsest octave.
BASE_CELL = 64.0


@lru_cache(maxsize=1)
def noise_base() -> np.ndarray:
    """A fixed 512x512 four-octave fractal noise, computed once per process and shared."""
    return fractal((BASE_SIDE, BASE_SIDE), BASE_SIDE / BASE_CELL, np.random.default_rng(0x0B15E), 4)


def noise_patch(shape: tuple[int, int], rng: np.random.Generator, cell: float) -> np.ndarray:
    """Fractal noise of ``shape`` with features about ``cell`` px across (values ~[-1, 1]): a seeded,
    rotated, scaled window into :func:`noise_base` (one affine resample, no noise synthesis)."""
    h, w = shape
    zoom = BASE_CELL / max(cell, 0.5)
    angle = float(rng.uniform(0.0, 2.0 * math.pi))
    c, s = math.cos(angle) * zoom, math.sin(angle) * zoom
    ox, oy = rng.uniform(0.0, BASE_SIDE, 2)
    # output (x, y) -> base (c*x - s*y + ox, s*x + c*y + oy)
    matrix = np.array([[c, -s, ox], [s, c, oy]], np.float32)
    return cv2.warpAffine(noise_base(), matrix, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT_101)
