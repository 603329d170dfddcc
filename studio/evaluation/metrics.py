"""Localisation metrics of the paper's downstream protocol: pixel AUROC, AP, F1-max, image AUROC, AUPRO.

All metrics are computed from one structure, a *score histogram*: for each distinct score
value, the weight of positive (defect) pixels, of negative pixels and of region overlap
(for AUPRO) having that score. Cumulating it from the highest score down gives every
threshold's TP / FP / PRO at once, exactly as scikit-learn's ``roc_curve`` and
``precision_recall_curve`` group tied scores.

Two ways to build it:

- exact (:func:`pixel_auroc`, :func:`pixel_ap`, ... on arrays): the distinct scores by
  ``np.unique``; O(N log N) time and O(N) memory. Agrees with scikit-learn to rounding.
- streaming (:class:`MetricAccumulator`, used by ``anomaly-studio evaluate``): each image
  is folded into fixed histograms of 65,536 bins as it is predicted, so memory is
  constant (about 2 MB) however many pixels there are. The bin of a score is its float16
  value (11 significant bits, no range to choose, ordering preserved), so only scores
  within ~0.05 % of each other become ties. Feed it *logits*, not sigmoid probabilities:
  near 1.0 float16 is coarse, on logits the resolution is uniform in relative terms.

AUPRO follows the MVTec AD reference: connected components (8-connectivity) of each
ground-truth mask are the regions; PRO(t) is the mean over all regions of the fraction of
the region's pixels scoring >= t; the PRO-vs-FPR curve (FPR over all defect-free pixels)
runs from (0, 0) to (1, 1), is integrated by the trapezoid rule up to FPR = 0.3 (linearly
interpolated there) and divided by 0.3. Weighting each defect pixel by 1 / (its region's
area * number of regions) turns PRO into a cumulative histogram like TP, which is what lets
the streaming path handle it in constant memory.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import cv2
import numpy as np

#: Standard AUPRO integration limit (FPR), as in MVTec AD and anomalib.
AUPRO_FPR_LIMIT = 0.3
_NUM_F16_KEYS = 1 << 16


@dataclass(frozen=True)
class Curves:
    """Cumulative counts at each distinct threshold, from the highest score down.

    ``tp[i]`` / ``fp[i]`` are the positive / negative weight scoring >= ``thresholds[i]``;
    ``pro[i]`` the mean per-region overlap at that threshold (None when not tracked).
    """

    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    pro: np.ndarray | None
    total_pos: float
    total_neg: float

    def roc(self) -> tuple[np.ndarray, np.ndarray]:
        """(fpr, tpr) starting at (0, 0); NaN-filled when one class is absent."""
        fpr = _ratio(np.concatenate([[0.0], self.fp]), self.total_neg)
        tpr = _ratio(np.concatenate([[0.0], self.tp]), self.total_pos)
        return fpr, tpr

    def precision_recall(self) -> tuple[np.ndarray, np.ndarray]:
        """(precision, recall) at each threshold, highest threshold first."""
        precision = self.tp / np.maximum(self.tp + self.fp, np.finfo(np.float64).tiny)
        return precision, _ratio(self.tp, self.total_pos)

    def pro_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """(fpr, pro) from (0, 0) to (1, 1), as in the MVTec AD reference code."""
        if self.pro is None:
            raise ValueError("These curves were built without region overlap (no masks given).")
        fpr = np.clip(_ratio(self.fp, self.total_neg), 0.0, 1.0)
        pro = np.clip(self.pro, 0.0, 1.0)
        return np.concatenate([[0.0], fpr, [1.0]]), np.concatenate([[0.0], pro, [1.0]])


# --------------------------------------------------------------------------- metrics on curves

def auroc_from_curves(curves: Curves) -> float:
    """Area under the ROC curve (trapezoid over distinct thresholds, like scikit-learn); NaN if undefined."""
    if curves.total_pos <= 0 or curves.total_neg <= 0:
        return math.nan
    fpr, tpr = curves.roc()
    return float(_trapezoid(fpr, tpr))


def ap_from_curves(curves: Curves) -> float:
    """Average precision: sum over thresholds of (R_k - R_{k-1}) * P_k (scikit-learn's definition)."""
    if curves.total_pos <= 0:
        return math.nan
    precision, recall = curves.precision_recall()
    return float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision))


def f1_max_from_curves(curves: Curves) -> tuple[float, float]:
    """(best F1 over all thresholds, the threshold reaching it); F1 = 2TP / (2TP + FP + FN)."""
    if curves.total_pos <= 0:
        return math.nan, math.nan
    f1 = 2.0 * curves.tp / (curves.total_pos + curves.tp + curves.fp)
    best = int(np.argmax(f1))
    return float(f1[best]), float(curves.thresholds[best])


