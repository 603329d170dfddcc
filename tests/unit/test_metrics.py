"""Evaluation metrics: agreement with scikit-learn, hand-computed F1-max and AUPRO, the streaming path."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from studio.evaluation import metrics as M


def _random_maps(seed: int, n: int = 3, side: int = 24, rate: float = 0.2, ties: bool = False):
    rng = np.random.default_rng(seed)
    masks = rng.random((n, side, side)) < rate
    scores = rng.normal(size=(n, side, side)) + 1.5 * masks  # informative but imperfect
    if ties:
        scores = np.round(scores, 1)
    return scores.astype(np.float32), masks


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ties", [False, True])
def test_pixel_auroc_and_ap_match_sklearn(seed: int, ties: bool) -> None:
    scores, masks = _random_maps(seed, rate=[0.02, 0.2, 0.6][seed % 3], ties=ties)
    y, s = masks.ravel(), scores.ravel()
    assert M.pixel_auroc(scores, masks) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert M.pixel_ap(scores, masks) == pytest.approx(average_precision_score(y, s), abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_f1_max_matches_sklearn_precision_recall_curve(seed: int) -> None:
    scores, masks = _random_maps(seed, ties=seed % 2 == 1)
    precision, recall, _ = precision_recall_curve(masks.ravel(), scores.ravel())
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-300), 0)
    assert M.pixel_f1_max(scores, masks) == pytest.approx(f1.max(), abs=1e-12)


def test_image_auroc_uses_the_max_of_each_map() -> None:
    rng = np.random.default_rng(3)
    scores = rng.random((12, 8, 8))
    masks = np.zeros((12, 8, 8), bool)
    masks[::2, 2:4, 2:4] = True
    labels = masks.reshape(12, -1).any(1)
    expected = roc_auc_score(labels, scores.reshape(12, -1).max(1))
    assert M.image_auroc(scores, masks) == pytest.approx(expected, abs=1e-12)


def test_f1_max_hand_computed() -> None:
    # threshold 0.9: TP1 FP0 FN1 -> 2/3; 0.8: TP1 FP1 FN1 -> 1/2; 0.7: TP2 FP1 FN0 -> 4/5 (best);
    # 0.6: TP2 FP2 -> 2/3; 0.2: TP2 FP3 -> 4/7.
    curves = M.label_curves([0.9, 0.8, 0.7, 0.6, 0.2], [1, 0, 1, 0, 0])
    f1, threshold = M.f1_max_from_curves(curves)
    assert f1 == pytest.approx(0.8)
    assert threshold == pytest.approx(0.7)


# One row of 13 pixels: region A = pixels 0-1 (scores 0.9, 0.5), region B = pixel 3 (0.8), ten
# normal pixels. Going down the thresholds: 0.9 -> PRO (1/2 + 0)/2 = 0.25 at FPR 0; 0.8 -> 0.75 at
# FPR 0; normals 0.7, 0.6 -> FPR 0.2; 0.5 -> PRO 1.0; then FPR climbs to 1. The area up to FPR 0.3 is
# 0.75 * 0.2 + 1.0 * 0.1 = 0.25 -> AUPRO 0.25 / 0.3 = 5/6; up to 0.25 it is 0.15 + 0.05 = 0.2 -> 0.8.
HAND_SCORES = np.array([[0.9, 0.5, 0.7, 0.8, 0.6, 0.4, 0.3, 0.2, 0.1, 0.05, 0.01, 0.0, 0.02]])
HAND_MASK = np.array([[1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]], bool)


def test_aupro_hand_computed() -> None:
    assert M.aupro(HAND_SCORES, HAND_MASK) == pytest.approx(5 / 6)
    assert M.aupro(HAND_SCORES, HAND_MASK, fpr_limit=0.25) == pytest.approx(0.8)
    # the same pixels split over two images: regions are per image, FPR over all normal pixels
    two = [(HAND_SCORES[:, :3], HAND_MASK[:, :3]), (HAND_SCORES[:, 3:], HAND_MASK[:, 3:])]
    acc = M.MetricAccumulator()
    for s, m in two:
        acc.update(s.astype(np.float32), m)
    assert acc.num_regions == 2
    # 0.7 rounds to a different float16 than 0.6 etc., so the streaming result is exact here too
    assert acc.compute()["aupro"] == pytest.approx(5 / 6, abs=1e-9)


def test_aupro_regions_are_8_connected() -> None:
    # A diagonal pair is one region: half of it detected gives PRO 0.5, not (1 + 0) / 2 of two regions.
    mask = np.zeros((4, 4), bool)
    mask[1, 1] = mask[2, 2] = True
    scores = np.zeros((4, 4))
    scores[1, 1] = 1.0
    scores[2, 2] = -1.0  # below every normal pixel
    curves = M.pixel_curves(scores, mask, with_pro=True)
    fpr, pro = curves.pro_curve()
    assert pro[fpr == 0].max() == pytest.approx(0.5)


def _aupro_brute_force(scores: np.ndarray, masks: np.ndarray, limit: float) -> float:
    """Reference: loop over thresholds, regions from scipy, MVTec AD's interpolated trapezoid."""
    regions = []
    for s, m in zip(scores, masks):
        labels, count = ndimage.label(m, structure=np.ones((3, 3)))
        regions += [s[labels == k] for k in range(1, count + 1)]
    negatives = scores[~masks]
    fprs, pros = [0.0], [0.0]
    for t in np.unique(scores)[::-1]:
        fprs.append(float((negatives >= t).mean()))
        pros.append(float(np.mean([(r >= t).mean() for r in regions])))
    fprs.append(1.0)
    pros.append(1.0)
    x, y = np.array(fprs), np.array(pros)
    y_at = np.interp(limit, x, y)
    keep = x <= limit
    xs, ys = np.append(x[keep], limit), np.append(y[keep], y_at)
    return float(np.sum(np.diff(xs) * (ys[1:] + ys[:-1]) / 2) / limit)


