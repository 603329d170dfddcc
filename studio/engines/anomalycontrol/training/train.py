"""Training the Semantic Guided Adapter — the only part of AnomalyControl that learns — on ``accelerate``.

For every anomaly image ``x`` with mask ``M`` and caption ``T`` (the targeted prompt), and its
reference ``(I_a, M_a, T_a)`` (see :mod:`.data`), all cut to the engine's work region:

    f      = CSM/ASEA features of (I_a, T_a, M_a)             frozen BLIP-2, the engine's own csm/asea code
    z0     = VAE(x),  z_m = VAE(x · (1 - M)),  m = M at latent size
    z_t    = sqrt(ᾱ_t) z0 + sqrt(1 - ᾱ_t) ε,   t ~ U[0, T)
    loss   = || ε - UNet([z_t, m, z_m], t, [CLIP(T); SGA(f)]) ||²

with the authors' condition dropout (:mod:`.conditioning`). Only the SGA projection and every layer's ``to_k_sg`` / ``to_v_sg`` receive gradients (the UNet,
VAE, text encoder and BLIP-2 are frozen; :func:`check_frozen` verifies it before the first step).
``to_k_sg`` / ``to_v_sg`` start as copies of the UNet's own ``to_k`` / ``to_v``, or, with
``init_ip_adapter``, adapter and image projection start from IP-Adapter's SD-1.5 weights as the
authors' do (:mod:`..ip_adapter`). ``gradient_checkpointing`` recomputes the frozen UNet's
activations in the backward pass (much less memory at batch 8, 512², for ~30% more time).

Runs on one CPU, one GPU or several (``accelerate launch``). Every random draw of optimiser step
``s`` (data order, reference choice, VAE sample, noise, timesteps) depends only on the seed and
``s``, so a run resumed from a checkpoint (adapter + AdamW + LR schedule + loss scaler state)
reaches the same weights as an uninterrupted one.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from studio.engines.anomalycontrol.csm import CrossModalSemantics
from studio.engines.anomalycontrol.inpainting import encode_inpainting_inputs
from studio.engines.anomalycontrol.ip_adapter import load_ip_adapter
from studio.engines.anomalycontrol.sga import SGAdapter, attach_sga, load_adapter, save_adapter
from studio.engines.anomalycontrol.training.checkpoints import (
    checkpoint_root, load_checkpoint, resolve_checkpoint, save_checkpoint,
)
from studio.engines.anomalycontrol.training.conditioning import DROPOUT_RATE, ReferenceFeatures, condition_dropout
from studio.engines.anomalycontrol.training.data import (
    PAIRINGS, SPLITS, AnomalyPairs, StreamBatches, TrainingSet, check_batch, read_training_set,
)
from studio.engines.anomalycontrol.models import ModelBundle, load_bundle, quiet_libraries
from studio.errors import InputError, WeightsError
from studio.types import ProgressFn

log = logging.getLogger(__name__)

MIXED_PRECISION = ("auto", "no", "fp16", "bf16")


@dataclass
class TrainSettings:
    """Hyper-parameters: the authors' (AdamW 1e-4, wd 1e-2, batch 8, accum 2, dropout 5%, features cached) and
    a length for a run from IP-Adapter on one GPU (README: Train on your own defects)."""

    steps: int = 10000
    batch_size: int = 8
    grad_accum: int = 2
    lr: float = 1e-4
    weight_decay: float = 1e-2
    lr_warmup: int = 500
    #: Square training side in pixels; None = the model's own (512 for SD-1.5, 64 for tiny).
    resolution: int | None = None
    #: auto = fp16 on a GPU, no (fp32) on a CPU.
    mixed_precision: str = "auto"
    seed: int = 0
    asea_steps: int = 5
    asea_lr: float = 0.1
    #: Encode each reference (CSM + ASEA) once and keep its features.
    cache_features: bool = True
    #: Probability of each condition-dropout case (image, caption, both) per sample.
    condition_dropout: float = DROPOUT_RATE
    #: How references are paired with the anomalies when ``train`` reads the folder (see training.data.PAIRINGS).
    pairing: str = PAIRINGS[0]
    #: Which anomalies of the folder train (see training.data.SPLITS).
    split: str = SPLITS[0]
    #: Recompute the frozen UNet's activations in the backward pass (less memory, more time).
    gradient_checkpointing: bool = False
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    workers: int = 2
    cpu: bool = False

    def validate(self) -> None:
        positive = {"steps": self.steps, "batch_size": self.batch_size, "grad_accum": self.grad_accum}
        for name, value in positive.items():
            if value < 1:
                raise InputError(f"--{name.replace('_', '-')} must be at least 1 (got {value}).")
        if not self.lr > 0:
            raise InputError(f"--lr must be positive (got {self.lr:g}).")
        if min(self.weight_decay, self.lr_warmup, self.asea_steps, self.checkpoint_every, self.workers) < 0:
            raise InputError("--weight-decay, --lr-warmup, --asea-steps, --checkpoint-every and --workers "
                             "cannot be negative.")
        if not 0 <= self.condition_dropout <= 1 / 3:
            raise InputError(f"--condition-dropout must lie between 0 and 1/3 (got {self.condition_dropout:g}).")
        if self.pairing not in PAIRINGS:
            raise InputError(f"--pairing must be one of {', '.join(PAIRINGS)} (got {self.pairing!r}).")
        if self.split not in SPLITS:
            raise InputError(f"--split must be one of {', '.join(SPLITS)} (got {self.split!r}).")
        if self.keep_checkpoints < 1:
            raise InputError(f"--keep-checkpoints must be at least 1 (got {self.keep_checkpoints}).")
        if self.mixed_precision not in MIXED_PRECISION:
            raise InputError(f"--mixed-precision must be one of {', '.join(MIXED_PRECISION)} "
                             f"(got {self.mixed_precision!r}).")


@dataclass
class TrainResult:
    """Where the adapter went, the last step, this run's per-step losses and how often CSM/ASEA ran."""

    out: Path
    step: int
    losses: list[float] = field(default_factory=list)
    checkpoints: list[Path] = field(default_factory=list)
    references_encoded: int = 0


