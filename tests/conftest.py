"""Shared fixtures: synthetic product images and masks made in-process (no files needed)."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

# Toy-sized torch ops (tiny models) run faster and far steadier on one thread on a 2-core machine,
# especially while a live app subprocess shares the cores; set before numpy/torch load.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

#: Everything this test session writes to a temp folder (pytest's base temp, gradio_client's
#: downloads, torch's caches, the live apps' TMPDIRs) lands in this one folder, removed at the end
#: of a passing session (kept, and named, when something failed).
SESSION_TMP = Path(tempfile.mkdtemp(prefix="as-"))  # short: Chromium puts a socket (<= 107 bytes) below it
os.environ["TMPDIR"] = str(SESSION_TMP)
tempfile.tempdir = str(SESSION_TMP)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if exitstatus in (0, 5):
        shutil.rmtree(SESSION_TMP, ignore_errors=True)
    else:
        print(f"\nthe session's temporary files are kept in {SESSION_TMP}")


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

