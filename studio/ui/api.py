"""The documented ``gradio_client`` endpoints: plain files, numbers and text in; files and JSON out.

Wired in :func:`studio.ui.api_layout.api_endpoints` under the api_names ``generate``,
``preview_attention``, ``review_jobs``, ``open_review``, ``accept``, ``reject``, ``decide``, ``undo``,
``curated``, ``relabel``, ``remove``, ``export`` and ``status``.
"""
from __future__ import annotations

from typing import Any

import gradio as gr

from studio.errors import InputError
from studio.imaging import load_image, load_mask
from studio.requests import build_request
from studio.ui import review_queue as queue
from studio.ui import session as ss
from studio.ui.actions import NO_REFERENCE, Actions
from studio.ui.curated import PAGE_SIZE, Filters, engine_of, page_of
from studio.ui.feedback import friendly
from studio.ui.inputs import as_text, candidate_count, params_dict, resolve_seed
from studio.ui.views import strip_caption

DECISIONS = ("accept", "reject")


def candidates_info(state: ss.Session) -> dict[str, Any]:
    """The JSON describing a session's candidates (in generation order):
    ``{"candidates": [{"index", "seed", "score", "status", "sample_id", "metadata"}]}``."""
    return {"candidates": [{"index": r.index, "seed": r.seed, "score": r.score, "status": r.status,
                            "sample_id": r.sample_id, "metadata": r.metadata} for r in state.candidates]}


def sample_info(record: Any) -> dict[str, Any]:
    """A curated sample as JSON: id, labels, note, engine, when it was accepted, size."""
    return {"id": str(record.id), "category": record.category, "defect_type": record.defect_type,
            "note": record.note, "engine": engine_of(record),
            "accepted_at": str(record.accepted_at), "width": record.width, "height": record.height}


def id_list(value: Any) -> list[str]:
    """Sample ids from a list or from text separated by commas, spaces or new lines."""
    items = value if isinstance(value, (list, tuple)) else as_text(value).replace(",", " ").split()
    return [as_text(v).strip() for v in items if as_text(v).strip()]


