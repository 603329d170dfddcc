"""Export speed of the curated store: seconds to export N samples per format (and zipped).

    .venv/bin/python -m bench.bench_export [--samples 500] [--size 512] [--json PATH] [--keep DIR]

Fills a fresh store with ``--samples`` synthetic accepted samples (``--size`` px squares,
20 distinct normal images, one sample in five with a reference), reporting the accept rate
(durable adds per second), then times ``export_dataset`` for every format, as a folder and
as a zip. A larger harness imports :func:`fill_store` and :func:`time_exports`.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from studio.export import EXPORT_FORMATS, export_dataset
from studio.store import Store
from studio.types import Candidate

DEFECTS = ("scratch", "crack", "hole", "stain", "dent")


def _surface(seed: int, size: int) -> np.ndarray:
    """A brushed-metal-like normal image (compresses like a real photo would, roughly)."""
    rng = np.random.default_rng(seed)
    base = np.full((size, size, 3), 110 + 10 * (seed % 8), np.float32)
    base += rng.normal(0, 6, (size, 1, 1)).astype(np.float32)
    base += rng.normal(0, 3, (size, size, 1)).astype(np.float32)
    return np.clip(base, 0, 255).astype(np.uint8)


def fill_store(store: Store, samples: int, size: int) -> float:
    """Add ``samples`` synthetic samples; returns seconds taken."""
    normals = [_surface(k, size) for k in range(20)]
    reference = _surface(99, size // 2)
    ref_mask = np.zeros(reference.shape[:2], bool)
    ref_mask[size // 8: size // 4, size // 8: size // 3] = True
    yy, xx = np.mgrid[:size, :size]
    start = time.perf_counter()
    for i in range(samples):
        rng = np.random.default_rng(i)
        normal = normals[i % len(normals)]
        cx, cy, rx, ry = rng.uniform(0.3, 0.7) * size, rng.uniform(0.3, 0.7) * size, size / 12, size / 20
        mask = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
        image = normal.copy()
        image[mask] = (image[mask] * 0.5).astype(np.uint8)
        cand = Candidate(image=image, mask=np.where(mask, 255, 0).astype(np.uint8), seed=i, metadata={
            "engine": "bench", "weights": "none", "prompt": f"a {DEFECTS[i % 5]}", "seed": i,
            "params": {"steps": 50, "strength": 0.7, "guidance": 7.0}})
        extra = {"reference": reference, "reference_mask": ref_mask} if i % 5 == 0 else {}
        store.add(cand, normal_image=normal, category=("bottle", "cable")[i % 2], defect_type=DEFECTS[i % 5],
                  **extra)
    return time.perf_counter() - start


def time_exports(store: Store, out_dir: Path) -> dict[str, float]:
    """Seconds per export: every format as a folder and as a zip."""
    timings: dict[str, float] = {}
    for fmt in EXPORT_FORMATS:
        for make_zip in (False, True):
            label = f"{fmt}{'+zip' if make_zip else ''}"
            start = time.perf_counter()
            export_dataset(store, fmt, out_dir / label, make_zip=make_zip)
            timings[label] = time.perf_counter() - start
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--json", default=None, help="also write the figures here")
    parser.add_argument("--keep", default=None, help="work in this folder and keep it (default: a temp folder)")
    args = parser.parse_args(argv)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_export_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        with Store(work / "data") as store:
            fill_s = fill_store(store, args.samples, args.size)
            print(f"accepted {args.samples} samples of {args.size}x{args.size} in {fill_s:.1f} s "
                  f"({args.samples / fill_s:.1f} durable adds/s)")
            timings = time_exports(store, work / "exports")
        for label, seconds in timings.items():
            print(f"export {label:18s} {seconds:6.2f} s  ({args.samples / seconds:7.1f} samples/s)")
        result: dict[str, Any] = {
            "samples": args.samples, "size": args.size, "fill_seconds": fill_s, "export_seconds": timings,
            "machine": {"platform": platform.platform(), "python": sys.version.split()[0]},
        }
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
