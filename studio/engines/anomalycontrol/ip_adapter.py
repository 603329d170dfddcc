"""IP-Adapter's released SD-1.5 weights (h94/IP-Adapter ``models/ip-adapter_sd15.safetensors``) in the SGA adapter.

Two uses: the authors start SGA training from IP-Adapter (:func:`load_ip_adapter`), and the
``ip-adapter`` guidance mode runs IP-Adapter itself — reference guidance without training — by
filling the same decoupled attention with its weights and feeding it the CLIP image embedding
of the reference cut to its mask (:class:`ReferenceImageEncoder`; IP-Adapter's
``models/image_encoder``, CLIP ViT-H/14 with a 1024-d projection). Its file holds, with flat key names:

    image_proj.proj.weight / .bias      (N*768, 1024) / (N*768,)   -> projection.image_proj.proj
    image_proj.norm.weight / .bias      (768,)                     -> projection.image_proj.norm
    ip_adapter.<k>.to_k_ip.weight       (inner, 768)               -> to_k_sg.<layer>.weight
    ip_adapter.<k>.to_v_ip.weight       (inner, 768)               -> to_v_sg.<layer>.weight

``<k>`` numbers the UNet's attention processors in ``unet.attn_processors`` order, self- and
cross-attention alike, so the cross-attention layers are 1, 3, 5, ...: diffusers' own loader
(``UNet2DConditionModel._convert_ip_adapter_attn_to_diffusers``) starts at 1 and adds 2 per
cross-attention layer, and so does :func:`ip_adapter_keys` over the adapter's layers (kept in
that same order). The first projection (CSM feature -> 1024, ``projection.to_embed``) has no
IP-Adapter counterpart and keeps its fresh initialisation.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from studio.engines.anomalycontrol.sga import SGAdapter, refuse_pickles, short_reason
from studio.errors import WeightsError

_PROJECTION = ("proj.weight", "proj.bias", "norm.weight", "norm.bias")


def ip_adapter_keys(adapter: SGAdapter) -> dict[str, str]:
    """IP-Adapter key -> the adapter's state-dict key it initialises."""
    mapping = {f"image_proj.{name}": f"projection.image_proj.{name}" for name in _PROJECTION}
    for index, layer in enumerate(adapter.to_k_sg):
        key_id = 1 + 2 * index
        for ours, theirs in (("to_k_sg", "to_k_ip"), ("to_v_sg", "to_v_ip")):
            mapping[f"ip_adapter.{key_id}.{theirs}.weight"] = f"{ours}.{layer}.weight"
    return mapping


def read_ip_adapter(path: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor of an IP-Adapter safetensors file (pickled ``.bin`` files are refused)."""
    from safetensors.torch import load_file

    path = refuse_pickles(path, "IP-Adapter file")
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise WeightsError(f"The IP-Adapter file {str(path)!r} is not a readable safetensors file "
                           f"({short_reason(exc)}); download it again.") from None


def apply_ip_adapter(adapter: SGAdapter, tensors: dict[str, torch.Tensor], source: str = "the IP-Adapter file") -> list[str]:
    """Copy IP-Adapter's tensors into ``adapter``; returns the adapter keys left as they were.

    Every mapped key must be present with the target's exact shape (else a :class:`WeightsError`
    saying which, e.g. an SDXL or "plus" file), so a partial or foreign file never loads silently.
    """
    mapping = ip_adapter_keys(adapter)
    state = adapter.state_dict()
    missing = [k for k in mapping if k not in tensors]
    if missing:
        raise WeightsError(
            f"{source} is not IP-Adapter's SD-1.5 file for this UNet: {len(missing)} tensor(s) missing "
            f"(e.g. {missing[0]}); use h94/IP-Adapter models/ip-adapter_sd15.safetensors."
        )
    for theirs, ours in mapping.items():
        if tuple(tensors[theirs].shape) != tuple(state[ours].shape):
            raise WeightsError(
                f"{source} does not fit this model: {theirs} is {list(tensors[theirs].shape)} but {ours} needs "
                f"{list(state[ours].shape)}; use IP-Adapter's SD-1.5 file (ip-adapter_sd15.safetensors)."
            )
    with torch.no_grad():
        for theirs, ours in mapping.items():
            state[ours].copy_(tensors[theirs].to(dtype=state[ours].dtype, device=state[ours].device))
    return sorted(set(state) - set(mapping.values()))


def load_ip_adapter(adapter: SGAdapter, path: str | Path) -> list[str]:
    """:func:`read_ip_adapter` then :func:`apply_ip_adapter`; returns the adapter keys IP-Adapter does not cover."""
    return apply_ip_adapter(adapter, read_ip_adapter(path), f"The IP-Adapter file {str(path)!r}")


def save_ip_adapter(adapter: SGAdapter, path: str | Path) -> Path:
    """Write ``adapter``'s projection and ``to_k_sg``/``to_v_sg`` under IP-Adapter's key names (the inverse of
    :func:`apply_ip_adapter`); e.g. miniature IP-Adapter files for tests."""
    from safetensors.torch import save

    from studio.atomic import write_bytes

    state = adapter.state_dict()
    tensors = {theirs: state[ours].detach().to("cpu").contiguous() for theirs, ours in ip_adapter_keys(adapter).items()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return write_bytes(Path(path), save(tensors))


#: Where the reference is not the anomaly, the cut shows CLIP's mean grey (normalised to ~0).
_NEUTRAL = np.array([122, 116, 104], dtype=np.uint8)


def cut_to_mask(reference: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """The reference anomaly alone: its mask's box, pixels outside the mask set to a neutral grey.

    Without a mask (or an empty one) the whole reference is used.
    """
    if mask is None or not mask.any():
        return reference
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    cut = reference[y0:y1, x0:x1].copy()
    cut[~mask[y0:y1, x0:x1]] = _NEUTRAL
    return cut


class ReferenceImageEncoder:
    """IP-Adapter's image input: the reference cut to its mask -> CLIP image embedding (1, projection_dim)."""

    def __init__(self, encoder):
        from transformers import CLIPImageProcessor

        self.encoder = encoder
        size = int(encoder.config.vision_config.image_size if hasattr(encoder.config, "vision_config")
                   else encoder.config.image_size)
        self.processor = CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})

    @torch.no_grad()
    def __call__(self, reference: np.ndarray, mask: np.ndarray | None) -> torch.Tensor:
        pixels = self.processor(images=[cut_to_mask(reference, mask)], return_tensors="pt")["pixel_values"]
        weight = next(self.encoder.parameters())
        return self.encoder(pixel_values=pixels.to(device=weight.device, dtype=weight.dtype)).image_embeds
