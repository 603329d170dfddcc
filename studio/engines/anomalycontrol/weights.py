"""Weight profiles and the one loader for the ``anomalycontrol`` engine.

Profiles:

- ``tiny``: random-init miniature models built in-process (seconds, deterministic).
- ``sd15-random``: the full-size architectures from ``weights/configs/`` with random weights
  (real memory and speed, for GPU benchmarks; tokenizers are generated, see ``tiny.py``).
- ``sd15``: real weights — SD-1.5 inpainting, BLIP-2 ITM ViT-g and an SGA checkpoint — from
  ``weights/<name>/`` or the Hugging Face cache (never downloaded at run time).
- a folder path: the same layout as ``weights/`` (what :func:`save_bundle` writes)::

      <folder>/stable-diffusion-inpainting/   diffusers layout: unet/ vae/ text_encoder/ tokenizer/ scheduler/
      <folder>/blip2-itm-vit-g/               transformers layout: config.json model.safetensors tokenizer files
      <folder>/sga/adapter.safetensors        SGA checkpoint (optional: without it sga_scale is forced to 0)

Only safetensors are read (pickles can run code). Anything missing gives one
:class:`~studio.errors.WeightsError` naming each piece, where it goes and the command that
fetches it. This module imports neither torch nor diffusers at import time:
:func:`sd15_available` runs at app start-up and only looks at files.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from studio import config
from studio.errors import WeightsError

log = logging.getLogger(__name__)

PROFILES = ("tiny", "sd15-random", "sd15")
SD_DIR = "stable-diffusion-inpainting"
BLIP_DIR = "blip2-itm-vit-g"
SGA_FILE = "sga/adapter.safetensors"
SD_REPO = "stable-diffusion-v1-5/stable-diffusion-inpainting"
BLIP_REPO = "Salesforce/blip2-itm-vit-g"
CONFIGS_DIR = config.REPO_ROOT / "weights" / "configs"
TINY_NOTE = "tiny random model: the maps show the mechanism only"
RANDOM_NOTE = "random weights (sd15-random): the maps show the mechanism only"

#: Files each piece needs; each entry lists alternatives (any one will do).
SD_REQUIRED: tuple[tuple[str, ...], ...] = (
    ("unet/config.json",),
    ("unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors"),
    ("vae/config.json",),
    ("vae/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.fp16.safetensors"),
    ("text_encoder/config.json",),
    ("text_encoder/model.safetensors", "text_encoder/model.fp16.safetensors"),
    ("tokenizer/vocab.json", "tokenizer/tokenizer.json"),
    ("scheduler/scheduler_config.json",),
)
BLIP_REQUIRED: tuple[tuple[str, ...], ...] = (
    ("config.json",),
    ("model.safetensors", "model.safetensors.index.json"),
    ("vocab.txt", "tokenizer.json"),
)
_SD_FETCH_FILES = (
    "model_index.json scheduler/scheduler_config.json tokenizer/vocab.json tokenizer/merges.txt "
    "tokenizer/tokenizer_config.json tokenizer/special_tokens_map.json text_encoder/config.json "
    "text_encoder/model.safetensors unet/config.json unet/diffusion_pytorch_model.safetensors "
    "vae/config.json vae/diffusion_pytorch_model.safetensors"
)


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
    #: Where the SGA weights came from; None when no checkpoint was found (SGA forced off).
    sga_source: str | None
    blip_image_size: int
    blip_mean: tuple[float, ...]
    blip_std: tuple[float, ...]
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

    @property
    def sga_trained(self) -> bool:
        return self.sga_source is not None


# --------------------------------------------------------------------------- file checks (no torch)


@dataclass
class _Piece:
    title: str
    folder: Path
    repo: str | None
    missing: list[str]
    fetch: str


def hub_cache_dir() -> str:
    """The Hugging Face hub cache folder (``HF_HUB_CACHE`` / ``HF_HOME`` respected)."""
    from huggingface_hub import constants

    return os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE


def _missing_files(folder: Path, required: tuple[tuple[str, ...], ...]) -> list[str]:
    return [alts[0] for alts in required if not any((folder / a).is_file() for a in alts)]


def _cached_snapshot(repo: str, required: tuple[tuple[str, ...], ...]) -> Path | None:
    """The snapshot folder of ``repo`` in the hub cache if every required file is there (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        return None
    cache = hub_cache_dir()
    snapshot: Path | None = None
    for alternatives in required:
        found = None
        for name in alternatives:
            hit = try_to_load_from_cache(repo, name, cache_dir=cache)
            if isinstance(hit, str):
                found = Path(hit)
                break
        if found is None:
            return None
        root = found
        for _ in Path(name).parts:
            root = root.parent
        snapshot = snapshot or root
    return snapshot


def _fetch_sd(folder: Path) -> str:
    return f"hf download {SD_REPO} {_SD_FETCH_FILES} --local-dir {_show(folder)}"


def _fetch_blip(folder: Path) -> str:
    return f'hf download {BLIP_REPO} --exclude "*.bin" --local-dir {_show(folder)}'


def _show(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def locate(root: Path, *, use_hub_cache: bool) -> tuple[Path | None, Path | None, Path | None, list[_Piece]]:
    """Find (sd folder, blip folder, sga file) under ``root`` (or the hub cache); also the missing pieces."""
    pieces: list[_Piece] = []
    found: list[Path | None] = []
    for folder, repo, required, title, fetch in (
        (root / SD_DIR, SD_REPO, SD_REQUIRED,
         "Stable Diffusion 1.5 inpainting (9-channel UNet, VAE, CLIP text encoder)", _fetch_sd),
        (root / BLIP_DIR, BLIP_REPO, BLIP_REQUIRED, "BLIP-2 image-text matching model (ViT-g + Q-Former)", _fetch_blip),
    ):
        missing = _missing_files(folder, required)
        location: Path | None = folder
        if missing:
            location = _cached_snapshot(repo, required) if use_hub_cache else None
            if location is None:
                pieces.append(_Piece(title, folder, repo, missing, fetch(folder)))
        found.append(location)
    sd, blip = found
    sga = root / SGA_FILE
    return sd, blip, (sga if sga.is_file() else None), pieces


def missing_message(pieces: list[_Piece], root: Path, *, hub_cache: bool, sga_missing: bool) -> str:
    """The one message for missing weights: each piece, where it goes, how to fetch it."""
    where = f"{_show(root)}" + (" and the Hugging Face cache" if hub_cache else "")
    lines = [f"The anomalycontrol engine's weights are incomplete (looked in {where}):"]
    for p in pieces:
        shown = ", ".join(p.missing[:3]) + (f" and {len(p.missing) - 3} more" if len(p.missing) > 3 else "")
        lines.append(f"  - missing: {p.title}: put it in {_show(p.folder)}/ (missing {shown}); "
                     f"on a connected machine run: {p.fetch}")
    if sga_missing:
        lines.append(f"  - optional: SGA checkpoint {_show(root / SGA_FILE)} (train it with `anomaly-studio "
                     "train`; without it the engine runs with sga_scale=0)")
    lines.append("See weights/README.md. For an offline demo of the mechanism use --weights tiny (random weights).")
    return "\n".join(lines)


def sd15_available(root: str | os.PathLike[str] | None = None) -> bool:
    """True when SD-1.5 inpainting and BLIP-2 are on disk (``weights/`` or the hub cache). Files only, no torch."""
    try:
        *_, pieces = locate(Path(root) if root else config.WEIGHTS_DIR, use_hub_cache=True)
    except Exception:  # a broken cache must not break start-up
        return False
    return not pieces


# --------------------------------------------------------------------------- building and loading


def load_bundle(weights: str | None = None, *, device: str | None = None, dtype=None) -> ModelBundle:
    """Load a profile (``tiny``, ``sd15-random``, ``sd15``; None or ``auto`` = ``sd15``) or a folder."""
    name = (weights or "auto").strip()
    if name in ("auto", ""):
        name = "sd15"
    target_device, target_dtype = _device_dtype(device, dtype)
    if name == "tiny":
        from studio.engines.anomalycontrol.tiny import build_tiny_components

        return _finish(build_tiny_components(), "tiny", None, target_device, target_dtype,
                       random_adapter=True, note=TINY_NOTE)
    if name == "sd15-random":
        return build_random_bundle(CONFIGS_DIR, target_device, target_dtype)
    if name == "sd15":
        return _load_root(config.WEIGHTS_DIR, "sd15", target_device, target_dtype, use_hub_cache=True)
    path = Path(name).expanduser()
    if path.is_dir():
        return _load_root(path, str(path), target_device, target_dtype, use_hub_cache=False)
    if os.sep in name or "/" in name or path.exists():
        raise WeightsError(f"The weights folder {name!r} does not exist (or is not a folder); see weights/README.md.")
    raise WeightsError(
        f"Unknown weights {weights!r}: use tiny, sd15-random, sd15 or a folder laid out like weights/ "
        "(see weights/README.md)."
    )


def _device_dtype(device: str | None, dtype):
    import torch

    name = device or os.environ.get("ANOMALY_STUDIO_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    target = torch.device(name)
    if dtype is None:
        dtype = torch.float16 if target.type == "cuda" else torch.float32
    return target, dtype


def _load_root(root: Path, profile: str, device, dtype, *, use_hub_cache: bool) -> ModelBundle:
    sd, blip, sga, pieces = locate(root, use_hub_cache=use_hub_cache)
    if pieces:
        raise WeightsError(missing_message(pieces, root, hub_cache=use_hub_cache, sga_missing=sga is None))
    components = {**_load_sd(sd, dtype), **_load_blip(blip, dtype)}
    return _finish(components, profile, sga, device, dtype, random_adapter=False, sga_expected=root / SGA_FILE)


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
                f"The {what} in {_show(folder)} could not be loaded ({reason}). The files may be truncated or "
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

        fetch = _fetch_sd(folder)
        common = dict(use_safetensors=True, local_files_only=True)
        with _loading("Stable Diffusion inpainting UNet", folder / "unet", fetch):
            unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=dtype,
                                                        variant=_variant(folder / "unet"), **common)
        if unet.config.in_channels != 9:
            raise WeightsError(
                f"The UNet in {_show(folder / 'unet')} has {unet.config.in_channels} input channels; the engine needs "
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

        fetch = _fetch_blip(folder)
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


def build_random_bundle(configs: Path = CONFIGS_DIR, device=None, dtype=None, seed: int = 0) -> ModelBundle:
    """``sd15-random``: full-size models from the shipped configs, random weights, built on ``device``."""
    import torch

    device, dtype = _device_dtype(str(device) if device else None, dtype)
    with quiet_libraries():
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import Blip2Config, Blip2ForImageTextRetrieval, CLIPTextConfig, CLIPTextModel

        from studio.engines.anomalycontrol.tiny import bert_tokenizer, clip_tokenizer

        sd = configs / SD_DIR
        if not (sd / "unet" / "config.json").is_file() or not (configs / BLIP_DIR / "config.json").is_file():
            raise WeightsError(f"The shipped model configs are missing from {_show(configs)}; restore weights/configs/ from git.")
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
    return _finish(components, "sd15-random", None, device, dtype, random_adapter=True, note=RANDOM_NOTE)


def _finish(components: dict, profile: str, sga: Path | None, device, dtype, *, random_adapter: bool,
            note: str = "", sga_expected: Path | None = None) -> ModelBundle:
    """Place every model, freeze it, attach SGA (loading the checkpoint when there is one)."""
    import torch

    from studio.engines.anomalycontrol.csm import CLIP_MEAN, CLIP_STD
    from studio.engines.anomalycontrol.sga import attach_sga, load_adapter

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
            f"No SGA checkpoint at {_show(sga_expected or Path(SGA_FILE))}: "
            "generating with sga_scale=0 (reference-image guidance off; ASEA preview still works). "
            "Train one with `anomaly-studio train` (README: Train on your own defects)."
        )
        log.warning(warnings[-1])
    adapter.requires_grad_(False)
    image_cfg = components.get("image_cfg") or {}
    size = image_cfg.get("size")
    image_size = (size.get("height") if isinstance(size, dict) else size) or blip2.config.vision_config.image_size
    return ModelBundle(
        profile=profile, unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=components["tokenizer"],
        scheduler=components["scheduler"], blip2=blip2, blip_tokenizer=components["blip_tokenizer"],
        adapter=adapter, sga_source=source, blip_image_size=int(image_size),
        blip_mean=tuple(image_cfg.get("image_mean") or CLIP_MEAN), blip_std=tuple(image_cfg.get("image_std") or CLIP_STD),
        note=note, warnings=warnings,
    )


def save_bundle(bundle: ModelBundle, folder: str | os.PathLike[str], *, with_sga: bool = True) -> Path:
    """Write ``bundle`` in the folder layout :func:`load_bundle` reads (``save_pretrained`` for every model)."""
    from studio.engines.anomalycontrol.sga import save_adapter

    root = Path(folder)
    sd = root / SD_DIR
    bundle.unet.save_pretrained(sd / "unet")
    bundle.vae.save_pretrained(sd / "vae")
    bundle.text_encoder.save_pretrained(sd / "text_encoder")
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
    (blip / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "BlipImageProcessor", "size": {"height": bundle.blip_image_size,
                                                               "width": bundle.blip_image_size},
        "image_mean": list(bundle.blip_mean), "image_std": list(bundle.blip_std), "resample": 3,
        "do_normalize": True, "do_rescale": True, "rescale_factor": 1 / 255, "do_resize": True,
    }, indent=2))
    if with_sga:
        save_adapter(bundle.adapter, root / SGA_FILE)
    return root
