"""What every defect generator gets (:class:`Context`) and the shapes several of them share."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import cv2
import numpy as np

from studio.engines.classic.geometry import Frame, inside_distance, region_frame
from studio.engines.classic.noise import noise_patch
from studio.engines.classic.photometry import Photometry
from studio.engines.classic.shading import Maps, render
from studio.imaging import blur

#: Gaussian sigma (px) separating an image's smooth base from its detail (texture and noise).
BASE_SIGMA = 2.0


@dataclass
class Context:
    """What a generator gets: the crop (float32 0..255), its region (bool), a seeded rng, the prompt,
    and the photometry (noise, blur, light) measured around the region."""

    crop: np.ndarray
    region: np.ndarray
    rng: np.random.Generator
    prompt: str
    photo: Photometry
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.region.shape

    @cached_property
    def base(self) -> np.ndarray:
        """The crop's smooth part (its detail is ``crop - base``)."""
        return blur(self.crop, BASE_SIGMA)

    @cached_property
    def frame(self) -> Frame:
        return region_frame(self.region)

    @cached_property
    def depth(self) -> np.ndarray:
        """Distance (px) of every region pixel from the region's outside."""
        return inside_distance(self.region)

    def record(self, **values: Any) -> None:
        for key, value in values.items():
            if isinstance(value, (float, np.floating)):
                value = round(float(value), 4)
            elif isinstance(value, (np.integer,)):
                value = int(value)
            elif isinstance(value, np.ndarray):
                value = [round(float(v), 2) for v in value.ravel()]
            self.params[key] = value

    def noise(self, cell: float) -> np.ndarray:
        """Seeded fractal noise over the crop with features about ``cell`` px across (~[-1, 1])."""
        return noise_patch(self.shape, self.rng, cell)

    def render(self, maps: Maps) -> np.ndarray:
        """The crop with ``maps`` rendered in this image's light, noise and sharpness."""
        base = self.base if maps.source is None else blur(maps.source, BASE_SIGMA)
        return render(self.crop, base, maps, self.photo, self.rng)


def organic_blob(ctx: Context, fill: tuple[float, float], rough: float, cell: float) -> tuple[np.ndarray, np.ndarray]:
    """A seed-varied organic shape inside the region: (mask, field). The field is a seeded ellipse
    (centre, size, orientation drawn inside the region's frame) limited by the region's own shape and
    roughened by fractal noise; the mask keeps the top ``fill`` fraction of the region by that field
    (thresholded noise, not an ellipse). ``field`` rises from ~0 at the edge to ~1 in the middle."""
    rng, frame = ctx.rng, ctx.frame
    h, w = ctx.shape
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    t, s = frame.to_local(xx, yy)
    ct, cs = rng.uniform(-0.4, 0.4) * frame.a, rng.uniform(-0.4, 0.4) * frame.b
    a = frame.a * rng.uniform(0.45, 1.0)
    b = frame.b * rng.uniform(0.45, 1.0)
    turn = rng.uniform(-0.6, 0.6)
    c, sn = np.cos(turn), np.sin(turn)
    u, v = (t - ct) * c + (s - cs) * sn, -(t - ct) * sn + (s - cs) * c
    ellipse = 1.0 - np.sqrt((u / max(a, 1.0)) ** 2 + (v / max(b, 1.0)) ** 2)
    peak = float(ctx.depth.max()) or 1.0
    inside = np.minimum(ctx.depth / (0.5 * peak), 1.0)
    field_ = 0.6 * ellipse + 0.4 * (inside - 0.5) + rough * ctx.noise(cell)
    values = field_[ctx.region]
    fraction = float(rng.uniform(*fill))
    threshold = float(np.partition(values, int((1.0 - fraction) * (values.size - 1)))[int((1.0 - fraction) * (values.size - 1))])
    mask = (field_ >= threshold) & ctx.region
    lifted = np.clip((field_ - threshold) / max(float(values.max()) - threshold, 1e-3), 0.0, 1.0) * mask
    return mask, lifted.astype(np.float32)


def smooth_curve(ctx: Context, bend: float, n: int = 48) -> np.ndarray:
    """A smooth random curve across the region along its major axis: (n, 2) image points, offset,
    bent and tilted by the seed, its ends at a seeded fraction of the region's length."""
    rng, frame = ctx.rng, ctx.frame
    lo, hi = sorted(rng.uniform(-1.0, 1.0, 2))
    lo, hi = min(lo, -0.35), max(hi, 0.35)
    u = np.linspace(lo, hi, n)
    coeffs = rng.normal(0.0, bend, 3)
    offset = rng.uniform(-0.5, 0.5) * frame.b
    s = offset + frame.b * (coeffs[0] * (u**2 - 1.0 / 3.0) + coeffs[1] * u**3 + coeffs[2] * np.sin(np.pi * u))
    tilt = rng.normal(0.0, 0.08)
    s = s + tilt * u * frame.a
    return frame.to_image(u * frame.a * 0.95, s)


@dataclass
class Band:
    """The pixels within ``cutoff`` px of a set of polylines, flattened: where they are, how far from
    the nearest curve, which curve (index into the paths) and where along it (arc position 0..1)."""

    ys: np.ndarray
    xs: np.ndarray
    distance: np.ndarray
    path: np.ndarray
    position: np.ndarray

    def paint(self, shape: tuple[int, int], values: np.ndarray) -> np.ndarray:
        """A full (H, W) float32 map holding ``values`` on the band and 0 elsewhere."""
        out = np.zeros(shape, np.float32)
        out[self.ys, self.xs] = values
        return out


def curve_band(shape: tuple[int, int], paths: list[np.ndarray], cutoff: float) -> Band:
    """The :class:`Band` around ``paths``: one distance transform with pixel labels for all curves;
    every later computation touches only the band's pixels, not the whole crop."""
    canvas = np.full(shape, 255, np.uint8)
    owner = np.zeros(shape, np.int32)
    for k, points in enumerate(paths):
        pts = np.rint(points).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(canvas, [pts], False, 0, 1, cv2.LINE_8)
        cv2.polylines(owner, [pts], False, k, 1, cv2.LINE_8)
    zy, zx = np.nonzero(canvas == 0)
    if zy.size == 0:
        empty = np.zeros(0, np.int64)
        return Band(empty, empty, np.zeros(0, np.float32), empty, np.zeros(0, np.float32))
    distance, labels = cv2.distanceTransformWithLabels(canvas, cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL)
    # arc position of every drawn curve pixel: that of the nearest sampled point of its own curve
    curve = owner[zy, zx]
    position = np.zeros(zy.size, np.float32)
    for k, points in enumerate(paths):
        mine = curve == k
        seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
        arc = np.concatenate([[0.0], np.cumsum(seg)]) / max(float(seg.sum()), 1e-6)
        near = np.argmin((zx[mine, None] - points[None, :, 0]) ** 2 + (zy[mine, None] - points[None, :, 1]) ** 2, axis=1)
        position[mine] = arc[near]
    ys, xs = np.nonzero(distance < cutoff)
    nearest = labels[ys, xs] - 1
    return Band(ys, xs, distance[ys, xs], curve[nearest], position[nearest])
