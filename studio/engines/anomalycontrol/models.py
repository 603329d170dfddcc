"""Loading the engine's models: every profile and folder goes through :func:`load_bundle` here.

:func:`finish_bundle` is the one place every profile passes through: it places and freezes the
models, keeps BLIP-2's Q-Former, query tokens and text embeddings in fp32 (loaded in fp32, so its
embeddings are exact), attaches the decoupled attention and fills it for the guidance mode: an SGA
adapter (``sga``), IP-Adapter's SD-1.5 weights with its CLIP image encoder (``ip-adapter``), or
nothing (``text``). :mod:`weights` is the file layout and checks; this module imports torch.
"""
from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from studio import config
from studio.engines.anomalycontrol.weights import (
    BLIP_DIR, IMAGE_ENCODER_DIR, IP_ADAPTER_DIR, IP_ADAPTER_FILE, RANDOM_NOTE, SD_DIR, SD_REPO, SGA_FILE, TINY_NOTE,
    configs_dir, fetch_blip_command, fetch_ip_adapter_command, fetch_sd_command, guidance_mode, locate,
    missing_message, show_path,
)
from studio.errors import WeightsError

log = logging.getLogger(__name__)

#: The studio's default SGA adapter (a file or a hub id) when no ``sga`` argument is given (e.g. on a Space).
SGA_ENV = "ANOMALY_STUDIO_SGA"


@dataclass
class ModelBundle:
    """Every model the engine needs, placed on one device, plus where they came from."""

    profile: str
    unet: Any
    vae: Any
    text_encoder: Any
    tokenizer: Any
    scheduler: Any
    blip2: Any
    blip_tokenizer: Any
    adapter: Any
    #: ``sga``, ``ip-adapter`` or ``text`` (see :func:`weights.guidance_mode`).
    guidance: str
    #: Where the decoupled attention's weights came from (SGA file, IP-Adapter file, random init; None in text).
    guidance_source: str | None
    #: The BLIP-2 checkpoint's ``preprocessor_config.json`` ({} when it has none: PIL bicubic defaults).
    blip_image_config: dict[str, Any]
    #: IP-Adapter's CLIP image encoder (``ip-adapter`` mode only).
    image_encoder: Any = None
    note: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def device(self):
        return next(self.unet.parameters()).device

    @property
    def dtype(self):
        return next(self.unet.parameters()).dtype

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def resolution(self) -> int:
        """The UNet's native resolution in pixels (512 for SD-1.5, 64 for tiny)."""
        return int(self.unet.config.sample_size) * self.vae_scale_factor

    @property
    def size_multiple(self) -> int:
        """Pixel sizes the UNet accepts are multiples of this (VAE factor x UNet downsampling)."""
        return self.vae_scale_factor * 2 ** (len(self.unet.config.block_out_channels) - 1)


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """Silence the libraries' import-time and loading chatter (their warnings are not the user's business)."""
    import diffusers
    import transformers

    t_level = transformers.logging.get_verbosity()
    d_level = diffusers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    diffusers.logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(t_level)
        diffusers.logging.set_verbosity(d_level)


