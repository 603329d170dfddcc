"""The ``anomalycontrol`` engine: SD-1.5 inpainting with SGA, guided by CSM/ASEA features.

One request runs, in order: CSM/ASEA on the reference (cached, so a preview followed by a
generate optimises once), the text encoder once for prompt + negative prompt, one VAE
encode of the work region, and ONE batched denoising call for all candidates (per-candidate
CPU generators, so candidate *i* depends only on its own seed). Images larger than the
model's resolution are inpainted in a crop around the mask and pasted back; the result is
composited into the original through a Gaussian-blurred mask, so pixels outside the blur's
support are exactly the input's. The label mask is the sketched mask.
"""
from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from studio.engines.anomalycontrol.asea import run_asea
from studio.engines.anomalycontrol.csm import CrossModalSemantics
from studio.engines.anomalycontrol.weights import ModelBundle, load_bundle, quiet_libraries
from studio.errors import InputError
from studio.imaging import composite, mask_bbox
from studio.types import PARAMETERS, AttentionTrace, Candidate, EngineParameter, ProgressFn, SynthesisRequest, array_sha256

DEFAULT_NEGATIVE_PROMPT = (
    "blurry, low quality, lowres, cartoon, drawing, painting, text, watermark, deformed, oversaturated"
)
SCHEDULER_NAME = "EulerDiscrete (DDIM-equivalent, deterministic)"
#: How many ASEA results (per reference, mask, text and settings) stay cached.
ASEA_CACHE_SIZE = 8
#: Batches of at least this many candidates decode through the VAE one image at a time (peak memory).
VAE_SLICE_FROM = int(os.environ.get("ANOMALY_STUDIO_VAE_SLICE_FROM", "5"))

with quiet_libraries():
    from diffusers import StableDiffusionInpaintPipeline


class InpaintPipeline(StableDiffusionInpaintPipeline):
    """diffusers' SD inpainting pipeline, except that generators are not handed to the scheduler step.

    Our sampler is deterministic (Euler with s_churn = 0 never uses step noise); handing it CPU
    generators would copy fresh noise host->device at every step, a sync in the loop.
    """

    def prepare_extra_step_kwargs(self, generator, eta):  # noqa: D102 - see class docstring
        return {}


@dataclass
class InpaintingInputs:
    """What the 9-channel UNet reads besides the noisy latents (all scaled latents, mask at latent size)."""

    image_latents: torch.Tensor
    mask: torch.Tensor
    masked_image_latents: torch.Tensor


def encode_inpainting_inputs(vae, image: torch.Tensor, mask: torch.Tensor, *, sample: bool = False,
                             generator: torch.Generator | None = None) -> InpaintingInputs:
    """Encode image (B, 3, H, W) in [-1, 1] and its masked version in ONE VAE call; mask is (B, 1, H, W) in {0, 1}.

    Inference uses the latent mean (``sample=False``): no noise is drawn, so candidates
    depend only on their seeds. Training may sample (``sample=True``) as diffusers does.
    """
    batch = image.shape[0]
    masked = image * (mask < 0.5)
    dist = vae.encode(torch.cat([image, masked]).to(vae.dtype)).latent_dist
    latents = (dist.sample(generator) if sample else dist.mode()) * vae.config.scaling_factor
    mask_latent = F.interpolate(mask.float(), size=latents.shape[-2:]).to(latents.dtype)
    return InpaintingInputs(latents[:batch], mask_latent, latents[batch:])


@dataclass
class WorkRegion:
    """The part of the image the model redraws (x0, y0, x1, y1; end-exclusive) and the size it works at (w, h)."""

    box: tuple[int, int, int, int]
    size: tuple[int, int]


