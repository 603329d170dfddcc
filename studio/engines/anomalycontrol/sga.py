"""SGA — Semantic Guided Adapter: decoupled cross-attention for the CSM feature.

The query-averaged CSM feature (768 for BLIP-2) is projected as the authors do: a linear map to
a 1024-d embedding (the width of the CLIP image embedding IP-Adapter reads), then IP-Adapter's
own image projection (linear to ``num_tokens`` (N=4) x cross-attention width, LayerNorm), so
IP-Adapter's released SD-1.5 weights can initialise it (:mod:`ip_adapter`). Every UNet
cross-attention layer then computes

    softmax(Q K_textᵀ) V_text  +  λ · softmax(Q K_sgᵀ) V_sg

with its own trainable ``to_k_sg`` / ``to_v_sg`` (initialised from the layer's ``to_k`` /
``to_v``). The SGA tokens travel as the last N tokens of ``encoder_hidden_states`` (as in
IP-Adapter), so the stock diffusers pipeline and CFG batching carry them unchanged.
λ = 0 skips the second term and is exactly the base UNet.

Only :class:`SGAdapter`'s parameters train (:meth:`SGAdapter.trainable_parameters`); the
processors are plain objects, so the UNet's own ``state_dict`` never changes.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from studio.errors import WeightsError

FORMAT_NAME = "anomalycontrol-sga"
FORMAT_VERSION = "2"
DEFAULT_NUM_TOKENS = 4
#: The embedding between the two projections: IP-Adapter SD-1.5's CLIP image-embedding width.
EMBED_DIM = 1024
#: The adapter header's list of the sha256 of its training images.
TRAINING_IMAGES_KEY = "training_images_sha256"
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


class ImageProjection(nn.Module):
    """IP-Adapter's image projection: embedding (B, embed_dim) -> N tokens (B, N, cross_attention_dim), LayerNorm."""

    def __init__(self, embed_dim: int, cross_attention_dim: int, num_tokens: int):
        super().__init__()
        self.num_tokens = num_tokens
        self.cross_attention_dim = cross_attention_dim
        self.proj = nn.Linear(embed_dim, num_tokens * cross_attention_dim)
        self.norm = nn.LayerNorm(cross_attention_dim)

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(embeds).reshape(-1, self.num_tokens, self.cross_attention_dim))


class SemanticProjection(nn.Module):
    """CSM feature (B, feature_dim) -> embedding (B, embed_dim) -> N SGA tokens, as the authors structure it."""

    def __init__(self, feature_dim: int, cross_attention_dim: int, num_tokens: int = DEFAULT_NUM_TOKENS,
                 embed_dim: int = EMBED_DIM):
        super().__init__()
        self.to_embed = nn.Linear(feature_dim, embed_dim)
        self.image_proj = ImageProjection(embed_dim, cross_attention_dim, num_tokens)

    def forward(self, feature: torch.Tensor, drop: torch.Tensor | None = None) -> torch.Tensor:
        """``drop`` (B,) bool zeroes those samples' embeddings: IP-Adapter's dropped (or absent) image."""
        embeds = self.to_embed(feature)
        if drop is not None:
            embeds = embeds * (~drop.to(embeds.device))[:, None].to(embeds.dtype)
        return self.image_proj(embeds)


