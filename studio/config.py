"""Limits and locations, each overridable by an environment variable."""
from __future__ import annotations

import os
from pathlib import Path


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError:
        return default


#: Largest image accepted, in pixels (width * height).
MAX_PIXELS: int = _env_int("ANOMALY_STUDIO_MAX_PIXELS", 40_000_000)
#: Largest file accepted by the loader and by uploads, in bytes.
MAX_FILE_BYTES: int = _env_int("ANOMALY_STUDIO_MAX_FILE_BYTES", 50 * 1024 * 1024)
#: Longest prompt / reference text accepted, in characters.
MAX_TEXT_CHARS: int = _env_int("ANOMALY_STUDIO_MAX_TEXT_CHARS", 1000)
#: Most candidates one request may ask for.
MAX_CANDIDATES: int = _env_int("ANOMALY_STUDIO_MAX_CANDIDATES", 64)
#: Largest share of the image a defect mask may cover.
MAX_MASK_FRACTION: float = 0.9

REPO_ROOT: Path = Path(__file__).resolve().parent.parent
ASSETS_DIR: Path = REPO_ROOT / "assets"
WEIGHTS_DIR: Path = Path(os.environ.get("ANOMALY_STUDIO_WEIGHTS", REPO_ROOT / "weights"))


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The curated-store folder: explicit argument, else $ANOMALY_STUDIO_DATA, else ./studio_data."""
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("ANOMALY_STUDIO_DATA", "studio_data"))
