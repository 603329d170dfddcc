"""What the page and the API both do: generate, explain, open batch review jobs, decide (accept,
reject, undo), and curate the store (relabel, remove, export).

:class:`Actions` holds one studio process's shared :class:`StudioContext` and shipped assets;
the page's callbacks (:mod:`studio.ui.page`, :mod:`studio.ui.review_page`, :mod:`studio.ui.curated_page`)
and the documented API (:mod:`studio.ui.api`) build on it. It only calls the engine, store, batch
review and export APIs, and reads engines through the context at call time.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from studio.batch.review import (ReviewJob, ReviewSummary, accept_review, find_review_job, load_review_job,
                                 review_sample_id, review_summaries)
from studio.engines import Engine
from studio.errors import InputError
from studio.export import EXPORT_FORMATS, export_dataset
from studio.requests import build_request
from studio.types import AttentionTrace, SynthesisRequest, clean_text
from studio.ui import review_queue as queue
from studio.ui import session as ss
from studio.ui.assets import Assets, load_assets
from studio.ui.context import StudioContext
from studio.ui.curated import Filters, filtered
from studio.ui.feedback import progress_fn
from studio.ui.gpu import register_engines, run_explain, run_generate
from studio.ui.inputs import as_text, label_text, params_dict
from studio.ui.views import GalleryItem, attention_items

EXPORT_TTL_S = 3600
#: Review jobs kept open in memory (labels, normal image, reference; candidates decode on demand).
OPEN_JOBS = 4

NO_REFERENCE = "Add a reference anomaly first (② Reference): pick an example or upload one, then mark its region."


def required_label(value: Any, what: str, how: str) -> str:
    """A label a decision stores; an empty one is refused (nothing is stored)."""
    text = label_text(value, what)
    if not text:
        raise InputError(f"Not stored: the {what} is empty. {how}")
    return text


class Actions:
    """The operations shared by the page and the API, bound to one process's :class:`StudioContext`."""

    def __init__(self, ctx: StudioContext, assets: Assets | None = None):
        self.ctx = ctx
        self.assets = assets if assets is not None else load_assets()
        register_engines(ctx.engines)
        self._session_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._review_lock = threading.Lock()  # one review accept at a time: check-then-add stays atomic
        self._jobs: OrderedDict[str, ReviewJob] = OrderedDict()  # guarded by _locks_guard

    # ------------------------------------------------------------------ model work
    def _generate(self, state: ss.Session | None, request: SynthesisRequest, engine_name: Any,
                  progress: Any) -> ss.Session:
        """Run the engine on one request and record its candidates in the (new or given) session."""
        engine = self.ctx.engine(as_text(engine_name))
        callback = progress_fn(progress)
        if callback:
            callback(0, request.num, f"{engine.label}: generating {request.num} candidate(s)")
        candidates = run_generate(engine.name, request, callback)
        session = ss.ensure_session(state, self.ctx.temp_root)
        self.ctx.prune("sessions", ss.SESSION_TTL_S)
        return ss.record_generation(session, request, candidates)

    def _explain(self, image: np.ndarray | None, mask: np.ndarray | None, reference: Any, reference_mask: Any,
                 reference_text: Any, prompt: Any, asea_steps: Any, engine_name: Any,
                 progress: Any) -> tuple[Engine, AttentionTrace]:
        """(engine, trace) of the ASEA preview over the marked reference (the normal side is optional)."""
        # with no engine that can explain, the chosen one's trace says why there are no maps
        engine = self.ctx.attention_engine(as_text(engine_name)) or self.ctx.engine(as_text(engine_name))
        if reference is None:
            raise InputError(NO_REFERENCE)
        if reference_mask is None or (isinstance(reference_mask, np.ndarray) and not reference_mask.any()):
            raise InputError("Mark the anomaly on the reference image with the brush first (② Reference).")
        if image is None or mask is None or not mask.any():
            image, mask = reference, reference_mask  # the preview needs only the reference side
        request = build_request(image, mask, reference=reference, reference_mask=reference_mask,
                                prompt=as_text(prompt), reference_text=as_text(reference_text), num=1, seed=0,
                                params=params_dict({"asea_steps": asea_steps}))
        return engine, run_explain(engine.name, request, progress_fn(progress))

    def _attention_maps(self, trace: AttentionTrace, reference: np.ndarray,
                        reference_mask: np.ndarray) -> list[GalleryItem]:
        """The trace's heat maps as gallery items (none when the engine skipped them)."""
        if trace.skipped:
            return []
        self.ctx.prune("attention", ss.SESSION_TTL_S)
        return attention_items(trace, reference, reference_mask, self.ctx.temp_root / "attention")

    # ------------------------------------------------------------------ batch review jobs
    def _review_jobs(self) -> list[ReviewSummary]:
        """The review jobs waiting in the data folder (oldest first)."""
        return review_summaries(self.ctx.store.root)

    def _open_review(self, state: ss.Session | None, job_id: Any) -> tuple[ss.Session, Any]:
        """Load a review job's candidates into the (new or given) session; returns (session, job)."""
        job = self._review_job(as_text(job_id), reload=True)
        session = ss.ensure_session(state, self.ctx.temp_root)
        self.ctx.prune("sessions", ss.SESSION_TTL_S)
        return ss.record_review(session, job), job

    def _review_job(self, job_id: str, *, reload: bool = False) -> ReviewJob:
        """Review job ``job_id``, read once and kept for its accepts (a review folder never changes)."""
        with self._locks_guard:
            job = None if reload else self._jobs.get(job_id)
        if job is None:
            job = load_review_job(find_review_job(self.ctx.store.root, job_id))
            with self._locks_guard:
                # a copy without decoded candidates: accepts decode only the one they take
                self._jobs[job_id] = job.relabelled(category=job.category, defect_type=job.defect_type, note=job.note)
                while len(self._jobs) > OPEN_JOBS:
                    self._jobs.popitem(last=False)
        return job

    # ------------------------------------------------------------------ decisions
    def _session_lock(self, state: ss.Session | None) -> threading.Lock:
        with self._locks_guard:
            return self._session_locks.setdefault(state.id if isinstance(state, ss.Session) else "", threading.Lock())

    def _accept(self, state: ss.Session | None, index: Any, defect_type: Any, category: Any, note: Any,
                *, strict_category: bool = True, inputs: dict[str, Any] | None = None) -> tuple[str, bool]:
        """Accept candidate ``index`` into the store; returns (sample id, newly added).

        An empty defect type (and, with ``strict_category``, category) is refused before anything is stored;
        ``inputs`` are the session's decoded inputs when the caller already has them."""
        record = ss.candidate_record(state, index)
        defect = required_label(defect_type, "defect type", "Type one (or press 1–9) and accept again.")
        how = "Type the product's category and accept again."
        cat = required_label(category, "category", how) if strict_category else label_text(category, "category")
        text = clean_text(as_text(note), "note")
        with self._session_lock(state):
            if record.status == ss.ACCEPTED and record.sample_id:
                return record.sample_id, False
            previous = record.status
            if state.review:
                sample_id, new = self._accept_reviewed(state, record.index, defect, cat, text)
            else:
                sample_id = str(self.ctx.store.add(ss.load_candidate(record), category=cat, defect_type=defect,
                                                   note=text, **(inputs or ss.load_inputs(state))))
                new = True
            record.status, record.sample_id = ss.ACCEPTED, sample_id
            queue.remember(state, record, previous)
        return sample_id, new

    def _accept_reviewed(self, state: ss.Session, index: int, defect_type: str, category: str,
                         note: str) -> tuple[str, bool]:
        """Accept candidate ``index`` of the session's review job with these labels (only that candidate
        is decoded); the id is ``<job-id>-NN`` and a candidate already in the store (from any session or
        the CLI) is not added again."""
        job = self._review_job(state.review or "").relabelled(category=category, defect_type=defect_type, note=note)
        with self._review_lock:
            added = accept_review(self.ctx.store, job, [index])
        return review_sample_id(job.job_id, index), bool(added)

    def _reject(self, state: ss.Session | None, index: Any) -> None:
        """Mark candidate ``index`` rejected (an accepted one must be undone or removed from the curated set)."""
        record = ss.candidate_record(state, index)
        with self._session_lock(state):
            if record.status == ss.ACCEPTED:
                raise InputError(f"Candidate #{record.index + 1} is already accepted; press Z to undo that, "
                                 "or remove it from the curated set.")
            if record.status != ss.REJECTED:
                queue.remember(state, record, record.status)
                record.status = ss.REJECTED

    def _undo(self, state: ss.Session | None) -> ss.CandidateRecord:
        """Undo the session's last decision (an accept removes its sample again); returns that candidate."""
        with self._session_lock(state):
            decision = queue.last_decision(state)
            record = state.candidates[decision.index]
            if record.status == ss.ACCEPTED and record.sample_id and record.sample_id in self.ctx.store:
                self.ctx.store.remove(record.sample_id)
            record.status, record.sample_id = decision.previous, None
            state.history.pop()
            queue.select(state, record.index)
        return record

    def _decide_all(self, state: ss.Session | None, decision: str, defect_type: Any, category: Any,
                    note: Any) -> int:
        """Accept or reject every undecided candidate (labels checked once, before anything is stored)."""
        undecided = [r.index for r in (state.candidates if state else []) if r.status == ss.UNDECIDED]
        if not undecided:
            raise InputError("There are no undecided candidates.")
        inputs = ss.load_inputs(state) if decision == ss.ACCEPTED and not state.review else None  # decoded once
        for index in undecided:
            if decision == ss.ACCEPTED:
                self._accept(state, index, defect_type, category, note, inputs=inputs)
            else:
                self._reject(state, index)
        return len(undecided)

    # ------------------------------------------------------------------ the curated set
    def _stats(self) -> dict[str, Any]:
        return self.ctx.store.stats()

    def _records(self, filters: Filters | None = None) -> list[Any]:
        """The curated samples matching ``filters`` (oldest first)."""
        return filtered(self.ctx.store, filters or Filters())

    def _remove(self, sample_ids: list[str]) -> list[str]:
        """Remove curated samples by id (all checked before any is removed); returns the ids."""
        if not sample_ids:
            raise InputError("Give the id of the curated sample to remove.")
        for sample_id in sample_ids:
            self.ctx.store.get(sample_id)  # an unknown id is refused before anything is removed
        for sample_id in sample_ids:
            self.ctx.store.remove(sample_id)
        return sample_ids

    def _relabel(self, sample_ids: list[str], category: Any, defect_type: Any, note: Any) -> list[str]:
        """Give these samples a new category / defect type / note (empty = leave as it is)."""
        if not sample_ids:
            raise InputError("Select one or more curated samples first.")
        changes = {"category": label_text(category, "category") or None,
                   "defect_type": label_text(defect_type, "defect type") or None,
                   "note": clean_text(as_text(note), "note") or None}
        if not any(changes.values()):
            raise InputError("Type a new category, defect type or note to relabel with.")
        for sample_id in sample_ids:
            self.ctx.store.get(sample_id)  # an unknown id is refused before anything changes
        for sample_id in sample_ids:
            self.ctx.store.relabel(sample_id, **changes)
        return sample_ids

    def _export(self, fmt: Any, progress: Any, filters: Filters | None = None) -> tuple[Path, int]:
        """The curated set (or the samples matching ``filters``) exported as ``fmt`` into a fresh zip;
        returns (zip, number of samples). Old exports are pruned."""
        fmt = as_text(fmt).strip().lower()
        if fmt not in EXPORT_FORMATS:
            raise InputError(f"Unknown export format {fmt!r}; choose one of: {', '.join(EXPORT_FORMATS)}.")
        records = self._records(filters)
        if not records:
            raise InputError("Nothing to export: the curated set (or the current filter) has no samples yet.")
        self.ctx.prune("exports", EXPORT_TTL_S)
        out = self.ctx.new_dir("exports")
        path = export_dataset(self.ctx.store, fmt, out / f"anomaly_studio_{fmt}", make_zip=True,
                              progress=progress_fn(progress), records=records)
        return Path(path), len(records)
