"""The ``anomalycontrol`` engine's weights on disk: profiles, the folder layout, the file checks, guidance modes.

Profiles:

- ``tiny``: random-init miniature models built in-process (seconds, deterministic).
- ``sd15-random``: the full-size architectures from ``weights/configs/`` with random weights
  (real memory and speed, for GPU benchmarks; tokenizers are generated, see ``tiny.py``).
- ``sd15``: real weights from ``weights/<name>/`` or the Hugging Face cache (never downloaded
  at run time).
- a folder path: the same layout as ``weights/`` (what ``anomaly-studio fetch --local-dir`` writes)::

      <folder>/stable-diffusion-inpainting/   the repo's diffusers layout; its weights are fp16 safetensors
                                              (unet/diffusion_pytorch_model.fp16.safetensors, ...), as published
      <folder>/blip2-itm-vit-g/               config.json model.safetensors (fp32) + processor/tokenizer files
      <folder>/sga/adapter.safetensors        a trained SGA adapter (optional)
      <folder>/ip-adapter/models/ip-adapter_sd15.safetensors   IP-Adapter SD-1.5 + its CLIP image encoder
      <folder>/ip-adapter/models/image_encoder/                (optional; the h94/IP-Adapter repo's paths)

Guidance modes (:func:`guidance_mode`), chosen from what is there: ``sga`` (the paper: an SGA
adapter), ``ip-adapter`` (reference guidance without training: IP-Adapter and its image encoder,
no adapter), ``text`` (plain inpainting with the target prompt). Only safetensors are read
(pickles can run code). Anything missing gives one :class:`~studio.errors.WeightsError` naming
each piece, where it goes and the command that fetches it.

This module imports neither torch nor diffusers nor the loader: :func:`sd15_available` runs at
app start-up and only looks at files. Loading lives in :mod:`models`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from studio import config

PROFILES = ("tiny", "sd15-random", "sd15")
SD_DIR = "stable-diffusion-inpainting"
BLIP_DIR = "blip2-itm-vit-g"
SGA_FILE = "sga/adapter.safetensors"
IP_ADAPTER_DIR = "ip-adapter"
SD_REPO = "stable-diffusion-v1-5/stable-diffusion-inpainting"
BLIP_REPO = "Salesforce/blip2-itm-vit-g"
IP_ADAPTER_REPO = "h94/IP-Adapter"
#: IP-Adapter SD-1.5 and its CLIP ViT-H image encoder, as paths inside the h94/IP-Adapter repo.
IP_ADAPTER_FILE = "models/ip-adapter_sd15.safetensors"
IMAGE_ENCODER_DIR = "models/image_encoder"
TINY_NOTE = "tiny random model: the maps show the mechanism only"
RANDOM_NOTE = "random weights (sd15-random): the maps show the mechanism only"

#: The guidance modes, from the paper's to the plainest.
GUIDANCE_MODES = ("sga", "ip-adapter", "text")

#: Files each piece needs; each entry lists alternatives (any one will do). The public SD inpainting
#: repo has fp16 safetensors only; an fp32 file (e.g. one saved locally) is accepted too.
SD_REQUIRED: tuple[tuple[str, ...], ...] = (
    ("unet/config.json",),
    ("unet/diffusion_pytorch_model.fp16.safetensors", "unet/diffusion_pytorch_model.safetensors"),
    ("vae/config.json",),
    ("vae/diffusion_pytorch_model.fp16.safetensors", "vae/diffusion_pytorch_model.safetensors"),
    ("text_encoder/config.json",),
    ("text_encoder/model.fp16.safetensors", "text_encoder/model.safetensors"),
    ("tokenizer/vocab.json", "tokenizer/tokenizer.json"),   # the slow CLIP tokenizer needs vocab AND merges,
    ("tokenizer/merges.txt", "tokenizer/tokenizer.json"),  # the fast one tokenizer.json alone
    ("scheduler/scheduler_config.json",),
)
BLIP_REQUIRED: tuple[tuple[str, ...], ...] = (
    ("config.json",),
    ("model.safetensors", "model.safetensors.index.json"),
    ("vocab.txt", "tokenizer.json"),
)
IP_ADAPTER_REQUIRED: tuple[tuple[str, ...], ...] = (
    (IP_ADAPTER_FILE,),
    (f"{IMAGE_ENCODER_DIR}/config.json",),
    (f"{IMAGE_ENCODER_DIR}/model.safetensors",),
)
#: Exactly what ``fetch`` downloads of each repo (names, no wildcards: no pickle, no fp32 duplicate,
#: no safety checker, no single-file .ckpt).
SD_FILES = (
    "model_index.json", "scheduler/scheduler_config.json", "tokenizer/merges.txt", "tokenizer/special_tokens_map.json",
    "tokenizer/tokenizer_config.json", "tokenizer/vocab.json", "text_encoder/config.json",
    "text_encoder/model.fp16.safetensors", "unet/config.json", "unet/diffusion_pytorch_model.fp16.safetensors",
    "vae/config.json", "vae/diffusion_pytorch_model.fp16.safetensors",
)
BLIP_FILES = ("config.json", "model.safetensors", "preprocessor_config.json", "special_tokens_map.json",
              "tokenizer.json", "tokenizer_config.json", "vocab.txt")
IP_ADAPTER_FILES = (IP_ADAPTER_FILE, f"{IMAGE_ENCODER_DIR}/config.json", f"{IMAGE_ENCODER_DIR}/model.safetensors")


def hub_cache_dir() -> str:
    """The Hugging Face hub cache folder (``HF_HUB_CACHE`` / ``HF_HOME`` respected)."""
    from huggingface_hub import constants

    return os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE


def show_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _download_command(repo: str, files: tuple[str, ...], folder: Path) -> str:
    return f"hf download {repo} {' '.join(files)} --local-dir {show_path(folder)}"


def fetch_sd_command(folder: Path) -> str:
    return _download_command(SD_REPO, SD_FILES, folder)


def fetch_blip_command(folder: Path) -> str:
    return _download_command(BLIP_REPO, BLIP_FILES, folder)


def fetch_ip_adapter_command(folder: Path) -> str:
    return _download_command(IP_ADAPTER_REPO, IP_ADAPTER_FILES, folder)


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


@dataclass
class Piece:
    """A missing piece of the weights: what it is, where it goes and how to fetch it."""

    title: str
    folder: Path
    missing: list[str]
    fetch: str


@dataclass
class Located:
    """Where each piece was found (None = not there) and the required pieces that are missing."""

    sd: Path | None
    blip: Path | None
    sga: Path | None
    ip_adapter: Path | None
    missing: list[Piece]

    @property
    def guidance(self) -> str:
        return guidance_mode(self.sga is not None, self.ip_adapter is not None)


def _find(folder: Path, repo: str, required, use_hub_cache: bool) -> tuple[Path | None, list[str]]:
    missing = _missing_files(folder, required)
    if not missing:
        return folder, []
    cached = _cached_snapshot(repo, required) if use_hub_cache else None
    return cached, ([] if cached is not None else missing)


def locate(root: Path, *, use_hub_cache: bool) -> Located:
    """Find every piece under ``root`` (or the hub cache); the SD and BLIP-2 pieces that are missing."""
    pieces: list[Piece] = []
    found: list[Path | None] = []
    for folder, repo, required, title, fetch in (
        (root / SD_DIR, SD_REPO, SD_REQUIRED,
         "Stable Diffusion 1.5 inpainting (9-channel UNet, VAE, CLIP text encoder)", fetch_sd_command),
        (root / BLIP_DIR, BLIP_REPO, BLIP_REQUIRED, "BLIP-2 image-text matching model (ViT-g + Q-Former)",
         fetch_blip_command),
    ):
        location, missing = _find(folder, repo, required, use_hub_cache)
        if missing:
            pieces.append(Piece(title, folder, missing, fetch(folder)))
        found.append(location)
    ip_adapter, _ = _find(root / IP_ADAPTER_DIR, IP_ADAPTER_REPO, IP_ADAPTER_REQUIRED, use_hub_cache)
    sga = root / SGA_FILE
    return Located(found[0], found[1], sga if sga.is_file() else None, ip_adapter, pieces)


def guidance_mode(has_sga: bool, has_ip_adapter: bool) -> str:
    """``sga`` with an adapter, else ``ip-adapter`` with IP-Adapter's files, else ``text``."""
    return "sga" if has_sga else "ip-adapter" if has_ip_adapter else "text"


