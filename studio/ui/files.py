"""The studio's scratch pictures (session candidates, editor images, viewer renderings) as PNG files.

Galleries and viewers get files, not arrays: Gradio copies a file into its cache once, atomically,
but re-encodes an array and rewrites its cache file every time it is shown again.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from studio import imaging
from studio.types import array_sha256


def write_png(path: Path, array: np.ndarray) -> str:
    """``array`` (RGB or greyscale uint8) as a fast-encoded scratch PNG at ``path``; returns the path."""
    return str(imaging.write_png(path, array, fast=True))


def write_png_once(folder: Path, array: np.ndarray) -> str:
    """A PNG named after its content in ``folder``: written the first time, reused after."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{array_sha256(array)}.png"
    return str(path) if path.exists() else write_png(path, array)