class ApiEndpoints(Actions):
    """The ``api_*`` endpoints (each turns errors into readable ``gr.Error`` messages)."""

    @friendly
    def api_generate(
        self,
        image: str | None,
        mask: str | None,
        prompt: str = "",
        reference: str | None = None,
        reference_mask: str | None = None,
        reference_text: str = "",
        num: float = 1,
        seed: float = -1,
        steps: float | None = None,
        strength: float | None = None,
        guidance: float | None = None,
        sga_scale: float | None = None,
        asea_steps: float | None = None,
        engine: str = "",
        state: ss.Session | None = None,
        progress=gr.Progress(),
    ):
        """Generate candidates from plain files.

        image: the normal image file; mask: the defect region (any image, non-zero = defect;
        resized to the image); reference / reference_mask: optional anomaly picture and its
        region; num: 1..8 candidates; seed: 0..2**32-1, or -1 for random; steps, strength,
        guidance, sga_scale, asea_steps: engine parameters (empty = default); engine: "" for
        the default or one of the loaded engines. Returns the candidate images, their label
        masks and a JSON list (index, seed, metadata); the candidates stay in this client
        session for ``accept``/``reject``.
        """
        request = build_request(image or None, mask or None, reference=reference or None,
                                reference_mask=reference_mask or None, prompt=as_text(prompt),
                                reference_text=as_text(reference_text), num=candidate_count(num),
                                seed=resolve_seed(seed),
                                params=params_dict({"steps": steps, "strength": strength, "guidance": guidance,
                                                    "sga_scale": sga_scale, "asea_steps": asea_steps}))
        state = self._generate(state, request, engine, progress)
        records = state.candidates
        images = [(r.image, strip_caption(r)) for r in records]
        masks = [(r.mask, f"#{r.index + 1} label mask") for r in records]
        return images, masks, candidates_info(state), state

    @friendly
    def api_preview_attention(
        self,
        reference: str | None,
        reference_mask: str | None,
        reference_text: str = "",
        prompt: str = "",
        asea_steps: float | None = None,
        engine: str = "",
        progress=gr.Progress(),
    ):
        """ASEA attention maps over a reference anomaly, one per optimisation step.

        Returns the heat maps (captioned with the in-mask attention fraction) and a JSON object
        with ``inmask_fraction`` per step, ``engine``, ``weights``, ``note`` and ``skipped``
        (why there are no maps, e.g. no CSM model loaded).
        """
        if not reference:
            raise InputError(NO_REFERENCE)
        ref = load_image(reference, what="reference image")
        if not reference_mask:
            raise InputError("The reference mask file is missing: mark the anomaly's region.")
        ref_mask = load_mask(reference_mask, (ref.shape[1], ref.shape[0]), what="reference mask")
        engine_obj, trace = self._explain(None, None, ref, ref_mask, reference_text, prompt, asea_steps, engine,
                                          progress)
        info = {"engine": engine_obj.label, "weights": engine_obj.profile, "skipped": trace.skipped, "note": trace.note,
                "inmask_fraction": [round(float(f), 4) for f in trace.inmask_fractions]}
        return self._attention_maps(trace, ref, ref_mask), info

    @friendly
    def api_review_jobs(self):
        """The batch review jobs waiting in the data folder (``anomaly-studio batch --review``),
        oldest first: ``{"jobs": [{"job_id", "prompt", "candidates", "category", "defect_type",
        "written_at"}]}``."""
        return {"jobs": [{"job_id": j.job_id, "prompt": j.prompt, "candidates": j.candidates, "category": j.category,
                          "defect_type": j.defect_type, "written_at": j.written_at} for j in self._review_jobs()]}

    @friendly
    def api_open_review(self, job_id: str, state: ss.Session | None = None):
        """Load the candidates of review job ``job_id`` into this client session, as ``generate``
        does; ``accept`` then stores candidate ``index`` as ``<job-id>-NN`` (once). Returns
        ``{"job_id", "prompt", "category", "defect_type", "candidates": [{"index", "seed", "metadata"}]}``."""
        state, job = self._open_review(state, job_id)
        return {"job_id": job.job_id, "prompt": state.prompt, "category": job.category,
                "defect_type": job.defect_type, **candidates_info(state)}, state

    @friendly
    def api_accept(self, index: float, defect_type: str = "", category: str = "", note: str = "",
                   state: ss.Session | None = None):
        """Accept candidate ``index`` (0-based, from this session's last ``generate``) into the
        curated set with a defect type (required) and an optional category and note. Returns
        ``{"id", "new", "stats"}``; accepting the same candidate twice returns the same id."""
        sample_id, new = self._accept(state, index, defect_type, category, note, strict_category=False)
        return {"id": sample_id, "new": new, "stats": self._stats()}, state

    @friendly
    def api_reject(self, index: float, state: ss.Session | None = None):
        """Reject candidate ``index`` of this session; returns the indices not rejected."""
        self._reject(state, index)
        return {"remaining": [r.index for r in state.candidates if r.status != ss.REJECTED]}, state

    @friendly
    def api_decide(self, index: float, decision: str, defect_type: str = "", category: str = "", note: str = "",
                   state: ss.Session | None = None):
        """Decide on candidate ``index``: ``decision`` is ``accept`` (defect type and category are
        required) or ``reject``. Returns ``{"index", "status", "sample_id", "next", "counts"}`` where
        ``next`` is the next undecided candidate (as the page's auto-advance picks it) or None."""
        choice = as_text(decision).strip().lower()
        if choice not in DECISIONS:
            raise InputError(f"The decision must be one of: {', '.join(DECISIONS)}; got {decision!r}.")
        if choice == "accept":
            self._accept(state, index, defect_type, category, note)
        else:
            self._reject(state, index)
        record = ss.candidate_record(state, index)
        queue.select(state, record.index)
        following = state.selected if queue.advance(state) else None
        return {"index": record.index, "status": record.status, "sample_id": record.sample_id,
                "next": following, "counts": queue.tally(state)}, state

    @friendly
    def api_undo(self, state: ss.Session | None = None):
        """Undo this session's last decision (an accepted sample leaves the curated set again).
        Returns ``{"index", "status", "counts"}`` of the candidate it restored."""
        record = self._undo(state)
        return {"index": record.index, "status": record.status, "counts": queue.tally(state)}, state

    @friendly
    def api_curated(self, defect_type: str = "", category: str = "", engine: str = "", date_from: str = "",
                    date_to: str = "", page: float = 0, page_size: float = 0):
        """The curated set, optionally filtered (defect type, category, engine, accepted from/to
        ``YYYY-MM-DD``). With ``page`` >= 1 one page (newest first) of ``page_size`` (default 24),
        else every match, oldest first. Returns ``{"samples", "total", "page", "pages", "stats"}``."""
        records = self._records(Filters.of(category, defect_type, engine, date_from, date_to))
        total, number, pages = len(records), 0, 1
        if page and float(page) >= 1:
            size = int(page_size) if page_size and float(page_size) >= 1 else PAGE_SIZE
            records, number, pages = page_of(records, page, min(size, 500))
        return {"samples": [sample_info(r) for r in records], "total": total, "page": number, "pages": pages,
                "stats": self._stats()}

    @friendly
    def api_relabel(self, sample_ids: str, category: str = "", defect_type: str = "", note: str = ""):
        """Relabel curated samples (ids separated by commas or spaces): each non-empty field replaces
        the old one. Returns ``{"relabelled": [ids], "samples": [...]}``."""
        ids = self._relabel(id_list(sample_ids), category, defect_type, note)
        return {"relabelled": ids, "samples": [sample_info(self.ctx.store.get(i)) for i in ids]}

    @friendly
    def api_remove(self, sample_id: str):
        """Remove curated samples by id (several separated by commas or spaces); returns the new counts."""
        removed = self._remove(id_list(sample_id))
        return {"removed": removed[0] if len(removed) == 1 else removed, "stats": self._stats()}

    @friendly
    def api_export(self, fmt: str = "mvtec", defect_type: str = "", category: str = "", engine: str = "",
                   date_from: str = "", date_to: str = "", progress=gr.Progress()):
        """Export the curated set (or the samples matching the filters, as ``curated`` takes them)
        as ``mvtec``, ``coco`` or ``imagefolder``; returns a zip file."""
        path, _ = self._export(fmt, progress, Filters.of(category, defect_type, engine, date_from, date_to))
        return str(path)

    @friendly
    def api_status(self):
        """The status line: loaded engines, weight profiles and how to get the full model."""
        return self.ctx.status_markdown()
