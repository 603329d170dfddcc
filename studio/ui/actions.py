"""What the page and the API both do: generate, explain, open batch review jobs, accept, reject,
remove and export.

:class:`Actions` holds one studio process's shared :class:`StudioContext` and shipped assets;
the page's callbacks (:mod:`studio.ui.page`) and the documented API (:mod:`studio.ui.api`)
build on it. It only calls the engine, store and export APIs.
"""
from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

from studio.batch import JOB_FILE, ReviewJob, accept_review, list_review_jobs, load_review_job
from studio.errors import InputError
from studio.export import EXPORT_FORMATS, export_dataset
from studio.imaging import check_mask
from studio.types import AttentionTrace, SynthesisRequest, clean_text
from studio.ui import session as ss
from studio.ui.assets import Assets, load_assets
from studio.ui.context import StudioContext
from studio.ui.feedback import progress_fn
from studio.ui.gpu import register_engines, run_explain, run_generate
from studio.ui.inputs import as_text, label_text, params_dict
from studio.ui.views import GalleryItem, attention_items

EXPORT_TTL_S = 3600

NO_REFERENCE = "Add a reference anomaly first (step 3): pick an example or upload one, then mark its region."


class Actions:
    """The operations shared by the page and the API, bound to one process's :class:`StudioContext`."""

    def __init__(self, ctx: StudioContext, assets: Assets | None = None):
        self.ctx = ctx
        self.assets = assets if assets is not None else load_assets()
        register_engines(ctx.engines)
        self._session_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._review_lock = threading.Lock()  # one review accept at a time: check-then-add stays atomic

    # ------------------------------------------------------------------ model work
    def _generate(
        self,
        state: ss.Session | None,
        image: np.ndarray,
        mask: np.ndarray,
        prompt: Any,
        reference: np.ndarray | None,
        reference_mask: np.ndarray | None,
        reference_text: Any,
        num: Any,
        seed: int,
        params: dict[str, Any],
        engine_name: Any,
        progress: Any,
    ) -> ss.Session:
        """Run the engine on one request and record its candidates in the (new or given) session."""
        check_mask(mask)
        if reference_mask is not None:
            reference_mask = check_mask(reference_mask, "marked reference region") if reference_mask.any() else None
        engine = self.ctx.engine(as_text(engine_name))
        request = SynthesisRequest.create(
            image, mask, as_text(prompt),
            reference=reference, reference_mask=reference_mask, reference_text=as_text(reference_text),
            num=num, seed=seed, params=params,
        )
        callback = progress_fn(progress)
        if callback:
            callback(0, request.num, f"{engine.name}: generating {request.num} candidate(s)")
        candidates = run_generate(engine.name, request, callback)
        session = ss.ensure_session(state, self.ctx.temp_root)
        self.ctx.prune("sessions", ss.SESSION_TTL_S)
        return ss.record_generation(session, request, candidates)

    def _explain(self, image: np.ndarray | None, mask: np.ndarray | None, reference: np.ndarray | None,
                 reference_mask: np.ndarray | None, reference_text: Any, prompt: Any, asea_steps: Any,
                 engine_name: Any, progress: Any) -> tuple[Any, AttentionTrace]:
        """(engine, trace) of the ASEA preview over the marked reference (the normal side is optional)."""
        if reference is None:
            raise InputError(NO_REFERENCE)
        if reference_mask is None or not reference_mask.any():
            raise InputError("Mark the anomaly on the reference image with the brush first (step 3).")
        check_mask(reference_mask, "marked reference region")
        if image is None or mask is None or not mask.any():
            image, mask = reference, reference_mask  # the preview needs only the reference side
        engine = self.ctx.attention_engine(as_text(engine_name))
        request = SynthesisRequest.create(
            image, mask, as_text(prompt), reference=reference, reference_mask=reference_mask,
            reference_text=as_text(reference_text), num=1, seed=0, params=params_dict({"asea_steps": asea_steps}),
        )
        trace = run_explain(engine.name, request, progress_fn(progress))
        return engine, trace

    def _attention_maps(self, trace: AttentionTrace, reference: np.ndarray,
                        reference_mask: np.ndarray) -> list[GalleryItem]:
        """The trace's heat maps as gallery items (none when the engine skipped them)."""
        if trace.skipped:
            return []
        self.ctx.prune("attention", ss.SESSION_TTL_S)
        return attention_items(trace, reference, reference_mask, self.ctx.temp_root / "attention")

    # ------------------------------------------------------------------ batch review jobs
    def _review_jobs(self) -> list[dict[str, Any]]:
        """The review jobs waiting in the data folder (oldest first): id, prompt, counts, labels."""
        jobs = []
        for folder in list_review_jobs(self.ctx.store.root):
            try:
                info = json.loads((folder / JOB_FILE).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            jobs.append({"job_id": folder.name, "prompt": str(info.get("prompt", "")),
                         "candidates": int(info.get("candidates", 0)), "category": str(info.get("category", "")),
                         "defect_type": str(info.get("defect_type", "")), "written_at": info.get("written_at")})
        return jobs

    def _review_folder(self, job_id: Any) -> Path:
        """The review folder of ``job_id``, which must be one of those listed (never a path from user text)."""
        wanted = as_text(job_id).strip()
        if not wanted:
            raise InputError("Choose a batch review job first (refresh the list after a batch run).")
        for folder in list_review_jobs(self.ctx.store.root):
            if folder.name == wanted:
                return folder
        raise InputError(f"There is no batch review job {wanted[:40]!r} in this data folder; "
                         "choose one from the list.")

    def _open_review(self, state: ss.Session | None, job_id: Any) -> tuple[ss.Session, ReviewJob]:
        """Load a review job's candidates into the (new or given) session; returns (session, job)."""
        job = load_review_job(self._review_folder(job_id))
        session = ss.ensure_session(state, self.ctx.temp_root)
        self.ctx.prune("sessions", ss.SESSION_TTL_S)
        return ss.record_review(session, job), job

    # ------------------------------------------------------------------ curating
    def _accept(self, state: ss.Session | None, index: Any, defect_type: Any, category: Any,
                note: Any) -> tuple[str, bool]:
        """Accept candidate ``index`` into the store; returns (sample id, newly added)."""
        record = ss.candidate_record(state, index)
        with self._session_lock(state):
            if record["status"] == "accepted" and record.get("sample_id"):
                return record["sample_id"], False
            return self._store_candidate(state, record, defect_type, category, note)

    def _session_lock(self, state: ss.Session | None) -> threading.Lock:
        with self._locks_guard:
            return self._session_locks.setdefault((state or {}).get("id", ""), threading.Lock())

    def _store_candidate(self, state: ss.Session, record: dict[str, Any], defect_type: Any, category: Any,
                         note: Any) -> tuple[str, bool]:
        defect = label_text(defect_type, "defect type")
        cat = label_text(category, "category")
        text = clean_text(as_text(note), "note")
        if state.get("review"):
            sample_id, new = self._accept_reviewed(state["review"], record["index"], defect, cat, text)
        else:
            candidate = ss.load_candidate(record)
            inputs = ss.load_inputs(state)
            sample_id, new = str(self.ctx.store.add(candidate, category=cat, defect_type=defect, note=text,
                                                    **inputs)), True
        record["status"] = "accepted"
        record["sample_id"] = sample_id
        return sample_id, new

    def _accept_reviewed(self, job_id: str, index: int, defect_type: str, category: str,
                         note: str) -> tuple[str, bool]:
        """Accept candidate ``index`` of a review job with these labels; the id is ``<job-id>-NN``
        and a candidate already in the store (from any session or the CLI) is not added again."""
        job = load_review_job(self._review_folder(job_id))
        job = dataclasses.replace(job, defect_type=defect_type, category=category, note=note)
        with self._review_lock:
            added = accept_review(self.ctx.store, job, [index])
        return f"{job.job_id}-{index:02d}", bool(added)

    def _reject(self, state: ss.Session | None, index: Any) -> None:
        """Mark candidate ``index`` rejected (an accepted one must be removed from the curated set)."""
        record = ss.candidate_record(state, index)
        if record["status"] == "accepted":
            raise InputError(f"Candidate {record['index']} is already accepted; "
                             "remove it from the curated set instead.")
        record["status"] = "rejected"

    def _remove(self, sample_id: Any) -> str:
        """Remove a curated sample by id; returns the id."""
        sample_id = as_text(sample_id).strip()
        if not sample_id:
            raise InputError("Give the id of the curated sample to remove.")
        self.ctx.store.remove(sample_id)
        return sample_id

    def _stats(self) -> dict[str, Any]:
        return self.ctx.store.stats()

    def _records(self, defect_type: str = "") -> list[Any]:
        return list(self.ctx.store.list(defect_type=defect_type or None))

    def _export(self, fmt: Any, progress: Any) -> Path:
        """The curated set exported as ``fmt`` into a fresh zip (old exports are pruned)."""
        fmt = as_text(fmt).strip().lower()
        if fmt not in EXPORT_FORMATS:
            raise InputError(f"Unknown export format {fmt!r}; choose one of: {', '.join(EXPORT_FORMATS)}.")
        if self._stats().get("total", 0) == 0:
            raise InputError("The curated set is empty: accept some candidates first (step 7).")
        self.ctx.prune("exports", EXPORT_TTL_S)
        out = self.ctx.new_dir("exports")
        return Path(export_dataset(self.ctx.store, fmt, out / f"anomaly_studio_{fmt}", make_zip=True,
                                   progress=progress_fn(progress)))
