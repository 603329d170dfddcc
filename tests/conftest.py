"""Shared fixtures: synthetic product images and masks made in-process (no files needed)."""
from __future__ import annotations

import os

# Toy-sized torch ops (tiny models) run faster and far steadier on one thread on a 2-core machine,
# especially while a live app subprocess shares the cores; set before numpy/torch load.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture
def surface() -> np.ndarray:
    """A 256x256 textured grey surface (brushed-metal-like), deterministic."""
    rng = np.random.default_rng(7)
    base = np.full((256, 256, 3), 150, np.float32)
    base += rng.normal(0, 6, (256, 1, 1)).astype(np.float32)  # horizontal brushing
    base += rng.normal(0, 3, (256, 256, 1)).astype(np.float32)
    return np.clip(base, 0, 255).astype(np.uint8)


@pytest.fixture
def blob_mask() -> np.ndarray:
    """An elliptical defect region on the 256x256 surface."""
    yy, xx = np.mgrid[:256, :256]
    return ((xx - 128) / 40.0) ** 2 + ((yy - 120) / 22.0) ** 2 <= 1.0

