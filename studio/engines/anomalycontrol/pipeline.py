"""The ``anomalycontrol`` engine: SD-1.5 inpainting with SGA, guided by CSM/ASEA features.

One request runs, in order: CSM/ASEA on the reference (cached, so a preview followed by a
generate optimises once), the text encoder once for prompt + negative prompt, one VAE
encode of the work region, and ONE batched denoising call for all candidates (per-candidate
CPU generators, so candidate *i* depends only on its own seed). The model redraws a square work
region around the mask at its own resolution (:mod:`inpainting`, the same crop training uses),
pasted back and composited into the original through a Gaussian-blurred mask, so pixels outside
the blur's support are exactly the input's. The label is the sketched mask, or with
``label_threshold`` > 0 the sketched pixels that changed (:mod:`labels`). Each candidate is
scored by BLIP-2 image-text matching of its defect region against the prompt (:mod:`scoring`).
"""
from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from studio.engines.anomalycontrol.asea import run_asea
from studio.engines.anomalycontrol.csm import CrossModalSemantics
from studio.engines.anomalycontrol.inpainting import WorkRegion, encode_inpainting_inputs, work_region
from studio.engines.anomalycontrol.labels import candidate_label
from studio.engines.anomalycontrol.scoring import SCORE_METHOD, region_match
from studio.engines.anomalycontrol.weights import ModelBundle, load_bundle, quiet_libraries
from studio.errors import InputError
from studio.imaging import composite
from studio.engines.anomalycontrol import parameters as declared
from studio.types import AttentionTrace, Candidate, EngineParameter, ProgressFn, SynthesisRequest, array_sha256

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


#: ZeroGPU slot sizing: fixed cost (moving the models onto the slot's GPU, first-call set-up), seconds per
#: denoising step of one candidate (SD-1.5 at 512² with CFG, fp16, on a shared A100/H200-class GPU,
#: conservatively), seconds per ASEA step, a safety factor, and the slot limits.
GPU_FIXED_S, GPU_STEP_S, GPU_ASEA_STEP_S, GPU_MARGIN, GPU_MIN_S, GPU_MAX_S = 20.0, 0.05, 0.5, 1.5, 30, 180


def gpu_seconds(request: SynthesisRequest, work: str = "generate") -> int:
    """Seconds of GPU ``work`` takes on ``request``: candidates x denoising steps plus ASEA (explain: ASEA only)."""
    p = request.params
    seconds = p["asea_steps"] * GPU_ASEA_STEP_S
    if work == "generate":
        seconds += request.num * p["steps"] * p["strength"] * GPU_STEP_S
    return int(min(GPU_MAX_S, max(GPU_MIN_S, GPU_FIXED_S + GPU_MARGIN * seconds)))


class InpaintPipeline(StableDiffusionInpaintPipeline):
    """diffusers' SD inpainting pipeline, except that generators are not handed to the scheduler step.

    Our sampler is deterministic (Euler with s_churn = 0 never uses step noise); handing it CPU
    generators would copy fresh noise host->device at every step, a sync in the loop.
    """

    def prepare_extra_step_kwargs(self, generator, eta):  # noqa: D102 - see class docstring
        return {}


