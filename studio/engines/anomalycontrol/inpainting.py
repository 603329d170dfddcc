"""The inpainting inputs, shared by the engine and by training so both see the anomaly the same way.

**One scale policy.** The model always works on a *square* region around the mask, resized to
its native resolution (512 px for SD-1.5): side = max(resolution, mask extent + margin), capped
by the image's longer side. A 1024 px MVTec image with a small defect is therefore seen at its
native pixel scale (not shrunk 2x), a large defect is shrunk just enough to fit, and a
non-square image (VisA) is never stretched: where the square runs past a short side, the
missing rows or columns are reflected in and masked out of the label. Training crops every
sample with this same :func:`work_region`, so the adapter learns at exactly the zoom and aspect
it is used at; the alternative (whole image resized to 512²) would shrink small defects below
what the latents can hold and distort non-square images.

**Thin defects.** The 9-channel UNet reads the mask at latent resolution (1/8). A nearest-
neighbour downsampling drops scratches thinner than 8 px; :func:`latent_cells` instead marks
every latent cell the sketch touches, and the masked image is hidden on those whole cells, so
the model redraws every cell holding part of the defect. The label stays the sketched mask.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from studio.imaging import mask_bbox
from studio.engines.anomalycontrol.parameters import BLUR_SIGMA

#: The composite blur the margin leaves room for when no request says otherwise (training).
DEFAULT_BLUR_SIGMA = float(BLUR_SIGMA.default)


@dataclass(frozen=True)
class WorkRegion:
    """A square box (x0, y0, x1, y1; end-exclusive, may run past the image's edges) redrawn at ``size`` px."""

    box: tuple[int, int, int, int]
    size: int

    @property
    def side(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def scale(self) -> float:
        """Model pixels per image pixel (1.0 = the image's own scale)."""
        return self.size / self.side

    def crop(self, image: np.ndarray) -> np.ndarray:
        """The region of an RGB image at the model's size (reflected where it runs past an edge)."""
        return _resize(self._cut(image, cv2.BORDER_REFLECT_101), self.size)

    def crop_mask(self, mask: np.ndarray) -> np.ndarray:
        """The region of a bool mask at the model's size (outside the image is unmasked)."""
        cut = self._cut(mask.astype(np.float32), cv2.BORDER_CONSTANT)
        return cv2.resize(cut, (self.size, self.size), interpolation=cv2.INTER_AREA) > 0

    def paste(self, image: np.ndarray, generated: np.ndarray) -> np.ndarray:
        """A copy of ``image`` with the generated region (size x size) put back at the image's scale."""
        x0, y0, x1, y1 = self.box
        height, width = image.shape[:2]
        back = _resize(generated, self.side)
        out = image.copy()
        ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        out[iy0:iy1, ix0:ix1] = back[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
        return out

    def _cut(self, array: np.ndarray, border: int) -> np.ndarray:
        x0, y0, x1, y1 = self.box
        height, width = array.shape[:2]
        pads = (max(-y0, 0), max(y1 - height, 0), max(-x0, 0), max(x1 - width, 0))
        inside = array[max(y0, 0):min(y1, height), max(x0, 0):min(x1, width)]
        if any(pads):
            inside = cv2.copyMakeBorder(inside, *pads, border, value=0)
        return inside


def work_region(mask: np.ndarray, resolution: int, blur_sigma: float = DEFAULT_BLUR_SIGMA) -> WorkRegion:
    """The square around ``mask`` (with room for the composite blur) that the model redraws at ``resolution``."""
    height, width = mask.shape
    x0, y0, x1, y1 = mask_bbox(mask)
    margin = int(math.ceil(3 * blur_sigma)) + max(8, max(x1 - x0, y1 - y0) // 4)
    side = min(max(resolution, x1 - x0 + 2 * margin, y1 - y0 + 2 * margin), max(width, height))
    left, top = _place(x0 + x1, side, width), _place(y0 + y1, side, height)
    return WorkRegion(box=(left, top, left + side, top + side), size=resolution)


def _place(twice_centre: int, side: int, length: int) -> int:
    """Start of a ``side``-long window centred on the mask, kept inside ``length`` (or covering all of it)."""
    lo, hi = min(0, length - side), max(0, length - side)
    return int(np.clip(round((twice_centre - side) / 2), lo, hi))


def _resize(image: np.ndarray, side: int) -> np.ndarray:
    if image.shape[:2] == (side, side):
        return image
    shrinking = side < image.shape[0]
    return cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


@dataclass
class InpaintingInputs:
    """What the 9-channel UNet reads besides the noisy latents (scaled latents; mask at latent size).

    ``pixel_mask`` is the same whole-cell mask at image size (what diffusers' pipeline takes).
    """

    image_latents: torch.Tensor
    mask: torch.Tensor
    masked_image_latents: torch.Tensor
    pixel_mask: torch.Tensor


def latent_cells(mask: torch.Tensor, factor: int) -> torch.Tensor:
    """(B, 1, H, W) mask -> the same size with every ``factor`` x ``factor`` cell it touches filled."""
    cells = F.max_pool2d(mask.float(), kernel_size=factor, stride=factor, ceil_mode=True)
    return F.interpolate(cells, scale_factor=factor, mode="nearest")[..., : mask.shape[-2], : mask.shape[-1]].to(mask.dtype)


def encode_inpainting_inputs(vae, image: torch.Tensor, mask: torch.Tensor, *, sample: bool = False,
                             generator: torch.Generator | None = None) -> InpaintingInputs:
    """Encode image (B, 3, H, W) in [-1, 1] and its masked version in ONE VAE call; mask (B, 1, H, W) in {0, 1}.

    The mask is widened to whole latent cells first (:func:`latent_cells`). Inference uses the
    latent mean (``sample=False``: candidates depend only on their seeds); training samples.
    """
    batch = image.shape[0]
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    cells = latent_cells(mask, factor)
    masked = image * (cells < 0.5)
    dist = vae.encode(torch.cat([image, masked]).to(vae.dtype)).latent_dist
    latents = (dist.sample(generator) if sample else dist.mode()) * vae.config.scaling_factor
    mask_latent = F.max_pool2d(cells.float(), kernel_size=factor, stride=factor, ceil_mode=True).to(latents.dtype)
    return InpaintingInputs(latents[:batch], mask_latent, latents[batch:], cells)
