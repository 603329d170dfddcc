"""CSM — Cross-modal Semantic Modeling on a frozen BLIP-2 (``Blip2ForImageTextRetrieval``).

The ViT encodes the reference image ``I_a`` once; the Q-Former runs its learnt query tokens
together with the reference text ``T_a`` (text input, as in BLIP-2's image-text matching)
and cross-attends to the image tokens. Its query outputs (num_query_tokens x hidden, 32 x 768
for ViT-g) are the cross-modal semantic feature; its cross-attention weights over the
patch grid are what ASEA steers and the studio previews.

Everything here is frozen and runs without gradients except through ``image_embeds`` (the
ViT tokens plus ASEA's guidance variable), so ASEA can differentiate through the Q-Former.

Images reach the ViT through transformers' BLIP image processor built from the checkpoint's
own ``preprocessor_config.json`` (PIL bicubic, which antialiases when shrinking; without a
config: PIL bicubic at the ViT's size with CLIP statistics). The attention hooks exist only
for the length of one Q-Former call, so engines sharing one BLIP-2 never see each other's maps.
"""
from __future__ import annotations

from dataclasses import dataclass

from contextlib import contextmanager
from typing import Any, Iterator

import cv2
import numpy as np
import torch

#: BLIP-2's image normalisation (OpenAI CLIP statistics) when no preprocessor config says otherwise.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class CSMOutput:
    """Q-Former query features (B, Q, D) and cross-attention weights, one (B, heads, Q, 1 + patches) per layer."""

    features: torch.Tensor
    cross_attentions: list[torch.Tensor]


