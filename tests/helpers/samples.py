"""Deterministic samples, stores and batch specs that several test modules build on."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from studio.store import Store
from studio.types import Candidate

PROMPTS = [("a scratch", "scratch"), ("a crack", "crack"), ("a hole", "hole"), ("an oil stain", "stain")]


def make_sample(i: int, size: int = 32, normal_value: int = 100) -> tuple[Candidate, np.ndarray]:
    """A deterministic candidate #i and its normal image."""
    rng = np.random.default_rng(i)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    mask = np.zeros((size, size), np.uint8)
    mask[2 + i % 5: 12 + i % 7, 3: 9 + i % 11] = 255
    normal = np.full((size, size, 3), normal_value, np.uint8)
    meta = {"engine": "fake", "weights": "none", "prompt": f"defect {i}", "seed": i,
            "params": {"steps": 50, "strength": 0.7}, "k": i, "np_value": np.float32(0.5)}
    return Candidate(image=image, mask=mask, seed=i, metadata=meta), normal


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img)


def fill(store: Store, labels: list[tuple[str, str]], *, with_reference: bool = True) -> list[str]:
    ids = []
    for i, (category, defect) in enumerate(labels):
        cand, normal = make_sample(i, size=40 + 8 * (i % 3), normal_value=10 * (i % 4))
        kwargs = {}
        if with_reference and i % 3 == 0:
            kwargs = {"reference": np.full((16, 20, 3), 200, np.uint8),
                      "reference_mask": np.pad(np.ones((6, 6), bool), ((5, 5), (7, 7)))}
        ids.append(store.add(cand, normal_image=normal, category=category, defect_type=defect, **kwargs))
    return ids


def make_spec(folder: Path, jobs: int = 40, size: int = 64, count: int = 2, name: str = "jobs.yaml") -> Path:
    """A spec of ``jobs`` classic-engine jobs over two small normals, with masks, generators and references."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "inputs").mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for k in range(2):
        surface = np.clip(140 + 20 * k + rng.normal(0, 4, (size, size, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(surface).save(folder / "inputs" / f"normal{k}.png")
    mask = np.zeros((size, size), np.uint8)
    mask[size // 4: size // 2, size // 3: size // 2 + 4] = 255
    Image.fromarray(mask).save(folder / "inputs" / "mask.png")
    ref = np.full((48, 48, 3), 120, np.uint8)
    ref[16:32, 10:38] = (40, 30, 20)
    Image.fromarray(ref).save(folder / "inputs" / "ref.png")
    ref_mask = np.zeros((48, 48), np.uint8)
    ref_mask[16:32, 10:38] = 255
    Image.fromarray(ref_mask).save(folder / "inputs" / "ref_mask.png")
    entries = []
    for i in range(jobs):
        prompt, defect = PROMPTS[i % len(PROMPTS)]
        entry = {"image": f"inputs/normal{i % 2}.png", "prompt": prompt, "seed": 1000 + i, "count": count,
                 "category": ["bottle", "../../etc"][i % 2], "defect_type": defect}
        if i % 3 == 0:
            entry["mask_generator"] = {"type": ["ellipse", "rectangle"][i % 2], "seed": i}
        else:
            entry["mask"] = "inputs/mask.png"
        if i % 5 == 0:
            entry.update(reference="inputs/ref.png", reference_mask="inputs/ref_mask.png",
                         reference_text="a dark dent")
        entries.append(entry)
    spec = folder / name
    spec.write_text(yaml.safe_dump({"defaults": {"engine": "classic"}, "jobs": entries}))
    return spec