class AdapterStep(nn.Module):
    """The trainable adapter and the frozen UNet's noise prediction through it (what DDP wraps).

    The UNet is passed to :meth:`forward` rather than held, so DDP syncs and checkpoints only the adapter.
    """

    def __init__(self, adapter: SGAdapter):
        super().__init__()
        self.adapter = adapter

    def forward(self, unet, model_input: torch.Tensor, timesteps: torch.Tensor, text: torch.Tensor,
                features: torch.Tensor, drop_image: torch.Tensor | None = None) -> torch.Tensor:
        tokens = self.adapter.tokens(features, drop_image).to(text.dtype)
        return unet(model_input, timesteps, encoder_hidden_states=torch.cat([text, tokens], dim=1)).sample


def train(data: str | Path | TrainingSet, weights: str | None, out: str | Path, settings: TrainSettings | None = None, *,
          captions: str | Path | None = None, resume: str | Path | None = None, init_adapter: str | Path | None = None,
          init_ip_adapter: str | Path | None = None, log_file: str | Path | None = None, progress: ProgressFn | None = None,
          bundle: ModelBundle | None = None) -> TrainResult:
    """Train SGA on the anomalies under ``data`` (a folder or a listed set) and save it to ``out`` (``.safetensors``).

    ``bundle`` (already on the training device) replaces loading ``weights``; training attaches a
    fresh adapter to its UNet. Raises :class:`InputError` / :class:`WeightsError` for bad inputs.
    """
    from accelerate import Accelerator

    settings = settings or TrainSettings()
    settings.validate()
    out = Path(out)
    if out.suffix != ".safetensors":
        raise InputError(f"--out must name a .safetensors file (got {str(out)!r}).")
    if init_adapter and init_ip_adapter:
        raise InputError("Give --init-adapter or --init-ip-adapter, not both.")
    # Bad data fails before any model loads.
    dataset = (data if isinstance(data, TrainingSet)
               else read_training_set(data, captions, settings.pairing, settings.split))
    resume_dir = resolve_checkpoint(resume) if resume else None
    precision = _mixed_precision(settings)
    try:
        accelerator = Accelerator(mixed_precision=precision, gradient_accumulation_steps=settings.grad_accum,
                                  cpu=settings.cpu)
    except ValueError as exc:
        raise InputError(f"accelerate cannot train with these settings: {exc}") from None
    if bundle is None:
        weight_dtype = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        bundle = load_bundle(weights, device=str(accelerator.device), dtype=weight_dtype)
    resolution = settings.resolution or bundle.resolution
    if resolution % bundle.size_multiple:
        raise InputError(f"--resolution must be a multiple of {bundle.size_multiple} for these weights (got {resolution}).")
    if bundle.scheduler.config.get("prediction_type", "epsilon") != "epsilon":
        raise WeightsError("SGA training needs an epsilon-prediction UNet (SD-1.5 inpainting is one).")

    adapter = fresh_adapter(bundle, settings.seed)
    if init_adapter and not resume_dir:
        load_adapter(adapter, init_adapter)
    if init_ip_adapter and not resume_dir:
        untouched = load_ip_adapter(adapter, init_ip_adapter)
        log.info("Initialised SGA from IP-Adapter %s; %s keep their fresh initialisation.", init_ip_adapter,
                 ", ".join(untouched) or "no tensors")
    optimizer = torch.optim.AdamW(adapter.trainable_parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    warmup = settings.lr_warmup
    lr_schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0)
    check_frozen(bundle, adapter, optimizer)
    module = AdapterStep(adapter)
    module, optimizer = accelerator.prepare(module, optimizer)

    start, meta = 0, _order_meta(settings, resolution, accelerator.num_processes, dataset)
    if resume_dir is not None:
        start = load_checkpoint(resume_dir, adapter, optimizer, lr_schedule, accelerator.scaler, meta)
        if start >= settings.steps:
            raise InputError(f"The checkpoint {str(resume_dir)!r} is at step {start}; "
                             f"--steps must be larger than that to continue (got {settings.steps}).")

    csm = CrossModalSemantics.from_bundle(bundle)
    references = ReferenceFeatures(csm, dataset, asea_steps=settings.asea_steps, asea_lr=settings.asea_lr,
                                   cache=settings.cache_features)
    with quiet_libraries():
        from diffusers import DDPMScheduler

        noise_schedule = DDPMScheduler.from_config(bundle.scheduler.config)
    batches = torch.utils.data.DataLoader(
        AnomalyPairs(dataset, resolution, settings.seed), collate_fn=check_batch, num_workers=settings.workers,
        batch_sampler=StreamBatches(settings.batch_size, start * settings.grad_accum,
                                    (settings.steps - start) * settings.grad_accum,
                                    accelerator.process_index, accelerator.num_processes),
    )
    result = TrainResult(out=out, step=start)
    main = accelerator.is_main_process
    log_fh = open(log_file, "a", encoding="utf-8") if (log_file and main) else None
    if settings.gradient_checkpointing:
        bundle.unet.enable_gradient_checkpointing()
    try:
        stream = iter(batches)
        for step in range(start + 1, settings.steps + 1):
            total = torch.zeros((), device=accelerator.device)
            for micro in range(settings.grad_accum):
                batch = next(stream)
                generator = step_generator(settings.seed, (step - 1) * settings.grad_accum + micro,
                                           accelerator.process_index)
                with accelerator.accumulate(module):
                    loss = micro_loss(module, bundle, noise_schedule, batch, references(batch["reference"]),
                                      generator, settings.condition_dropout)
                    accelerator.backward(loss)
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                total += loss.detach()
            if not optimizer.step_was_skipped:
                lr_schedule.step()
            value = float(accelerator.reduce(total / settings.grad_accum, reduction="mean"))
            result.step = step
            result.losses.append(value)
            if log_fh is not None:
                log_fh.write(json.dumps({"step": step, "loss": value}) + "\n")
                log_fh.flush()
            if main and progress is not None:
                progress(step, settings.steps, f"loss {value:.4f}")
            if settings.checkpoint_every and step % settings.checkpoint_every == 0 and step < settings.steps:
                accelerator.wait_for_everyone()
                if main:
                    folder = save_checkpoint(checkpoint_root(out), step, adapter, optimizer, lr_schedule,
                                             accelerator.scaler, meta, keep=settings.keep_checkpoints)
                    result.checkpoints.append(folder)
    finally:
        if log_fh is not None:
            log_fh.close()
        if settings.gradient_checkpointing:
            bundle.unet.disable_gradient_checkpointing()
    result.references_encoded = references.encoded
    accelerator.wait_for_everyone()
    if main:
        save_adapter(adapter, out, training_images=dataset.image_sha256())
    bundle.adapter, bundle.guidance, bundle.guidance_source = adapter, "sga", str(out)
    return result


