"""Speed and seam quality of the weight-free ``classic`` engine on 512x512 images.

    .venv/bin/python -m bench.bench_classic [--repeats N] [--json PATH]

Prints the median seconds per 512x512 candidate (target: <= 0.15 s on a 2-core CPU) for every
procedural generator and for the reference path (given and estimated reference masks), then
the seam measure (mean gradient magnitude on the label mask's boundary band relative to the
same band in the untouched image) for the classic engine and for a naive cut-and-paste of the
same reference at the same place, over every shipped normal image x reference anomaly.
A larger harness imports :func:`seconds_per_candidate` and :func:`seam_figures`.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from studio import config
from studio.engines.classic import ClassicEngine, naive_candidate
from studio.engines.classic.keywords import EXAMPLE_PROMPTS, GENERATORS
from studio.engines.classic.measures import seam_ratio
from studio.imaging import load_image, load_mask
from studio.types import SynthesisRequest

SIZE = 512


def _manifest() -> dict[str, Any]:
    return json.loads((config.ASSETS_DIR / "manifest.json").read_text(encoding="utf-8"))


def _asset(path: str) -> np.ndarray:
    return load_image(config.ASSETS_DIR / path)


def large_region() -> np.ndarray:
    """An ellipse over ~37% of a 512x512 image: the slow end of what people sketch."""
    mask = np.zeros((SIZE, SIZE), np.uint8)
    cv2.ellipse(mask, (SIZE // 2, SIZE // 2), (200, 150), 20, 0, 360, 1, -1)
    return mask.astype(bool)


def workloads(large: bool = False) -> list[tuple[str, SynthesisRequest]]:
    """(label, request) pairs on 512x512 images: every generator, reference with and without mask;
    on each asset's sample region, or on :func:`large_region` when ``large``."""
    manifest = _manifest()
    normals = manifest["normal"]
    jobs: list[tuple[str, SynthesisRequest]] = []

    def region(entry: dict[str, Any]) -> np.ndarray:
        return large_region() if large else load_mask(config.ASSETS_DIR / entry["mask"], (SIZE, SIZE))

    for i, generator in enumerate(GENERATORS):
        entry = normals[i % len(normals)]
        image = cv2.resize(_asset(entry["image"]), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
        mask = region(entry)
        jobs.append((generator, SynthesisRequest.create(image, mask, EXAMPLE_PROMPTS[generator], num=4, seed=11)))
    for i, ref in enumerate(manifest["references"]):
        entry = normals[i % len(normals)]
        image = cv2.resize(_asset(entry["image"]), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
        mask = region(entry)
        reference = _asset(ref["image"])
        ref_mask = load_mask(config.ASSETS_DIR / ref["mask"], (reference.shape[1], reference.shape[0]))
        for estimated in (False, True):
            jobs.append((f"reference{'-estimated' if estimated else ''}", SynthesisRequest.create(
                image, mask, ref["text"], reference=reference, reference_mask=None if estimated else ref_mask,
                reference_text=ref["text"], num=4, seed=11)))
    return jobs


def seconds_per_candidate(repeats: int = 3, large: bool = False) -> dict[str, float]:
    """Median wall seconds per 512x512 candidate: ``overall`` and per generator/path."""
    engine = ClassicEngine()
    jobs = workloads(large)
    engine.generate(jobs[0][1])  # warm-up (imports, OpenCV's first calls)
    timings: dict[str, list[float]] = {}
    for _ in range(repeats):
        for name, request in jobs:
            start = time.perf_counter()
            engine.generate(request)
            timings.setdefault(name, []).append((time.perf_counter() - start) / request.num)
    result = {name: statistics.median(values) for name, values in timings.items()}
    result["overall"] = statistics.median([v for values in timings.values() for v in values])
    return result


def seam_figures(seed: int = 5) -> dict[str, Any]:
    """Seam measure, classic vs naive cut-and-paste, for every normal image x reference anomaly."""
    manifest = _manifest()
    engine = ClassicEngine()
    pairs = []
    for entry in manifest["normal"]:
        image = _asset(entry["image"])
        mask = load_mask(config.ASSETS_DIR / entry["mask"], (image.shape[1], image.shape[0]))
        for ref in manifest["references"]:
            reference = _asset(ref["image"])
            ref_mask = load_mask(config.ASSETS_DIR / ref["mask"], (reference.shape[1], reference.shape[0]))
            request = SynthesisRequest.create(image, mask, ref["text"], reference=reference,
                                              reference_mask=ref_mask, reference_text=ref["text"], seed=seed)
            candidate = engine.generate(request)[0]
            naive_image, naive_label = naive_candidate(request, seed)
            pairs.append({
                "image": entry["name"], "reference": ref["name"],
                "classic": round(seam_ratio(image, candidate.image, candidate.mask), 3),
                "naive": round(seam_ratio(image, naive_image, naive_label), 3),
            })
    classic = [p["classic"] for p in pairs]
    naive = [p["naive"] for p in pairs]
    return {
        "pairs": pairs,
        "classic_median": statistics.median(classic),
        "naive_median": statistics.median(naive),
        "classic_lower": sum(c < n for c, n in zip(classic, naive)),
        "count": len(pairs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    speed = seconds_per_candidate(args.repeats)
    for name, seconds in speed.items():
        if name != "overall":
            print(f"  {name:<20} {seconds * 1000:7.1f} ms/candidate")
    print(f"classic engine: median {speed['overall']:.4f} s per 512x512 candidate (target <= 0.15 s)")
    large = seconds_per_candidate(args.repeats, large=True)
    print(f"  on a region covering 37% of the image: median {large['overall']:.4f} s per candidate "
          f"(slowest path: {max((v, k) for k, v in large.items() if k != 'overall')[1]} "
          f"{max(v for k, v in large.items() if k != 'overall'):.4f} s)")
    seams = seam_figures()
    for pair in seams["pairs"]:
        print(f"  seam {pair['image']:<13} + {pair['reference']:<13} classic {pair['classic']:6.2f}  naive {pair['naive']:6.2f}")
    print(f"seam ratio (boundary-band gradient / untouched): classic median {seams['classic_median']:.2f}, "
          f"naive cut-and-paste median {seams['naive_median']:.2f}; classic lower in "
          f"{seams['classic_lower']}/{seams['count']} pairs")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"seconds_per_candidate": speed, "seconds_per_candidate_large_region": large,
                                               "seam": seams}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
