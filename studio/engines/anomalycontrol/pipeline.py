"""The ``anomalycontrol`` engine: SD-1.5 inpainting guided by the reference in one of three modes.

Guidance modes (:attr:`ModelBundle.guidance`, chosen by what is on disk and named in the status line,
the label, every candidate's metadata and so in exports):

- ``sga``: the paper. CSM/ASEA on the reference (cached, so a preview followed by a generate optimises
  once) -> SGA tokens, weighted by ``sga_scale``;
- ``ip-adapter``: reference guidance without training. The reference cut to its mask -> IP-Adapter's
  CLIP image embedding -> its tokens in the same decoupled attention, weighted by ``ip_adapter_scale``
  (0 = plain inpainting); ASEA does not run in generate (its features are not used);
- ``text``: plain inpainting with the target prompt; ASEA does not run in generate.

ASEA's attention preview (:meth:`explain`) works in every mode. One request runs the text encoder once
for prompt + negative prompt, one VAE encode of the work region, and the denoising in chunks of at most
``unet_chunk`` candidates per UNet call (CFG doubles the batch), each candidate with its own CPU
generator, so candidate *i* depends only on its own seed. The model redraws a square work region around
the mask at its own resolution (:mod:`inpainting`, the same crop training uses), pasted back and
composited into the original through a Gaussian-blurred mask, so pixels outside the blur's support are
exactly the input's. The label is the sketched mask, or with ``label_threshold`` > 0 the sketched pixels
that changed (:mod:`labels`). Each candidate is scored by BLIP-2 image-text matching of its defect
region against the prompt (:mod:`scoring`).
"""
from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from studio.engines.anomalycontrol.asea import run_asea
from studio.engines.anomalycontrol.csm import CrossModalSemantics
from studio.engines.anomalycontrol.inpainting import WorkRegion, encode_inpainting_inputs, work_region
from studio.engines.anomalycontrol.ip_adapter import ReferenceImageEncoder
from studio.engines.anomalycontrol.labels import candidate_label
from studio.engines.anomalycontrol.models import ModelBundle, load_bundle, quiet_libraries
from studio.engines.anomalycontrol.scoring import SCORE_METHOD, region_match
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
#: At most this many candidates per UNet call (x2 with CFG): 4 keeps SD-1.5 at 512² within a 16 GB GPU.
UNET_CHUNK_ENV, DEFAULT_UNET_CHUNK = "ANOMALY_STUDIO_UNET_CHUNK", 4
#: The scale parameter of each mode's reference tokens (text mode has none).
SCALE_PARAMETER = {"sga": "sga_scale", "ip-adapter": "ip_adapter_scale"}
#: GPU work estimates (seconds, SD-1.5 at 512² with CFG in fp16 on an A100/H200-class GPU, conservative):
#: one denoising step of one candidate, one ASEA step, one BLIP-2 score, one CLIP image encoding.
GPU_STEP_S, GPU_ASEA_STEP_S, GPU_SCORE_S, GPU_CLIP_S = 0.05, 0.5, 0.05, 0.1
#: ZeroGPU slot sizing: fixed cost (moving the models onto the slot's GPU, first-call set-up), a safety
#: factor on the work's estimate, and the slot limits.
GPU_FIXED_S, GPU_MARGIN, GPU_MIN_S, GPU_MAX_S = 20.0, 1.5, 30, 180

with quiet_libraries():
    from diffusers import StableDiffusionInpaintPipeline


class InpaintPipeline(StableDiffusionInpaintPipeline):
    """diffusers' SD inpainting pipeline, except that generators are not handed to the scheduler step.

    Our sampler is deterministic (Euler with s_churn = 0 never uses step noise); handing it CPU
    generators would copy fresh noise host->device at every step, a sync in the loop.
    """

    def prepare_extra_step_kwargs(self, generator, eta):  # noqa: D102 - see class docstring
        return {}


@dataclass(frozen=True)
class Guidance:
    """What steers the pixels in one request: the mode, λ (0 = none) and why it is off."""

    mode: str
    scale: float
    requested: float | None
    off_reason: str | None


