"""What gives a synthetic defect away to an inspector, measured: a change that straddles two
surfaces, the sketch's outline showing, labelled pixels that did not visibly change (halos), a
label in pieces, and a hole's floor that repeats the host's own pattern. The engine's candidate
score and the realism benchmark both read these."""
from __future__ import annotations

import math

import cv2
import numpy as np

from studio.engines.classic.geometry import ring
from studio.engines.classic.measures import noise_ratio
from studio.engines.classic.photometry import fine_pass, largest_channel, luminance, robust_sigma, smooth_grey
from studio.imaging import erode, mask_bbox, slope_at

#: A pixel whose largest channel moved more than this (grey levels) is visibly changed.
VISIBLE = 12
#: A pixel of the sketch's inner band that moved more than this shows the outline.
OUTLINE_STEP = 8
#: Width (px) of the sketch's inner band watched for its outline.
OUTLINE_BAND = 2
#: Depth (px) inside a hole's or chip's label from which its floor begins: the outer px are the rim,
#: the wall's shading ramp and the photo's blur across the opening's edge, not the floor.
FLOOR_INSET = 4
#: A revealed floor passes for new material seen by the same camera when its fine detail is this share of the
#: surround's, and its detail correlates with the host's own pattern there by at most ``FLOOR_CORRELATION``.
FLOOR_DETAIL = (0.6, 1.5)
FLOOR_CORRELATION = 0.3
#: The noise inside a floor's label per the ring's around it a hole or chip must keep (within ±35%).
NOISE_MATCH = (0.65, 1.35)
#: Px around a label that :func:`~.measures.noise_ratio` reads (its 8-px ring, the high-pass blur's and the
#: bilateral filter's radii): cut to that, it gives the same figure as on the whole crop.
NOISE_REACH = 20


