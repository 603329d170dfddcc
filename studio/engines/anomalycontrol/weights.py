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
    ("tokenizer/vocab.json", "tokenizer/tokenizer.json"),   # the slow CLIP tokenizer needs vocab AND merges,
    ("tokenizer/merges.txt", "tokenizer/tokenizer.json"),  # the fast one tokenizer.json alone
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
    #: The BLIP-2 checkpoint's ``preprocessor_config.json`` ({} when it has none: PIL bicubic defaults).
    blip_image_config: dict[str, Any]
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


def fetch_sd_command(folder: Path) -> str:
    return f"hf download {SD_REPO} {_SD_FETCH_FILES} --local-dir {show_path(folder)}"


def fetch_blip_command(folder: Path) -> str:
    return f'hf download {BLIP_REPO} --exclude "*.bin" --local-dir {show_path(folder)}'


def show_path(path: Path) -> str:
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
         "Stable Diffusion 1.5 inpainting (9-channel UNet, VAE, CLIP text encoder)", fetch_sd_command),
        (root / BLIP_DIR, BLIP_REPO, BLIP_REQUIRED, "BLIP-2 image-text matching model (ViT-g + Q-Former)", fetch_blip_command),
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
    where = f"{show_path(root)}" + (" and the Hugging Face cache" if hub_cache else "")
    lines = [f"The anomalycontrol engine's weights are incomplete (looked in {where}):"]
    for p in pieces:
        shown = ", ".join(p.missing[:3]) + (f" and {len(p.missing) - 3} more" if len(p.missing) > 3 else "")
        lines.append(f"  - missing: {p.title}: put it in {show_path(p.folder)}/ (missing {shown}); "
                     f"on a connected machine run: {p.fetch}")
    if sga_missing:
        lines.append(f"  - optional: SGA checkpoint {show_path(root / SGA_FILE)} (train it with `anomaly-studio "
                     "train`; without it the engine runs with sga_scale=0)")
    if pieces:
        lines.append(f"  Or fetch everything at once: anomaly-studio fetch --local-dir {show_path(root)}")
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


def configs_dir() -> Path:
    """The shipped full-size model configs: ``configs/`` in the (``ANOMALY_STUDIO_WEIGHTS``-overridable) weights folder."""
    return config.WEIGHTS_DIR / "configs"


def load_bundle(weights: str | None = None, *, device: str | None = None, dtype=None) -> ModelBundle:
    """Load a profile (``tiny``, ``sd15-random``, ``sd15``; None or ``auto`` = ``sd15``) or a folder."""
    from studio.engines.anomalycontrol import models

    name = (weights or "auto").strip()
    if name in ("auto", ""):
        name = "sd15"
    target_device, target_dtype = models.device_dtype(device, dtype)
    if name == "tiny":
        from studio.engines.anomalycontrol.tiny import build_tiny_components

        return models.finish_bundle(build_tiny_components(), "tiny", None, target_device, target_dtype,
                                    random_adapter=True, note=TINY_NOTE)
    if name == "sd15-random":
        return models.build_random_bundle(configs_dir(), target_device, target_dtype)
    if name == "sd15":
        return models.load_root(config.WEIGHTS_DIR, "sd15", target_device, target_dtype, use_hub_cache=True)
    path = Path(name).expanduser()
    if path.is_dir():
        return models.load_root(path, str(path), target_device, target_dtype, use_hub_cache=False)
    if os.sep in name or "/" in name or path.exists():
        raise WeightsError(f"The weights folder {name!r} does not exist (or is not a folder); see weights/README.md.")
    raise WeightsError(
        f"Unknown weights {weights!r}: use tiny, sd15-random, sd15 or a folder laid out like weights/ "
        "(see weights/README.md)."
    )


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


def save_bundle(bundle: ModelBundle, folder: str | os.PathLike[str], *, with_sga: bool = True) -> Path:
    """Write ``bundle`` in the folder layout :func:`load_bundle` reads (``save_pretrained`` for every model)."""
    from studio.engines.anomalycontrol.csm import image_processor
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
    image_processor(bundle.blip_image_config, int(bundle.blip2.config.vision_config.image_size)).save_pretrained(blip)
    if with_sga:
        save_adapter(bundle.adapter, root / SGA_FILE)
    return root