def work_region(mask: np.ndarray, resolution: int, multiple: int, blur_sigma: float) -> WorkRegion:
    """Whole image when it fits the model's resolution, else a crop around the mask (with room for the blur)."""
    height, width = mask.shape
    if width <= resolution and height <= resolution:
        box = (0, 0, width, height)
    else:
        x0, y0, x1, y1 = mask_bbox(mask)
        margin = int(math.ceil(3 * blur_sigma)) + max(8, max(x1 - x0, y1 - y0) // 4)
        side = max(resolution, x1 - x0 + 2 * margin, y1 - y0 + 2 * margin)
        crop_w, crop_h = min(side, width), min(side, height)
        left = int(np.clip(round((x0 + x1 - crop_w) / 2), 0, width - crop_w))
        top = int(np.clip(round((y0 + y1 - crop_h) / 2), 0, height - crop_h))
        box = (left, top, left + crop_w, top + crop_h)
    crop_w, crop_h = box[2] - box[0], box[3] - box[1]
    scale = resolution / max(crop_w, crop_h)
    size = tuple(max(multiple, int(round(d * scale / multiple)) * multiple) for d in (crop_w, crop_h))
    return WorkRegion(box=box, size=size)  # type: ignore[arg-type]


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    shrinking = size[0] * size[1] < image.shape[0] * image.shape[1]
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


class AnomalyControlEngine:
    """The paper's method behind the studio's engine protocol (one instance per process, locked)."""

    name = "anomalycontrol"
    can_explain = True

    def __init__(self, bundle: ModelBundle, *, compile_unet: bool | None = None):
        self.bundle = bundle
        self.profile = bundle.profile
        self.adapter = bundle.adapter
        self.negative_prompt = DEFAULT_NEGATIVE_PROMPT
        self.pipe = InpaintPipeline(
            vae=bundle.vae, text_encoder=bundle.text_encoder, tokenizer=bundle.tokenizer, unet=bundle.unet,
            scheduler=bundle.scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
        )
        self.pipe.set_progress_bar_config(disable=True)
        self.csm = CrossModalSemantics(bundle.blip2, bundle.blip_tokenizer, image_size=bundle.blip_image_size,
                                       mean=bundle.blip_mean, std=bundle.blip_std)
        self._lock = threading.Lock()
        self._asea_cache: OrderedDict[tuple, tuple[torch.Tensor, AttentionTrace]] = OrderedDict()
        if compile_unet is None:
            compile_unet = os.environ.get("ANOMALY_STUDIO_COMPILE", "") not in ("", "0", "false", "False")
        self.compiled = bool(compile_unet)
        if self.compiled:
            bundle.unet.compile(dynamic=False)

    @classmethod
    def load(cls, weights: str | None = None, **kwargs: Any) -> "AnomalyControlEngine":
        """Load a weight profile (``tiny``, ``sd15-random``, ``sd15``) or a folder; raises WeightsError."""
        compile_unet = kwargs.pop("compile_unet", None)
        return cls(load_bundle(weights, **kwargs), compile_unet=compile_unet)

    # ------------------------------------------------------------------ protocol

    @property
    def label(self) -> str:
        return f"anomalycontrol · {self.profile}"

    @property
    def hint(self) -> str:
        return "" if self.bundle.sga_trained else "SGA is off: train or fetch an adapter (see weights/README.md)."

    def parameters(self) -> tuple[EngineParameter, ...]:
        """Every request parameter drives the diffusion pipeline."""
        return tuple(PARAMETERS.values())

    def status(self) -> str:
        b = self.bundle
        line = f"anomalycontrol · weights {self.profile} · {b.device.type} {str(b.dtype).removeprefix('torch.')}"
        if not b.sga_trained:
            line += " · SGA off (no checkpoint: see weights/README.md)"
        if b.note:
            line += f" · {b.note}"
        return line

    def explain(self, request: SynthesisRequest, progress: ProgressFn | None = None) -> AttentionTrace:
        """ASEA's attention map before and after each step (cached for the following ``generate``)."""
        with self._lock:
            _, trace = self._semantics(request, progress)
        return replace(trace, steps=list(trace.steps))

    def generate(self, request: SynthesisRequest, progress: ProgressFn | None = None) -> list[Candidate]:
        """``request.num`` candidates from one batched denoising call."""
        steps, strength = int(request.params["steps"]), float(request.params["strength"])
        if min(int(steps * strength), steps) < 1:
            raise InputError(
                f"With strength {strength:g}, {steps} step(s) leave nothing to denoise; "
                f"use at least {math.ceil(1 / strength)} steps."
            )
        with self._lock:
            features, trace = self._semantics(request, progress)
            with torch.no_grad():
                return self._generate(request, features, trace, progress)

    # ------------------------------------------------------------------ internals

    def _semantics(self, request: SynthesisRequest, progress: ProgressFn | None) -> tuple[torch.Tensor | None, AttentionTrace]:
        """CSM features of the reference (after ASEA when it has a mask) and the trace; cached."""
        if request.reference is None:
            return None, AttentionTrace(skipped="no reference image: CSM and ASEA need a reference anomaly",
                                        note=self.bundle.note)
        steps, lr = int(request.params["asea_steps"]), float(request.params["asea_lr"])
        key = (array_sha256(request.reference), array_sha256(request.reference_mask), request.reference_text, steps, lr)
        hit = self._asea_cache.get(key)
        if hit is not None:
            self._asea_cache.move_to_end(key)
            return hit
        if request.reference_mask is None or not request.reference_mask.any():
            features = self.csm(request.reference, request.reference_text).features
            trace = AttentionTrace(skipped="no reference mask: ASEA needs the anomaly's region in the reference image",
                                   note=self.bundle.note)
        else:
            result = run_asea(self.csm, request.reference, request.reference_mask, request.reference_text,
                              steps=steps, lr=lr, progress=progress, note=self.bundle.note)
            features, trace = result.features, result.trace
        self._asea_cache[key] = (features, trace)
        while len(self._asea_cache) > ASEA_CACHE_SIZE:
            self._asea_cache.popitem(last=False)
        return features, trace

    def _text_embeddings(self, prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt and negative prompt through the text encoder in one call: (1, T, D) each."""
        tok = self.bundle.tokenizer
        ids = tok([prompt, self.negative_prompt], padding="max_length", max_length=tok.model_max_length,
                  truncation=True, return_tensors="pt").input_ids.to(self.bundle.device)
        embeds = self.bundle.text_encoder(ids)[0]
        return embeds[:1], embeds[1:]

    def _sga_scale(self, request: SynthesisRequest, features: torch.Tensor | None) -> tuple[float, str | None]:
        requested = float(request.params["sga_scale"])
        if features is None:
            return 0.0, "no reference image"
        if not self.bundle.sga_trained:
            return 0.0, "no SGA checkpoint (see weights/README.md)"
        if requested == 0:
            return 0.0, "sga_scale is 0"
        return requested, None

    def _generate(self, request: SynthesisRequest, features: torch.Tensor | None, trace: AttentionTrace,
                  progress: ProgressFn | None) -> list[Candidate]:
        b, params = self.bundle, request.params
        sigma = float(params["blur_sigma"])
        region = work_region(request.mask, b.resolution, b.size_multiple, sigma)
        x0, y0, x1, y1 = region.box
        crop = _resize(request.image[y0:y1, x0:x1], region.size)
        crop_mask = cv2.resize(request.mask[y0:y1, x0:x1].astype(np.float32), region.size,
                               interpolation=cv2.INTER_AREA) > 0
        device, dtype = b.device, b.dtype

        image_t = torch.from_numpy(crop).permute(2, 0, 1)[None].to(device=device, dtype=dtype) / 127.5 - 1.0
        mask_cpu = torch.from_numpy(crop_mask.astype(np.float32))[None, None]
        mask_t = mask_cpu.to(device=device, dtype=dtype)
        inputs = encode_inpainting_inputs(b.vae, image_t, mask_t)

        scale, sga_reason = self._sga_scale(request, features)
        text, negative = self._text_embeddings(request.prompt)
        zero = self.adapter.zero_tokens().to(text.dtype)
        sg_tokens = self.adapter.tokens(features).to(text.dtype) if scale > 0 else zero
        prompt_embeds = torch.cat([text, sg_tokens], dim=1)
        negative_embeds = torch.cat([negative, zero], dim=1)   # CFG: the unconditional branch sees no SGA

        seeds = request.candidate_seeds()
        generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
        total = min(int(params["steps"] * params["strength"]), int(params["steps"]))

        def on_step(pipe, i, t, tensors):
            if progress is not None:
                progress(i + 1, total, "denoising")
            return {}

        if request.num >= VAE_SLICE_FROM:
            b.vae.enable_slicing()
        else:
            b.vae.disable_slicing()
        with self.adapter.scaled(scale):
            images = self.pipe(
                image=inputs.image_latents, mask_image=mask_cpu,
                masked_image_latents=inputs.masked_image_latents, prompt_embeds=prompt_embeds,
                negative_prompt_embeds=negative_embeds, height=region.size[1], width=region.size[0],
                num_images_per_prompt=request.num, generator=generators, strength=float(params["strength"]),
                num_inference_steps=int(params["steps"]), guidance_scale=float(params["guidance"]),
                output_type="pt", callback_on_step_end=on_step,
            ).images
        pixels = (images.float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

        label = request.mask.astype(np.uint8) * 255
        extra = self._metadata(request, region, scale, sga_reason, trace, total)
        candidates = []
        for seed, generated in zip(seeds, pixels):
            full = request.image.copy()
            full[y0:y1, x0:x1] = _resize(generated, (x1 - x0, y1 - y0))
            out = composite(request.image, full, request.mask, sigma)
            candidates.append(Candidate(image=out, mask=label.copy(), seed=seed,
                                        metadata=request.metadata(self.name, self.profile, seed, **extra)))
        return candidates

    def _metadata(self, request: SynthesisRequest, region: WorkRegion, scale: float, sga_reason: str | None,
                  trace: AttentionTrace, total: int) -> dict[str, Any]:
        b = self.bundle
        return {
            "negative_prompt": self.negative_prompt,
            "scheduler": SCHEDULER_NAME,
            "denoising_steps": total,
            "model_resolution": b.resolution,
            "work_region": {"box": list(region.box), "size": list(region.size)},
            "device": b.device.type,
            "dtype": str(b.dtype).removeprefix("torch."),
            "sga": {
                "active": scale > 0, "scale": scale, "requested_scale": float(request.params["sga_scale"]),
                "num_tokens": self.adapter.num_tokens, "checkpoint": b.sga_source, "off_reason": sga_reason,
            },
            "asea": {
                "ran": bool(trace.steps) and trace.skipped is None,
                "steps": int(request.params["asea_steps"]), "lr": float(request.params["asea_lr"]),
                "inmask_fraction": [round(f, 6) for f in trace.inmask_fractions],
                "skipped": trace.skipped,
            },
            "warnings": list(b.warnings),
            "compiled_unet": self.compiled,
        }

    # ------------------------------------------------------------------ helpers for benchmarks and training

    def plain_pipeline(self) -> InpaintPipeline:
        """A pipeline sharing these models, for plain-inpainting comparisons (wrap calls in ``sga.plain_attention``)."""
        pipe = InpaintPipeline(**{k: v for k, v in self.pipe.components.items()})
        pipe.set_progress_bar_config(disable=True)
        return pipe
