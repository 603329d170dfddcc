"""Surface units: the parts of a sketched region that belong to one surface (a coin, a stone, a
brick, the mortar, the cloth), so that a defect can sit on one of them and end at its edges.

The crop's luminance, smoothed, is split in two tones (Otsu) when the region is clearly two-toned
and the tones meet at sharp edges (not a highlight's gradual falloff); each tone's connected parts inside the region are units, and crumbs smaller
than a share of the region join the unit they touch most. A surface with no such split (a fine
weave, grass, brushed metal) is one unit.
"""
from __future__ import annotations

import cv2
import numpy as np

from studio.engines.classic.photometry import smooth_grey
from studio.imaging import labels_in, median, slope_at

#: Between-class share of the variance from which the smoothed tones count as two surfaces.
TWO_TONE = 0.6
#: Least median gradient across the split (per grey level of the tone step) for it to be an edge.
SHARP_EDGE = 0.1
#: A unit smaller than this share of the region is a crumb and joins a neighbour.
MIN_SHARE = 0.025
#: A unit hosts a defect only from this share of the region.
HOST_SHARE = 0.1
#: The big units must cover at least this share of the region, else the split is texture, not surfaces.
MIN_COVER = 0.6
#: Region area (px) from which the units are found on a half-size copy of its tones (their smoothing
#: is then 2.5 px, so the copy keeps their shapes) and snapped back onto the full-size tones.
COARSE_AREA = 20_000


