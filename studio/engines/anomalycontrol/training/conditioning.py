"""What the UNet is conditioned on while SGA trains: the references' CSM features and condition dropout.

Features come from the engine's own CSM/ASEA code. ASEA is deterministic for a given reference,
mask and text, so caching one query-averaged feature vector per reference (the default, as the
authors cache BLIP-2 features) changes nothing but the speed.

Condition dropout follows the authors (and IP-Adapter): each sample independently loses its
reference image (5%), its caption (5%) or both (5%). A dropped image gets the adapter's tokens of
no image (what CFG's unconditional branch uses at inference); a dropped caption becomes the empty
prompt, so prompt-free, reference-only generation is in distribution.
"""
from __future__ import annotations

import torch

from studio.engines.anomalycontrol.asea import run_asea
from studio.engines.anomalycontrol.csm import CrossModalSemantics
from studio.engines.anomalycontrol.training.data import TrainingSet, load_anomaly

#: Probability of each dropout case per sample: image only, caption only, both.
DROPOUT_RATE = 0.05


class ReferenceFeatures:
    """Query-averaged CSM/ASEA features (B, D) of reference anomalies; optionally cached per reference."""

    def __init__(self, csm: CrossModalSemantics, data: TrainingSet, *, asea_steps: int, asea_lr: float, cache: bool):
        self.csm, self.data = csm, data
        self.asea_steps, self.asea_lr = asea_steps, asea_lr
        self.cache: dict[int, torch.Tensor] | None = {} if cache else None
        self.encoded = 0

    def __call__(self, indices: list[int]) -> torch.Tensor:
        """Features (B, D) of the references ``indices``."""
        return torch.cat([self.one(i) for i in indices])

    def one(self, index: int) -> torch.Tensor:
        if self.cache is not None and index in self.cache:
            return self.cache[index]
        anomaly = self.data.anomalies[index]
        image, mask = load_anomaly(anomaly)
        if self.asea_steps > 0 and mask.any():
            features = run_asea(self.csm, image, mask, anomaly.caption, steps=self.asea_steps, lr=self.asea_lr).features
        else:
            features = self.csm(image, anomaly.caption).features
        features = features.mean(dim=1)
        self.encoded += 1
        if self.cache is not None:
            self.cache[index] = features
        return features


def condition_dropout(batch: int, generator: torch.Generator, rate: float = DROPOUT_RATE
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """(drop image, drop caption), each (batch,) bool: image only, caption only and both at ``rate`` each."""
    u = torch.rand(batch, generator=generator)
    image_only, text_only, both = u < rate, (u >= rate) & (u < 2 * rate), (u >= 2 * rate) & (u < 3 * rate)
    return image_only | both, text_only | both
