"""Building and loading the engine's models: from weight folders, from the shipped configs (random), and finishing.

:func:`finish_bundle` is the one place every profile passes through: it places and freezes the
models, keeps BLIP-2's Q-Former in fp32, attaches SGA and loads its checkpoint. Imported only
when a bundle is loaded (it imports torch); :mod:`weights` stays a file-check module.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Iterator

from studio.engines.anomalycontrol.weights import (
    BLIP_DIR, RANDOM_NOTE, SD_DIR, SD_REPO, SGA_FILE, ModelBundle, fetch_blip_command, fetch_sd_command, show_path,
    configs_dir, locate,
    log, missing_message, quiet_libraries,
)
from studio.errors import WeightsError


def device_dtype(device: str | None, dtype):
    import torch

    name = device or os.environ.get("ANOMALY_STUDIO_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    target = torch.device(name)
    if dtype is None:
        dtype = torch.float16 if target.type == "cuda" else torch.float32
    return target, dtype


def load_root(root: Path, profile: str, device, dtype, *, use_hub_cache: bool) -> ModelBundle:
    sd, blip, sga, pieces = locate(root, use_hub_cache=use_hub_cache)
    if pieces:
        raise WeightsError(missing_message(pieces, root, hub_cache=use_hub_cache, sga_missing=sga is None))
    components = {**_load_sd(sd, dtype), **_load_blip(blip, dtype)}
    return finish_bundle(components, profile, sga, device, dtype, random_adapter=False, sga_expected=root / SGA_FILE)


def _loading(what: str, folder: Path, fetch: str):
    """Turn any library error while loading ``what`` into one actionable WeightsError."""

    @contextlib.contextmanager
    def guard() -> Iterator[None]:
        try:
            yield
        except WeightsError:
            raise
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise WeightsError(
                f"The {what} in {show_path(folder)} could not be loaded ({reason}). The files may be truncated or "
                f"belong to another model: fetch them again with: {fetch}"
            ) from None

    return guard()


def make_scheduler(scheduler_config: dict):
    """The denoising scheduler: Euler on the σ-ODE, which is DDIM (η = 0) re-parametrised.

    Chosen because its step keeps σ on the host and never reads a device value, so the
    denoising loop runs without host-device syncs.
    """
    from diffusers import EulerDiscreteScheduler

    cfg = {k: v for k, v in scheduler_config.items() if not k.startswith("_")}
    cfg.update(timestep_spacing="leading", steps_offset=cfg.get("steps_offset", 1))
    return EulerDiscreteScheduler.from_config(cfg)


def _load_sd(folder: Path, dtype) -> dict:
    with quiet_libraries():
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

        fetch = fetch_sd_command(folder)
        common = dict(use_safetensors=True, local_files_only=True)
        with _loading("Stable Diffusion inpainting UNet", folder / "unet", fetch):
            unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=dtype,
                                                        variant=_variant(folder / "unet"), **common)
        if unet.config.in_channels != 9:
            raise WeightsError(
                f"The UNet in {show_path(folder / 'unet')} has {unet.config.in_channels} input channels; the engine needs "
                f"the 9-channel inpainting UNet ({SD_REPO}): {fetch}"
            )
        with _loading("Stable Diffusion VAE", folder / "vae", fetch):
            vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", torch_dtype=dtype,
                                                variant=_variant(folder / "vae"), **common)
        with _loading("CLIP text encoder", folder / "text_encoder", fetch):
            text_encoder = CLIPTextModel.from_pretrained(folder / "text_encoder", dtype=dtype,
                                                         variant=_variant(folder / "text_encoder"), **common)
        with _loading("CLIP tokenizer", folder / "tokenizer", fetch):
            tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer", local_files_only=True)
        with _loading("scheduler config", folder / "scheduler", fetch):
            scheduler = make_scheduler(json.loads((folder / "scheduler" / "scheduler_config.json").read_text()))
    return {"unet": unet, "vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer, "scheduler": scheduler}


def _variant(folder: Path) -> str | None:
    """``fp16`` when only the half-precision weights file is present."""
    files = [p.name for p in folder.glob("*.safetensors")]
    if any(not name.endswith(".fp16.safetensors") for name in files):
        return None
    return "fp16" if files else None


def _load_blip(folder: Path, dtype) -> dict:
    with quiet_libraries():
        from transformers import AutoTokenizer, Blip2ForImageTextRetrieval

        fetch = fetch_blip_command(folder)
        with _loading("BLIP-2 model", folder, fetch):
            blip2 = Blip2ForImageTextRetrieval.from_pretrained(folder, dtype=dtype, use_safetensors=True,
                                                               local_files_only=True)
        with _loading("BLIP-2 tokenizer", folder, fetch):
            blip_tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    image_cfg = _read_json(folder / "preprocessor_config.json")
    return {"blip2": blip2, "blip_tokenizer": blip_tokenizer, "image_cfg": image_cfg}


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def build_random_bundle(configs: Path | None = None, device=None, dtype=None, seed: int = 0) -> ModelBundle:
    """``sd15-random``: full-size models from the shipped configs, random weights, built on ``device``."""
    import torch

    configs = configs or configs_dir()
    device, dtype = device_dtype(str(device) if device else None, dtype)
    with quiet_libraries():
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import Blip2Config, Blip2ForImageTextRetrieval, CLIPTextConfig, CLIPTextModel

        from studio.engines.anomalycontrol.tiny import bert_tokenizer, clip_tokenizer

        sd = configs / SD_DIR
        if not (sd / "unet" / "config.json").is_file() or not (configs / BLIP_DIR / "config.json").is_file():
            raise WeightsError(f"The shipped model configs are missing from {show_path(configs)} (configs/ of the weights "
                               "folder, ANOMALY_STUDIO_WEIGHTS): copy the repository's weights/configs/ there.")
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.device(device):
            torch.manual_seed(seed)
            unet = UNet2DConditionModel.from_config(_read_json(sd / "unet" / "config.json"))
            vae = AutoencoderKL.from_config(_read_json(sd / "vae" / "config.json"))
            text_encoder = CLIPTextModel(CLIPTextConfig.from_json_file(str(sd / "text_encoder" / "config.json")))
            blip2 = Blip2ForImageTextRetrieval(Blip2Config.from_json_file(str(configs / BLIP_DIR / "config.json")))
            with torch.no_grad():
                blip2.query_tokens.normal_(0.0, 1.0)
        components = {
            "unet": unet, "vae": vae, "text_encoder": text_encoder, "tokenizer": clip_tokenizer(),
            "scheduler": make_scheduler(_read_json(sd / "scheduler" / "scheduler_config.json")),
            "blip2": blip2, "blip_tokenizer": bert_tokenizer(),
            "image_cfg": _read_json(configs / BLIP_DIR / "preprocessor_config.json"),
        }
    return finish_bundle(components, "sd15-random", None, device, dtype, random_adapter=True, note=RANDOM_NOTE)


def finish_bundle(components: dict, profile: str, sga: Path | None, device, dtype, *, random_adapter: bool,
            note: str = "", sga_expected: Path | None = None) -> ModelBundle:
    """Place every model, freeze it, attach SGA (loading the checkpoint when there is one)."""
    import torch

    from studio.engines.anomalycontrol.hub import adapter_override
    from studio.engines.anomalycontrol.sga import attach_sga, load_adapter

    sga = adapter_override() or sga  # ANOMALY_STUDIO_SGA / --sga: a file or a hub id, resolved by hub.py

    unet, vae, text_encoder, blip2 = (components[k] for k in ("unet", "vae", "text_encoder", "blip2"))
    with quiet_libraries():  # diffusers warns about `.to(dtype)` even when nothing must stay fp32
        for model in (unet, vae, text_encoder):
            model.to(device=device, dtype=dtype).eval().requires_grad_(False)
    # BLIP-2: the ViT in the working dtype; Q-Former, query tokens and text embeddings stay fp32 (as transformers keeps them).
    blip2.to(device=device).eval().requires_grad_(False)
    blip2.vision_model.to(dtype=dtype)
    for part in (blip2.qformer, blip2.embeddings):
        part.to(dtype=torch.float32)
    blip2.query_tokens.data = blip2.query_tokens.data.float()
    if device.type == "cuda":
        unet.to(memory_format=torch.channels_last)

    feature_dim = int(blip2.config.qformer_config.hidden_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        adapter = attach_sga(unet, feature_dim)
    warnings: list[str] = []
    if sga is not None:
        load_adapter(adapter, sga)
        source: str | None = str(sga)
    elif random_adapter:
        source = f"random init ({profile})"
    else:
        source = None
        warnings.append(
            f"No SGA checkpoint at {show_path(sga_expected or Path(SGA_FILE))}: "
            "generating with sga_scale=0 (reference-image guidance off; ASEA preview still works). "
            "Train one with `anomaly-studio train` (README: Train on your own defects)."
        )
        log.warning(warnings[-1])
    adapter.requires_grad_(False)
    return ModelBundle(
        profile=profile, unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=components["tokenizer"],
        scheduler=components["scheduler"], blip2=blip2, blip_tokenizer=components["blip_tokenizer"],
        adapter=adapter, sga_source=source, blip_image_config=dict(components.get("image_cfg") or {}),
        note=note, warnings=warnings,
    )
