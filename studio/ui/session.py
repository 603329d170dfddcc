"""Per-browser-session state: the last request's inputs, its candidates and the review decisions.

The value held in ``gr.State`` is a plain :class:`Session` dataclass (deep-copyable); pixels live
as PNG files in a private folder per session under the app's temporary root, which is not
served. A new generation replaces the previous one's files; the folder is removed when
Gradio drops the session (tab closed or time-to-live) and at process exit.
"""
from __future__ import annotations

import copy
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from studio.candidates import candidate_files, candidate_stem, metadata_score, read_candidate_metadata
from studio.errors import InputError
from studio.imaging import label_mask, load_image, load_mask
from studio.review.labels import QueueLabels
from studio.types import Candidate, SynthesisRequest, whole_number
from studio.ui.files import write_png
from studio.ui.press_order import PressOrder

if TYPE_CHECKING:
    from studio.batch.review import ReviewJob

#: Seconds a session's state (and files) live after their last update.
SESSION_TTL_S = 6 * 3600

UNDECIDED, ACCEPTED, REJECTED = "undecided", "accepted", "rejected"
#: Where a candidate's metadata says whether a reference anomaly was used ("none" or the reference's name).
REFERENCE_FIELD = "reference"


@dataclass
class CandidateRecord:
    """One candidate of the session's last generation (or review job), as files plus its decision."""

    index: int
    image: str
    mask: str
    seed: int
    metadata: dict[str, Any]
    status: str = UNDECIDED
    sample_id: str | None = None
    #: A batch review's candidate: its job, its number there, the job's labels (what ``A`` stores) and normal image.
    job: str | None = None
    job_index: int = 0
    labels: QueueLabels | None = None
    normal: str | None = None

    @property
    def score(self) -> float | None:
        """The engine's quality score (higher is better), None when the engine gave none."""
        return metadata_score(self.metadata)


@dataclass
class Decision:
    """One accept or reject, remembered so that ``Z`` can undo it."""

    index: int
    previous: str
    sample_id: str | None = None


@dataclass
class Session:
    """What one browser tab (or ``gradio_client`` session) holds between calls."""

    id: str
    dir: str
    generation: int = 0
    normal: str | None = None
    reference: str | None = None
    reference_mask: str | None = None
    prompt: str = ""
    reference_text: str = ""
    seed: int | None = None
    candidates: list[CandidateRecord] = field(default_factory=list)
    #: The batch review the candidates came from (its title; accepts then go through batch review).
    review: str | None = None
    #: The candidate under review (its ``index``), the order shown and the undo history.
    selected: int | None = None
    best_first: bool = False
    history: list[Decision] = field(default_factory=list)
    #: The labels pinned to the open queue (what ``A`` stores; changed only explicitly).
    labels: QueueLabels | None = None
    #: The order of this tab's presses on the review buttons (decisions apply in the order pressed).
    presses: PressOrder = field(default_factory=PressOrder)


def new_session(temp_root: Path, sid: str = "") -> Session:
    """A fresh, empty session with its own folder; ``sid`` (what the browser tab kept across a reload, 32
    hex digits) is its id, so the decisions it made before the reload are still its own."""
    sid = sid.lower() if isinstance(sid, str) and re.fullmatch(r"[0-9a-fA-F]{32}", sid) else uuid.uuid4().hex
    folder = temp_root / "sessions" / f"{sid}-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True, exist_ok=True)
    return Session(id=sid, dir=str(folder))


def ensure_session(state: Session | None, temp_root: Path) -> Session:
    """The session in ``state``, or a new one when there is none (or its folder is gone)."""
    if isinstance(state, Session) and Path(state.dir).is_dir():
        return state
    return new_session(temp_root)


def adopt(state: Session, temp_root: Path) -> Session:
    """``state`` for the tab that reloaded: its folder moved to a new name and a copy pointing there, so the old
    tab's clean-up (Gradio drops a closed tab's state an hour later, deleting its folder) removes nothing this
    tab shows."""
    folder = temp_root / "sessions" / f"{state.id}-{uuid.uuid4().hex[:8]}"
    os.replace(state.dir, folder)
    old = state.dir

    def moved(path: str | None) -> str | None:
        return str(folder) + path[len(old):] if path and path.startswith(old) else path

    adopted = copy.deepcopy(state)
    adopted.dir = str(folder)
    adopted.normal, adopted.reference, adopted.reference_mask = (moved(state.normal), moved(state.reference),
                                                                 moved(state.reference_mask))
    for record in adopted.candidates:
        record.image, record.mask, record.normal = moved(record.image), moved(record.mask), moved(record.normal)
    return adopted


def delete_session(state: Session | None) -> None:
    """Remove a session's files (``gr.State`` delete callback)."""
    if isinstance(state, Session):
        shutil.rmtree(state.dir, ignore_errors=True)


def record_generation(state: Session, request: SynthesisRequest, candidates: list[Candidate]) -> Session:
    """Store a request's inputs and candidates in the session (replacing the previous generation)."""
    return record_candidates(state, request.image, request.reference, request.reference_mask, candidates,
                             request.prompt, request.reference_text, request.seed)


