"""Batch review folders: ``<data-dir>/review/<job-id>/``, the one module that writes, lists, reads and
accepts them.

A folder holds the candidates (:mod:`studio.candidates` files), ``normal.png``, optionally
``reference.png`` and ``reference_mask.png``, ``job.json`` (labels, prompt, engine, counts, the
spec it came from) and ``decisions/`` (who decided what: :mod:`studio.batch.decisions`, the only
part of a folder that changes after it is written).
It is written in a hidden ``.<job-id>.partial-<hex>`` sibling and renamed, so a folder that
exists is complete; the store's recovery clears what an interrupted writer left
(:func:`studio.atomic.remove_staging_leftovers`).
Accepting candidate ``i`` stores it as ``<job-id>-NN`` exactly once, whoever accepts it.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from studio.atomic import mtime, staged_dir, write_new
from studio.batch.spec import review_sample_id
from studio.candidates import candidate_files, read_candidate, write_candidates
from studio.errors import InputError
from studio.imaging import label_mask, load_image, load_mask, to_png_bytes
from studio.jsonfile import dumps
from studio.store import NewSample, Store, now_iso
from studio.types import Candidate

REVIEW_DIR = "review"
JOB_FILE = "job.json"
DECISIONS_DIR = "decisions"


@dataclass(frozen=True)
class ReviewSummary:
    """What a list of review jobs shows, from ``job.json`` alone (no pixels decoded)."""

    folder: Path
    job_id: str
    prompt: str
    reference_text: str
    candidates: int
    category: str
    defect_type: str
    note: str
    seed: int | None
    written_at: str | None
    info: dict[str, Any]

    @property
    def count(self) -> int:
        """How many candidates the job has (as :attr:`ReviewJob.count`)."""
        return self.candidates

    @property
    def batch(self) -> str:
        """The batch the job belongs to: the spec it was run from (a job without one is its own batch)."""
        return str(self.info.get("spec") or self.job_id)


@dataclass
class ReviewJob:
    """A batch job's candidates waiting in ``<data-dir>/review/<job-id>/`` for a person to accept.

    The normal image and reference are decoded when the job is loaded; a candidate only when
    it is asked for (:meth:`candidate`), so accepting one candidate decodes one.
    """

    folder: Path
    job_id: str
    category: str
    defect_type: str
    note: str
    count: int
    normal_image: np.ndarray
    reference: np.ndarray | None
    reference_mask: np.ndarray | None
    info: dict[str, Any]
    _loaded: dict[int, Candidate] = field(default_factory=dict, init=False, repr=False, compare=False)

    def candidate(self, index: int) -> Candidate:
        """Candidate ``index``, decoded on first use; InputError for an index the job does not have."""
        if not 0 <= index < self.count:
            raise InputError(f"Candidate {index} does not exist in review job {self.job_id}.")
        if index not in self._loaded:
            cand = read_candidate(self.folder, index)
            if cand.image.shape != self.normal_image.shape:
                raise InputError(f"Candidate {index} in {self.folder} does not match its normal image's size.")
            self._loaded[index] = cand
        return self._loaded[index]

    def encoded(self, index: int) -> tuple[bytes, bytes]:
        """Candidate ``index``'s image and mask PNG files as they are (the store keeps them, not re-encoded)."""
        image, mask = candidate_files(self.folder, index)
        return image.read_bytes(), mask.read_bytes()

    @property
    def candidates(self) -> list[Candidate]:
        """Every candidate, in order."""
        return [self.candidate(i) for i in range(self.count)]

    def relabelled(self, *, category: str, defect_type: str, note: str) -> "ReviewJob":
        """The same job with the labels a reviewer chose."""
        return replace(self, category=category, defect_type=defect_type, note=note)


def review_root(data_dir: str | os.PathLike) -> Path:
    """``<data-dir>/review``."""
    return Path(data_dir) / REVIEW_DIR


