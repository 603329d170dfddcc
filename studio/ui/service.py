"""What the page's panels and the API both do, without Gradio: generate, explain, open batch review
jobs, decide (accept, reject, undo), and curate the store (filter, relabel, remove, export).

One :class:`StudioService` per process holds the shared :class:`StudioContext` and shipped assets;
every panel (:mod:`studio.ui.panels`) calls it with plain values and engines it resolved once, and
turns its :class:`~studio.errors.StudioError` into a message. Tested directly (no Gradio import here).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from studio.batch import decisions
from studio.batch.review import ReviewJob, ReviewSummary, find_review_job, load_review_job, review_summaries
from studio.engines import Engine, declared_parameters
from studio.errors import InputError
from studio.export import EXPORT_FORMATS, export_dataset
from studio.requests import build_request
from studio.review.batch import BatchInfo, list_batches
from studio.review.labels import QueueLabels, label_text
from studio.store import SampleRecord
from studio.types import AttentionTrace, EngineParameter, ProgressFn, SynthesisRequest, clean_text
from studio.ui import review_queue as queue
from studio.ui import session as ss
from studio.ui import zerogpu
from studio.ui.assets import COMMON_DEFECTS, Assets, load_assets
from studio.ui.context import StudioContext
from studio.ui.filters import Filters, filtered
from studio.ui.inputs import as_text
from studio.ui.widgets.views import GalleryItem, attention_items, draw_ahead

EXPORT_TTL_S = 3600
#: Review jobs kept open in memory (labels, normal image, reference; candidates decode on demand).
OPEN_JOBS = 4
#: Sessions whose open queue a reload of their tab restores (the most recent ones).
KEPT_QUEUES = 256

NO_REFERENCE = "Add a reference anomaly first (② Reference): pick an example or upload one, then mark its region."


def required_label(value: Any, what: str, how: str) -> str:
    """A label a decision stores; an empty one is refused (nothing is stored)."""
    text = label_text(value, what)
    if not text:
        raise InputError(f"Not stored: the {what} is empty. {how}")
    return text


class StudioService:
    """The operations shared by the page and the API, bound to one process's :class:`StudioContext`."""

    def __init__(self, ctx: StudioContext, assets: Assets | None = None) -> None:
        self.ctx = ctx
        self.assets = assets if assets is not None else load_assets()
        self._session_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._jobs: OrderedDict[str, ReviewJob] = OrderedDict()  # guarded by _locks_guard
        #: Session id -> the session that last opened a queue, for a reloaded tab (guarded by _locks_guard).
        self._queues: OrderedDict[str, ss.Session] = OrderedDict()

    # ------------------------------------------------------------------ model work
    def offered_parameters(self) -> tuple[EngineParameter, ...]:
        """Every parameter an engine of this studio may use: the loaded engines' own (first) and the
        registered ones' (an engine a Space switches to later), each name once."""
        found: dict[str, EngineParameter] = {}
        for engine in self.ctx.engines.values():
            for parameter in engine.parameters():
                found.setdefault(parameter.name, parameter)
        for parameter in declared_parameters():
            found.setdefault(parameter.name, parameter)
        return tuple(found.values())

    def generate(self, state: ss.Session | None, request: SynthesisRequest, engine: Engine,
                 progress: ProgressFn | None = None, labels: QueueLabels | None = None) -> ss.Session:
        """Run ``engine`` (resolved once by the caller) on one request; its candidates go into the (new or
        given) session, with ``labels`` pinned to them (what ``A`` stores)."""
        if progress:
            progress(0, request.num, f"{engine.label}: generating {request.num} candidate(s)")
        candidates = zerogpu.generate(engine, request, progress)
        session = ss.ensure_session(state, self.ctx.temp_root)
        self.ctx.prune("sessions", ss.SESSION_TTL_S)
        session = ss.record_generation(session, request, candidates)
        session.labels = labels
        return self.keep_queue(session)

    def explainer(self, engine_name: Any) -> Engine:
        """The engine that runs the ASEA preview for the chosen one: it, or another loaded one that can
        explain, or (none can) the chosen one, whose trace says why there are no maps."""
        return self.ctx.attention_engine(as_text(engine_name)) or self.ctx.engine(as_text(engine_name))

    def explain(self, image: np.ndarray | None, mask: np.ndarray | None, reference: Any, reference_mask: Any,
                reference_text: Any, prompt: Any, params: dict[str, Any], engine: Engine,
                progress: ProgressFn | None = None) -> AttentionTrace:
        """The ASEA trace over the marked reference (the normal side is optional) with the ``params`` given
        (of ``engine``'s own; the others take their defaults)."""
        if reference is None:
            raise InputError(NO_REFERENCE)
        if reference_mask is None or (isinstance(reference_mask, np.ndarray) and not reference_mask.any()):
            raise InputError("Mark the anomaly on the reference image with the brush first (② Reference).")
        if image is None or mask is None or not mask.any():
            image, mask = reference, reference_mask  # the preview needs only the reference side
        used = {p.name for p in engine.parameters()}
        request = build_request(image, mask, reference=reference, reference_mask=reference_mask,
                                prompt=as_text(prompt), reference_text=as_text(reference_text), num=1, seed=0,
                                params={k: v for k, v in params.items() if k in used}, engine=engine)
        return zerogpu.explain(engine, request, progress)

    def attention_maps(self, trace: AttentionTrace, reference: np.ndarray,
                       reference_mask: np.ndarray) -> list[GalleryItem]:
        """The trace's heat maps as (file, caption) gallery items (none when the engine skipped them)."""
        if trace.skipped:
            return []
        return attention_items(trace, reference, reference_mask, self.scratch("attention"))

    # ------------------------------------------------------------------ a reloaded tab
    def keep_queue(self, state: ss.Session) -> ss.Session:
        """Remember ``state`` (that just opened a queue) under its id, so a reload of its tab restores it."""
        with self._locks_guard:
            self._queues[state.id] = state
            self._queues.move_to_end(state.id)
            while len(self._queues) > KEPT_QUEUES:
                self._queues.popitem(last=False)
        return state

    def resume(self, session_id: str) -> ss.Session | None:
        """The queue tab ``session_id`` had open before its reload (decisions on disk re-read), or None when the
        studio has none for it (restarted, expired, or no queue was open)."""
        with self._locks_guard:
            kept = self._queues.get(session_id)
            if kept is None or not kept.candidates or not Path(kept.dir).is_dir():
                return None
            state = self._queues[session_id] = ss.adopt(kept, self.ctx.temp_root)
        if state.review:
            self.sync_review(state)
        return state

    # ------------------------------------------------------------------ batch review jobs
    def review_jobs(self) -> list[ReviewSummary]:
        """The review jobs waiting in the data folder (oldest first)."""
        return review_summaries(self.ctx.store.root)

    def decided_counts(self, jobs: list[ReviewSummary]) -> dict[str, int]:
        """How many candidates of each job are decided (by any session), from the decisions on disk."""
        return {j.job_id: len(decisions.read_decisions(self.ctx.store, j)) for j in jobs}

    def batches(self) -> list[BatchInfo]:
        """The batches with review jobs in the data folder (oldest first), with their progress on disk."""
        return list_batches(self.ctx.store)

    def open_review(self, state: ss.Session | None, job_id: Any) -> tuple[ss.Session, ReviewJob]:
        """Load one review job's candidates into the (new or given) session; returns (session, job)."""
        job = self._review_job(as_text(job_id), reload=True)
        return self._open_jobs(state, [job], f"job {job.job_id[:8]}…"), job

    def open_batch(self, state: ss.Session | None, batch: Any) -> tuple[ss.Session, BatchInfo]:
        """One queue over every job of ``batch`` (job after job), each job's labels pinned to its candidates;
        returns (session, the batch with its progress as opened)."""
        info = next((b for b in self.batches() if b.batch == as_text(batch)), None)
        if info is None:
            raise InputError("That batch has no review jobs in this data folder any more; refresh the list.")
        jobs = [self._review_job(job_id, reload=True) for job_id in info.jobs]
        return self._open_jobs(state, jobs, info.title.split(" · ")[0]), info

    def _open_jobs(self, state: ss.Session | None, jobs: list[ReviewJob], title: str) -> ss.Session:
        session = ss.ensure_session(state, self.ctx.temp_root)
        self.ctx.prune("sessions", ss.SESSION_TTL_S)
        labels = [QueueLabels(j.category, j.defect_type, j.note) for j in jobs]
        session = ss.record_review(session, jobs, title, labels)
        draw_ahead(session.candidates)  # a key press then draws only its decision's frame
        session.labels = labels[0] if len(set(labels)) == 1 else None  # None: each job's own (on its candidates)
        self.sync_review(session)
        return self.keep_queue(session)

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

    def accept(self, state: ss.Session | None, index: Any, defect_type: Any, category: Any, note: Any,
               *, strict_category: bool = True, inputs: dict[str, Any] | None = None) -> tuple[str, bool]:
        """Accept candidate ``index`` into the store; returns (sample id, newly added).

        An empty defect type (and, with ``strict_category``, category) is refused before anything is stored;
        ``inputs`` are the session's decoded inputs when the caller already has them. A batch job's candidate
        is decided on disk (:mod:`studio.batch.decisions`): one another session decided is refused."""
        record = ss.candidate_record(state, index)
        defect = required_label(defect_type, "defect type", "Type one (or press 1–9) and accept again.")
        how = "Type the product's category and accept again."
        cat = required_label(category, "category", how) if strict_category else label_text(category, "category")
        text = clean_text(as_text(note), "note")
        with self._session_lock(state):
            if record.status == ss.ACCEPTED and record.sample_id and not record.job:
                return record.sample_id, False
            previous = record.status
            if record.job:  # on disk: this session's own accept comes back as it is, another's is refused
                job = self._review_job(record.job)
                decided = self._on_disk(state, lambda: decisions.accept(
                    self.ctx.store, job, record.job_index, state.id, category=cat, defect_type=defect, note=text))
                if previous == ss.ACCEPTED:
                    return str(decided.sample_id), False
                sample_id = str(decided.sample_id)
            else:
                sample_id = str(self.ctx.store.add(ss.load_candidate(record), category=cat, defect_type=defect,
                                                   note=text, **(inputs or ss.load_inputs(state))))
            record.status, record.sample_id = ss.ACCEPTED, sample_id
            queue.remember(state, record, previous)
        return sample_id, True

    def reject(self, state: ss.Session | None, index: Any) -> None:
        """Mark candidate ``index`` rejected (an accepted one must be undone or removed from the curated set)."""
        record = ss.candidate_record(state, index)
        with self._session_lock(state):
            if record.job:  # on disk: refused when another session decided it, or it is accepted
                job = self._review_job(record.job)
                self._on_disk(state, lambda: decisions.reject(self.ctx.store, job, record.job_index, state.id))
            elif record.status == ss.ACCEPTED:
                raise InputError(f"Candidate #{record.index + 1} is already accepted; press Z to undo that, "
                                 "or remove it from the curated set.")
            if record.status != ss.REJECTED:
                queue.remember(state, record, record.status)
                record.status = ss.REJECTED

    def undo(self, state: ss.Session | None) -> ss.CandidateRecord:
        """Undo the session's last decision (an accept removes its sample again); returns that candidate.
        Only this session's own decisions are in its history, so another session's are never undone."""
        with self._session_lock(state):
            decision = queue.last_decision(state)
            record = state.candidates[decision.index]
            if record.job:
                job = self._review_job(record.job)
                state.history.pop()
                self._on_disk(state, lambda: decisions.undo(self.ctx.store, job, record.job_index, state.id))
                record.status, record.sample_id = ss.UNDECIDED, None
            else:
                if record.status == ss.ACCEPTED and record.sample_id and record.sample_id in self.ctx.store:
                    self.ctx.store.remove(record.sample_id)
                record.status, record.sample_id = decision.previous, None
                state.history.pop()
            queue.select(state, record.index)
        return record

    def _on_disk(self, state: ss.Session, decide: Callable[[], decisions.DecisionRecord]) -> decisions.DecisionRecord:
        """Run a decision on the session's batch job; when it is refused (another session decided that
        candidate), the queue shows what is on disk now and the refusal is raised."""
        try:
            return decide()
        except decisions.DecisionRefused:
            self.sync_review(state)
            raise

    def sync_review(self, state: ss.Session) -> None:
        """The batch jobs' decisions on disk (every session's) into the session's candidates; the session's
        own ones are its undo history, oldest first."""
        found: dict[int, decisions.DecisionRecord] = {}
        for job_id in dict.fromkeys(r.job for r in state.candidates if r.job):
            on_disk = decisions.read_decisions(self.ctx.store, self._review_job(job_id))
            found.update({r.index: on_disk[r.job_index] for r in state.candidates
                          if r.job == job_id and r.job_index in on_disk})
        for record in state.candidates:
            done = found.get(record.index)
            record.status, record.sample_id = (done.decision, done.sample_id) if done else (ss.UNDECIDED, None)
        own = sorted((d.at, i) for i, d in found.items() if d.session == state.id)
        state.history = [ss.Decision(i, ss.UNDECIDED, found[i].sample_id) for _, i in own]

    def decide_all(self, state: ss.Session | None, decision: str, defect_type: Any, category: Any,
                    note: Any) -> int:
        """Accept or reject every undecided candidate (labels checked once, before anything is stored)."""
        undecided = [r.index for r in (state.candidates if state else []) if r.status == ss.UNDECIDED]
        if not undecided:
            raise InputError("There are no undecided candidates.")
        inputs = ss.load_inputs(state) if decision == ss.ACCEPTED and not state.review else None  # decoded once
        for index in undecided:
            pinned = state.candidates[index].labels  # a batch job's own labels come first
            if decision == ss.ACCEPTED and pinned is not None:
                self.accept(state, index, pinned.defect_type, pinned.category, pinned.note)
            elif decision == ss.ACCEPTED:
                self.accept(state, index, defect_type, category, note, inputs=inputs)
            else:
                self.reject(state, index)
        return len(undecided)

    # ------------------------------------------------------------------ the curated set
    def stats(self) -> dict[str, Any]:
        """The store's counts (total, per category, per defect type, ...)."""
        return self.ctx.store.stats()

    def records(self, filters: Filters | None = None) -> list[SampleRecord]:
        """The curated samples matching ``filters`` (oldest first)."""
        return filtered(self.ctx.store, filters or Filters())

    def remove(self, sample_ids: list[str]) -> list[str]:
        """Remove curated samples by id (all checked before any is removed); returns the ids."""
        if not sample_ids:
            raise InputError("Give the id of the curated sample to remove.")
        for sample_id in sample_ids:
            self.ctx.store.get(sample_id)  # an unknown id is refused before anything is removed
        for sample_id in sample_ids:
            self.ctx.store.remove(sample_id)
        return sample_ids

    def relabel(self, sample_ids: list[str], category: Any, defect_type: Any, note: Any) -> list[str]:
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

    def export(self, fmt: Any, filters: Filters | None = None, progress: ProgressFn | None = None) -> tuple[Path, int]:
        """The curated set (or the samples matching ``filters``) exported as ``fmt`` into a fresh zip;
        returns (zip, number of samples). Old exports are pruned."""
        fmt = as_text(fmt).strip().lower()
        if fmt not in EXPORT_FORMATS:
            raise InputError(f"Unknown export format {fmt!r}; choose one of: {', '.join(EXPORT_FORMATS)}.")
        records = self.records(filters)
        if not records:
            raise InputError("Nothing to export: the curated set (or the current filter) has no samples yet.")
        self.ctx.prune("exports", EXPORT_TTL_S)
        out = self.ctx.new_dir("exports")
        path = export_dataset(self.ctx.store, fmt, out / f"anomaly_studio_{fmt}", make_zip=True,
                              progress=progress, records=records)
        return Path(path), len(records)

    def scratch(self, kind: str) -> Path:
        """The folder of the page's scratch pictures of ``kind`` (editors, attention, thumbs), old ones pruned."""
        self.ctx.prune(kind, ss.SESSION_TTL_S)
        return self.ctx.temp_root / kind

    def defect_types(self) -> list[str]:
        """The defect types ``1``–``9`` pick from: common ones, the examples' and those in use, sorted."""
        known = set(COMMON_DEFECTS)
        known |= {r.defect_type for r in self.assets.references if r.defect_type}
        known |= {k for k in (self.stats().get("by_defect_type") or {}) if k}
        return sorted(known)
