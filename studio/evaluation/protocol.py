"""The paper's downstream protocol: train a U-Net on synthetic defects, measure it on held-out real ones.

For each category present in both folders: every image of the *training* folder (normal
images from ``train/good`` and ``test/good``, anomalies from ``test/<defect>`` with their
masks) trains a fresh :class:`~studio.evaluation.segmenter.UNet`; the *test* folder's
``test/`` split (good and defective images) is predicted image by image and folded into a
:class:`~studio.evaluation.metrics.MetricAccumulator`. Images are resized to a square
``resolution`` and metrics are computed at that resolution, on the U-Net's logits (the
F1-max threshold in the JSON is a logit; its sigmoid is the probability). The training
images of one category are held in memory at that resolution (256 px: 192 KB each); test
images are streamed in batches.
"""
from __future__ import annotations

import platform
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, ContextManager

import numpy as np
import torch

from studio import __version__
from studio.datasets import mvtec
from studio.errors import InputError
from studio.evaluation.metrics import AUPRO_FPR_LIMIT, MetricAccumulator, downsample_curve
from studio.evaluation.report import CategoryResult, Example, report_dict, write_report
from studio.evaluation.segmenter import LEVELS, TrainConfig, predict_logits, resolve_device, train_segmenter
from studio.types import ProgressFn

#: Makes a progress callback for a named stage (the command line passes its tqdm bar maker).
ProgressFactory = Callable[[str], ContextManager[ProgressFn]]

CURVE_POINTS = 200
EXAMPLES_PER_CATEGORY = 4


@dataclass
class EvalSettings(TrainConfig):
    """The segmenter's training settings plus the resolution images are scored at; device "auto" picks CUDA."""

    resolution: int = 256
    device: str = "auto"

    def validate(self) -> "EvalSettings":
        if not 1 <= self.epochs <= 10_000:
            raise InputError(f"--epochs must be between 1 and 10000, got {self.epochs}.")
        if not 1 <= self.batch_size <= 1024:
            raise InputError(f"--batch-size must be between 1 and 1024, got {self.batch_size}.")
        if not (np.isfinite(self.lr) and 0 < self.lr <= 1):
            raise InputError(f"--lr must be a positive number up to 1, got {self.lr}.")
        step = 2**LEVELS
        if not 32 <= self.resolution <= 1024 or self.resolution % step:
            raise InputError(f"--resolution must be a multiple of {step} between 32 and 1024, got {self.resolution}.")
        if not 0 <= self.seed < 2**32:
            raise InputError(f"--seed must be between 0 and {2**32 - 1}, got {self.seed}.")
        return self


def evaluate(train_dir: str | Path, test_dir: str | Path, out_dir: str | Path, settings: EvalSettings,
             progress: ProgressFactory | None = None) -> dict[str, Any]:
    """Run the protocol; writes ``metrics.json`` and ``report.png`` into ``out_dir`` and returns the JSON."""
    settings.validate()
    device = resolve_device(settings.device)
    pairs = mvtec.pair_categories(mvtec.find_categories(train_dir, "training folder"),
                                 mvtec.find_categories(test_dir, "test folder"))
    for train_cat, test_cat in pairs:  # fail fast, before any training
        _check_pair(train_cat, test_cat)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    started = time.perf_counter()
    results = [_evaluate_category(train_cat, test_cat, settings, device, progress) for train_cat, test_cat in pairs]
    document = report_dict(results, {
        **asdict(settings),
        "device": str(device),
        "train_dir": str(train_dir),
        "test_dir": str(test_dir),
        "aupro_fpr_limit": AUPRO_FPR_LIMIT,
        "scores": "U-Net logits (pixel_f1_threshold is a logit)",
        "seconds_total": round(time.perf_counter() - started, 2),
        "studio_version": __version__,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
    })
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_report(out, document, results)
    return document


def _check_pair(train_cat: mvtec.Category, test_cat: mvtec.Category) -> None:
    train = mvtec.training_samples(train_cat)
    if not any(s.anomalous for s in train):
        raise InputError(
            f"The training folder {str(train_cat.root)!r} has no anomalous images: put synthesised "
            "defects in test/<defect>/ with masks in ground_truth/<defect>/ (what the studio's MVTec export writes).")
    if not test_cat.test_anomalous:
        raise InputError(
            f"The test folder {str(test_cat.root)!r} has no anomalous images in test/<defect>/; "
            "localisation metrics need real defects with masks.")


