"""CSM — Cross-modal Semantic Modeling on a frozen BLIP-2 (``Blip2ForImageTextRetrieval``).

The ViT encodes the reference image ``I_a`` once; the Q-Former runs its learnt query tokens
together with the reference text ``T_a`` (text input, as in BLIP-2's image-text matching)
and cross-attends to the image tokens. Its query outputs (num_query_tokens x hidden, 32 x 768
for ViT-g) are the cross-modal semantic feature; its cross-attention weights over the
patch grid are what ASEA steers and the studio previews.

Everything here is frozen and runs without gradients except through ``image_embeds`` (the
ViT tokens plus ASEA's guidance variable), so ASEA can differentiate through the Q-Former.
"""
from __future__ import annotations

from dataclasses import dataclass

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

    def __init__(self, blip2, tokenizer, *, image_size: int | None = None,
                 mean: tuple[float, ...] = CLIP_MEAN, std: tuple[float, ...] = CLIP_STD, max_text_tokens: int = 35):
        self.model = blip2.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        vision = blip2.config.vision_config
        self.image_size = int(image_size or vision.image_size)
        self.patch_size = int(vision.patch_size)
        self.grid = self.image_size // self.patch_size
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)
        self.max_text_tokens = max_text_tokens
        # Cross-attention weights only come back from the eager path; the ViT keeps SDPA.
        self.model.qformer.set_attn_implementation("eager")
        self._captured: list[torch.Tensor] = []
        self._hooks = [
            layer.crossattention.attention.register_forward_hook(self._capture)
            for layer in self.model.qformer.encoder.layer if layer.has_cross_attention
        ]

    def close(self) -> None:
        """Remove the attention hooks from the shared BLIP-2 model."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []

    @property
    def device(self) -> torch.device:
        return self.model.query_tokens.device

    @property
    def feature_dim(self) -> int:
        return int(self.model.config.qformer_config.hidden_size)

    def _capture(self, module, inputs, output) -> None:
        self._captured.append(output[1])

    def pixel_values(self, image: np.ndarray) -> torch.Tensor:
        """RGB uint8 (H, W, 3) -> normalised (1, 3, S, S) on the ViT's device and dtype (bicubic resize)."""
        resized = cv2.resize(image, (self.image_size, self.image_size), interpolation=cv2.INTER_CUBIC)
        array = (resized.astype(np.float32) / 255.0 - self.mean) / self.std
        tensor = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None]
        weight = self.model.vision_model.embeddings.patch_embedding.weight
        return tensor.to(device=weight.device, dtype=weight.dtype)

    def mask_grid(self, mask: np.ndarray) -> torch.Tensor:
        """A (H, W) mask as the fraction of each ViT patch it covers: (grid*grid,) float32 on the device."""
        resized = cv2.resize(mask.astype(np.float32), (self.image_size, self.image_size), interpolation=cv2.INTER_AREA)
        grid = cv2.resize(resized, (self.grid, self.grid), interpolation=cv2.INTER_AREA)
        return torch.from_numpy(np.clip(grid, 0.0, 1.0).reshape(-1)).to(self.device)

    @torch.no_grad()
    def encode_image(self, image: np.ndarray) -> torch.Tensor:
        """The frozen ViT tokens (1, 1 + patches, D_vision), in the Q-Former's dtype (fp32)."""
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
        queries = model.query_tokens.expand(image_embeds.shape[0], -1, -1)
        embeds = model.embeddings(input_ids=input_ids, query_embeds=queries)
        attention_mask = torch.cat([torch.ones(queries.shape[:2], dtype=text_mask.dtype, device=text_mask.device),
                                    text_mask], dim=1)
        self._captured = []
        out = model.qformer(query_embeds=embeds, query_length=queries.shape[1], attention_mask=attention_mask,
                            encoder_hidden_states=image_embeds)
        captured, self._captured = self._captured, []
        if not captured or any(a is None for a in captured):
            raise RuntimeError("BLIP-2's Q-Former returned no cross-attention weights (eager attention is required).")
        return CSMOutput(features=out.last_hidden_state[:, : queries.shape[1]], cross_attentions=captured)

    @staticmethod
    def patch_attention(cross_attentions: list[torch.Tensor]) -> torch.Tensor:
        """Attention over the image patches averaged over layers, heads and queries, CLS excluded: (B, patches)."""
        stacked = torch.stack([a.float().mean(dim=(1, 2)) for a in cross_attentions]).mean(dim=0)
        return stacked[:, 1:]

    @torch.no_grad()
    def __call__(self, image: np.ndarray, text: str) -> CSMOutput:
        """Plain CSM (no ASEA): features and cross-attention maps of ``image`` with ``text``."""
        return self.qformer(self.encode_image(image), self.encode_text(text))
