"""The downstream detector: a small U-Net trained on (image, defect mask) pairs, CPU-friendly.

The paper measures a synthesis method by training a segmentation network on normal images
plus synthesised anomalies and testing it on real ones. This is that network: four
resolution levels of two 3x3 conv + BatchNorm + ReLU blocks (base width 16, about 0.5 M
parameters), 2x2 transposed-conv up-sampling with skip connections, one logit per pixel
(transposed convs rather than bilinear up-sampling, whose CUDA backward is not deterministic). The loss
is focal loss (gamma 2, as in DRAEM) plus soft Dice over the batch, which copes with
defects covering a few percent of the pixels and with all-normal batches.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from studio.errors import InputError
from studio.types import ProgressFn

#: Down-sampling steps; input sides must be multiples of 2**LEVELS.
LEVELS = 3


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """U-Net with ``LEVELS`` poolings; (B, 3, H, W) images in [-1, 1] -> (B, 1, H, W) defect logits."""

    def __init__(self, base: int = 16) -> None:
        super().__init__()
        widths = [base * 2**i for i in range(LEVELS + 1)]
        self.down = nn.ModuleList([_block(3, widths[0])] + [_block(widths[i - 1], widths[i])
                                                            for i in range(1, LEVELS + 1)])
        levels = list(reversed(range(LEVELS)))
        self.upsample = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in levels])
        self.up = nn.ModuleList([_block(2 * widths[i], widths[i]) for i in levels])
        self.head = nn.Conv2d(widths[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        skips.pop()
        for upsample, block in zip(self.upsample, self.up):
            x = block(torch.cat([upsample(x), skips.pop()], dim=1))
        return self.head(x)


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Focal loss (mean over pixels) + soft Dice loss (over the whole batch)."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = torch.exp(-bce)
    focal = ((1.0 - p_t) ** gamma * bce).mean()
    prob = torch.sigmoid(logits)
    dice = 1.0 - (2.0 * (prob * target).sum() + 1.0) / (prob.sum() + target.sum() + 1.0)
    return focal + dice


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 8
    lr: float = 1e-3
    seed: int = 0
    device: str = "cpu"


@dataclass
class TrainResult:
    model: UNet
    epoch_losses: list[float] = field(default_factory=list)
    steps: int = 0


def resolve_device(name: str | None) -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; an explicit device must exist."""
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"Unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for but no CUDA GPU is available; use --device cpu.")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError("--device mps was asked for but Apple MPS is not available; use --device cpu.")
    return device


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def train_segmenter(images: np.ndarray, masks: np.ndarray, config: TrainConfig,
                    progress: ProgressFn | None = None) -> TrainResult:
    """Train a fresh U-Net; shuffling, flips and initialisation all follow ``config.seed``."""
    if images.shape[0] == 0:
        raise InputError("There are no training images.")
    side = images.shape[1]
    if images.shape[1] % 2**LEVELS or images.shape[2] % 2**LEVELS:
        raise InputError(f"The training resolution must be a multiple of {2**LEVELS}, got {side}.")
    device = torch.device(config.device)
    torch.manual_seed(config.seed)
    model = UNet().to(device)
    generator = torch.Generator().manual_seed(config.seed)
    x_all = to_tensor(images)
    y_all = torch.from_numpy(masks.astype(np.float32)).unsqueeze(1)
    n = x_all.shape[0]
    batch = max(1, min(config.batch_size, n))
    per_epoch = math.ceil(n / batch)
    total = per_epoch * config.epochs
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total)))
    result = TrainResult(model=model)
    model.train()
    for epoch in range(config.epochs):
        order = torch.randperm(n, generator=generator)
        running = 0.0
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            if idx.numel() == 1 and n > 1:  # BatchNorm needs two samples: borrow one
                idx = torch.cat([idx, order[:1]])
            x, y = _augment(x_all[idx], y_all[idx], generator)
            loss = segmentation_loss(model(x.to(device)), y.to(device))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            result.steps += 1
            value = float(loss.detach())
            if not math.isfinite(value):
                raise InputError(f"Training diverged in epoch {epoch + 1} (loss {value}); "
                                 f"lower --lr (now {config.lr:g}).")
            running += value
            if progress is not None:
                progress(result.steps, total, f"epoch {epoch + 1}/{config.epochs} loss {value:.4f}")
        result.epoch_losses.append(running / per_epoch)
    model.eval()
    return result


@torch.no_grad()
def predict_logits(model: UNet, images: np.ndarray, batch_size: int = 8) -> np.ndarray:
    """Defect logits (N, H, W) float32 for uint8 images (N, H, W, 3)."""
    device = next(model.parameters()).device
    model.eval()
    out = []
    for start in range(0, images.shape[0], max(1, batch_size)):
        x = to_tensor(images[start:start + batch_size]).to(device)
        out.append(model(x)[:, 0].float().cpu().numpy())
    if not out:
        return np.zeros(images.shape[:3], np.float32)
    return np.concatenate(out)


def _augment(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random horizontal and vertical flips, the same for image and mask."""
    flips = torch.rand(2, generator=generator)
    if flips[0] < 0.5:
        x, y = x.flip(-1), y.flip(-1)
    if flips[1] < 0.5:
        x, y = x.flip(-2), y.flip(-2)
    return x, y
