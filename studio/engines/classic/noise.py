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


#: Side (px) of the cached fractal noise bases every candidate samples its noise from.
BASE_SIDE = 512
#: Feature sizes (px, the coarsest octave's cell) of the cached bases: 1.5, 3, 6, ... 96.
BASE_CELLS = tuple(1.5 * 2**k for k in range(7))


@lru_cache(maxsize=len(BASE_CELLS))
def noise_base(level: int) -> np.ndarray:
    """A fixed 512x512 fractal noise with features ``BASE_CELLS[level]`` px across, computed once per
    process and shared by every candidate."""
    cell = BASE_CELLS[level]
    octaves = max(1, min(4, int(math.log2(cell)) + 1))
    return fractal((BASE_SIDE, BASE_SIDE), BASE_SIDE / cell, np.random.default_rng([0x0B15E, level]), octaves)


@lru_cache(maxsize=len(BASE_CELLS))
def noise_base_transposed(level: int) -> np.ndarray:
    """:func:`noise_base` transposed, stored row by row: its quarter turns are cut from rows, not columns."""
    return np.ascontiguousarray(noise_base(level).T)


def warm_noise_bases() -> None:
    """Compute every cached noise base now (~0.7 s, once per process), so that no request pays for
    one it is the first to use (up to ~0.1 s each)."""
    for level in range(len(BASE_CELLS)):
        noise_base_transposed(level)  # computes noise_base(level) too


def noise_patch(shape: tuple[int, int], rng: np.random.Generator, cell: float,
                box: tuple[slice, slice] | None = None) -> np.ndarray:
    """Fractal noise of ``shape`` with features about ``cell`` px across (values ~[-1, 1]): a seeded
    window (offset and one of the 8 flips/rotations by 90 degrees) of the cached base nearest in
    feature size; no noise is synthesised per candidate. With ``box`` (explicit slices into ``shape``)
    only that part of it is returned (the same draws, so the same values there)."""
    h, w = shape
    level = min(max(round(math.log2(max(cell, 0.1) / BASE_CELLS[0])), 0), len(BASE_CELLS) - 1)
    turn = int(rng.integers(8))
    if turn % 2:  # a quarter turn: rot90(base, 1) is base.T upside down, rot90(base, 3) base.T mirrored
        view = noise_base_transposed(level)[::-1] if turn % 4 == 1 else noise_base_transposed(level)[:, ::-1]
    else:
        view = np.rot90(noise_base(level), turn % 4)
    if turn >= 4:
        view = view[:, ::-1]
    if h > BASE_SIDE or w > BASE_SIDE:  # larger than a base: stretch one (features grow with it)
        out = cv2.resize(np.ascontiguousarray(view), (w, h), interpolation=cv2.INTER_LINEAR)
        return out if box is None else out[box]
    y, x = int(rng.integers(BASE_SIDE - h + 1)), int(rng.integers(BASE_SIDE - w + 1))
    if box is not None:
        y, x, h, w = y + box[0].start, x + box[1].start, box[0].stop - box[0].start, box[1].stop - box[1].start
    return np.ascontiguousarray(view[y:y + h, x:x + w])
