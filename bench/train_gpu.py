"""Speed and memory of SGA training: ``anomaly-studio train``'s loop on the full-size architecture.

    python -m bench.train_gpu [--weights sd15-random] [--steps 200] [--batch 8] [--resolution 512]
                              [--mixed-precision fp16] [--grad-accum 1] [--images 16] [--no-cache]
                              [--gradient-checkpointing] [--json PATH]

Writes a synthetic MVTec-layout set (bright scratches and dark holes on a grey surface, two
categories) to a temporary folder, trains the adapter on it with the library's ``train`` (the
code behind the CLI), and prints the load time, optimiser steps per second and images per second
after ``--warmup`` steps, and the peak GPU memory (allocated and reserved). Each reference is
encoded (CSM + ASEA) once with the default ``--cache-features`` (as the authors cache BLIP-2
features); ``--no-cache`` pays ASEA for every sample. Imports no UI code (no gradio needed).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def write_synthetic_anomalies(root: Path, layout: dict[str, dict[str, int]], size: int = 64, *,
                              masks: bool = True, seed: int = 5) -> Path:
    """An MVTec-layout folder: ``layout`` = {category: {defect: count}}; ``hole`` draws dark discs, others bright lines."""
    rng = np.random.default_rng(seed)
    unit = size / 64
    for category, defects in layout.items():
        (root / category / "train" / "good").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / category / "train" / "good" / "000.png"),
                    np.clip(rng.normal(140, 10, (size, size, 3)), 0, 255).astype(np.uint8))
        for defect, count in defects.items():
            images, truth = root / category / "test" / defect, root / category / "ground_truth" / defect
            images.mkdir(parents=True)
            truth.mkdir(parents=True)
            for i in range(count):
                image = np.clip(rng.normal(140, 10, (size, size, 3)), 0, 255).astype(np.uint8)
                mask = np.zeros((size, size), np.uint8)
                x, y = (int(v * unit) for v in rng.integers(8, 40, 2))
                if defect == "hole":
                    cv2.circle(mask, (x + int(8 * unit), y + int(8 * unit)), int(6 * unit), 255, -1)
                else:
                    cv2.line(mask, (x, y), (x + int(16 * unit), y + int(12 * unit)), 255, max(1, int(3 * unit)))
                image[mask > 0] = 30 if defect == "hole" else 220
                cv2.imwrite(str(images / f"{i:03d}.png"), image)
                if masks:
                    cv2.imwrite(str(truth / f"{i:03d}_mask.png"), mask)
    return root


def measure(weights: str, steps: int, batch: int, resolution: int, precision: str, grad_accum: int,
            images: int, cache: bool, warmup: int, checkpointing: bool = False) -> dict:
    """Train ``steps`` steps on a synthetic set; timings exclude loading and the first ``warmup`` steps."""
    import torch

    from studio.engines.anomalycontrol.training.train import TrainSettings, train
    from studio.engines.anomalycontrol.models import load_bundle

    stamps: dict[int, float] = {}

    def progress(done: int, total: int, what: str) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        stamps[done] = time.perf_counter()

    with tempfile.TemporaryDirectory() as tmp:
        per_type = max(1, images // 4)
        data = write_synthetic_anomalies(Path(tmp) / "data", {"widget": {"scratch": per_type, "hole": per_type},
                                                              "plate": {"scratch": per_type, "hole": per_type}},
                                         size=resolution)
        dtype = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        start = time.perf_counter()
        bundle = load_bundle(weights, dtype=dtype)
        load_s = time.perf_counter() - start
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        settings = TrainSettings(steps=steps, batch_size=batch, grad_accum=grad_accum, resolution=resolution,
                                 mixed_precision=precision, cache_features=cache, checkpoint_every=0, workers=2,
                                 lr_warmup=0, gradient_checkpointing=checkpointing)
        begin = time.perf_counter()
        result = train(data, weights, Path(tmp) / "adapter.safetensors", settings, progress=progress, bundle=bundle)
        total_s = time.perf_counter() - begin
    timed = steps - warmup
    steady_s = stamps[steps] - stamps[warmup] if timed > 0 else float("nan")
    gib = 2 ** 30
    return {
        "weights": weights, "device": str(bundle.device),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "steps": steps, "batch_size": batch, "grad_accum": grad_accum, "resolution": resolution,
        "mixed_precision": precision, "cache_features": cache, "gradient_checkpointing": checkpointing,
        "images": 4 * per_type,
        "load_s": round(load_s, 2), "train_s": round(total_s, 2),
        "first_step_s": round(stamps[1] - begin, 2),
        "steps_per_s": round(timed / steady_s, 3) if timed > 0 else None,
        "hours_per_10k_steps": round(10_000 * steady_s / timed / 3600, 2) if timed > 0 else None,
        "images_per_s": round(timed * batch * grad_accum / steady_s, 2) if timed > 0 else None,
        "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / gib, 2) if torch.cuda.is_available() else None,
        "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / gib, 2) if torch.cuda.is_available() else None,
        "loss_first10": round(float(np.mean(result.losses[:10])), 4),
        "loss_last10": round(float(np.mean(result.losses[-10:])), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="sd15-random")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--mixed-precision", default="fp16", choices=("no", "fp16", "bf16"))
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--images", type=int, default=16, help="anomaly images in the synthetic set")
    parser.add_argument("--warmup", type=int, default=10, help="steps left out of the timing")
    parser.add_argument("--no-cache", action="store_true", help="run CSM + ASEA for every sample")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="recompute the UNet's activations")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    figures = measure(args.weights, args.steps, args.batch, args.resolution, args.mixed_precision,
                      args.grad_accum, args.images, not args.no_cache, min(args.warmup, args.steps - 1),
                      args.gradient_checkpointing)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