def write_review_job(root: Path, job_id: str, candidates: list[Candidate], image: np.ndarray,
                     reference: np.ndarray | None, reference_mask: np.ndarray | None,
                     info: dict[str, Any]) -> Path:
    """Write one job's review folder under ``root`` (once: an existing complete folder is kept).

    ``info`` goes into ``job.json`` with ``job_id``, ``candidates`` and ``written_at`` added;
    it should carry the labels (category, defect_type, note) and the prompt.
    """
    final = root / job_id
    if final.is_dir():
        return final
    with staged_dir(final, if_exists="keep") as staging:
        write_candidates(staging, candidates, staged=True)
        write_new(staging / "normal.png", to_png_bytes(image))
        if reference is not None:
            write_new(staging / "reference.png", to_png_bytes(reference))
        if reference_mask is not None:
            write_new(staging / "reference_mask.png", to_png_bytes(label_mask(reference_mask)))
        document = {**info, "job_id": job_id, "candidates": len(candidates), "written_at": now_iso()}
        write_new(staging / JOB_FILE, dumps(document).encode("utf-8"))
        (staging / DECISIONS_DIR).mkdir()
    return final


def list_review_jobs(data_dir: str | os.PathLike) -> list[Path]:
    """Complete review folders under ``<data-dir>/review`` (oldest first: by their ``job.json``, which
    decisions never touch)."""
    root = review_root(data_dir)
    if not root.is_dir():
        return []
    folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / JOB_FILE).is_file()]
    return sorted(folders, key=lambda p: (mtime(p / JOB_FILE), p.name))


def review_summary(folder: str | os.PathLike) -> ReviewSummary:
    """Parse a review folder's ``job.json`` (the only place it is parsed); InputError if unreadable."""
    folder = Path(folder)
    try:
        info = json.loads((folder / JOB_FILE).read_text(encoding="utf-8"))
        if not isinstance(info, dict):
            raise ValueError("not a mapping")
    except (OSError, ValueError):
        raise InputError(f"{folder} is not a batch review folder (no readable {JOB_FILE}).") from None
    seed = info.get("seed")
    return ReviewSummary(
        folder=folder, job_id=str(info.get("job_id", folder.name)), prompt=str(info.get("prompt", "")),
        reference_text=str(info.get("reference_text", "")), candidates=int(info.get("candidates", 0)),
        category=str(info.get("category", "")), defect_type=str(info.get("defect_type", "")),
        note=str(info.get("note", "")), seed=seed if isinstance(seed, int) else None,
        written_at=info.get("written_at"), info=info,
    )


def review_summaries(data_dir: str | os.PathLike) -> list[ReviewSummary]:
    """The summaries of every complete review folder (oldest first); unreadable ones are left out."""
    out = []
    for folder in list_review_jobs(data_dir):
        try:
            out.append(review_summary(folder))
        except InputError:
            continue
    return out


def find_review_job(data_dir: str | os.PathLike, job_id: str) -> Path:
    """The folder of review job ``job_id``, which must be one of those listed (never a path from user text)."""
    wanted = str(job_id).strip()
    if not wanted:
        raise InputError("Choose a batch review job first (refresh the list after a batch run).")
    for folder in list_review_jobs(data_dir):
        if folder.name == wanted:
            return folder
    raise InputError(f"There is no batch review job {wanted[:40]!r} in this data folder; choose one from the list.")


def load_review_job(folder: str | os.PathLike) -> ReviewJob:
    """Open a review folder: its labels, normal image and reference; candidates decode on demand."""
    summary = review_summary(folder)
    folder = summary.folder
    normal = load_image(folder / "normal.png", what="normal image")
    reference = load_image(folder / "reference.png") if (folder / "reference.png").is_file() else None
    ref_mask = None
    if reference is not None and (folder / "reference_mask.png").is_file():
        ref_mask = load_mask(folder / "reference_mask.png", (reference.shape[1], reference.shape[0]))
    return ReviewJob(folder, summary.job_id, summary.category, summary.defect_type, summary.note,
                     summary.candidates, normal, reference, ref_mask, summary.info)


def accept_review(store: Store, job: ReviewJob, indices: Iterable[int] | None = None) -> list[str]:
    """Accept some (default: all) candidates of a review job; returns the ids newly added.

    Ids are ``<job-id>-NN``; a candidate already in the store (accepted before, from any
    session or the CLI) is not added again, so accepting is idempotent.
    """
    chosen = range(job.count) if indices is None else list(indices)
    samples = []
    for i in chosen:
        if not 0 <= i < job.count:
            raise InputError(f"Candidate {i} does not exist in review job {job.job_id}.")
        sid = review_sample_id(job.job_id, i)
        if sid in store:
            continue
        samples.append(NewSample(job.candidate(i), job.normal_image, job.reference, job.reference_mask,
                                 job.category, job.defect_type, job.note, sample_id=sid, encoded=job.encoded(i)))
    return store.add_many(samples) if samples else []