def micro_loss(module: nn.Module, bundle: ModelBundle, noise_schedule, batch: dict, features: torch.Tensor,
               generator: torch.Generator, dropout: float = DROPOUT_RATE) -> torch.Tensor:
    """ε-prediction MSE of one micro-batch on SD-inpainting inputs (noisy latents + mask + masked-image latents)."""
    device, dtype = bundle.device, bundle.dtype
    image = batch["image"].to(device=device, dtype=dtype)
    mask = batch["mask"].to(device=device, dtype=dtype)
    drop_image, drop_text = condition_dropout(image.shape[0], generator, dropout)
    captions = ["" if drop else caption for caption, drop in zip(batch["caption"], drop_text.tolist())]
    with torch.no_grad():
        inputs = encode_inpainting_inputs(bundle.vae, image, mask, sample=True, generator=generator)
        text = caption_embeddings(bundle, captions)
    latents = inputs.image_latents
    noise = torch.randn(latents.shape, generator=generator).to(device=device, dtype=latents.dtype)
    timesteps = torch.randint(0, noise_schedule.config.num_train_timesteps, (latents.shape[0],),
                              generator=generator).to(device)
    noisy = noise_schedule.add_noise(latents, noise, timesteps)
    model_input = torch.cat([noisy, inputs.mask, inputs.masked_image_latents], dim=1)
    prediction = module(bundle.unet, model_input, timesteps, text, features, drop_image)
    return F.mse_loss(prediction.float(), noise.float())