def surface_units(grey: np.ndarray, region: np.ndarray, grey_smooth: np.ndarray | None = None) -> np.ndarray:
    """int32 unit index per pixel of a crop whose float32 luminance is ``grey`` (1..n inside
    ``region``, 0 outside; ``grey_smooth``: ``grey`` by :func:`~studio.engines.classic.photometry.smooth_grey`,
    when already made); ``n`` is 1 when the surroundings show one surface."""
    units = region.astype(np.int32)
    area = int(region.sum())
    if area < 64:
        return units
    size = float(np.sqrt(area))
    smooth = cv2.GaussianBlur(grey, (0, 0), float(np.clip(0.015 * size, 1.0, 2.5)))
    values = smooth[region]
    spread = float(values.std())
    if spread < 6.0:
        return units
    lo, hi = float(values.min()), float(values.max())
    scaled = np.clip((smooth - lo) * (255.0 / max(hi - lo, 1e-3)), 0, 255).astype(np.uint8)
    threshold, _ = cv2.threshold(scaled[region][None, :], 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    bright = scaled > threshold
    inside = bright[region]
    share = float(inside.mean())
    if share in (0.0, 1.0):
        return units
    step = float(values[inside].mean()) - float(values[~inside].mean())
    if share * (1 - share) * step * step / (spread * spread) < TWO_TONE:
        return units
    # surfaces meet at an edge; a gradual change of tone (a highlight, shading) is one surface
    edge = (bright ^ cv2.erode(bright.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)) & region
    sharp = smooth_grey(grey) if grey_smooth is None else grey_smooth
    if not edge.any() or median(slope_at(sharp, edge)) < SHARP_EDGE * abs(step):
        return units
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    bright = cv2.morphologyEx(bright.astype(np.uint8), cv2.MORPH_OPEN, kernel).astype(bool)
    return coarse_units(bright, region) if area >= COARSE_AREA else tone_units(bright, region)


def tone_units(bright: np.ndarray, region: np.ndarray, neck: int = 2) -> np.ndarray:
    """The units of a two-toned region (``bright``: the brighter tone): each tone's connected parts
    (necks up to ``2 * neck`` px split), crumbs joined to the nearest big part; one unit when the big
    parts do not cover the region (a texture, not surfaces)."""
    area = int(region.sum())
    labels = np.zeros(region.shape, np.int32)
    count = 0
    for tone in (bright & region, ~bright & region):
        parts, n = split_necks(tone, neck)
        labels += parts + np.int32(count) * (parts > 0)  # the tones are disjoint
        count += n
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    big = np.flatnonzero(areas[1:] >= MIN_SHARE * area) + 1
    if big.size < 2 or areas[big].sum() < MIN_COVER * area:
        return region.astype(np.int32)
    # crumbs join the nearest big unit
    filled = nearest_labels(labels_in(labels, big, count + 1), labels, region)
    remap = np.zeros(count + 1, np.int32)
    remap[big] = np.arange(1, big.size + 1)
    return np.take(remap, filled)  # int32, as the remap table


def coarse_units(bright: np.ndarray, region: np.ndarray) -> np.ndarray:
    """:func:`tone_units` of a large region found on a half-size copy of its tones, then snapped back
    onto the full-size ones: a pixel whose unit is of the other tone takes a neighbouring unit of its
    own (within 2 px), and the outline's pixels the copy left out the nearest unit."""
    h, w = region.shape
    size = ((w + 1) // 2, (h + 1) // 2)

    def half(mask: np.ndarray) -> np.ndarray:
        return cv2.resize(mask.astype(np.uint8) * 255, size, interpolation=cv2.INTER_AREA) >= 128

    small_bright = half(bright)
    small = tone_units(small_bright, half(region), neck=1)
    count = int(small.max())
    if count <= 1:
        return region.astype(np.int32)
    bright_unit = np.bincount(small.ravel(), weights=small_bright.ravel(), minlength=count + 1) > \
        0.5 * np.bincount(small.ravel(), minlength=count + 1)
    units = np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)[:h, :w] * region
    square = cv2.getStructuringElement(cv2.MORPH_RECT, (5, 5))
    for tone in (True, False):
        own = (np.take(bright_unit, units) == tone) & (units > 0)
        wrong = region & (bright == tone) & ~own
        grown = cv2.dilate((units * own).astype(np.float32), square)
        np.copyto(units, grown.astype(np.int32), where=wrong & (grown > 0))
    missing = region & (units == 0)
    if missing.any():  # the outline's px, next to a unit
        grown = cv2.dilate(units.astype(np.float32), square)
        np.copyto(units, grown.astype(np.int32), where=missing)
        if (region & (units == 0)).any():
            units = nearest_labels(units > 0, units, region)
    return units


def split_necks(mask: np.ndarray, neck: int = 2) -> tuple[np.ndarray, int]:
    """Connected parts of ``mask`` with parts joined only by necks up to ``2 * neck`` px wide
    separated (stones touching at a point): the parts of the mask eroded by ``neck``, each grown
    back over the mask pixels nearest to it. Returns (labels, count)."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * neck + 1, 2 * neck + 1))
    cores = cv2.erode(mask.astype(np.uint8), kernel)
    n, parts = cv2.connectedComponents(cores, connectivity=4)
    if n <= 1:
        n, parts = cv2.connectedComponents(mask.astype(np.uint8), connectivity=4)
        return parts, n - 1
    return nearest_labels(cores.view(bool), parts, mask), n - 1


def nearest_labels(seeds: np.ndarray, labels: np.ndarray, where: np.ndarray) -> np.ndarray:
    """int32: for every ``where`` pixel the label of the ``seeds`` pixel nearest to it (0 elsewhere).
    The seeds lie within ``where`` (both bool), whose box is all that is worked on."""
    x, y, w, h = cv2.boundingRect(where.view(np.uint8))
    box = (slice(y, y + h), slice(x, x + w))
    inside = seeds[box]
    _, nearest = cv2.distanceTransformWithLabels(np.logical_not(inside).view(np.uint8), cv2.DIST_L2, 3,
                                                 labelType=cv2.DIST_LABEL_PIXEL)
    lookup = np.zeros(int(nearest.max()) + 1, np.int32)
    lookup[nearest[inside]] = labels[box][inside]
    out = np.zeros(where.shape, np.int32)
    out[box] = np.take(lookup, nearest) * where[box]
    return out


def pick_unit(areas: np.ndarray, rng: np.random.Generator) -> int:
    """A seeded unit index, more likely the larger the unit (a defect lands where the sketch mostly is);
    ``areas``: the pixel count of every unit label, 0 (outside the region) first."""
    areas = areas[1:].astype(np.float64)
    if areas.size <= 1:
        return 1
    weights = areas**1.5 * (areas >= HOST_SHARE * areas.sum())  # crumbs host nothing
    if not weights.any():
        weights = areas
    return int(rng.choice(areas.size, p=weights / weights.sum())) + 1
