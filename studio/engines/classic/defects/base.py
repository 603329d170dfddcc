"""What every defect generator gets (:class:`Context`) and the shapes several of them share."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from studio.engines.classic.geometry import Frame, inside_distance
from studio.engines.classic.noise import fractal


@dataclass
class Context:
    """What a generator gets: the crop (float32 0..255), its region (bool), a seeded rng, the prompt."""

    crop: np.ndarray
    region: np.ndarray
    rng: np.random.Generator
    prompt: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.region.shape

    def record(self, **values: Any) -> None:
        for key, value in values.items():
            if isinstance(value, (float, np.floating)):
                value = round(float(value), 4)
            elif isinstance(value, (np.integer,)):
                value = int(value)
            elif isinstance(value, np.ndarray):
                value = [round(float(v), 2) for v in value.ravel()]
            self.params[key] = value

    def along(self, frame: Frame) -> np.ndarray:
        """Normalised position along the major axis for every pixel (-1..1 over the region)."""
        yy, xx = np.mgrid[: self.shape[0], : self.shape[1]].astype(np.float32)
        t, _ = frame.to_local(xx, yy)
        return t / max(frame.a * 1.2, 1.0)


def line_tone(ctx: Context, dark: bool, depth: float, coverage: np.ndarray) -> np.ndarray:
    coverage = np.clip(coverage, 0.0, 1.0)[..., None]
    crop = ctx.crop
    if dark:
        return crop * (1.0 - depth * coverage)
    return crop + (255.0 - crop) * depth * coverage


def jagged_blob(ctx: Context, scale: float, roughness: float, periods: float) -> np.ndarray:
    """A region-shaped blob, shrunk towards the region's middle, with a noisy edge."""
    depth = inside_distance(ctx.region)
    peak = float(depth.max()) or 1.0
    field_ = depth / peak + roughness * fractal(ctx.shape, periods, ctx.rng, 3)
    blob = (field_ > (1.0 - scale)) & ctx.region
    if blob.sum() < max(4, 0.05 * ctx.region.sum()):
        blob = depth >= min(peak, max(1.0, (1.0 - scale) * peak))
    return blob
