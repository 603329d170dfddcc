"""Render a defect's maps with the image's own light, noise and sharpness.

A defect is a few maps over the crop: a height field (px; negative = into the surface), a
multiplicative albedo (RGB, 1 = unchanged), a gloss change, and a cover (0..1) where new material
(a hole's interior, a void, a foreign texture) replaces the surface. :func:`render` shades the height
field's normals with the light estimated from the image (Lambert plus a Blinn-Phong highlight,
relative to the flat surface, so untouched pixels stay exact), blurs the synthetic maps to the
image's sharpness, applies the albedo to the image's smooth base and (more gently) to its detail so
the surface's texture and noise show through, and gives covered pixels the image's noise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from studio.engines.classic.photometry import GUESSED_LIGHT, Photometry
from studio.imaging import blur

#: Elevation of the light above the surface plane (radians from the normal).
SLANT = math.radians(55.0)
#: Blinn-Phong exponent of the highlight.
SHININESS = 24
#: How much of an albedo change reaches the image's fine detail (its texture and noise).
DETAIL_SHARE = 0.25
#: Light confidence from which a height field is shaded at full relief (below, proportionally less).
SURE_LIGHT = 0.3
#: Least share of the relief kept however unsure the light is.
LEAST_RELIEF = 0.2


def light_weight(confidence: float, least: float = LEAST_RELIEF) -> float:
    """How much directional shading the measured light supports: confidence / 0.3, within
    ``least``..1; painted walls (a hole's, a chip's) take ``least=0``, and nothing at all below the
    estimator's own cut-off (the default light was a guess)."""
    if least == 0.0 and confidence < GUESSED_LIGHT:
        return 0.0
    return float(np.clip(confidence / SURE_LIGHT, least, 1.0))


@dataclass
class Maps:
    """The appearance of one defect over the crop; ``None`` means "no change of this kind"."""

    height: np.ndarray | None = None  # (H, W) px
    albedo: np.ndarray | None = None  # (H, W, 3) or (H, W, 1) multiplicative
    gloss: np.ndarray | None = None  # (H, W) highlight strength added (0..1)
    cover: np.ndarray | None = None  # (H, W) 0..1, fraction replaced by ``paint``
    paint: np.ndarray | None = None  # (H, W, 3) 0..255, the replacing material (before noise)
    relief: float = 1.0  # shading gain of the height field
    source: np.ndarray | None = None  # (H, W, 3) the surface to shade instead of the crop (a dent's pull)
    grain: bool = True  # give ``paint`` the image's noise (off when the paint carries the surface's own)
    carry_detail: bool = False  # add the surface's own detail (texture, noise) to ``paint``
    hollow: float = 0.0  # darkening at the deepest point where the light is unknown (a cavity's occlusion)