def _evaluate_category(train_cat: mvtec.Category, test_cat: mvtec.Category, settings: EvalSettings,
                       device: torch.device, progress: ProgressFactory | None) -> CategoryResult:
    side = settings.resolution
    train_samples = mvtec.training_samples(train_cat)
    images, masks = mvtec.load_samples(train_samples, side)
    config = replace(settings, device=str(device))
    t0 = time.perf_counter()
    with _stage(progress, f"train {test_cat.name}") as report:
        trained = train_segmenter(images, masks, config, report)
    train_seconds = time.perf_counter() - t0
    del images, masks

    t0 = time.perf_counter()
    accumulator = MetricAccumulator()
    test = list(test_cat.test)
    chosen = _example_indices(test)
    examples: list[Example] = []
    with _stage(progress, f"test {test_cat.name}") as report:
        for start in range(0, len(test), settings.batch_size):
            batch = test[start:start + settings.batch_size]
            images, masks = mvtec.load_samples(batch, side)
            logits = predict_logits(trained.model, images, settings.batch_size)
            accumulator.update(logits, masks)
            for offset, sample in enumerate(batch):
                if start + offset in chosen:
                    prob = 1.0 / (1.0 + np.exp(-logits[offset].astype(np.float64)))
                    examples.append(Example(f"{sample.defect}/{sample.image.stem}", images[offset],
                                            masks[offset], prob.astype(np.float32)))
            if report is not None:
                report(min(start + len(batch), len(test)), len(test), "images")
    metrics = accumulator.compute()
    counts = {
        "train_images": len(train_samples),
        "train_anomalous": sum(s.anomalous for s in train_samples),
        "test_images": len(test),
        "test_anomalous": len(test_cat.test_anomalous),
        "test_good": len(test_cat.test_good),
        "test_regions": accumulator.num_regions,
    }
    return CategoryResult(
        name=test_cat.name, metrics=metrics, counts=counts, epoch_losses=trained.epoch_losses,
        train_seconds=round(train_seconds, 2), test_seconds=round(time.perf_counter() - t0, 2),
        curves=_curves(accumulator), examples=examples)


def _curves(accumulator: MetricAccumulator) -> dict[str, dict[str, list[float]]]:
    out = {}
    pixel = accumulator.pixel_curves()
    for key, (x, y) in (("pixel_roc", pixel.roc()), ("image_roc", accumulator.image_curves().roc()),
                        ("pro", pixel.pro_curve() if pixel.pro is not None else (np.zeros(0), np.zeros(0)))):
        if key == "pro" and x.size:  # cut at the integration limit, interpolated there
            inside = x <= AUPRO_FPR_LIMIT
            x = np.append(x[inside], AUPRO_FPR_LIMIT)
            y = np.append(y[inside], np.interp(AUPRO_FPR_LIMIT, *pixel.pro_curve()))
        if x.size and np.isfinite(x).all() and np.isfinite(y).all():
            x, y = downsample_curve(x, y, CURVE_POINTS)
            out[key] = {"x": x.tolist(), "y": y.tolist()}
    return out


def _example_indices(test: list[mvtec.Sample]) -> set[int]:
    """The first image of each defect type (up to the budget), then one good image."""
    chosen: list[int] = []
    seen: set[str] = set()
    for i, sample in enumerate(test):
        if sample.anomalous and sample.defect not in seen and len(chosen) < EXAMPLES_PER_CATEGORY - 1:
            seen.add(sample.defect)
            chosen.append(i)
    for i, sample in enumerate(test):  # more anomalies if there are few defect types
        if sample.anomalous and i not in chosen and len(chosen) < EXAMPLES_PER_CATEGORY - 1:
            chosen.append(i)
    goods = [i for i, s in enumerate(test) if not s.anomalous]
    if goods:
        chosen.append(goods[0])
    return set(chosen)


class _NullStage:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _stage(progress: ProgressFactory | None, name: str) -> ContextManager[ProgressFn | None]:
    return progress(name) if progress is not None else _NullStage()
