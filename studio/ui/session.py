"""Per-browser-session state: the last request's inputs and its candidates, kept on disk.

The value held in ``gr.State`` is a small plain dict (deep-copyable, JSON-like); pixels live
as PNG files in a private folder per session under the app's temporary root, which is not
served. A new generation replaces the previous one's files; the folder is removed when
Gradio drops the session (tab closed or time-to-live) and at process exit.
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from studio.batch import ReviewJob
from studio.errors import InputError
from studio.imaging import load_image, load_mask
from studio.types import Candidate, SynthesisRequest, array_sha256

#: Seconds a session's state (and files) live after their last update.
SESSION_TTL_S = 6 * 3600

Session = dict[str, Any]


def new_session(temp_root: Path) -> Session:
    """A fresh, empty session with its own folder."""
    sid = uuid.uuid4().hex
    folder = temp_root / "sessions" / sid
    folder.mkdir(parents=True, exist_ok=True)
    return {"id": sid, "dir": str(folder), "generation": 0, "inputs": {}, "candidates": [], "request": {},
            "review": None}


def ensure_session(state: Session | None, temp_root: Path) -> Session:
    """The session in ``state``, or a new one when there is none (or its folder is gone)."""
    if isinstance(state, dict) and state.get("dir") and Path(state["dir"]).is_dir():
        return state
    return new_session(temp_root)


def delete_session(state: Session | None) -> None:
    """Remove a session's files (``gr.State`` delete callback)."""
    if isinstance(state, dict) and state.get("dir"):
        shutil.rmtree(state["dir"], ignore_errors=True)


def write_png(path: Path, array: np.ndarray) -> str:
    """Fast lossless PNG for scratch files (RGB or greyscale uint8), written atomically."""
    data = array if array.ndim == 2 else cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    staging = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.png")
    if not cv2.imwrite(str(staging), data, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
        staging.unlink(missing_ok=True)
        raise OSError(f"could not write {path}")
    os.replace(staging, path)
    return str(path)


def write_png_once(folder: Path, array: np.ndarray) -> str:
    """A PNG named after its content in ``folder``: written the first time, reused after."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{array_sha256(array)}.png"
    return str(path) if path.exists() else write_png(path, array)


def record_generation(state: Session, request: SynthesisRequest, candidates: list[Candidate]) -> Session:
    """Store a request's inputs and candidates in the session (replacing the previous generation)."""
    asked = {"prompt": request.prompt, "reference_text": request.reference_text, "seed": request.seed}
    return record_candidates(state, request.image, request.reference, request.reference_mask, candidates, asked)


def record_review(state: Session, job: ReviewJob) -> Session:
    """Put a batch review job's candidates in the session as if just generated; accepting them
    then goes through :func:`studio.batch.accept_review` (ids ``<job-id>-NN``)."""
    asked = {"prompt": str(job.info.get("prompt", "")), "reference_text": str(job.info.get("reference_text", "")),
             "seed": job.info.get("seed")}
    return record_candidates(state, job.normal_image, job.reference, job.reference_mask, job.candidates, asked,
                             review=job.job_id)


def record_candidates(state: Session, image: np.ndarray, reference: np.ndarray | None,
                      reference_mask: np.ndarray | None, candidates: list[Candidate], request: dict[str, Any],
                      review: str | None = None) -> Session:
    """Write the inputs and candidates into a new generation folder of the session (the previous
    one is removed); ``review`` is the batch review job they came from, if any."""
    old = Path(state["dir"]) / f"gen{state['generation']:04d}"
    state["generation"] += 1
    folder = Path(state["dir"]) / f"gen{state['generation']:04d}"
    folder.mkdir(parents=True, exist_ok=True)
    inputs: dict[str, str | None] = {"normal": write_png(folder / "normal.png", image)}
    inputs["reference"] = write_png(folder / "reference.png", reference) if reference is not None else None
    inputs["reference_mask"] = (
        write_png(folder / "reference_mask.png", _mask_u8(reference_mask)) if reference_mask is not None else None
    )
    records = []
    for i, cand in enumerate(candidates):
        records.append({
            "index": i,
            "image": write_png(folder / f"candidate_{i:02d}.png", cand.image),
            "mask": write_png(folder / f"candidate_{i:02d}_mask.png", _mask_u8(cand.mask)),
            "seed": int(cand.seed),
            "metadata": cand.metadata,
            "status": "new",
            "sample_id": None,
        })
    state["inputs"] = inputs
    state["candidates"] = records
    state["request"] = request
    state["review"] = review
    shutil.rmtree(old, ignore_errors=True)
    return state


def candidate_record(state: Session | None, index: Any) -> dict[str, Any]:
    """The candidate ``index`` (0-based, as returned by generate) of this session's last generation."""
    records = (state or {}).get("candidates") or []
    if not records:
        raise InputError("There are no candidates in this session yet: generate some first.")
    try:
        number = float(index)
    except (TypeError, ValueError):
        raise InputError(f"The candidate index must be a whole number, got {index!r}.") from None
    if not np.isfinite(number) or number != int(number) or not 0 <= number < len(records):
        raise InputError(f"The candidate index must be between 0 and {len(records) - 1}, got {index!r}.")
    return records[int(number)]


def load_candidate(record: dict[str, Any]) -> Candidate:
    """Rebuild a :class:`Candidate` from its session files."""
    image = load_image(record["image"], what="candidate image")
    mask = load_mask(record["mask"], (image.shape[1], image.shape[0]), what="candidate mask")
    return Candidate(image=image, mask=mask.astype(np.uint8) * 255, seed=record["seed"], metadata=record["metadata"])


def load_inputs(state: Session) -> dict[str, np.ndarray | None]:
    """The normal image, reference and reference mask of the session's last generation."""
    inputs = state.get("inputs") or {}
    normal = load_image(inputs["normal"], what="normal image")
    reference = load_image(inputs["reference"], what="reference image") if inputs.get("reference") else None
    reference_mask = None
    if reference is not None and inputs.get("reference_mask"):
        reference_mask = load_mask(inputs["reference_mask"], (reference.shape[1], reference.shape[0]))
    return {"normal_image": normal, "reference": reference, "reference_mask": reference_mask}


def visible_candidates(state: Session | None) -> list[dict[str, Any]]:
    """The candidates still on show (not rejected), in generation order."""
    return [r for r in (state or {}).get("candidates") or [] if r["status"] != "rejected"]


def _mask_u8(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim == 3:
        mask = mask[..., 0]
    return ((mask > 0) * 255).astype(np.uint8)
