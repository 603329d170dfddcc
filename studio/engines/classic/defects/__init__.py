"""Procedural defect families for the weight-free ``classic`` engine.

Each family turns a :class:`Context` (the crop around the sketched region, the region, a seeded rng,
the prompt and the photometry measured around the region) into :class:`~studio.engines.classic.
shading.Maps` (height, albedo, gloss, cover), which the engine renders with the image's own light,
noise and blur. The target prompt picks the family by keyword or a synonym (the DRAEM-style texture
only when named). Every random choice comes from the rng, so a seed reproduces a
candidate exactly.
"""
from __future__ import annotations

from typing import Callable

from studio.engines.classic.defects.base import Context, Shared, support_box
from studio.engines.classic.defects.bend import bend
from studio.engines.classic.defects.crack import crack
from studio.engines.classic.defects.dent import dent
from studio.engines.classic.defects.hole import hole
from studio.engines.classic.defects.liquid import oil, stain
from studio.engines.classic.defects.missing import missing
from studio.engines.classic.defects.scratch import scratch
from studio.engines.classic.defects.surface import burn, contamination, discoloration, rust
from studio.engines.classic.defects.texture import perlin_texture
from studio.engines.classic.shading import Maps

REGISTRY: dict[str, Callable[[Context], Maps]] = {
    "scratch": scratch,
    "crack": crack,
    "hole": hole,
    "oil": oil,
    "rust": rust,
    "contamination": contamination,
    "stain": stain,
    "dent": dent,
    "missing": missing,
    "discoloration": discoloration,
    "burn": burn,
    "perlin": perlin_texture,
    "bend": bend,  # chosen only for a bent pin, lead or wire (see keywords.pick_generator)
}
#: The families whose change is an albedo (colour) change: the surface's texture must show through
#: (rust and burns are crusts and char that hide it).
ALBEDO_FAMILIES = ("stain", "oil", "discoloration", "contamination")
#: The families that soak into the surface: each surface unit takes them by its own amount.
SOAKING_FAMILIES = ("stain", "oil", "discoloration", "contamination")
#: The families that change the surface's shape: each sits on one surface unit and ends at its edges.
GEOMETRIC_FAMILIES = ("scratch", "crack", "hole", "dent", "missing")
#: The families that open the surface and reveal a floor of new material under it.
FLOOR_FAMILIES = ("hole", "missing")
#: The families drawn as lines a px or two wide (their blurred fringe fades rather than being labelled).
LINE_FAMILIES = ("scratch", "crack")

__all__ = ["ALBEDO_FAMILIES", "FLOOR_FAMILIES", "GEOMETRIC_FAMILIES", "LINE_FAMILIES", "SOAKING_FAMILIES", "REGISTRY",
           "Context", "Shared", "support_box"]
