"""The evaluation report: a metrics JSON and one PNG (ROC / PRO curves, a metrics table, prediction overlays).

Drawn with PIL and OpenCV only, so the report needs no plotting library.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from studio.imaging import write_png
from studio.jsonfile import json_safe, write_json
from studio.visualize import heatmap_overlay, mask_outline, mask_overlay

METRIC_NAMES = ("pixel_auroc", "pixel_ap", "pixel_f1_max", "image_auroc", "aupro")
METRIC_LABELS = {"pixel_auroc": "P-AUROC", "pixel_ap": "P-AP", "pixel_f1_max": "P-F1max",
                 "image_auroc": "I-AUROC", "aupro": "AUPRO"}
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


@dataclass
class Example:
    """One test image with its ground truth and predicted defect probability, for the overlays."""

    title: str
    image: np.ndarray
    mask: np.ndarray
    probability: np.ndarray


@dataclass
class CategoryResult:
    """Everything measured for one (train, test) category pair."""

    name: str
    metrics: dict[str, float]
    counts: dict[str, int]
    epoch_losses: list[float]
    train_seconds: float
    test_seconds: float
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    examples: list[Example] = field(default_factory=list)


def mean_metrics(results: Sequence[CategoryResult]) -> dict[str, float]:
    """Mean of each metric over the categories where it is defined (NaN if none)."""
    out = {}
    for name in METRIC_NAMES:
        values = [r.metrics[name] for r in results if not math.isnan(r.metrics.get(name, math.nan))]
        out[name] = float(np.mean(values)) if values else math.nan
    return out


def report_dict(results: Sequence[CategoryResult], settings: dict[str, Any]) -> dict[str, Any]:
    """The JSON document: settings, per-category metrics, counts, losses, curves, and the mean."""
    return json_safe({
        "protocol": "train a U-Net on the --train folder (normal + synthesised anomalies with masks), "
                    "test on the --test folder's test/ split",
        "settings": settings,
        "mean": mean_metrics(results),
        "categories": {
            r.name: {
                "metrics": r.metrics,
                "counts": r.counts,
                "train": {"epoch_losses": r.epoch_losses, "seconds": r.train_seconds},
                "test_seconds": r.test_seconds,
                "curves": r.curves,
            }
            for r in results
        },
    }, array_limit=None, digits=7)


def write_report(out: Path, document: dict[str, Any], results: Sequence[CategoryResult],
                 max_examples: int = 8) -> None:
    """``metrics.json`` (the :func:`report_dict` document) and ``report.png`` in ``out``, each atomically."""
    write_json(out / "metrics.json", document)
    write_png(out / "report.png", render(results, max_examples))


def render(results: Sequence[CategoryResult], max_examples: int = 8) -> np.ndarray:
    """The report picture (RGB uint8): three curve panels, a metrics table, then example overlays."""
    panels = [
        _plot(results, "pixel_roc", "Pixel ROC", "FPR", "TPR", "pixel_auroc", 1.0, diagonal=True),
        _plot(results, "image_roc", "Image ROC (max of map)", "FPR", "TPR", "image_auroc", 1.0, diagonal=True),
        _plot(results, "pro", "PRO up to FPR 0.3", "FPR", "PRO", "aupro", 0.3),
    ]
    parts = [np.concatenate(panels, axis=1)]
    parts.append(_table(results, parts[0].shape[1]))
    examples = [e for r in results for e in r.examples][:max_examples]
    if examples:
        parts.append(_examples(examples, parts[0].shape[1]))
    return np.concatenate(parts, axis=0)


# --------------------------------------------------------------------------- drawing

def _font(size: int = 12) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow built without FreeType
        return ImageFont.load_default()


def _plot(results: Sequence[CategoryResult], key: str, title: str, xlabel: str, ylabel: str,
          metric: str, x_max: float, diagonal: bool = False, size: int = 320) -> np.ndarray:
    canvas = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(canvas)
    font = _font(12)
    left, top, right, bottom = 44, 26, size - 12, size - 38

    def to_px(x: float, y: float) -> tuple[float, float]:
        return left + (right - left) * x / x_max, bottom - (bottom - top) * y

    draw.text((left, 6), title, fill="black", font=_font(13))
    for i in range(5):  # grid and ticks
        fx, fy = i / 4 * x_max, i / 4
        gx, _ = to_px(fx, 0)
        _, gy = to_px(0, fy)
        draw.line([(gx, top), (gx, bottom)], fill=(225, 225, 225))
        draw.line([(left, gy), (right, gy)], fill=(225, 225, 225))
        draw.text((gx - 8, bottom + 4), f"{fx:.3g}", fill="black", font=font)
        draw.text((left - 28, gy - 7), f"{fy:.2g}", fill="black", font=font)
    draw.rectangle([left, top, right, bottom], outline="black")
    draw.text(((left + right) / 2 - 10, bottom + 20), xlabel, fill="black", font=font)
    draw.text((4, top - 18), ylabel, fill="black", font=font)
    if diagonal:
        draw.line([to_px(0, 0), to_px(x_max, 1)], fill=(170, 170, 170), width=1)
    legend_y = bottom - 16 * len(results) - 4
    for i, result in enumerate(results):
        colour = PALETTE[i % len(PALETTE)]
        curve = result.curves.get(key)
        if curve:
            xs, ys = np.asarray(curve["x"], float), np.asarray(curve["y"], float)
            keep = xs <= x_max + 1e-12
            if keep.sum() >= 1:
                pts = [to_px(float(x), float(y)) for x, y in zip(xs[keep], ys[keep])]
                if len(pts) == 1:
                    pts.append(pts[0])
                draw.line(pts, fill=colour, width=2)
        value = result.metrics.get(metric, math.nan)
        label = f"{result.name[:18]}  {METRIC_LABELS[metric]} {_fmt(value)}"
        y = legend_y + 16 * i
        draw.rectangle([right - 170, y + 4, right - 160, y + 12], fill=colour)
        draw.text((right - 156, y), label, fill="black", font=font)
    return np.asarray(canvas)


def _table(results: Sequence[CategoryResult], width: int) -> np.ndarray:
    rows = [("category", *[METRIC_LABELS[m] for m in METRIC_NAMES], "train/test imgs")]
    for r in results:
        counts = f"{r.counts.get('train_images', 0)}/{r.counts.get('test_images', 0)}"
        rows.append((r.name[:22], *[_fmt(r.metrics.get(m, math.nan)) for m in METRIC_NAMES], counts))
    if len(results) > 1:
        mean = mean_metrics(results)
        rows.append(("mean", *[_fmt(mean[m]) for m in METRIC_NAMES], ""))
    line_h = 18
    canvas = Image.new("RGB", (width, line_h * len(rows) + 14), "white")
    draw = ImageDraw.Draw(canvas)
    font = _font(12)
    col_x = [10] + [190 + 95 * i for i in range(len(METRIC_NAMES))] + [190 + 95 * len(METRIC_NAMES)]
    for j, row in enumerate(rows):
        for x, cell in zip(col_x, row):
            draw.text((x, 7 + line_h * j), str(cell), fill="black", font=font)
    draw.line([(8, 7 + line_h - 2), (width - 8, 7 + line_h - 2)], fill=(160, 160, 160))
    return np.asarray(canvas)


def _examples(examples: Sequence[Example], width: int) -> np.ndarray:
    """Two rows per example column: input with ground truth outlined, predicted probability heat map."""
    cols = len(examples)
    tile = max(64, min(160, (width - 10) // cols - 6))
    header = 18
    height = header + 2 * (tile + 6) + 18
    canvas = Image.new("RGB", (max(width, cols * (tile + 6) + 10), height), "white")
    draw = ImageDraw.Draw(canvas)
    font = _font(11)
    for i, ex in enumerate(examples):
        x = 8 + i * (tile + 6)
        draw.text((x, 3), ex.title[:24], fill="black", font=font)
        canvas.paste(Image.fromarray(_tile(mask_overlay(ex.image, ex.mask), tile)), (x, header))
        canvas.paste(Image.fromarray(_tile(_heat(ex.image, ex.probability, ex.mask), tile)), (x, header + tile + 6))
    draw.text((8, height - 16), "top: input, ground truth outlined    bottom: predicted defect probability "
                               "(blue 0 .. red 1), ground truth in white", fill="black", font=font)
    return np.asarray(canvas)[:, :width] if canvas.width > width else np.asarray(canvas)


def _tile(image: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_NEAREST if image.shape[0] < size
                      else cv2.INTER_AREA)


def _heat(image: np.ndarray, probability: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Absolute-scale JET heat map (0 blue, 1 red) over the image, ground-truth outline in white."""
    return mask_outline(heatmap_overlay(image, probability, alpha=0.6, normalise=False), mask, thickness=1)


def _fmt(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"