@pytest.mark.parametrize("seed", range(3))
def test_aupro_matches_brute_force_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    masks = np.zeros((3, 16, 16), bool)
    for m in masks[:2]:  # two defective images with a few blobs each, one good image
        for _ in range(3):
            y, x = rng.integers(0, 13, 2)
            h, w = rng.integers(1, 4, 2)
            m[y:y + h, x:x + w] = True
    scores = np.round(rng.normal(size=masks.shape) + 1.2 * masks, 2)
    for limit in (0.3, 0.05, 1.0):
        assert M.aupro(scores, masks, limit) == pytest.approx(_aupro_brute_force(scores, masks, limit), abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_streaming_accumulator_agrees_with_exact_and_sklearn(seed: int) -> None:
    scores, masks = _random_maps(seed, n=5, side=32)
    masks[3:] = False  # two defect-free images, so image AUROC is defined
    acc = M.MetricAccumulator()
    for s, m in zip(scores, masks):
        acc.update(s, m)
    got = acc.compute()
    y, s = masks.ravel(), scores.ravel()
    # binning by float16 value: only scores within ~0.05 % of each other tie
    assert got["pixel_auroc"] == pytest.approx(roc_auc_score(y, s), abs=1e-3)
    assert got["pixel_ap"] == pytest.approx(average_precision_score(y, s), abs=2e-3)
    assert got["pixel_f1_max"] == pytest.approx(M.pixel_f1_max(scores, masks), abs=2e-3)
    assert got["aupro"] == pytest.approx(M.aupro(scores, masks), abs=2e-3)
    assert got["image_auroc"] == pytest.approx(M.image_auroc(scores, masks), abs=1e-12)
    # scores that are float16 values already: the streaming path is exact
    halves = scores.astype(np.float16).astype(np.float32)
    acc = M.MetricAccumulator()
    acc.update(halves, masks)
    exact = acc.compute()
    assert exact["pixel_auroc"] == pytest.approx(roc_auc_score(y, halves.ravel()), abs=1e-12)
    assert exact["pixel_ap"] == pytest.approx(average_precision_score(y, halves.ravel()), abs=1e-12)
    assert exact["aupro"] == pytest.approx(M.aupro(halves, masks), abs=1e-12)


def test_accumulator_memory_is_constant() -> None:
    acc = M.MetricAccumulator()
    rng = np.random.default_rng(0)
    sizes = []
    for _ in range(3):
        acc.update(rng.normal(size=(4, 128, 128)).astype(np.float32), rng.random((4, 128, 128)) < 0.05)
        sizes.append(sum(a.nbytes for a in (acc._pos, acc._neg, acc._pro)))
    assert sizes[0] == sizes[-1] <= 2 * 1024 * 1024
    assert acc.num_images == 12


def test_float16_keys_preserve_order_and_fold_zero() -> None:
    values = np.array([-7e4, -3.0, -1e-6, -0.0, 0.0, 1e-7, 0.5, 0.50001, 1.0, 7e4], np.float32)
    keys = M._f16_keys(values)
    assert np.all(np.diff(keys) >= 0)
    assert keys[3] == keys[4]
    table = M._f16_values()
    np.testing.assert_allclose(table[keys[1:-1]], values[1:-1].astype(np.float16).astype(np.float64))
    finite = table[np.isfinite(table)]
    assert np.all(np.diff(finite) >= 0)


def test_undefined_metrics_are_nan_and_bad_input_raises() -> None:
    scores = np.random.default_rng(0).random((2, 8, 8))
    none = np.zeros((2, 8, 8), bool)
    assert math.isnan(M.pixel_auroc(scores, none))
    assert math.isnan(M.pixel_ap(scores, none))
    assert math.isnan(M.aupro(scores, none))
    acc = M.MetricAccumulator()
    acc.update(scores, none)
    assert all(math.isnan(v) for k, v in acc.compute().items())
    with pytest.raises(ValueError):
        M.pixel_auroc(np.full((4, 4), np.nan), np.ones((4, 4), bool))
    with pytest.raises(ValueError):
        M.pixel_auroc(np.zeros((4, 4)), np.ones((4, 5), bool))
    with pytest.raises(ValueError):
        M.aupro(scores, none | True, fpr_limit=0)
