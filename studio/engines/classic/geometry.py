"""Region geometry: principal frame, resampled and jagged paths, distances, rings and holes."""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from studio.imaging import dilate



@dataclass
class Frame:
    """Principal frame of a region: centre, unit major axis, semi-axes (ellipse of equal moments)."""

    cx: float
    cy: float
    ux: float
    uy: float
    a: float
    b: float

    @property
    def angle(self) -> float:
        return math.atan2(self.uy, self.ux)

    def to_image(self, t: np.ndarray, s: np.ndarray) -> np.ndarray:
        return np.stack([self.cx + t * self.ux - s * self.uy, self.cy + t * self.uy + s * self.ux], axis=-1)


def region_frame(mask: np.ndarray) -> Frame:
    """The principal frame of a non-empty ``mask``, from its image moments."""
    m = cv2.moments(mask.astype(np.uint8), binaryImage=True)
    count = m["m00"]
    cx, cy = m["m10"] / count, m["m01"] / count
    if count < 3:
        return Frame(cx, cy, 1.0, 0.0, 1.0, 1.0)
    cov = np.array([[m["mu20"], m["mu11"]], [m["mu11"], m["mu02"]]]) / (count - 1.0)
    vals, vecs = np.linalg.eigh(cov)
    ux, uy = float(vecs[0, 1]), float(vecs[1, 1])
    return Frame(cx, cy, ux, uy, max(2.0 * math.sqrt(max(vals[1], 0.0)), 1.0),
                 max(2.0 * math.sqrt(max(vals[0], 0.0)), 1.0))


def resample(points: np.ndarray, n: int) -> np.ndarray:
    """``n`` points evenly spaced by arc length along the polyline ``points``."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    if arc[-1] <= 0:
        return np.repeat(points[:1], n, axis=0)
    target = np.linspace(0.0, arc[-1], n)
    return np.stack([np.interp(target, arc, points[:, 0]), np.interp(target, arc, points[:, 1])], axis=1)


def jagged_path(points: np.ndarray, rng: np.random.Generator, rough: float, levels: int) -> np.ndarray:
    """Midpoint displacement: ``levels`` times, every segment's midpoint moves sideways by a seeded
    normal fraction ``rough`` of the segment's length (a fracture's jagged path)."""
    for _ in range(levels):
        a, b = points[:-1], points[1:]
        mid = (a + b) / 2
        seg = b - a
        length = np.linalg.norm(seg, axis=1, keepdims=True) + 1e-6
        normal = np.stack([-seg[:, 1], seg[:, 0]], axis=1) / length
        mid = mid + normal * rng.normal(0.0, rough, (len(mid), 1)) * length
        out = np.empty((len(points) + len(mid), 2), np.float64)
        out[0::2], out[1::2] = points, mid
        points = out
    return points


def inside_distance(mask: np.ndarray, open_border: bool = False) -> np.ndarray:
    """Distance (px) from each region pixel to the region's outside; with ``open_border`` the mask is
    taken to continue beyond the array's border (a region cut by the image's edge). Worked on the
    mask's box (a surface unit's is a fraction of its crop)."""
    h, w = mask.shape
    out = np.zeros((h, w), np.float32)
    x, y, bw, bh = cv2.boundingRect(mask.astype(np.uint8))
    if not bw:
        return out
    padded = cv2.copyMakeBorder(mask[y:y + bh, x:x + bw].astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    if open_border:  # it goes on across the array's own edges (not the box's)
        if y == 0:
            padded[0] = padded[1]
        if y + bh == h:
            padded[-1] = padded[-2]
        if x == 0:
            padded[:, 0] = padded[:, 1]
        if x + bw == w:
            padded[:, -1] = padded[:, -2]
    out[y:y + bh, x:x + bw] = cv2.distanceTransform(padded, cv2.DIST_L2, 3)[1:-1, 1:-1]
    return out


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """The mask with every region enclosed by it filled."""
    padded = cv2.copyMakeBorder(mask.astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    flood = padded.copy()
    cv2.floodFill(flood, None, (0, 0), 1)
    return (padded | (1 - flood)).astype(bool)[1:-1, 1:-1]


def ring(mask: np.ndarray, inner: int, outer: int) -> np.ndarray:
    """The band of pixels between ``inner`` and ``outer`` px outside ``mask``."""
    return dilate(mask, outer) & ~dilate(mask, inner)
