"""Procedural defect generators for the weight-free ``classic`` engine.

Each generator draws one kind of defect into a crop of the normal image, inside the
sketched region, and returns the new crop (float32, 0..255) plus the parameters it drew.
The target prompt picks the generator by keyword (:func:`pick_generator`); words it does
not know fall back to DRAEM-style Perlin-noise texture anomalies. Every random choice
comes from the ``numpy`` generator handed in, so a seed reproduces a candidate exactly.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from studio.engines.classic.defects.base import Context
from studio.engines.classic.defects.scratch import scratch
from studio.engines.classic.defects.crack import crack
from studio.engines.classic.defects.hole import hole
from studio.engines.classic.defects.stain import stain
from studio.engines.classic.defects.dent import dent
from studio.engines.classic.defects.missing import missing
from studio.engines.classic.defects.discoloration import discoloration
from studio.engines.classic.defects.texture import perlin_texture


REGISTRY: dict[str, Callable[[Context], np.ndarray]] = {
    "scratch": scratch,
    "crack": crack,
    "hole": hole,
    "stain": stain,
    "dent": dent,
    "missing": missing,
    "discoloration": discoloration,
    "perlin": perlin_texture,
}

__all__ = ["REGISTRY", "Context"]