def aupro_from_curves(curves: Curves, fpr_limit: float = AUPRO_FPR_LIMIT) -> float:
    """Area under the PRO curve up to ``fpr_limit``, divided by ``fpr_limit`` (so 1.0 is perfect)."""
    if not 0.0 < fpr_limit <= 1.0:
        raise ValueError(f"fpr_limit must lie in (0, 1], got {fpr_limit}")
    if curves.pro is None or curves.total_pos <= 0 or curves.total_neg <= 0:
        return math.nan
    fpr, pro = curves.pro_curve()
    return float(_trapezoid_upto(fpr, pro, fpr_limit) / fpr_limit)


# --------------------------------------------------------------------------- exact, on arrays

def pixel_curves(scores: np.ndarray, masks: np.ndarray, *, with_pro: bool = False) -> Curves:
    """Exact curves over every pixel of ``scores`` (N, H, W) or (H, W) against boolean ``masks``."""
    scores, masks = _check_maps(scores, masks)
    pro_weight = _pro_weights(masks) if with_pro else None
    values, inverse = np.unique(scores.ravel(), return_inverse=True)
    labels = masks.ravel()
    pos = np.bincount(inverse, weights=labels.astype(np.float64), minlength=values.size)
    neg = np.bincount(inverse, weights=(~labels).astype(np.float64), minlength=values.size)
    pro = None
    if pro_weight is not None:
        weights, regions = pro_weight
        pro = np.bincount(inverse, weights=weights.ravel(), minlength=values.size) / max(regions, 1)
    return curves_from_histogram(values, pos, neg, pro)


def label_curves(scores: Iterable[float], labels: Iterable[bool]) -> Curves:
    """Exact curves for one score per item (e.g. image-level scores)."""
    scores_a = np.asarray(list(scores) if not isinstance(scores, np.ndarray) else scores, dtype=np.float64)
    labels_a = np.asarray(list(labels) if not isinstance(labels, np.ndarray) else labels).astype(bool)
    return pixel_curves(scores_a.reshape(1, -1), labels_a.reshape(1, -1))


def pixel_auroc(scores: np.ndarray, masks: np.ndarray) -> float:
    """Pixel-level AUROC (exact)."""
    return auroc_from_curves(pixel_curves(scores, masks))


def pixel_ap(scores: np.ndarray, masks: np.ndarray) -> float:
    """Pixel-level average precision (exact)."""
    return ap_from_curves(pixel_curves(scores, masks))


def pixel_f1_max(scores: np.ndarray, masks: np.ndarray) -> float:
    """Pixel-level F1-max (exact)."""
    return f1_max_from_curves(pixel_curves(scores, masks))[0]


def image_auroc(scores: np.ndarray, masks: np.ndarray) -> float:
    """Image-level AUROC: an image's score is the max of its map; it is anomalous if its mask has any pixel."""
    scores, masks = _check_maps(scores, masks)
    flat_s = scores.reshape(scores.shape[0], -1).max(axis=1)
    flat_m = masks.reshape(masks.shape[0], -1).any(axis=1)
    return auroc_from_curves(label_curves(flat_s, flat_m))


def aupro(scores: np.ndarray, masks: np.ndarray, fpr_limit: float = AUPRO_FPR_LIMIT) -> float:
    """Area under the per-region-overlap curve up to ``fpr_limit``, normalised (exact)."""
    return aupro_from_curves(pixel_curves(scores, masks, with_pro=True), fpr_limit)


# --------------------------------------------------------------------------- streaming

class MetricAccumulator:
    """All five metrics over a stream of (score map, mask) pairs in constant memory.

    Pixel scores are binned by their float16 value (see the module docstring); image
    scores (max of each map) are kept exactly, one float per image.
    """

    def __init__(self) -> None:
        self._pos = np.zeros(_NUM_F16_KEYS, np.float64)
        self._neg = np.zeros(_NUM_F16_KEYS, np.float64)
        self._pro = np.zeros(_NUM_F16_KEYS, np.float64)
        self._regions = 0
        self.image_scores: list[float] = []
        self.image_labels: list[bool] = []

    def update(self, score_map: np.ndarray, mask: np.ndarray) -> None:
        """Add one image (H, W) score map and its boolean ground-truth mask (or a batch (N, H, W))."""
        scores, masks = _check_maps(score_map, mask)
        for s, m in zip(scores, masks):
            keys = _f16_keys(s)
            m_flat = m.ravel()
            self._pos += np.bincount(keys[m_flat], minlength=_NUM_F16_KEYS)
            self._neg += np.bincount(keys[~m_flat], minlength=_NUM_F16_KEYS)
            weights, regions = _pro_weights(m[None])
            if regions:
                self._pro += np.bincount(keys[m_flat], weights=weights.ravel()[m_flat], minlength=_NUM_F16_KEYS)
                self._regions += regions
            self.image_scores.append(float(s.max()))
            self.image_labels.append(bool(m_flat.any()))

    @property
    def num_images(self) -> int:
        return len(self.image_scores)

    @property
    def num_regions(self) -> int:
        return self._regions

    def pixel_curves(self) -> Curves:
        """Binned pixel curves (thresholds are float16 values)."""
        values = _f16_values()
        pro = self._pro / self._regions if self._regions else None
        return curves_from_histogram(values, self._pos, self._neg, pro)

    def image_curves(self) -> Curves:
        return label_curves(self.image_scores, self.image_labels)

    def compute(self, fpr_limit: float = AUPRO_FPR_LIMIT) -> dict[str, float]:
        """pixel_auroc, pixel_ap, pixel_f1_max (+ its threshold), image_auroc, aupro; NaN where undefined."""
        pixel = self.pixel_curves()
        f1, f1_threshold = f1_max_from_curves(pixel)
        return {
            "pixel_auroc": auroc_from_curves(pixel),
            "pixel_ap": ap_from_curves(pixel),
            "pixel_f1_max": f1,
            "pixel_f1_threshold": f1_threshold,
            "image_auroc": auroc_from_curves(self.image_curves()),
            "aupro": aupro_from_curves(pixel, fpr_limit),
        }


