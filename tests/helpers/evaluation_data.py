"""MVTec-layout folders for the evaluation tests and the evaluate smoke bench.

Training anomalies come from the classic engine; test anomalies are drawn differently (flat blobs
and lines) on held-out normals, as in the paper's protocol of synthetic training vs real test defects.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from studio.engines import get_engine
from studio.types import SynthesisRequest

SIDE = 64
CLASSIC_PROMPTS = ("scratch", "crack", "hole", "stain", "missing piece")


def surface(rng: np.random.Generator, side: int = SIDE) -> np.ndarray:
    """A brushed-metal-like normal image; every call a new one."""
    base = np.full((side, side, 3), 140.0) + rng.normal(0, 4, 3)
    base += rng.normal(0, 6, (side, 1, 1)) + rng.normal(0, 3, (side, side, 1))
    return np.clip(base, 0, 255).astype(np.uint8)


def save_image(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _region(rng: np.random.Generator, side: int) -> np.ndarray:
    mask = np.zeros((side, side), np.uint8)
    centre = tuple(int(v) for v in rng.integers(side // 4, 3 * side // 4, 2))
    axes = tuple(int(v) for v in rng.integers(side // 10, side // 4, 2))
    cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return mask.astype(bool)


def make_classic_train(category: Path, seed: int, normals: int = 12, anomalies: int = 30, side: int = SIDE) -> None:
    """train/good normals + classic-engine anomalies in test/<defect> with ground_truth masks."""
    rng = np.random.default_rng(seed)
    engine = get_engine("classic")
    for i in range(normals):
        save_image(category / "train" / "good" / f"{i:03d}.png", surface(rng, side))
    for i in range(anomalies):
        prompt = CLASSIC_PROMPTS[i % len(CLASSIC_PROMPTS)]
        request = SynthesisRequest.create(surface(rng, side), _region(rng, side), prompt, seed=int(rng.integers(1e6)))
        candidate = engine.generate(request)[0]
        defect = prompt.split()[0]
        save_image(category / "test" / defect / f"{i:03d}.png", candidate.image)
        save_image(category / "ground_truth" / defect / f"{i:03d}_mask.png", candidate.mask)


def draw_defect(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A flat dark blob or a bright line with a little noise: not how the classic engine draws."""
    side = image.shape[0]
    mask = np.zeros((side, side), np.uint8)
    if rng.random() < 0.5:
        centre = tuple(int(v) for v in rng.integers(side // 5, 4 * side // 5, 2))
        axes = tuple(int(v) for v in rng.integers(side // 16 + 1, side // 6, 2))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        level = rng.uniform(40, 80)
    else:
        p = [int(v) for v in rng.integers(side // 8, 7 * side // 8, 4)]
        cv2.line(mask, (p[0], p[1]), (p[2], p[3]), 1, max(1, side // 32))
        level = rng.uniform(200, 240)
    out = image.copy()
    sel = mask.astype(bool)
    out[sel] = np.clip(level + rng.normal(0, 5, (int(sel.sum()), 3)), 0, 255).astype(np.uint8)
    return out, sel


def make_drawn_test(category: Path, seed: int, good: int = 6, anomalies: int = 10, side: int = SIDE) -> None:
    """test/good and test/drawn (+ ground_truth/drawn) on normal images never seen in training."""
    rng = np.random.default_rng(seed)
    for i in range(good):
        save_image(category / "test" / "good" / f"{i:03d}.png", surface(rng, side))
    for i in range(anomalies):
        image, mask = draw_defect(surface(rng, side), rng)
        save_image(category / "test" / "drawn" / f"{i:03d}.png", image)
        save_image(category / "ground_truth" / "drawn" / f"{i:03d}_mask.png", mask.astype(np.uint8) * 255)