@dataclass(frozen=True)
class Rendered:
    """A crop with a defect rendered on one window of it: ``values`` (float32 RGB) over ``window``
    (y0, y1, x0, x1); beyond the window the crop is unchanged (no copy of the whole crop is made)."""

    values: np.ndarray
    window: tuple[int, int, int, int]

    def over(self, crop: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """The rendered crop on ``box`` (y0, y1, x0, x1), which holds the window: ``crop`` (float32)
        there with the values on the window."""
        y0, y1, x0, x1 = box
        out = crop[y0:y1, x0:x1].copy()
        wy0, wy1, wx0, wx1 = self.window
        out[wy0 - y0:wy1 - y0, wx0 - x0:wx1 - x0] = self.values
        return out


def shading(height: np.ndarray, light: tuple[float, float], relief: float = 1.0,
            gloss: float | np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """(diffuse factor, highlight) of ``height`` lit from ``light``: both relative to a flat surface
    (factor 1, highlight 0 where the height field is flat); no highlight (None) without ``gloss``."""
    gy, gx = np.gradient(height.astype(np.float32, copy=False))
    gx, gy = gx * relief, gy * relief
    inv = 1.0 / np.sqrt(gx * gx + gy * gy + 1.0)
    lx, ly = light[0] * math.sin(SLANT), light[1] * math.sin(SLANT)
    lz = math.cos(SLANT)
    diffuse = np.maximum((-gx * lx - gy * ly + lz) * inv, 0.0) / lz
    if gloss is None:
        return diffuse.astype(np.float32, copy=False), None
    hx, hy, hz = lx, ly, lz + 1.0
    hn = math.sqrt(hx * hx + hy * hy + hz * hz)
    hx, hy, hz = hx / hn, hy / hn, hz / hn
    n_dot_h = np.maximum((-gx * hx - gy * hy + hz) * inv, 0.0)
    highlight = power(n_dot_h, SHININESS) - hz**SHININESS
    highlight *= gloss
    return diffuse.astype(np.float32, copy=False), highlight.astype(np.float32, copy=False)


def power(values: np.ndarray, exponent: int) -> np.ndarray:
    """``values ** exponent`` (a whole exponent) by repeated squaring: a few multiplications instead of
    one ``pow`` per value (~10x quicker; within a few units in the last place of it)."""
    out, base, left = None, values, exponent
    while left:
        if left & 1:
            out = base.copy() if out is None else out * base
        left >>= 1
        if left:
            base = base * base
    return np.ones_like(values) if out is None else out


def render(crop: np.ndarray, base: np.ndarray, maps: Maps, photo: Photometry,
           rng: np.random.Generator) -> np.ndarray:
    """The crop (float32 RGB) with the defect's maps applied; ``base`` is the smooth part of the
    surface being shaded (``maps.source`` or the crop)."""
    surface = crop if maps.source is None else maps.source
    detail = surface - base
    soft = photo.blur
    factor = None
    if maps.albedo is not None:
        factor = blur(maps.albedo.astype(np.float32, copy=False), soft)
        if factor.ndim == 2:
            factor = factor[..., None]
    shade = highlight = None
    if maps.height is not None:
        height = blur(maps.height, soft)
        sure = light_weight(photo.light_confidence)
        diffuse, highlight = shading(height, photo.light, maps.relief * sure, maps.gloss)
        if maps.hollow:  # a recess is darker the deeper it goes (occlusion), the more so the less the light is known
            sink = np.clip(-height, 0.0, None)
            diffuse = diffuse * (1.0 - maps.hollow * (1.0 - 0.6 * sure) * sink / max(float(sink.max()), 1e-3))
        shade = diffuse[..., None]
    elif maps.gloss is not None:
        highlight = blur(maps.gloss.astype(np.float32, copy=False), soft)
    # (worked in place: the arrays below are this call's own)
    if factor is None and shade is None:
        out = surface.copy()
    else:
        total = shade if factor is None else factor if shade is None else factor * shade
        gentle = total - 1.0
        gentle *= DETAIL_SHARE
        gentle += 1.0
        out = base * total
        out += detail * gentle
    if highlight is not None:
        out += (255.0 - base) * np.clip(highlight, -1.0, 1.0)[..., None]  # added light: the noise stays
    if maps.cover is not None and maps.paint is not None:
        cover = np.clip(blur(maps.cover.astype(np.float32, copy=False), soft), 0.0, 1.0)
        paint = blur(maps.paint.astype(np.float32), soft)
        if shade is not None:
            paint *= shade
        if maps.carry_detail:
            paint += detail
        elif maps.grain:
            # covered pixels keep (1 - c) of the surface's noise: top it up to the full level
            lift = np.sqrt(np.clip(1.0 - (1.0 - cover) ** 2, 0.0, 1.0)) / np.maximum(cover, 1e-3)
            grain = rng.standard_normal(cover.shape, dtype=np.float32) * (photo.noise * lift)
            paint += grain[..., None]
        out *= (1.0 - cover)[..., None]
        paint *= cover[..., None]
        out += paint
    return soft_limit(crop, out)


def soft_limit(before: np.ndarray, after: np.ndarray, knee: float = 16.0) -> np.ndarray:
    """``after`` with its change from ``before`` compressed smoothly within ``knee`` of 0 and 255
    instead of clipped, so brightened or darkened pixels keep (compressed) texture and noise rather
    than turning flat; an unchanged pixel stays exactly as it was, even a saturated one."""
    near = (after > 255.0 - knee) | (after < knee)  # only a pixel ending within the knee can need it
    if not near.any():
        return after
    b, a = before[near], after[near]
    change = a - b
    room = np.where(change > 0, 255.0 - b, b)
    reach = np.minimum(knee, np.maximum(room, 0.0))
    linear = room - reach
    excess = np.abs(change) - linear
    k = np.maximum(reach, 1e-3)
    after[near] = np.where(excess > 0, b + np.sign(change) * (linear + k * np.tanh(np.maximum(excess, 0.0) / k)), a)
    return after