class CrossModalSemantics:
    """Frozen BLIP-2 wrapper: ``encode_image`` once, then ``qformer`` as often as ASEA needs."""

    def __init__(self, blip2, tokenizer, image_config: dict[str, Any] | None = None, *, max_text_tokens: int = 35):
        self.model = blip2.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        vision = blip2.config.vision_config
        self.processor = image_processor(image_config or {}, int(vision.image_size))
        self.image_size = int(self.processor.size["height"])
        self.patch_size = int(vision.patch_size)
        self.grid = self.image_size // self.patch_size
        self.max_text_tokens = max_text_tokens
        # Cross-attention weights only come back from the eager path; the ViT keeps SDPA.
        self.model.qformer.set_attn_implementation("eager")

    @classmethod
    def from_bundle(cls, bundle) -> "CrossModalSemantics":
        """The CSM of a loaded :class:`~studio.engines.anomalycontrol.weights.ModelBundle`."""
        return cls(bundle.blip2, bundle.blip_tokenizer, bundle.blip_image_config)

    @property
    def device(self) -> torch.device:
        return self.model.query_tokens.device

    @property
    def feature_dim(self) -> int:
        return int(self.model.config.qformer_config.hidden_size)

    @contextmanager
    def _attention_hooks(self, captured: list[torch.Tensor]) -> Iterator[None]:
        hooks = [layer.crossattention.attention.register_forward_hook(
                     lambda m, i, out: captured.append(out[1] if len(out) > 1 else None))
                 for layer in self.model.qformer.encoder.layer if layer.has_cross_attention]
        try:
            yield
        finally:
            for hook in hooks:
                hook.remove()

    def pixel_values(self, images: np.ndarray | list[np.ndarray]) -> torch.Tensor:
        """RGB uint8 (H, W, 3) image(s) -> normalised (B, 3, S, S) on the ViT's device and dtype."""
        batch = images if isinstance(images, list) else [images]
        tensor = self.processor(images=batch, return_tensors="pt")["pixel_values"]
        weight = self.model.vision_model.embeddings.patch_embedding.weight
        return tensor.to(device=weight.device, dtype=weight.dtype)

    def mask_grid(self, mask: np.ndarray) -> torch.Tensor:
        """A (H, W) mask as the fraction of each ViT patch it covers: (grid*grid,) float32 on the device."""
        resized = cv2.resize(mask.astype(np.float32), (self.image_size, self.image_size), interpolation=cv2.INTER_AREA)
        grid = cv2.resize(resized, (self.grid, self.grid), interpolation=cv2.INTER_AREA)
        return torch.from_numpy(np.clip(grid, 0.0, 1.0).reshape(-1)).to(self.device)

    @torch.no_grad()
    def encode_image(self, image: np.ndarray | list[np.ndarray]) -> torch.Tensor:
        """The frozen ViT tokens (B, 1 + patches, D_vision), in the Q-Former's dtype (fp32)."""
        out = self.model.vision_model(pixel_values=self.pixel_values(image)).last_hidden_state
        return out.to(self.model.query_tokens.dtype)

    def encode_text(self, text: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids and attention mask (1, T) of the reference text for the Q-Former's text input."""
        enc = self.tokenizer([text or ""], padding=False, truncation=True, max_length=self.max_text_tokens,
                             return_tensors="pt")
        return enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)

    def qformer(self, image_embeds: torch.Tensor, text: tuple[torch.Tensor, torch.Tensor]) -> CSMOutput:
        """Run the Q-Former's queries with the text over ``image_embeds``; differentiable w.r.t. ``image_embeds``."""
        input_ids, text_mask = text
        model = self.model
        batch = image_embeds.shape[0]
        queries = model.query_tokens.expand(batch, -1, -1)
        embeds = model.embeddings(input_ids=input_ids.expand(batch, -1), query_embeds=queries)
        attention_mask = torch.cat([torch.ones(queries.shape[:2], dtype=text_mask.dtype, device=text_mask.device),
                                    text_mask.expand(batch, -1)], dim=1)
        captured: list[torch.Tensor] = []
        with self._attention_hooks(captured):
            # Asked for explicitly: transformers 4.56 returns the attention module's weights (its out[1]) only
            # when asked; 5.x always does (and keeps its own recorder hooks once asked, which is harmless).
            out = model.qformer(query_embeds=embeds, query_length=queries.shape[1], attention_mask=attention_mask,
                                encoder_hidden_states=image_embeds, output_attentions=True)
        if not captured or any(not isinstance(a, torch.Tensor) or a.ndim != 4 for a in captured):
            raise RuntimeError("BLIP-2's Q-Former returned no cross-attention weights (eager attention is required).")
        return CSMOutput(features=out.last_hidden_state[:, : queries.shape[1]], cross_attentions=captured)

    @torch.no_grad()
    def match(self, images: list[np.ndarray], text: str) -> torch.Tensor:
        """BLIP-2 image-text matching: probability (B,) that each image shows ``text`` (the ITM head, as BLIP-2)."""
        features = self.qformer(self.encode_image(images), self.encode_text(text)).features
        head = self.model.itm_head
        logits = head(features.to(head.weight.dtype)).mean(dim=1)
        return logits.float().softmax(dim=-1)[:, 1]

    @staticmethod
    def patch_attention(cross_attentions: list[torch.Tensor]) -> torch.Tensor:
        """Attention over the image patches averaged over layers, heads and queries, CLS excluded: (B, patches)."""
        stacked = torch.stack([a.float().mean(dim=(1, 2)) for a in cross_attentions]).mean(dim=0)
        return stacked[:, 1:]

    @torch.no_grad()
    def __call__(self, image: np.ndarray, text: str) -> CSMOutput:
        """Plain CSM (no ASEA): features and cross-attention maps of ``image`` with ``text``."""
        return self.qformer(self.encode_image(image), self.encode_text(text))


def image_processor(config: dict[str, Any], image_size: int):
    """transformers' BLIP image processor with the checkpoint's settings; default PIL bicubic at ``image_size``."""
    try:
        from transformers import BlipImageProcessorPil as Processor  # transformers >= 5: the PIL implementation
    except ImportError:  # pragma: no cover - older transformers: BlipImageProcessor is the PIL one
        from transformers import BlipImageProcessor as Processor
    settings = {"size": {"height": image_size, "width": image_size}, "resample": 3,
                "image_mean": list(CLIP_MEAN), "image_std": list(CLIP_STD)}
    settings.update({k: v for k, v in config.items() if not k.startswith("_") and k not in
                     ("image_processor_type", "processor_class")})
    if isinstance(settings["size"], int):  # older configs give one side
        settings["size"] = {"height": settings["size"], "width": settings["size"]}
    return Processor(**settings)