def missing_message(pieces: list[Piece], root: Path, *, hub_cache: bool) -> str:
    """The one message for missing weights: each piece, where it goes, how to fetch it, and the optional ones."""
    where = f"{show_path(root)}" + (" and the Hugging Face cache" if hub_cache else "")
    lines = [f"The anomalycontrol engine's weights are incomplete (looked in {where}):"]
    for p in pieces:
        shown = ", ".join(p.missing[:3]) + (f" and {len(p.missing) - 3} more" if len(p.missing) > 3 else "")
        lines.append(f"  - missing: {p.title}: put it in {show_path(p.folder)}/ (missing {shown}); "
                     f"on a connected machine run: {p.fetch}")
    lines.append(f"  - optional: an SGA adapter at {show_path(root / SGA_FILE)} (guidance mode sga, the paper's; "
                 "train one with `anomaly-studio train`), or IP-Adapter in "
                 f"{show_path(root / IP_ADAPTER_DIR)}/ (guidance mode ip-adapter; `anomaly-studio fetch --ip-adapter`); "
                 "without either the engine runs guidance mode text (plain inpainting with the prompt)")
    if pieces:
        lines.append(f"  Or fetch everything at once: anomaly-studio fetch --local-dir {show_path(root)}")
    lines.append("See weights/README.md. For an offline demo of the mechanism use --weights tiny (random weights).")
    return "\n".join(lines)


def sd15_available(root: str | os.PathLike[str] | None = None) -> bool:
    """True when SD-1.5 inpainting and BLIP-2 are on disk (``weights/`` or the hub cache). Files only, no torch."""
    try:
        located = locate(Path(root) if root else config.WEIGHTS_DIR, use_hub_cache=True)
    except Exception:  # a broken cache must not break start-up
        return False
    return not located.missing


def configs_dir() -> Path:
    """The shipped full-size model configs: ``configs/`` in the (``ANOMALY_STUDIO_WEIGHTS``-overridable) weights folder."""
    return config.WEIGHTS_DIR / "configs"