# --------------------------------------------------------------------------- building blocks

def curves_from_histogram(values: np.ndarray, pos: np.ndarray, neg: np.ndarray,
                          pro: np.ndarray | None = None) -> Curves:
    """Curves from per-value weights; ``values`` ascending, empty bins are dropped."""
    keep = (pos > 0) | (neg > 0)
    values, pos, neg = values[keep][::-1], pos[keep][::-1], neg[keep][::-1]
    pro_cum = None if pro is None else np.cumsum(pro[keep][::-1])
    return Curves(
        thresholds=values.astype(np.float64),
        tp=np.cumsum(pos),
        fp=np.cumsum(neg),
        pro=pro_cum,
        total_pos=float(pos.sum()),
        total_neg=float(neg.sum()),
    )


def downsample_curve(x: np.ndarray, y: np.ndarray, points: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """At most ``points`` points of a monotone curve, first and last kept (for plots and JSON)."""
    if x.size <= points:
        return x, y
    idx = np.unique(np.linspace(0, x.size - 1, points).round().astype(int))
    return x[idx], y[idx]


def _check_maps(scores: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores)
    masks = np.asarray(masks)
    if scores.ndim == 2:
        scores = scores[None]
    if masks.ndim == 2:
        masks = masks[None]
    if scores.ndim != 3 or scores.shape != masks.shape:
        raise ValueError(f"score maps {scores.shape} and masks {masks.shape} must both be (N, H, W) or (H, W)")
    if scores.dtype.kind not in "fiu":
        raise ValueError(f"scores must be numeric, got {scores.dtype}")
    if scores.dtype.kind == "f" and not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinite values")
    return scores, masks.astype(bool, copy=False)


def _pro_weights(masks: np.ndarray) -> tuple[np.ndarray, int]:
    """Per-pixel weight 1 / (area of its 8-connected region), and the number of regions."""
    weights = np.zeros(masks.shape, np.float64)
    regions = 0
    for i, mask in enumerate(masks):
        if not mask.any():
            continue
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        area = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
        inverse = np.where(np.arange(count) > 0, 1.0 / np.maximum(area, 1.0), 0.0)
        weights[i] = inverse[labels]
        regions += count - 1
    return weights, regions


def _f16_keys(scores: np.ndarray) -> np.ndarray:
    """Order-preserving uint16 key of each score's float16 value (-0 folded into +0)."""
    with np.errstate(over="ignore"):  # beyond +-65504 becomes +-inf, still in order
        half = (np.asarray(scores, np.float32) + np.float32(0.0)).astype(np.float16).ravel()
    bits = half.view(np.uint16).astype(np.int64)
    return np.where(bits & 0x8000, 0xFFFF - bits, bits | 0x8000)


def _f16_values() -> np.ndarray:
    """The float16 value of every key 0..65535 (ascending; NaN keys are never filled)."""
    keys = np.arange(_NUM_F16_KEYS, dtype=np.int64)
    bits = np.where(keys & 0x8000, keys & 0x7FFF, 0xFFFF - keys).astype(np.uint16)
    return bits.view(np.float16).astype(np.float64)


def _ratio(values: np.ndarray, total: float) -> np.ndarray:
    if total <= 0:
        return np.full(values.shape, np.nan)
    return values / total


def _trapezoid(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) * 0.5))


def _trapezoid_upto(x: np.ndarray, y: np.ndarray, x_max: float) -> float:
    """Trapezoid area for x <= x_max, the curve linearly interpolated at x_max (x non-decreasing)."""
    inside = x <= x_max
    area = _trapezoid(x[inside], y[inside])
    last = int(np.count_nonzero(inside)) - 1
    if x[last] < x_max and last + 1 < x.size:
        x0, x1, y0, y1 = x[last], x[last + 1], y[last], y[last + 1]
        y_max = y0 + (y1 - y0) * (x_max - x0) / (x1 - x0)
        area += 0.5 * (y0 + y_max) * (x_max - x0)
    return area
