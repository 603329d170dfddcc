"""The API endpoints panel: the documented ``gradio_client`` surface. Hidden widgets for plain files,
numbers and text, wired under stable ``api_name`` s (``generate``, ``preview_attention``, ``review_jobs``,
``open_review``, ``accept``, ``reject``, ``decide``, ``undo``, ``curated``, ``relabel``, ``remove``,
``export``, ``status``; the README lists them with examples).

``generate`` takes one input per engine parameter (the engines' declarations, after ``seed``) and
``preview_attention`` one per parameter the attention preview uses; a value given for a parameter the
chosen engine does not use is refused. Every endpoint turns errors into readable ``gr.Error`` s.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

import gradio as gr

from studio.errors import InputError
from studio.imaging import load_image, load_mask
from studio.requests import build_request
from studio.store import SampleRecord
from studio.types import EngineParameter
from studio.ui import review_queue as queue
from studio.ui import session as ss
from studio.ui.events import MODEL_CONCURRENCY
from studio.ui.filters import PAGE_SIZE, Filters, engine_of, page_of
from studio.ui.inputs import as_text, candidate_count, resolve_seed
from studio.ui.service import NO_REFERENCE, StudioService
from studio.ui.widgets.feedback import friendly, progress_fn
from studio.ui.widgets.views import strip_caption

DECISIONS = ("accept", "reject")


def candidates_info(state: ss.Session) -> dict[str, Any]:
    """The JSON describing a session's candidates (in generation order):
    ``{"candidates": [{"index", "seed", "score", "status", "sample_id", "metadata"}]}``."""
    return {"candidates": [{"index": r.index, "seed": r.seed, "score": r.score, "status": r.status,
                            "sample_id": r.sample_id, "metadata": r.metadata} for r in state.candidates]}


def sample_info(record: SampleRecord) -> dict[str, Any]:
    """A curated sample as JSON: id, labels, note, engine, when it was accepted, size."""
    return {"id": str(record.id), "category": record.category, "defect_type": record.defect_type,
            "note": record.note, "engine": engine_of(record),
            "accepted_at": str(record.accepted_at), "width": record.width, "height": record.height}


def id_list(value: Any) -> list[str]:
    """Sample ids from a list or from text separated by commas, spaces or new lines."""
    items = value if isinstance(value, (list, tuple)) else as_text(value).replace(",", " ").split()
    return [as_text(v).strip() for v in items if as_text(v).strip()]


def given(values: dict[str, Any]) -> dict[str, Any]:
    """The parameter values a client gave (None or "" = not given)."""
    return {name: v for name, v in values.items() if v is not None and v != ""}


def with_parameters(fn: Callable[..., Any], parameters: tuple[EngineParameter, ...], at: int) -> Callable[..., Any]:
    """``fn`` (which takes ``**params``) as Gradio sees an endpoint: its own arguments with one optional input
    per parameter inserted at position ``at``; calls bind by name."""
    own = [p for p in inspect.signature(fn).parameters.values() if p.kind is not p.VAR_KEYWORD]
    extra = [inspect.Parameter(p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=float | None)
             for p in parameters]
    own = [p.replace(annotation=inspect.Parameter.empty) if p.name == "progress" else p for p in own]
    signature = inspect.Signature([*own[:at], *extra, *own[at:]])

    def endpoint(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        named = dict(bound.arguments)
        return fn(**{k: v for k, v in named.items() if k not in {p.name for p in parameters}},
                   **{p.name: named[p.name] for p in parameters})

    endpoint.__signature__ = signature  # type: ignore[attr-defined]
    endpoint.__name__ = fn.__name__
    return endpoint


class ApiPanel:
    """The ``api_*`` endpoints (hidden widgets; each turns errors into readable ``gr.Error`` messages)."""

    def __init__(self, service: StudioService) -> None:
        self.service = service
        #: The inputs of ``generate`` after ``seed`` / of ``preview_attention`` after ``prompt``.
        self.parameters = service.offered_parameters()
        self.preview_parameters = tuple(p for p in self.parameters if p.explains)

    @friendly
    def api_generate(self, image: str | None, mask: str | None, prompt: str = "", reference: str | None = None,
                     reference_mask: str | None = None, reference_text: str = "", num: float = 1, seed: float = -1,
                     engine: str = "", state: ss.Session | None = None, progress: Any = gr.Progress(),
                     **params: Any) -> tuple[Any, ...]:
        """Generate candidates from plain files.

        image: the normal image file; mask: the defect region (any image, non-zero = defect;
        resized to the image); reference / reference_mask: optional anomaly picture and its
        region; num: 1..8 candidates; seed: 0..2**32-1, or -1 for random; then one input per engine
        parameter (empty = default; a value for one the chosen engine does not use is refused); engine:
        "" for the default or one of the loaded engines. Returns the candidate images, their label
        masks and a JSON list (index, seed, metadata); the candidates stay in this client
        session for ``accept``/``reject``.
        """
        chosen = self.service.ctx.engine(as_text(engine))
        request = build_request(image or None, mask or None, reference=reference or None,
                                reference_mask=reference_mask or None, prompt=as_text(prompt),
                                reference_text=as_text(reference_text), num=candidate_count(num),
                                seed=resolve_seed(seed), params=given(params),
                                engine=chosen)
        state = self.service.generate(state, request, chosen, progress_fn(progress))
        records = state.candidates
        images = [(r.image, strip_caption(r)) for r in records]
        masks = [(r.mask, f"#{r.index + 1} label mask") for r in records]
        return images, masks, candidates_info(state), state

    @friendly
    def api_preview_attention(self, reference: str | None, reference_mask: str | None, reference_text: str = "",
                              prompt: str = "", engine: str = "", progress: Any = gr.Progress(),
                              **params: Any) -> tuple[Any, dict[str, Any]]:
        """ASEA attention maps over a reference anomaly, one per optimisation step (after ``prompt``, one
        input per parameter the preview uses, e.g. ``asea_steps``; empty = default).

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
        explainer = self.service.explainer(engine)
        trace = self.service.explain(None, None, ref, ref_mask, reference_text, prompt,
                                     given(params), explainer,
                                     progress_fn(progress))
        info = {"engine": explainer.label, "weights": explainer.profile, "skipped": trace.skipped, "note": trace.note,
                "inmask_fraction": [round(float(f), 4) for f in trace.inmask_fractions]}
        return self.service.attention_maps(trace, ref, ref_mask), info

    @friendly
    def api_review_jobs(self) -> dict[str, Any]:
        """The batch review jobs waiting in the data folder (``anomaly-studio batch --review``),
        oldest first: ``{"jobs": [{"job_id", "prompt", "candidates", "category", "defect_type",
        "written_at"}]}``."""
        return {"jobs": [{"job_id": j.job_id, "prompt": j.prompt, "candidates": j.candidates, "category": j.category,
                          "defect_type": j.defect_type, "written_at": j.written_at} for j in self.service.review_jobs()]}

    @friendly
    def api_open_review(self, job_id: str, state: ss.Session | None = None) -> tuple[dict[str, Any], ss.Session]:
        """Load the candidates of review job ``job_id`` into this client session, as ``generate``
        does; ``accept`` then stores candidate ``index`` as ``<job-id>-NN`` (once). Returns
        ``{"job_id", "prompt", "category", "defect_type", "candidates": [{"index", "seed", "metadata"}]}``."""
        state, job = self.service.open_review(state, job_id)
        return {"job_id": job.job_id, "prompt": state.prompt, "category": job.category,
                "defect_type": job.defect_type, **candidates_info(state)}, state

    @friendly
    def api_accept(self, index: float, defect_type: str = "", category: str = "", note: str = "",
                   state: ss.Session | None = None) -> tuple[dict[str, Any], ss.Session]:
        """Accept candidate ``index`` (0-based, from this session's last ``generate``) into the
        curated set with a defect type (required) and an optional category and note. Returns
        ``{"id", "new", "stats"}``; accepting the same candidate twice returns the same id."""
        sample_id, new = self.service.accept(state, index, defect_type, category, note, strict_category=False)
        return {"id": sample_id, "new": new, "stats": self.service.stats()}, state

    @friendly
    def api_reject(self, index: float, state: ss.Session | None = None) -> tuple[dict[str, Any], ss.Session]:
        """Reject candidate ``index`` of this session; returns the indices not rejected."""
        self.service.reject(state, index)
        return {"remaining": [r.index for r in state.candidates if r.status != ss.REJECTED]}, state

    @friendly
    def api_decide(self, index: float, decision: str, defect_type: str = "", category: str = "", note: str = "",
                   state: ss.Session | None = None) -> tuple[dict[str, Any], ss.Session]:
        """Decide on candidate ``index``: ``decision`` is ``accept`` (defect type and category are
        required) or ``reject``. Returns ``{"index", "status", "sample_id", "next", "counts"}`` where
        ``next`` is the next undecided candidate (as the page's auto-advance picks it) or None."""
        choice = as_text(decision).strip().lower()
        if choice not in DECISIONS:
            raise InputError(f"The decision must be one of: {', '.join(DECISIONS)}; got {decision!r}.")
        if choice == "accept":
            self.service.accept(state, index, defect_type, category, note)
        else:
            self.service.reject(state, index)
        record = ss.candidate_record(state, index)
        queue.select(state, record.index)
        following = state.selected if queue.advance(state) else None
        return {"index": record.index, "status": record.status, "sample_id": record.sample_id,
                "next": following, "counts": queue.tally(state)}, state

    @friendly
    def api_undo(self, state: ss.Session | None = None) -> tuple[dict[str, Any], ss.Session]:
        """Undo this session's last decision (an accepted sample leaves the curated set again).
        Returns ``{"index", "status", "counts"}`` of the candidate it restored."""
        record = self.service.undo(state)
        return {"index": record.index, "status": record.status, "counts": queue.tally(state)}, state

    @friendly
    def api_curated(self, defect_type: str = "", category: str = "", engine: str = "", date_from: str = "",
                    date_to: str = "", page: float = 0, page_size: float = 0) -> dict[str, Any]:
        """The curated set, optionally filtered (defect type, category, engine, accepted from/to
        ``YYYY-MM-DD``). With ``page`` >= 1 one page (newest first) of ``page_size`` (default 24),
        else every match, oldest first. Returns ``{"samples", "total", "page", "pages", "stats"}``."""
        records = self.service.records(Filters.of(category, defect_type, engine, date_from, date_to))
        total, number, pages = len(records), 0, 1
        if page and float(page) >= 1:
            size = int(page_size) if page_size and float(page_size) >= 1 else PAGE_SIZE
            records, number, pages = page_of(records, page, min(size, 500))
        return {"samples": [sample_info(r) for r in records], "total": total, "page": number, "pages": pages,
                "stats": self.service.stats()}

    @friendly
    def api_relabel(self, sample_ids: str, category: str = "", defect_type: str = "",
                    note: str = "") -> dict[str, Any]:
        """Relabel curated samples (ids separated by commas or spaces): each non-empty field replaces
        the old one. Returns ``{"relabelled": [ids], "samples": [...]}``."""
        ids = self.service.relabel(id_list(sample_ids), category, defect_type, note)
        return {"relabelled": ids, "samples": [sample_info(self.service.ctx.store.get(i)) for i in ids]}

    @friendly
    def api_remove(self, sample_id: str) -> dict[str, Any]:
        """Remove curated samples by id (several separated by commas or spaces); returns the new counts."""
        removed = self.service.remove(id_list(sample_id))
        return {"removed": removed[0] if len(removed) == 1 else removed, "stats": self.service.stats()}

    @friendly
    def api_export(self, fmt: str = "mvtec", defect_type: str = "", category: str = "", engine: str = "",
                   date_from: str = "", date_to: str = "", progress: Any = gr.Progress()) -> str:
        """Export the curated set (or the samples matching the filters, as ``curated`` takes them)
        as ``mvtec``, ``coco`` or ``imagefolder``; returns a zip file."""
        path, _ = self.service.export(fmt, Filters.of(category, defect_type, engine, date_from, date_to),
                                      progress_fn(progress))
        return str(path)

    @friendly
    def api_status(self) -> str:
        """The status line: loaded engines, weight profiles and how to get the full model."""
        return self.service.ctx.status_markdown()

    # ------------------------------------------------------------------ blocks and events
    def render(self, session: gr.State) -> None:
        """Hidden widgets and the API events (the session state is the page's, per client)."""
        with gr.Column(visible=False):
            files = {name: gr.File(type="filepath", label=name) for name in ("image", "mask", "reference",
                                                                             "reference_mask")}
            text = {name: gr.Textbox(value=default, label=name.removeprefix("filter_")) for name, default in (
                ("prompt", ""), ("reference_text", ""), ("engine", ""), ("decision", "accept"), ("defect_type", ""),
                ("category", ""), ("note", ""), ("sample_id", ""), ("sample_ids", ""), ("filter_engine", ""),
                ("date_from", ""), ("date_to", ""), ("job_id", ""), ("fmt", "mvtec"))}
            number = {name: gr.Number(value=default, label=name) for name, default in (
                ("num", 1), ("seed", -1), ("index", 0), ("page", 0), ("page_size", 0))}
            params = {p.name: gr.Number(value=None, label=p.name) for p in self.parameters}
            out = {"images": gr.Gallery(label="candidates", format="png"),
                   "masks": gr.Gallery(label="label masks", format="png"), "info": gr.JSON(label="info"),
                   "heatmaps": gr.Gallery(label="attention maps", format="png"), "file": gr.File(label="zip"),
                   "status": gr.Textbox(label="status")}
            trigger = gr.Button()
        self._wire(trigger, session, files, text, number, params, out)

    def _wire(self, trigger: gr.Button, session: gr.State, files: dict[str, Any], text: dict[str, Any],
              number: dict[str, Any], params: dict[str, Any], out: dict[str, Any]) -> None:
        f, t, n, info = files, text, number, out["info"]
        labels = [t["defect_type"], t["category"], t["note"]]
        filters = [t["defect_type"], t["category"], t["filter_engine"], t["date_from"], t["date_to"]]
        preview = [params[p.name] for p in self.preview_parameters]
        trigger.click(with_parameters(self.api_generate, self.parameters, 8),
                      [f["image"], f["mask"], t["prompt"], f["reference"], f["reference_mask"], t["reference_text"],
                       n["num"], n["seed"], *params.values(), t["engine"], session],
                      [out["images"], out["masks"], info, session], api_name="generate", **MODEL_CONCURRENCY)
        trigger.click(with_parameters(self.api_preview_attention, self.preview_parameters, 4),
                      [f["reference"], f["reference_mask"], t["reference_text"], t["prompt"], *preview, t["engine"]],
                      [out["heatmaps"], info], api_name="preview_attention", **MODEL_CONCURRENCY)
        trigger.click(self.api_review_jobs, None, info, api_name="review_jobs")
        trigger.click(self.api_open_review, [t["job_id"], session], [info, session], api_name="open_review")
        trigger.click(self.api_accept, [n["index"], *labels, session], [info, session], api_name="accept")
        trigger.click(self.api_reject, [n["index"], session], [info, session], api_name="reject")
        trigger.click(self.api_decide, [n["index"], t["decision"], *labels, session], [info, session],
                      api_name="decide")
        trigger.click(self.api_undo, [session], [info, session], api_name="undo")
        trigger.click(self.api_curated, [*filters, n["page"], n["page_size"]], info, api_name="curated")
        trigger.click(self.api_relabel, [t["sample_ids"], t["category"], t["defect_type"], t["note"]], info,
                      api_name="relabel")
        trigger.click(self.api_remove, [t["sample_id"]], info, api_name="remove")
        trigger.click(self.api_export, [t["fmt"], *filters], out["file"], api_name="export", concurrency_limit=2,
                      concurrency_id="export")
        trigger.click(self.api_status, None, out["status"], api_name="status")
