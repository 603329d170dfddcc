"""ASEA — Anomaly-Semantic Enhanced Attention.

A guidance variable ``e_g`` (zero-initialised, the shape of the frozen ViT tokens) is added
to the image tokens the Q-Former reads, and optimised with Adam for a few steps so that the
Q-Former's cross-attention mass falls inside the reference anomaly's mask ``M_a``:

    a    = cross-attention averaged over Q-Former layers, heads and query tokens (CLS excluded)
    loss = (1 - Σ a·M_a / Σ a)²                  with M_a resized to the patch grid

Only ``e_g`` receives gradients: BLIP-2 is frozen and its weights never change. The result
is the CSM feature computed with the optimised ``e_g`` and a trace of the attention map and
in-mask fraction before the first step and after every step (``steps + 1`` entries).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from studio.engines.anomalycontrol.csm import CrossModalSemantics
from studio.types import AttentionStep, AttentionTrace, ProgressFn


@dataclass
class ASEAResult:
    """The CSM query features after ASEA (1, Q, D) and the per-step trace."""

    features: torch.Tensor
    trace: AttentionTrace
    guidance: torch.Tensor | None = None


def inmask_fraction(attention: torch.Tensor, mask_grid: torch.Tensor) -> torch.Tensor:
    """Share of the attention mass (B, patches) that falls inside the (soft) patch mask."""
    return (attention * mask_grid).sum(-1) / attention.sum(-1).clamp_min(1e-12)


def run_asea(csm: CrossModalSemantics, image: np.ndarray, mask: np.ndarray, text: str, *,
             steps: int = 5, lr: float = 0.1, progress: ProgressFn | None = None, note: str = "") -> ASEAResult:
    """Optimise ``e_g`` for ``steps`` Adam steps; returns the final features and the attention trace."""
    image_embeds = csm.encode_image(image)          # frozen ViT, once
    tokens = csm.encode_text(text)
    mask_grid = csm.mask_grid(mask)
    guidance = torch.zeros_like(image_embeds, requires_grad=True)
    optimizer = torch.optim.Adam([guidance], lr=lr)
    maps, fractions, losses = [], [], []
    features = None
    for step in range(steps + 1):
        last = step == steps
        with torch.set_grad_enabled(not last):
            out = csm.qformer(image_embeds + guidance, tokens)
            attention = csm.patch_attention(out.cross_attentions)
            fraction = inmask_fraction(attention, mask_grid)
            loss = ((1.0 - fraction) ** 2).mean()
        maps.append(attention.detach()[0])
        fractions.append(fraction.detach()[0])
        losses.append(loss.detach())
        features = out.features.detach()
        if progress is not None:
            progress(step, steps, f"ASEA step {step}/{steps}")
        if last:
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    # One transfer for the whole trace (no per-step host syncs).
    maps_np = torch.stack(maps).float().cpu().numpy()
    fractions_np = torch.stack(fractions).float().cpu().numpy()
    losses_np = torch.stack(losses).float().cpu().numpy()
    height, width = mask.shape
    trace = AttentionTrace(
        steps=[
            AttentionStep(heatmap=heatmap(m, csm.grid, (width, height)), inmask_fraction=float(f), loss=float(l))
            for m, f, l in zip(maps_np, fractions_np, losses_np)
        ],
        note=note,
    )
    return ASEAResult(features=features, trace=trace, guidance=guidance.detach())


def heatmap(attention: np.ndarray, grid: int, size: tuple[int, int]) -> np.ndarray:
    """Patch attention (grid*grid,) -> float32 heat map in [0, 1] of ``size`` = (width, height)."""
    cells = attention.reshape(grid, grid).astype(np.float32)
    peak = float(cells.max())
    cells = cells / peak if peak > 0 else cells
    return np.clip(cv2.resize(cells, size, interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
