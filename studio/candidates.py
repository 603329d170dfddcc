"""Candidate files: ``candidate_NN.png`` (composited image), ``candidate_NN_mask.png`` (0/255 label)
and ``candidate_NN.json`` (seed and metadata), written by ``anomaly-studio generate`` and batch
review folders, read back by review and the studio.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from studio.atomic import write_bytes, write_new
from studio.errors import InputError
from studio.imaging import label_mask, load_image, load_mask, to_png_bytes
from studio.jsonfile import dumps
from studio.types import Candidate


def candidate_stem(folder: Path, index: int) -> Path:
    """``<folder>/candidate_NN`` (the three files add ``.png``, ``_mask.png`` and ``.json``)."""
    return folder / f"candidate_{index:02d}"


def write_candidates(folder: str | os.PathLike, candidates: list[Candidate], *, staged: bool = False) -> list[Path]:
    """Write each candidate's three files into ``folder``; returns the image paths.

    Each file is written atomically, or plainly when ``staged`` (``folder`` is a :class:`~studio.atomic.staged_dir`,
    which syncs and renames the whole folder at once).
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    write = write_new if staged else write_bytes
    written = []
    for i, cand in enumerate(candidates):
        stem = candidate_stem(out, i)
        write(f"{stem}.png", to_png_bytes(cand.image))
        write(f"{stem}_mask.png", to_png_bytes(label_mask(cand.mask)))
        write(f"{stem}.json", dumps({"seed": int(cand.seed), **cand.metadata}).encode("utf-8"))
        written.append(Path(f"{stem}.png"))
    return written


def read_candidates(folder: str | os.PathLike, count: int | None = None) -> list[Candidate]:
    """Read candidates 0..count-1 (default: every consecutive ``candidate_NN.json``) back from ``folder``."""
    folder = Path(folder)
    if count is None:
        count = 0
        while Path(f"{candidate_stem(folder, count)}.json").is_file():
            count += 1
    return [read_candidate(folder, i) for i in range(count)]


def candidate_files(folder: str | os.PathLike, index: int) -> tuple[Path, Path]:
    """The image and 0/255 mask PNGs of candidate ``index`` in ``folder``."""
    stem = candidate_stem(Path(folder), index)
    return Path(f"{stem}.png"), Path(f"{stem}_mask.png")


def read_candidate_metadata(folder: str | os.PathLike, index: int) -> dict:
    """Candidate ``index``'s seed and metadata (its JSON file), without decoding its pictures."""
    stem = candidate_stem(Path(folder), index)
    try:
        return json.loads(Path(f"{stem}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise InputError(f"Candidate {index} in {folder} has no readable {stem.name}.json.") from None


def read_candidate(folder: str | os.PathLike, index: int) -> Candidate:
    """Read candidate ``index`` (image, 0/255 mask, seed, metadata) back from ``folder``."""
    stem = candidate_stem(Path(folder), index)
    meta = read_candidate_metadata(folder, index)
    image = load_image(Path(f"{stem}.png"), what=f"candidate {index} image")
    mask = load_mask(Path(f"{stem}_mask.png"), (image.shape[1], image.shape[0]), what=f"candidate {index} mask")
    return Candidate(image=image, mask=label_mask(mask), seed=int(meta.get("seed", 0)), metadata=meta)


def metadata_score(metadata: dict) -> float | None:
    """The engine's quality score in a candidate's metadata (higher is better); None when it gave none."""
    value = (metadata.get("score") or {}).get("value") if isinstance(metadata, dict) else None
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