def change(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Largest-channel |after - before| (uint8, grey levels)."""
    delta = cv2.absdiff(after, before)
    return largest_channel(delta)


def one_surface_share(before: np.ndarray, after: np.ndarray, surfaces: np.ndarray,
                      moved: np.ndarray | None = None) -> float:
    """Share of the visibly changed pixels that lie on the surface unit holding most of them
    (``surfaces``: int unit index per pixel, 0 = no unit); 1.0 when nothing visibly changed.
    ``moved``: ``change(before, after)`` when already computed."""
    visible = (change(before, after) if moved is None else moved) > VISIBLE
    counts = np.bincount(surfaces[visible].ravel(), minlength=int(surfaces.max()) + 1)
    total = np.count_nonzero(visible)
    return float(counts.max() / total) if total else 1.0


def unchanged_share(before: np.ndarray, after: np.ndarray, label: np.ndarray,
                    moved: np.ndarray | None = None) -> float:
    """Share of the labelled pixels that did not visibly change (a label halo); ``moved``:
    ``change(before, after)`` when already computed."""
    lab = label > 0
    if not lab.any():
        return 0.0
    return float(((change(before, after) if moved is None else moved)[lab] <= VISIBLE).mean())


def outline_share(before: np.ndarray, after: np.ndarray, region: np.ndarray) -> float:
    """Share of the sketch's inner 2-px band that changed by more than 8 grey levels: above ~5% the
    sketch's outline shows."""
    band = region & ~erode(region, OUTLINE_BAND)
    return float((change(before, after)[band] > OUTLINE_STEP).mean()) if band.any() else 0.0


def label_parts(label: np.ndarray, share: float = 0.02) -> int:
    """Pieces of the label (8-connected parts of at least ``share`` of its area)."""
    count, _, stats, _ = cv2.connectedComponentsWithStats((label > 0).astype(np.uint8), connectivity=8)
    if count <= 1:
        return 0
    areas = stats[1:, cv2.CC_STAT_AREA]
    return int((areas >= share * areas.sum()).sum())


def floor_figures(before: np.ndarray, after: np.ndarray, label: np.ndarray,
                  region: np.ndarray) -> tuple[float, float] | None:
    """(fine detail of the revealed floor / that of the surround, both robust sigmas of
    :func:`fine_pass`; correlation of the floor's detail with the host's own detail there). The floor is the
    visibly changed label less its outer ``FLOOR_INSET`` px (rim and wall: a shading ramp whose fine pass
    is not the floor's detail, and where a host edge under the blurred rim would pass for the host's
    pattern); None when it is under 16 px."""
    floor = erode(label > 0, FLOOR_INSET) & (change(before, after) > VISIBLE)
    if floor.sum() < 16:
        return None
    old, new = fine_pass(_grey(before)), fine_pass(_grey(after))
    surround = ring(region, 2, 8)
    level = robust_sigma(old[surround]) if surround.any() else 1.0
    a, b = old[floor] - old[floor].mean(), new[floor] - new[floor].mean()
    corr = float((a * b).sum() / max(float(np.sqrt((a * a).sum() * (b * b).sum())), 1e-6))
    return robust_sigma(new[floor]) / max(level, 1e-3), corr


def floor_fits(before: np.ndarray, after: np.ndarray, label: np.ndarray, region: np.ndarray) -> bool:
    """Whether the floor a hole or chip reveals (if any, :func:`floor_figures`) is as grainy as the surround,
    does not repeat the host's pattern, and its grain reads as no noisier or cleaner than the surround's
    (:func:`~.measures.noise_ratio` within ``NOISE_MATCH``: on gravel, grain as strong as the stones' edges
    read as a noisy floor)."""
    figures = floor_figures(before, after, label, region)
    if figures is None:
        return True
    if not (FLOOR_DETAIL[0] <= figures[0] <= FLOOR_DETAIL[1] and figures[1] <= FLOOR_CORRELATION):
        return False
    # read on the label's box and the reach of the ring and the estimator's filters (the same figure)
    x0, y0, x1, y1 = mask_bbox(label, NOISE_REACH)
    win = (slice(y0, y1), slice(x0, x1))
    return NOISE_MATCH[0] <= noise_ratio(after[win], label[win]) <= NOISE_MATCH[1]


def _grey(image: np.ndarray) -> np.ndarray:
    return luminance(image.astype(np.float32)).astype(np.float32)


def busyness(grey: np.ndarray, smooth: np.ndarray | None = None) -> np.ndarray:
    """|detail| per pixel of a float32 luminance: its sigma-1 smoothing (``smooth``, when already made)
    minus that one's sigma-2 blur (what :func:`surround_texture` averages)."""
    smooth = smooth_grey(grey) if smooth is None else smooth
    return np.abs(smooth - cv2.GaussianBlur(smooth, (0, 0), 2.0))


def surround_texture(before: np.ndarray, label: np.ndarray, busy: np.ndarray | None = None) -> float:
    """Mean :func:`busyness` of ``before`` in the 7 px around the label: how busy the surface a defect
    must stand out from is (``busy``: that map, when already made)."""
    lab = label > 0
    around = ring(lab, 0, 7)
    if not around.any():
        return 0.0
    return float((busyness(_grey(before)) if busy is None else busy)[around].mean())


#: How many times the texture around it (:func:`surround_texture`) a defect's mean change must be to stand
#: out from the surface at a glance (on gravel or grass a change of 14 levels is lost in the stones' own).
STAND_OUT = 4.0


def stands_out(before: np.ndarray, after: np.ndarray, label: np.ndarray, busy: np.ndarray | None = None) -> bool:
    """Whether the change's mean (largest channel, over the label) is ``STAND_OUT`` times the surround's
    texture or more (``busy``: :func:`busyness` of ``before``, when already made); read on the label's
    box and the surround's 7 px."""
    if not label.any():
        return False
    busy = busyness(_grey(before)) if busy is None else busy
    x0, y0, x1, y1 = mask_bbox(label, 8)
    win = (slice(y0, y1), slice(x0, x1))
    lab = label[win] > 0
    texture = surround_texture(before[win], lab, busy[win])
    return float(change(before[win], after[win])[lab].mean()) >= STAND_OUT * texture


def edge_definition(before: np.ndarray, after: np.ndarray, label: np.ndarray,
                    moved: np.ndarray | None = None) -> float:
    """Mean gradient of the (sigma-1 smoothed) change on the label's edge per grey level of the mean
    change inside: ~0 for an airbrushed blob fading out, higher for a defect with a defined edge
    (``moved``: ``change(before, after)`` when already computed)."""
    lab = label > 0
    moved = change(before, after) if moved is None else moved
    delta = cv2.GaussianBlur(moved.astype(np.float32), (0, 0), 1.0)
    edge = lab & ~erode(lab, 1)
    if not edge.any():
        return 0.0
    return float(slope_at(delta, edge).mean()) / max(float(moved[lab].mean()), 1.0)


SCORE_METHOD = ("log((mean |Δ| over the label + 1) / (surround texture + 1)) + 0.5 log(seam ratio, >= 0.3) "
                "+ 0.5 edge definition - 1.5 straddle - 2 max(outline - 0.05, 0); weights set on a first round of "
                "232 candidates judged at 1:1, checked on the re-judged bench/judgements/classic_v1.jsonl and v2")


def inspection_score(before: np.ndarray, after: np.ndarray, label: np.ndarray, region: np.ndarray,
                     surfaces: np.ndarray, seam: float, band: tuple[np.ndarray, np.ndarray] | None = None,
                     busy: np.ndarray | None = None) -> dict:
    """How likely an inspector passes the candidate at a glance (higher is better): the change
    standing out from the surface's own texture, with a defined edge, on one surface, the sketch's
    outline not showing; ``seam`` is :func:`~studio.engines.classic.measures.seam_ratio`. The figures
    it read come with it; ``band`` is (ys, xs) of the sketch's inner band and ``busy`` the
    :func:`busyness` of ``before``, when already known."""
    lab = label > 0
    if band is None:
        outline = outline_share(before, after, region)
    else:
        outline = 0.0
        if band[0].size:
            at = band[0] * after.shape[1] + band[1]  # the band's pixels by flat index (quicker than by (ys, xs))
            seen = (np.take(image.reshape(-1, 3), at, axis=0) for image in (after, before))
            moved = largest_channel(cv2.absdiff(*seen))
            outline = float((moved > OUTLINE_STEP).mean())
    if lab.any():  # the rest is read on the window around the label (+ the surround's 8 px)
        x, y, w, h = cv2.boundingRect(lab.astype(np.uint8))
        win = (slice(max(0, y - 8), y + h + 8), slice(max(0, x - 8), x + w + 8))
        before, after, label, region, surfaces = before[win], after[win], label[win], region[win], surfaces[win]
        busy = None if busy is None else busy[win]
        lab = label > 0
    moved = change(before, after)
    strength = float(moved[lab].mean()) if lab.any() else 0.0
    texture = surround_texture(before, label, busy)
    definition = edge_definition(before, after, label, moved)
    straddle = 1.0 - one_surface_share(before, after, surfaces, moved)
    value = (math.log((strength + 1.0) / (texture + 1.0)) + 0.5 * math.log(max(seam, 0.3)) + 0.5 * definition
             - 1.5 * straddle - 2.0 * max(outline - 0.05, 0.0))
    return {"value": round(value, 4), "method": SCORE_METHOD, "visibility": round(strength, 3),
            "surround_texture": round(texture, 3), "seam_ratio": round(seam, 4),
            "edge_definition": round(definition, 4), "straddle": round(straddle, 4),
            "outline": round(outline, 4), "halo": round(unchanged_share(before, after, label, moved), 4),
            "parts": label_parts(label)}
