"""Shared fixtures: synthetic product images and masks made in-process (no files needed)."""
from __future__ import annotations

import os

import numpy as np
import pytest

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


@pytest.fixture(scope="module")
def one_torch_thread():
    """Toy-sized torch ops run faster (and steadier on a busy 2-core machine) on one thread."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