def unet_chunk_from_env() -> int:
    """``ANOMALY_STUDIO_UNET_CHUNK`` (a positive integer), else the default."""
    raw = os.environ.get(UNET_CHUNK_ENV, "").strip()
    if not raw:
        return DEFAULT_UNET_CHUNK
    if not raw.isdigit() or int(raw) < 1:
        raise InputError(f"{UNET_CHUNK_ENV} must be a positive whole number of candidates, not {raw!r}.")
    return int(raw)


class AnomalyControlEngine:
    """The paper's method behind the studio's engine protocol (one instance per process, locked)."""

    name = "anomalycontrol"
    can_explain = True
    #: Registry facts: it runs on model weights (``available`` / ``fetch`` say where they stand).
    needs_weights = True
    #: Its model work belongs on a GPU (on ZeroGPU: inside ``spaces.GPU``, sized by :meth:`gpu_seconds`).
    needs_gpu = True

    def __init__(self, bundle: ModelBundle, *, compile_unet: bool | None = None, unet_chunk: int | None = None):
        self.bundle = bundle
        self.profile = bundle.profile
        self.guidance = bundle.guidance
        self.adapter = bundle.adapter
        self.negative_prompt = DEFAULT_NEGATIVE_PROMPT
        self.unet_chunk = int(unet_chunk) if unet_chunk is not None else unet_chunk_from_env()
        if self.unet_chunk < 1:
            raise InputError(f"unet_chunk must be at least 1 candidate, not {self.unet_chunk}.")
        self.pipe = InpaintPipeline(
            vae=bundle.vae, text_encoder=bundle.text_encoder, tokenizer=bundle.tokenizer, unet=bundle.unet,
            scheduler=bundle.scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
        )
        self.pipe.set_progress_bar_config(disable=True)
        self.csm = CrossModalSemantics.from_bundle(bundle)
        self.reference_encoder = ReferenceImageEncoder(bundle.image_encoder) if bundle.image_encoder is not None else None
        self._lock = threading.Lock()
        self._asea_cache: OrderedDict[tuple, tuple[torch.Tensor, AttentionTrace]] = OrderedDict()
        if compile_unet is None:
            compile_unet = os.environ.get("ANOMALY_STUDIO_COMPILE", "") not in ("", "0", "false", "False")
        self.compiled = bool(compile_unet)
        if self.compiled:
            bundle.unet.compile(dynamic=False)

    @classmethod
    def load(cls, weights: str | None = None, **kwargs: Any) -> "AnomalyControlEngine":
        """Load a weight profile (``tiny``, ``sd15-random``, ``sd15``) or a folder; raises WeightsError.

        Keyword arguments: ``device``, ``dtype``, ``sga`` (an adapter: file, folder or hub id) go to
        :func:`models.load_bundle`; ``compile_unet`` and ``unet_chunk`` to the engine.
        """
        engine_kwargs = {k: kwargs.pop(k) for k in ("compile_unet", "unet_chunk") if k in kwargs}
        return cls(load_bundle(weights, **kwargs), **engine_kwargs)

    # ------------------------------------------------------------------ protocol

    @property
    def label(self) -> str:
        return f"anomalycontrol · {self.profile} · {self.guidance}"

    @property
    def hint(self) -> str:
        if self.guidance == "text":
            return ("Guidance mode text: the reference does not steer the pixels. Fetch IP-Adapter "
                    "(anomaly-studio fetch --ip-adapter) or train an SGA adapter (see weights/README.md).")
        if self.guidance == "ip-adapter":
            return ("Guidance mode ip-adapter: IP-Adapter's public weights, not trained on anomalies; "
                    "train an SGA adapter for the paper's method (see weights/README.md).")
        return ""

    @property
    def uses_semantics(self) -> bool:
        """Whether generate needs the CSM features (and so runs ASEA): only the ``sga`` mode."""
        return self.guidance == "sga"

    def parameters(self) -> tuple[EngineParameter, ...]:
        """The request parameters this mode uses: λ only in ``sga``, the IP-Adapter scale only in ``ip-adapter``;
        ASEA's in every mode, since they drive the attention preview (:meth:`explain`), which runs in every
        mode (``generate`` runs ASEA only in ``sga``)."""
        unused = {name for mode, name in SCALE_PARAMETER.items() if mode != self.guidance}
        return tuple(p for p in declared.PARAMETERS if p.name not in unused)

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
        """The GPU slot (ZeroGPU) to ask for ``work`` (generate or explain) on ``request``: the work's
        estimate (:meth:`gpu_work_seconds`) with a safety margin, the fixed cost and the slot limits."""
        seconds = self.gpu_work_seconds(request, explain=work == "explain")
        return int(min(GPU_MAX_S, max(GPU_MIN_S, GPU_FIXED_S + GPU_MARGIN * seconds)))

    def gpu_work_seconds(self, request: SynthesisRequest, *, explain: bool = False) -> float:
        """Estimated GPU work of one ``generate`` (or, with ``explain``, one attention preview), in seconds.

        Honest per mode: ASEA is counted only where the call runs it (a preview with a reference mask;
        generate only in ``sga``, counted even if a preview cached it). Excludes fixed costs (slot
        start-up, moving models): :meth:`gpu_seconds` adds those.
        """
        request = request.using(self.parameters())
        p = request.params
        asea = request.reference is not None and request.reference_mask is not None and request.reference_mask.any()
        asea_s = float(p["asea_steps"]) * GPU_ASEA_STEP_S if asea else 0.0
        if explain:
            return asea_s
        steps = min(int(p["steps"] * p["strength"]), int(p["steps"]))
        work = request.num * (steps * GPU_STEP_S + GPU_SCORE_S)
        if self.uses_semantics:
            work += asea_s
        elif self.guidance == "ip-adapter" and request.reference is not None:
            work += GPU_CLIP_S
        return work

    def status(self) -> str:
        b = self.bundle
        line = (f"anomalycontrol · weights {self.profile} · guidance {self.guidance} · "
                f"{b.device.type} {str(b.dtype).removeprefix('torch.')}")
        if self.guidance == "text":
            line += " · the reference does not steer the pixels (no SGA adapter, no IP-Adapter: see weights/README.md)"
        if b.note:
            line += f" · {b.note}"
        return line

    def explain(self, request: SynthesisRequest, progress: ProgressFn | None = None) -> AttentionTrace:
        """ASEA's attention map before and after each step (cached for the following ``generate`` in ``sga``)."""
        request = request.using(self.parameters())
        with self._lock:
            _, trace = self._semantics(request, progress)
        return replace(trace, steps=list(trace.steps))

    def generate(self, request: SynthesisRequest, progress: ProgressFn | None = None) -> list[Candidate]:
        """``request.num`` candidates, at most ``unet_chunk`` per UNet call."""
        request = request.using(self.parameters())
        steps, strength = int(request.params["steps"]), float(request.params["strength"])
        if min(int(steps * strength), steps) < 1:
            raise InputError(
                f"With strength {strength:g}, {steps} step(s) leave nothing to denoise; "
                f"use at least {math.ceil(1 / strength)} steps."
            )
        guidance = self._guidance(request)
        with self._lock:
            if self.uses_semantics and guidance.scale > 0:
                features, trace = self._semantics(request, progress)
            elif self.uses_semantics:  # SGA off: text-only denoising, CSM and ASEA would only cost time
                features, trace = None, AttentionTrace(skipped=f"SGA is off ({guidance.off_reason})", note=self.bundle.note)
            else:
                features, trace = None, None
            with torch.no_grad():
                return self._generate(request, guidance, features, trace, progress)

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

    def _guidance(self, request: SynthesisRequest) -> Guidance:
        parameter = SCALE_PARAMETER.get(self.guidance)
        if parameter is None:
            return Guidance("text", 0.0, None, "guidance mode text (no SGA adapter, no IP-Adapter)")
        requested = float(request.params[parameter])
        if request.reference is None:
            return Guidance(self.guidance, 0.0, requested, "no reference image")
        if requested == 0:
            return Guidance(self.guidance, 0.0, requested, f"{parameter} is 0")
        return Guidance(self.guidance, requested, requested, None)

    def _reference_tokens(self, request: SynthesisRequest, features: torch.Tensor | None) -> torch.Tensor:
        if self.guidance == "sga":
            return self.adapter.tokens(features)
        return self.adapter.embedding_tokens(self.reference_encoder(request.reference, request.reference_mask))

    def _generate(self, request: SynthesisRequest, guidance: Guidance, features: torch.Tensor | None,
                  trace: AttentionTrace | None, progress: ProgressFn | None) -> list[Candidate]:
        b, params = self.bundle, request.params
        sigma = float(params["blur_sigma"])
        region = work_region(request.mask, b.resolution, sigma)
        crop, crop_mask = region.crop(request.image), region.crop_mask(request.mask)
        device, dtype = b.device, b.dtype

        image_t = torch.from_numpy(crop).permute(2, 0, 1)[None].to(device=device, dtype=dtype) / 127.5 - 1.0
        mask_t = torch.from_numpy(crop_mask.astype(np.float32))[None, None].to(device=device, dtype=dtype)
        inputs = encode_inpainting_inputs(b.vae, image_t, mask_t)

        text, negative = self._text_embeddings(request.prompt)
        # CFG's unconditional branch gets the tokens of no image, as IP-Adapter and training's image dropout.
        unconditional = self.adapter.unconditional_tokens().to(text.dtype)
        tokens = self._reference_tokens(request, features).to(text.dtype) if guidance.scale > 0 else unconditional
        prompt_embeds = torch.cat([text, tokens], dim=1)
        negative_embeds = torch.cat([negative, unconditional], dim=1)

        seeds = request.candidate_seeds()
        total = min(int(params["steps"] * params["strength"]), int(params["steps"]))
        chunks = [seeds[i:i + self.unet_chunk] for i in range(0, len(seeds), self.unet_chunk)]
        pixels: list[np.ndarray] = []
        with self.adapter.scaled(guidance.scale):
            for index, chunk in enumerate(chunks):
                def on_step(pipe, i, t, tensors, done=index * total):
                    if progress is not None:
                        progress(done + i + 1, total * len(chunks), "denoising")
                    return {}

                if len(chunk) >= VAE_SLICE_FROM:
                    b.vae.enable_slicing()
                else:
                    b.vae.disable_slicing()
                images = self.pipe(
                    image=inputs.image_latents, mask_image=inputs.pixel_mask.float().cpu(),  # as diffusers expects
                    masked_image_latents=inputs.masked_image_latents, prompt_embeds=prompt_embeds,
                    negative_prompt_embeds=negative_embeds, height=region.size, width=region.size,
                    num_images_per_prompt=len(chunk), generator=[torch.Generator("cpu").manual_seed(s) for s in chunk],
                    strength=float(params["strength"]), num_inference_steps=int(params["steps"]),
                    guidance_scale=float(params["guidance"]), output_type="pt", callback_on_step_end=on_step,
                ).images
                pixels.extend((images.float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())

        extra = self._metadata(request, region, guidance, trace, total)
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

    def _metadata(self, request: SynthesisRequest, region: WorkRegion, guidance: Guidance,
                  trace: AttentionTrace | None, total: int) -> dict[str, Any]:
        b = self.bundle
        if trace is None:
            asea = {"ran": False, "skipped": f"guidance mode {guidance.mode} does not use the CSM features"}
        else:
            asea = {
                "ran": bool(trace.steps) and trace.skipped is None,
                "steps": int(request.params["asea_steps"]), "lr": float(request.params["asea_lr"]),
                "inmask_fraction": [round(f, 6) for f in trace.inmask_fractions],
                "skipped": trace.skipped,
            }
        return {
            "negative_prompt": self.negative_prompt,
            "scheduler": SCHEDULER_NAME,
            "denoising_steps": total,
            "model_resolution": b.resolution,
            "work_region": {"box": list(region.box), "size": [region.size, region.size], "scale": round(region.scale, 6)},
            "device": b.device.type,
            "dtype": str(b.dtype).removeprefix("torch."),
            "guidance": {
                "mode": guidance.mode, "active": guidance.scale > 0, "scale": guidance.scale,
                "parameter": SCALE_PARAMETER.get(guidance.mode), "requested_scale": guidance.requested,
                "num_tokens": self.adapter.num_tokens if guidance.mode != "text" else 0,
                "weights": b.guidance_source, "off_reason": guidance.off_reason,
            },
            "asea": asea,
            "unet_chunk": self.unet_chunk,
            "warnings": list(b.warnings),
            "compiled_unet": self.compiled,
        }