def device_dtype(device: str | None, dtype):
    import torch

    name = device or os.environ.get("ANOMALY_STUDIO_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    target = torch.device(name)
    if dtype is None:
        dtype = torch.float16 if target.type == "cuda" else torch.float32
    return target, dtype


def load_bundle(weights: str | None = None, *, device: str | None = None, dtype=None,
                sga: str | None = None) -> ModelBundle:
    """Load a profile (``tiny``, ``sd15-random``, ``sd15``; None or ``auto`` = ``sd15``) or a folder.

    ``sga``: an SGA adapter (a file, a folder or a hub id ``user/repo[/file]``) that overrides the
    folder's; None = ``$ANOMALY_STUDIO_SGA`` when set, else the folder's ``sga/adapter.safetensors``.
    """
    from studio.engines.anomalycontrol.hub import resolve_adapter

    spec = sga if sga is not None else os.environ.get(SGA_ENV, "")
    adapter = resolve_adapter(spec) if spec.strip() else None
    name = (weights or "auto").strip()
    if name in ("auto", ""):
        name = "sd15"
    target_device, target_dtype = device_dtype(device, dtype)
    if name == "tiny":
        from studio.engines.anomalycontrol.tiny import build_tiny_components

        return finish_bundle(build_tiny_components(), "tiny", adapter, target_device, target_dtype,
                             random_adapter=True, note=TINY_NOTE)
    if name == "sd15-random":
        return build_random_bundle(configs_dir(), target_device, target_dtype, sga=adapter)
    if name == "sd15":
        return load_root(config.WEIGHTS_DIR, "sd15", target_device, target_dtype, use_hub_cache=True, sga=adapter)
    path = Path(name).expanduser()
    if path.is_dir():
        return load_root(path, str(path), target_device, target_dtype, use_hub_cache=False, sga=adapter)
    if os.sep in name or "/" in name or path.exists():
        raise WeightsError(f"The weights folder {name!r} does not exist (or is not a folder); see weights/README.md.")
    raise WeightsError(
        f"Unknown weights {weights!r}: use tiny, sd15-random, sd15 or a folder laid out like weights/ "
        "(see weights/README.md)."
    )


def load_root(root: Path, profile: str, device, dtype, *, use_hub_cache: bool, sga: Path | None = None) -> ModelBundle:
    found = locate(root, use_hub_cache=use_hub_cache)
    if found.missing:
        raise WeightsError(missing_message(found.missing, root, hub_cache=use_hub_cache))
    components = {**_load_sd(found.sd, dtype), **_load_blip(found.blip)}
    sga = sga or found.sga
    if sga is None and found.ip_adapter is not None:
        components.update(_load_ip_adapter(found.ip_adapter, dtype))
    return finish_bundle(components, profile, sga, device, dtype, random_adapter=False)


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


def _variant(folder: Path) -> str | None:
    """``fp16`` when the folder's weights are the half-precision file only (as the public SD repo has them)."""
    files = [p.name for p in folder.glob("*.safetensors")]
    if any(not name.endswith(".fp16.safetensors") for name in files):
        return None
    return "fp16" if files else None


def _load_sd(folder: Path, dtype) -> dict:
    """SD-1.5 inpainting's parts, read from whichever safetensors are there and cast to ``dtype``."""
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


def _load_blip(folder: Path) -> dict:
    """BLIP-2 ITM loaded in fp32 (its file's precision): :func:`finish_bundle` casts only the ViT down."""
    import torch

    with quiet_libraries():
        from transformers import AutoTokenizer, Blip2ForImageTextRetrieval

        fetch = fetch_blip_command(folder)
        with _loading("BLIP-2 model", folder, fetch):
            blip2 = Blip2ForImageTextRetrieval.from_pretrained(folder, dtype=torch.float32, use_safetensors=True,
                                                               local_files_only=True)
        with _loading("BLIP-2 tokenizer", folder, fetch):
            blip_tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    image_cfg = _read_json(folder / "preprocessor_config.json")
    return {"blip2": blip2, "blip_tokenizer": blip_tokenizer, "image_cfg": image_cfg}


def _load_ip_adapter(folder: Path, dtype) -> dict:
    """IP-Adapter's CLIP image encoder and SD-1.5 tensors (``ip-adapter`` mode)."""
    from studio.engines.anomalycontrol.ip_adapter import read_ip_adapter

    with quiet_libraries():
        from transformers import CLIPVisionModelWithProjection

        fetch = fetch_ip_adapter_command(folder)
        with _loading("IP-Adapter image encoder", folder / IMAGE_ENCODER_DIR, fetch):
            encoder = CLIPVisionModelWithProjection.from_pretrained(folder / IMAGE_ENCODER_DIR, dtype=dtype,
                                                                    use_safetensors=True, local_files_only=True)
    return {"image_encoder": encoder, "ip_adapter": (folder / IP_ADAPTER_FILE, read_ip_adapter(folder / IP_ADAPTER_FILE))}


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def build_random_bundle(configs: Path | None = None, device=None, dtype=None, seed: int = 0,
                        sga: Path | None = None) -> ModelBundle:
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
    return finish_bundle(components, "sd15-random", sga, device, dtype, random_adapter=True, note=RANDOM_NOTE)


def finish_bundle(components: dict, profile: str, sga: Path | None, device, dtype, *, random_adapter: bool,
                  note: str = "") -> ModelBundle:
    """Place every model, freeze it, attach the decoupled attention and fill it for the guidance mode.

    ``sga`` (a checkpoint) gives mode ``sga``; else ``components["ip_adapter"]`` (path, tensors) with
    ``components["image_encoder"]`` gives ``ip-adapter``; else ``random_adapter`` (tiny, sd15-random)
    gives ``sga`` with a random adapter (the mechanism only); else ``text``.
    """
    import torch

    from studio.engines.anomalycontrol.ip_adapter import apply_ip_adapter
    from studio.engines.anomalycontrol.sga import EMBED_DIM, attach_sga, load_adapter

    unet, vae, text_encoder, blip2 = (components[k] for k in ("unet", "vae", "text_encoder", "blip2"))
    encoder = components.get("image_encoder") if sga is None else None
    with quiet_libraries():  # diffusers warns about `.to(dtype)` even when nothing must stay fp32
        for model in (unet, vae, text_encoder, *([encoder] if encoder is not None else [])):
            model.to(device=device, dtype=dtype).eval().requires_grad_(False)
    # BLIP-2 arrives in fp32: the ViT goes to the working dtype; Q-Former, query tokens, text embeddings
    # and the ITM head stay as loaded (exact).
    blip2.to(device=device).eval().requires_grad_(False)
    blip2.vision_model.to(dtype=dtype)
    for part in (blip2.qformer, blip2.embeddings):
        part.to(dtype=torch.float32)
    blip2.query_tokens.data = blip2.query_tokens.data.float()
    if device.type == "cuda":
        unet.to(memory_format=torch.channels_last)

    feature_dim = int(blip2.config.qformer_config.hidden_size)
    embed_dim = int(encoder.config.projection_dim) if encoder is not None else EMBED_DIM
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        adapter = attach_sga(unet, feature_dim, embed_dim=embed_dim)
    if sga is not None:
        load_adapter(adapter, sga)
        mode, source = "sga", str(sga)
    elif encoder is not None:
        path, tensors = components["ip_adapter"]
        apply_ip_adapter(adapter, tensors, f"The IP-Adapter file {show_path(path)!r}")
        mode, source = "ip-adapter", str(path)
    elif random_adapter:
        mode, source = "sga", f"random init ({profile})"
    else:
        mode, source = guidance_mode(False, False), None
    adapter.requires_grad_(False)
    return ModelBundle(
        profile=profile, unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=components["tokenizer"],
        scheduler=components["scheduler"], blip2=blip2, blip_tokenizer=components["blip_tokenizer"],
        adapter=adapter, guidance=mode, guidance_source=source,
        blip_image_config=dict(components.get("image_cfg") or {}), image_encoder=encoder, note=note,
    )


def save_bundle(bundle: ModelBundle, folder: str | os.PathLike[str], *, with_sga: bool = True,
                variant: str | None = None) -> Path:
    """Write ``bundle`` in the folder layout :func:`load_bundle` reads (``save_pretrained`` for every model).

    ``variant="fp16"`` writes SD's UNet, VAE and text encoder as the public repo holds them
    (``*.fp16.safetensors`` in half precision). The IP-Adapter files are written when the bundle has an
    image encoder (``ip-adapter`` mode), under the h94/IP-Adapter repo's paths.
    """
    import torch

    from studio.engines.anomalycontrol.csm import image_processor
    from studio.engines.anomalycontrol.ip_adapter import save_ip_adapter
    from studio.engines.anomalycontrol.sga import save_adapter

    root = Path(folder)
    sd = root / SD_DIR
    for name in ("unet", "vae", "text_encoder"):
        model = getattr(bundle, name)
        if variant == "fp16":
            model = copy.deepcopy(model).to(torch.float16)
        model.save_pretrained(sd / name, variant=variant)
    bundle.tokenizer.save_pretrained(sd / "tokenizer")
    bundle.scheduler.save_pretrained(sd / "scheduler")
    (sd / "model_index.json").write_text(json.dumps({
        "_class_name": "StableDiffusionInpaintPipeline", "feature_extractor": [None, None],
        "safety_checker": [None, None], "requires_safety_checker": False,
        "scheduler": ["diffusers", type(bundle.scheduler).__name__], "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }, indent=2))
    blip = root / BLIP_DIR
    bundle.blip2.save_pretrained(blip)
    bundle.blip_tokenizer.save_pretrained(blip)
    image_processor(bundle.blip_image_config, int(bundle.blip2.config.vision_config.image_size)).save_pretrained(blip)
    if with_sga and bundle.guidance == "sga":
        save_adapter(bundle.adapter, root / SGA_FILE)
    if bundle.image_encoder is not None:
        bundle.image_encoder.save_pretrained(root / IP_ADAPTER_DIR / IMAGE_ENCODER_DIR)
        save_ip_adapter(bundle.adapter, root / IP_ADAPTER_DIR / IP_ADAPTER_FILE)
    return root
