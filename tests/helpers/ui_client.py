"""Inputs and a generate call for tests that drive a live studio through ``gradio_client``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

SIZE = 160


def surface(level: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.full((SIZE, SIZE, 3), level, np.float32)
    base += rng.normal(0, 4, (SIZE, 1, 1)).astype(np.float32)
    base += rng.normal(0, 2, (SIZE, SIZE, 1)).astype(np.float32)
    return np.clip(base, 0, 255).astype(np.uint8)


def ellipse(cx: int, cy: int, rx: int, ry: int, size: int = SIZE) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0


def save(path: Path, array: np.ndarray) -> str:
    Image.fromarray(array).save(path)
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("inputs")
    reference = surface(200, 3)
    stain = ellipse(80, 80, 30, 22)
    reference[stain] = (170, 30, 40)
    out = {
        "image": save(folder / "normal.png", surface(140)),
        "mask": save(folder / "mask.png", ellipse(80, 70, 28, 14).astype(np.uint8) * 255),
        "empty_mask": save(folder / "empty.png", np.zeros((SIZE, SIZE), np.uint8)),
        "reference": save(folder / "reference.png", reference),
        "reference_mask": save(folder / "reference_mask.png", stain.astype(np.uint8) * 255),
        "corrupt": str(folder / "corrupt.png"),
    }
    Path(out["corrupt"]).write_bytes(b"\x89PNG\r\n\x1a\n" + b"this is not really a png" * 10)
    for level in (60, 100, 180, 220):
        out[f"image_{level}"] = save(folder / f"normal_{level}.png", surface(level, level))
    return out


def generate(client: Client, files: dict[str, str], image: str, mask: str, num: int = 2, seed: int = 7,
             reference: bool = True, prompt: str = "a red stain"):
    return client.predict(
        handle_file(image), handle_file(mask), prompt,
        handle_file(files["reference"]) if reference else None,
        handle_file(files["reference_mask"]) if reference else None,
        "a red contamination stain" if reference else "",
        num, seed, api_name="/generate",
    )
