"""The documented ``gradio_client`` endpoints: plain files, numbers and text in; files and JSON out.

Wired in :func:`studio.ui.layout._api_endpoints` under the api_names ``generate``,
``preview_attention``, ``review_jobs``, ``open_review``, ``accept``, ``reject``, ``curated``, ``remove``,
``export`` and ``status``.
"""
from __future__ import annotations

from typing import Any

import gradio as gr

from studio.errors import InputError
from studio.imaging import load_image, load_mask
from studio.ui import session as ss
from studio.ui.actions import NO_REFERENCE, Actions
from studio.ui.feedback import friendly
from studio.ui.inputs import as_text, candidate_count, params_dict, resolve_seed
from studio.ui.views import candidate_caption


def candidates_info(state: ss.Session) -> dict[str, Any]:
    """The JSON describing a session's candidates: ``{"candidates": [{"index", "seed", "metadata"}]}``."""
    return {"candidates": [{"index": r["index"], "seed": r["seed"], "metadata": r["metadata"]}
                           for r in state["candidates"]]}


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
        if not image:
            raise InputError("The normal image file is missing.")
        if not mask:
            raise InputError("The defect mask file is missing: pass an image whose non-zero pixels mark the region.")
        normal = load_image(image, what="normal image")
        region = load_mask(mask, (normal.shape[1], normal.shape[0]))
        ref = load_image(reference, what="reference image") if reference else None
        ref_mask = None
        if reference_mask:
            if ref is None:
                raise InputError("A reference mask was given without a reference image.")
            ref_mask = load_mask(reference_mask, (ref.shape[1], ref.shape[0]), what="reference mask")
        num_checked = candidate_count(num)
        params = params_dict({"steps": steps, "strength": strength, "guidance": guidance,
                              "sga_scale": sga_scale, "asea_steps": asea_steps})
        state = self._generate(state, normal, region, prompt, ref, ref_mask, reference_text, num_checked,
                               resolve_seed(seed), params, engine, progress)
        records = state["candidates"]
        images = [(r["image"], candidate_caption(r)) for r in records]
        masks = [(r["mask"], f"#{r['index'] + 1} label mask") for r in records]
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
        info = {"engine": engine_obj.name, "weights": engine_obj.profile, "skipped": trace.skipped, "note": trace.note,
                "inmask_fraction": [round(float(f), 4) for f in trace.inmask_fractions]}
        return self._attention_maps(trace, ref, ref_mask), info

    @friendly
    def api_review_jobs(self):
        """The batch review jobs waiting in the data folder (``anomaly-studio batch --review``),
        oldest first: ``{"jobs": [{"job_id", "prompt", "candidates", "category", "defect_type",
        "written_at"}]}``."""
        return {"jobs": self._review_jobs()}

    @friendly
    def api_open_review(self, job_id: str, state: ss.Session | None = None):
        """Load the candidates of review job ``job_id`` into this client session, as ``generate``
        does; ``accept`` then stores candidate ``index`` as ``<job-id>-NN`` (once). Returns
        ``{"job_id", "prompt", "category", "defect_type", "candidates": [{"index", "seed", "metadata"}]}``."""
        state, job = self._open_review(state, job_id)
        return {"job_id": job.job_id, "prompt": state["request"]["prompt"], "category": job.category,
                "defect_type": job.defect_type, **candidates_info(state)}, state

    @friendly
    def api_accept(self, index: float, defect_type: str = "", category: str = "", note: str = "",
                   state: ss.Session | None = None):
        """Accept candidate ``index`` (0-based, from this session's last ``generate``) into the
        curated set with an optional defect type, category and note. Returns
        ``{"id", "new", "stats"}``; accepting the same candidate twice returns the same id."""
        sample_id, new = self._accept(state, index, defect_type, category, note)
        return {"id": sample_id, "new": new, "stats": self._stats()}, state

    @friendly
    def api_reject(self, index: float, state: ss.Session | None = None):
        """Drop candidate ``index`` from this session's candidates; returns the indices left."""
        self._reject(state, index)
        return {"remaining": [r["index"] for r in ss.visible_candidates(state)]}, state

    @friendly
    def api_curated(self, defect_type: str = ""):
        """The curated set (optionally one defect type): a list of samples and the counts."""
        records = self._records(as_text(defect_type).strip())
        samples = [{"id": str(r.id), "defect_type": r.defect_type, "category": r.category, "note": r.note,
                    "accepted_at": str(r.accepted_at)} for r in records]
        return {"samples": samples, "stats": self._stats()}

    @friendly
    def api_remove(self, sample_id: str):
        """Remove one sample from the curated set by id; returns the new counts."""
        return {"removed": self._remove(sample_id), "stats": self._stats()}

    @friendly
    def api_export(self, fmt: str = "mvtec", progress=gr.Progress()):
        """Export the curated set as ``mvtec``, ``coco`` or ``imagefolder``; returns a zip file."""
        return str(self._export(fmt, progress))

    @friendly
    def api_status(self):
        """The status line: loaded engines, weight profiles and how to get the full model."""
        return self.ctx.status_markdown()