def caption_embeddings(bundle: ModelBundle, captions: list[str]) -> torch.Tensor:
    """The frozen CLIP text encoder's hidden states (B, 77, D) of the targeted prompts."""
    tokenizer = bundle.tokenizer
    ids = tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids
    return bundle.text_encoder(ids.to(bundle.device))[0]


def fresh_adapter(bundle: ModelBundle, seed: int) -> SGAdapter:
    """A new adapter on the bundle's UNet (``to_k_sg`` / ``to_v_sg`` copied from its ``to_k`` / ``to_v``), fp32, trainable."""
    feature_dim = int(bundle.blip2.config.qformer_config.hidden_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        adapter = attach_sga(bundle.unet, feature_dim, bundle.adapter.num_tokens, bundle.adapter.embed_dim)
    adapter.float().requires_grad_(True)
    adapter.scale = 1.0
    return adapter


def check_frozen(bundle: ModelBundle, adapter: SGAdapter, optimizer: torch.optim.Optimizer) -> None:
    """Refuse to train unless exactly the adapter's parameters are trainable and optimised."""
    frozen = {"UNet": bundle.unet, "VAE": bundle.vae, "text encoder": bundle.text_encoder, "BLIP-2": bundle.blip2}
    for name, model in frozen.items():
        loose = [n for n, p in model.named_parameters() if p.requires_grad]
        if loose:
            raise RuntimeError(f"The {name} must be frozen but {len(loose)} parameter(s) are trainable (e.g. {loose[0]}).")
    optimised = {id(p) for group in optimizer.param_groups for p in group["params"]}
    trainable = {id(p) for p in adapter.trainable_parameters()}
    if optimised != trainable or not all(p.requires_grad for p in adapter.trainable_parameters()):
        raise RuntimeError("The optimiser must hold exactly the SGA adapter's parameters, all trainable.")


def step_generator(seed: int, micro_batch: int, process: int) -> torch.Generator:
    """The CPU generator of one micro-batch's VAE sample, noise and timesteps (seed, position and process only)."""
    state = np.random.SeedSequence([seed, micro_batch, process]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 31 | int(state[1]) >> 1)


def _mixed_precision(settings: TrainSettings) -> str:
    cuda = torch.cuda.is_available() and not settings.cpu
    precision = settings.mixed_precision
    if precision == "auto":
        return "fp16" if cuda else "no"
    if precision == "fp16" and not cuda:
        raise InputError("--mixed-precision fp16 needs a GPU; on a CPU use no (fp32) or bf16.")
    return precision


def _order_meta(settings: TrainSettings, resolution: int, processes: int, dataset: TrainingSet) -> dict[str, Any]:
    return {"seed": settings.seed, "batch_size": settings.batch_size, "grad_accum": settings.grad_accum,
            "resolution": resolution, "processes": processes, "pairing": dataset.pairing, "split": dataset.split,
            "condition_dropout": settings.condition_dropout, "data": dataset.fingerprint()}