def record_review(state: Session, jobs: list[ReviewJob], title: str, labels: list[QueueLabels]) -> Session:
    """Put batch review jobs' candidates in the session as one queue (job after job), each with its job's
    ``labels`` pinned; accepting them then goes through batch review's accept (ids ``<job-id>-NN``). The review
    folders' PNGs are copied as they are, not decoded."""
    first = jobs[0]
    folder, old = _next_generation(state, first.normal_image, first.reference, first.reference_mask)
    records = []
    for k, job in enumerate(jobs):
        normal = str(shutil.copyfile(job.folder / "normal.png", folder / f"normal_{k:03d}.png"))
        for i in range(job.count):
            meta = read_candidate_metadata(job.folder, i)
            image, mask = candidate_files(job.folder, i)
            stem = candidate_stem(folder, len(records))
            records.append(CandidateRecord(
                index=len(records), image=str(shutil.copyfile(image, f"{stem}.png")),
                mask=str(shutil.copyfile(mask, f"{stem}_mask.png")), seed=int(meta.get("seed", 0)),
                metadata={**meta, REFERENCE_FIELD: "used" if job.reference is not None else "none"},
                job=job.job_id, job_index=i, labels=labels[k], normal=normal))
    seed = first.info.get("seed")
    return _finish_generation(state, old, records, str(first.info.get("prompt", "")),
                              str(first.info.get("reference_text", "")), seed if isinstance(seed, int) else None,
                              review=title)


def record_candidates(state: Session, image: np.ndarray, reference: np.ndarray | None,
                      reference_mask: np.ndarray | None, candidates: list[Candidate], prompt: str,
                      reference_text: str, seed: int | None) -> Session:
    """Write the inputs and candidates into a new generation folder of the session (the previous
    one is removed)."""
    folder, old = _next_generation(state, image, reference, reference_mask)
    records = [
        CandidateRecord(index=i, image=write_png(Path(f"{candidate_stem(folder, i)}.png"), cand.image),
                        mask=write_png(Path(f"{candidate_stem(folder, i)}_mask.png"), label_mask(cand.mask)),
                        seed=int(cand.seed),
                        metadata={**cand.metadata, REFERENCE_FIELD: "used" if reference is not None else "none"})
        for i, cand in enumerate(candidates)
    ]
    return _finish_generation(state, old, records, prompt, reference_text, seed)


def _next_generation(state: Session, image: np.ndarray, reference: np.ndarray | None,
                     reference_mask: np.ndarray | None) -> tuple[Path, Path]:
    """A new generation folder holding the inputs; returns (it, the previous one)."""
    old = Path(state.dir) / f"gen{state.generation:04d}"
    state.generation += 1
    folder = Path(state.dir) / f"gen{state.generation:04d}"
    folder.mkdir(parents=True, exist_ok=True)
    state.normal = write_png(folder / "normal.png", image)
    state.reference = write_png(folder / "reference.png", reference) if reference is not None else None
    state.reference_mask = (write_png(folder / "reference_mask.png", label_mask(reference_mask))
                            if reference is not None and reference_mask is not None else None)
    return folder, old


def _finish_generation(state: Session, old: Path, records: list[CandidateRecord], prompt: str, reference_text: str,
                       seed: int | None, review: str | None = None) -> Session:
    """Make ``records`` the session's candidates (``review``: the batch job they came from) and drop ``old``."""
    state.candidates = records
    state.prompt, state.reference_text, state.seed = prompt, reference_text, seed
    state.review = review
    state.history = []
    state.selected = None
    shutil.rmtree(old, ignore_errors=True)
    return state


def candidate_key(state: Session, record: CandidateRecord) -> str:
    """The id of ``record`` a key press carries: generation and index, so a press on an earlier queue's
    (or an earlier shown) candidate never matches another one."""
    return f"{state.id[:8]}/{state.generation}/{record.index}"


def close_queue(state: Session) -> None:
    """Take the last generation's candidates out of the session (their files go; the store keeps
    what was accepted)."""
    shutil.rmtree(Path(state.dir) / f"gen{state.generation:04d}", ignore_errors=True)
    state.candidates, state.history, state.selected, state.review, state.labels = [], [], None, None, None
    state.normal = state.reference = state.reference_mask = None


def candidate_record(state: Session | None, index: Any) -> CandidateRecord:
    """The candidate ``index`` (0-based, as returned by generate) of this session's last generation."""
    records = state.candidates if isinstance(state, Session) else []
    if not records:
        raise InputError("There are no candidates in this session yet: generate some first.")
    number = whole_number(index, 0, len(records) - 1)
    if number is None:
        raise InputError(f"The candidate index must be a whole number from 0 to {len(records) - 1}, got {index!r}.")
    return records[number]


def load_candidate(record: CandidateRecord) -> Candidate:
    """Rebuild a :class:`Candidate` from its session files."""
    image = load_image(record.image, what="candidate image")
    mask = load_mask(record.mask, (image.shape[1], image.shape[0]), what="candidate mask")
    return Candidate(image=image, mask=mask.astype(np.uint8) * 255, seed=record.seed, metadata=record.metadata)


def load_inputs(state: Session) -> dict[str, np.ndarray | None]:
    """The normal image, reference and reference mask of the session's last generation."""
    if not state.normal:
        raise InputError("There are no candidates in this session yet: generate some first.")
    normal = load_image(state.normal, what="normal image")
    reference = load_image(state.reference, what="reference image") if state.reference else None
    reference_mask = None
    if reference is not None and state.reference_mask:
        reference_mask = load_mask(state.reference_mask, (reference.shape[1], reference.shape[0]))
    return {"normal_image": normal, "reference": reference, "reference_mask": reference_mask}