class AnomalyControlEngine:
    """The paper's method behind the studio's engine protocol (one instance per process, locked)."""

    name = "anomalycontrol"
    can_explain = True
    #: Registry facts: it runs on model weights (``available`` / ``fetch`` say where they stand).
    needs_weights = True

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
        self.csm = CrossModalSemantics.from_bundle(bundle)
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
        """The request parameters this engine uses (:mod:`.parameters`)."""
        return declared.PARAMETERS

    @classmethod
    def declared_parameters(cls) -> tuple[EngineParameter, ...]:
        """Every parameter any instance may use (the CLI flags and batch keys; no weights loaded)."""
        return declared.PARAMETERS

    @classmethod
    def available(cls) -> bool:
        """Whether the real (sd15) weights are on this machine (file checks only)."""
        from studio.engines.anomalycontrol.weights import sd15_available

        return sd15_available()

    @classmethod
    def fetch(cls, progress: Any = None) -> str:
        """Fetch what :meth:`available` lacks into the hub cache; returns the weight profile to load."""
        from studio.engines.anomalycontrol.hub import fetch_weights

        return "sd15" if cls.available() else fetch_weights(progress=progress).weights

    def gpu_seconds(self, request: SynthesisRequest, work: str = "generate") -> int:
        """The GPU slot (ZeroGPU) to ask for ``work`` (generate or explain) on ``request``."""
        return gpu_seconds(request.using(self.parameters()), work)

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
        request = request.using(self.parameters())
        with self._lock:
            _, trace = self._semantics(request, progress)
        return replace(trace, steps=list(trace.steps))

    def generate(self, request: SynthesisRequest, progress: ProgressFn | None = None) -> list[Candidate]:
        """``request.num`` candidates from one batched denoising call."""
        request = request.using(self.parameters())
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
        region = work_region(request.mask, b.resolution, sigma)
        crop, crop_mask = region.crop(request.image), region.crop_mask(request.mask)
        device, dtype = b.device, b.dtype

        image_t = torch.from_numpy(crop).permute(2, 0, 1)[None].to(device=device, dtype=dtype) / 127.5 - 1.0
        mask_t = torch.from_numpy(crop_mask.astype(np.float32))[None, None].to(device=device, dtype=dtype)
        inputs = encode_inpainting_inputs(b.vae, image_t, mask_t)

        scale, sga_reason = self._sga_scale(request, features)
        text, negative = self._text_embeddings(request.prompt)
        # CFG's unconditional branch gets the tokens of no image, as IP-Adapter and training's image dropout.
        unconditional = self.adapter.unconditional_tokens().to(text.dtype)
        sg_tokens = self.adapter.tokens(features).to(text.dtype) if scale > 0 else unconditional
        prompt_embeds = torch.cat([text, sg_tokens], dim=1)
        negative_embeds = torch.cat([negative, unconditional], dim=1)

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
                image=inputs.image_latents, mask_image=inputs.pixel_mask.float().cpu(),  # as diffusers expects
                masked_image_latents=inputs.masked_image_latents, prompt_embeds=prompt_embeds,
                negative_prompt_embeds=negative_embeds, height=region.size, width=region.size,
                num_images_per_prompt=request.num, generator=generators, strength=float(params["strength"]),
                num_inference_steps=int(params["steps"]), guidance_scale=float(params["guidance"]),
                output_type="pt", callback_on_step_end=on_step,
            ).images
        pixels = (images.float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

        extra = self._metadata(request, region, scale, sga_reason, trace, total)
        outputs = [composite(request.image, region.paste(request.image, generated), request.mask, sigma)
                   for generated in pixels]
        scores = region_match(self.csm, outputs, request.mask, request.prompt or request.reference_text)
        candidates = []
        for seed, out, score in zip(seeds, outputs, scores):
            label, label_meta = candidate_label(request.image, out, request.mask, float(params["label_threshold"]))
            metadata = request.metadata(self.name, self.profile, seed, **extra, label=label_meta,
                                        score={"value": score, "method": SCORE_METHOD})
            candidates.append(Candidate(image=out, mask=label, seed=seed, metadata=metadata))
        return candidates

    def _metadata(self, request: SynthesisRequest, region: WorkRegion, scale: float, sga_reason: str | None,
                  trace: AttentionTrace, total: int) -> dict[str, Any]:
        b = self.bundle
        return {
            "negative_prompt": self.negative_prompt,
            "scheduler": SCHEDULER_NAME,
            "denoising_steps": total,
            "model_resolution": b.resolution,
            "work_region": {"box": list(region.box), "size": [region.size, region.size], "scale": round(region.scale, 6)},
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