class SGAttnProcessor:
    """Diffusers attention processor for one cross-attention layer with the decoupled SGA term."""

    def __init__(self, adapter: "SGAdapter", key: str):
        self.adapter = adapter
        self.key = key

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                 *args, **kwargs) -> torch.Tensor:
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch, channel, height * width).transpose(1, 2)
        n = self.adapter.num_tokens
        text, sg_tokens = encoder_hidden_states[:, :-n], encoder_hidden_states[:, -n:]
        batch = text.shape[0]
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, text.shape[1], batch)
            attention_mask = attention_mask.view(batch, attn.heads, -1, attention_mask.shape[-1])
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        if attn.norm_cross:
            text = attn.norm_encoder_hidden_states(text)

        query = _heads(attn.to_q(hidden_states), attn.heads)
        out = F.scaled_dot_product_attention(
            query, _heads(attn.to_k(text), attn.heads), _heads(attn.to_v(text), attn.heads),
            attn_mask=attention_mask, dropout_p=0.0, is_causal=False,
        )
        scale = self.adapter.scale
        if scale != 0:
            to_k_sg, to_v_sg = self.adapter.to_k_sg[self.key], self.adapter.to_v_sg[self.key]
            sg_tokens = sg_tokens.to(to_k_sg.weight.dtype)  # the adapter may train in fp32 under an fp16 UNet
            key_sg = _heads(to_k_sg(sg_tokens).to(query.dtype), attn.heads)
            value_sg = _heads(to_v_sg(sg_tokens).to(query.dtype), attn.heads)
            out = out + scale * F.scaled_dot_product_attention(query, key_sg, value_sg, dropout_p=0.0)

        hidden_states = out.transpose(1, 2).reshape(batch, -1, out.shape[1] * out.shape[3]).to(query.dtype)
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    batch, length, inner = x.shape
    return x.view(batch, length, heads, inner // heads).transpose(1, 2)


def _layer_key(processor_name: str) -> str:
    return processor_name.removesuffix(".processor").replace(".", "_")


class SGAdapter(nn.Module):
    """The trainable part of SGA: the projection and every layer's ``to_k_sg`` / ``to_v_sg``."""

    def __init__(self, feature_dim: int, cross_attention_dim: int, layers: dict[str, tuple[int, bool]],
                 num_tokens: int = DEFAULT_NUM_TOKENS, embed_dim: int = EMBED_DIM):
        """``layers`` maps a layer key to (inner width, whether its ``to_k``/``to_v`` have a bias), in the
        UNet's processor order (the order IP-Adapter numbers its layers in)."""
        super().__init__()
        self.feature_dim = feature_dim
        self.cross_attention_dim = cross_attention_dim
        self.num_tokens = num_tokens
        self.embed_dim = embed_dim
        self.projection = SemanticProjection(feature_dim, cross_attention_dim, num_tokens, embed_dim)
        self.to_k_sg = nn.ModuleDict({k: nn.Linear(cross_attention_dim, w, bias=b) for k, (w, b) in layers.items()})
        self.to_v_sg = nn.ModuleDict({k: nn.Linear(cross_attention_dim, w, bias=b) for k, (w, b) in layers.items()})
        #: λ, read by every processor at call time.
        self.scale: float = 1.0

    def tokens(self, feature: torch.Tensor, drop: torch.Tensor | None = None) -> torch.Tensor:
        """SGA tokens (B, N, cross_dim) from CSM features: (B, Q, D) query features or (B, D) already averaged.

        ``drop`` (B,) bool gives those samples the tokens of no image (training's condition dropout).
        """
        if feature.ndim == 3:
            feature = feature.mean(dim=1)
        param = self.projection.to_embed.weight
        return self.projection(feature.to(device=param.device, dtype=param.dtype), drop)

    def embedding_tokens(self, embeds: torch.Tensor) -> torch.Tensor:
        """Tokens (B, N, cross_dim) from an embedding (B, embed_dim) that skips ``to_embed``: IP-Adapter's
        CLIP image embedding in the ``ip-adapter`` guidance mode."""
        param = self.projection.to_embed.weight
        return self.projection.image_proj(embeds.to(device=param.device, dtype=param.dtype))

    def unconditional_tokens(self, batch: int = 1) -> torch.Tensor:
        """The tokens of no image (a zero embedding, as IP-Adapter): CFG's unconditional branch, dropout's target."""
        param = self.projection.to_embed.weight
        return self.projection.image_proj(torch.zeros(batch, self.embed_dim, device=param.device, dtype=param.dtype))

    def trainable_parameters(self) -> list[nn.Parameter]:
        """What training updates: the projection and all ``to_k_sg`` / ``to_v_sg``."""
        return list(self.parameters())

    @contextmanager
    def scaled(self, scale: float) -> Iterator["SGAdapter"]:
        """Temporarily set λ."""
        previous, self.scale = self.scale, float(scale)
        try:
            yield self
        finally:
            self.scale = previous

    def shapes(self) -> dict[str, list[int]]:
        return {k: list(v.shape) for k, v in self.state_dict().items()}


def cross_attention_layers(unet) -> dict[str, object]:
    """Processor name -> the diffusers ``Attention`` module, for every cross-attention layer of ``unet``."""
    modules = dict(unet.named_modules())
    found = {}
    for name in unet.attn_processors:
        attn = modules[name.removesuffix(".processor")]
        if getattr(attn, "is_cross_attention", False):
            found[name] = attn
    return found


def attach_sga(unet, feature_dim: int, num_tokens: int = DEFAULT_NUM_TOKENS, embed_dim: int = EMBED_DIM) -> SGAdapter:
    """Install SGA processors on every cross-attention layer of ``unet``; returns the adapter.

    ``to_k_sg`` / ``to_v_sg`` start as copies of each layer's ``to_k`` / ``to_v``; the adapter
    is created on the UNet's device and dtype. Self-attention layers keep their processors.
    """
    layers = cross_attention_layers(unet)
    if not layers:
        raise ValueError("The UNet has no cross-attention layers to attach SGA to.")
    spec = {_layer_key(n): (a.to_k.out_features, a.to_k.bias is not None) for n, a in layers.items()}
    cross_dim = next(iter(layers.values())).to_k.in_features
    param = next(unet.parameters())
    adapter = SGAdapter(feature_dim, cross_dim, spec, num_tokens, embed_dim).to(device=param.device, dtype=param.dtype)
    with torch.no_grad():
        for name, attn in layers.items():
            key = _layer_key(name)
            adapter.to_k_sg[key].load_state_dict(attn.to_k.state_dict())
            adapter.to_v_sg[key].load_state_dict(attn.to_v.state_dict())
    processors = dict(unet.attn_processors)
    for name in layers:
        processors[name] = SGAttnProcessor(adapter, _layer_key(name))
    unet.set_attn_processor(processors)
    return adapter


@contextmanager
def plain_attention(unet) -> Iterator[None]:
    """Temporarily give ``unet`` the stock diffusers processors (e.g. to benchmark plain inpainting)."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    saved = dict(unet.attn_processors)
    unet.set_attn_processor(AttnProcessor2_0())
    try:
        yield
    finally:
        unet.set_attn_processor(saved)


def save_adapter(adapter: SGAdapter, path: str | Path, *, training_images: list[str] | None = None) -> Path:
    """Write the adapter as one safetensors file with a JSON header of its shapes (and the sha256 of the images it
    was trained on, ``training_images``, so evaluation can refuse them)."""
    from safetensors.torch import save

    from studio.atomic import write_bytes

    path = Path(path)
    if path.suffix != ".safetensors":
        raise WeightsError(f"SGA checkpoints are saved as .safetensors files, not {path.name!r}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in adapter.state_dict().items()}
    metadata = {
        "format": FORMAT_NAME, "version": FORMAT_VERSION, "num_tokens": str(adapter.num_tokens),
        "feature_dim": str(adapter.feature_dim), "cross_attention_dim": str(adapter.cross_attention_dim),
        "embed_dim": str(adapter.embed_dim),
        "shapes": json.dumps(adapter.shapes(), sort_keys=True),
    }
    if training_images is not None:
        metadata[TRAINING_IMAGES_KEY] = json.dumps(sorted(training_images))
    return write_bytes(path, save(tensors, metadata=metadata))


def read_adapter_header(path: str | Path) -> dict[str, str]:
    """The checkpoint's metadata; refuses pickles and unreadable or truncated files with a :class:`WeightsError`."""
    from safetensors import safe_open

    path = refuse_pickles(path, "SGA checkpoint")
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise WeightsError(
            f"The SGA checkpoint {str(path)!r} is not a readable safetensors file ({short_reason(exc)}); "
            "it may be truncated: copy or train it again."
        ) from None
    if metadata.get("format") != FORMAT_NAME:
        raise WeightsError(f"The file {str(path)!r} is not an AnomalyControl SGA checkpoint (no '{FORMAT_NAME}' header).")
    if metadata.get("version") != FORMAT_VERSION:
        raise WeightsError(
            f"The SGA checkpoint {str(path)!r} is format version {metadata.get('version', '?')}; this release reads "
            f"version {FORMAT_VERSION} (the projection now has IP-Adapter's structure, 768 -> 1024 -> tokens). "
            "Train it again, e.g. starting from IP-Adapter: anomaly-studio train --init-ip-adapter ip-adapter_sd15.safetensors ..."
        )
    return metadata


def adapter_training_images(path: str | Path) -> set[str]:
    """The sha256 of the images ``path`` was trained on (empty when the adapter does not record them)."""
    try:
        return set(json.loads(read_adapter_header(path).get(TRAINING_IMAGES_KEY, "[]")))
    except json.JSONDecodeError:
        return set()


def refuse_pickles(path: str | Path, what: str) -> Path:
    """``path`` if it is an existing file that is not a pickle; else a :class:`WeightsError` (pickles can run code)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"The {what} {str(path)!r} does not exist.")
    with path.open("rb") as fh:
        head = fh.read(9)
    safetensors = head[8:9] == b"{"  # an 8-byte header length, then the JSON header
    if path.suffix.lower() in _PICKLE_SUFFIXES or (not safetensors and (head[:2] == b"PK" or head[:1] == b"\x80")):
        raise WeightsError(
            f"The {what} {str(path)!r} is a pickle/torch.save file; only .safetensors files "
            "are loaded (pickle files can run code). Convert it with safetensors.torch.save_file."
        )
    return path


def load_adapter(adapter: SGAdapter, path: str | Path) -> SGAdapter:
    """Load a checkpoint written by :func:`save_adapter` into ``adapter`` (shapes must match exactly)."""
    from safetensors import safe_open

    metadata = read_adapter_header(path)
    try:
        stored = json.loads(metadata.get("shapes", "{}"))
    except json.JSONDecodeError:
        stored = {}
    expected = adapter.shapes()
    if stored != expected:
        raise WeightsError(_mismatch_message(path, stored, expected))
    tensors = {}
    try:
        with safe_open(str(path), framework="pt") as fh:
            for name in fh.keys():
                tensors[name] = fh.get_tensor(name)
    except Exception as exc:
        raise WeightsError(
            f"The SGA checkpoint {str(path)!r} could not be read ({short_reason(exc)}); it may be truncated: copy or train it again."
        ) from None
    if {k: list(v.shape) for k, v in tensors.items()} != expected:
        raise WeightsError(_mismatch_message(path, {k: list(v.shape) for k, v in tensors.items()}, expected))
    adapter.load_state_dict(tensors, strict=True)
    return adapter


def _mismatch_message(path, stored: dict, expected: dict) -> str:
    missing = sorted(set(expected) - set(stored))
    differing = sorted(k for k in set(expected) & set(stored) if stored[k] != expected[k])
    detail = (
        f"{differing[0]} is {stored[differing[0]]} in the file but the model needs {expected[differing[0]]}"
        if differing else f"{len(missing)} tensor(s) missing (e.g. {missing[0]})" if missing
        else f"{len(set(stored) - set(expected))} unexpected tensor(s)"
    )
    return (
        f"The SGA checkpoint {str(path)!r} does not fit the loaded models: {detail}. "
        "It was trained for another base model or BLIP-2; use the checkpoint trained with these weights."
    )


def short_reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
