"""Everything the studio's buttons do. Callbacks only call the engine, store and export APIs.

Two families share one core:

- ``api_*`` methods are the documented ``gradio_client`` surface (plain files, numbers, text);
- ``ui_*`` methods are what the page's widgets call (editor values, gallery selections).

Every method turns a :class:`~studio.errors.StudioError` into a ``gr.Error`` with the same
sentence, and any other exception into a generic ``gr.Error`` (logged with its traceback), so
bad input never takes the page or another session down.
"""
import functools
import logging
import random
import threading
from pathlib import Path
from typing import Any, Callable

import cv2
import gradio as gr
import numpy as np

from studio.errors import InputError, StudioError
from studio.export import EXPORT_FORMATS, export_dataset
from studio.imaging import check_mask, load_image, load_mask
from studio.types import PARAM_SPECS, SEED_MAX, AttentionTrace, Candidate, ProgressFn, SynthesisRequest, clean_text
from studio.ui import editor as ed
from studio.ui import session as ss
from studio.ui.assets import Assets, load_assets
from studio.ui.context import StudioContext, engine_label
from studio.visualize import heatmap_overlay, mask_overlay

log = logging.getLogger(__name__)

VIEWS = ("image", "overlay", "side by side")
#: Longest side of images sent to galleries for display (accept always stores full size).
DISPLAY_MAX = 1024
THUMB_MAX = 256
#: How many curated samples the page shows (newest first); counts always cover all.
CURATED_SHOWN = 48
EXPORT_TTL_S = 3600

NO_IMAGE = "Pick a sample or upload a normal image first (step 1)."
NO_REFERENCE = "Add a reference anomaly first (step 3): pick an example or upload one, then mark its region."


# --------------------------------------------------------------------------- GPU work
try:  # Hugging Face ZeroGPU: optional, never required
    import spaces  # type: ignore

    _gpu = spaces.GPU
    ON_SPACES_GPU = True
except Exception:  # ImportError, or a broken install
    ON_SPACES_GPU = False

    def _gpu(fn: Callable) -> Callable:
        return fn

#: name -> engine, filled by :class:`Studio`; module-level so GPU workers need not pickle it.
_ENGINES: dict[str, Any] = {}


@_gpu
def run_generate(engine_name: str, request: SynthesisRequest, progress: ProgressFn | None = None) -> list[Candidate]:
    """Engine.generate on the process-wide engine (the model work of one request)."""
    return _ENGINES[engine_name].generate(request, progress)


@_gpu
def run_explain(engine_name: str, request: SynthesisRequest, progress: ProgressFn | None = None) -> AttentionTrace:
    """Engine.explain on the process-wide engine."""
    return _ENGINES[engine_name].explain(request, progress)


# --------------------------------------------------------------------------- helpers
def friendly(fn: Callable) -> Callable:
    """Turn studio errors into ``gr.Error`` with their sentence; anything else into a generic one."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except StudioError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except MemoryError:
            log.exception("out of memory in %s", fn.__name__)
            raise gr.Error("The server ran out of memory for this request; try a smaller image or fewer candidates.",
                           print_exception=False) from None
        except Exception as exc:
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(f"Something went wrong ({type(exc).__name__}); the page is still usable, "
                           "try again or change the inputs.", print_exception=False) from None

    return wrapper


def progress_fn(progress: Any) -> ProgressFn | None:
    """Adapt ``gr.Progress`` to the engines' ``(done, total, description)`` callback."""
    if progress is None or ON_SPACES_GPU:
        return None

    def update(done: int, total: int, description: str) -> None:
        try:
            progress((done, total), desc=description)
        except Exception:  # progress is cosmetic
            pass

    return update


def resolve_seed(seed: Any, randomise: bool = False) -> int:
    """A fixed seed, or a fresh random one when ``randomise`` or ``seed`` is -1 / empty."""
    if randomise or seed is None or (isinstance(seed, str) and not seed.strip()):
        return random.SystemRandom().randint(0, SEED_MAX)
    try:
        value = float(seed)
    except (TypeError, ValueError):
        raise InputError(f"The seed must be a whole number from 0 to {SEED_MAX}, or -1 for random; got {seed!r}.") from None
    if value == -1:
        return random.SystemRandom().randint(0, SEED_MAX)
    if not np.isfinite(value) or value != int(value) or not 0 <= value <= SEED_MAX:
        raise InputError(f"The seed must be a whole number from 0 to {SEED_MAX}, or -1 for random; got {seed!r}.")
    return int(value)


def params_dict(values: dict[str, Any]) -> dict[str, Any]:
    """Engine parameters from widget/API values (None = default)."""
    return {k: v for k, v in values.items() if k in PARAM_SPECS and v is not None and v != ""}


def fit(image: np.ndarray, longest: int) -> np.ndarray:
    """Downscale so the longest side is at most ``longest`` (display only)."""
    height, width = image.shape[:2]
    scale = longest / max(height, width)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def outline(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Draw the outline of ``mask`` on a copy of ``image``."""
    out = image.copy()
    binary = (mask > 0).astype(np.uint8)
    if binary.shape != out.shape[:2]:
        binary = cv2.resize(binary, (out.shape[1], out.shape[0]), interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, colour, max(1, round(min(out.shape[:2]) / 250)))
    return out


def view_image(image: np.ndarray, mask: np.ndarray, view: str) -> np.ndarray:
    """A candidate as shown: plain, with its label overlay, or both side by side."""
    image = fit(image, DISPLAY_MAX)
    if mask.shape != image.shape[:2]:
        mask = cv2.resize(mask.astype(np.uint8), (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST)
    if view == "overlay":
        return mask_overlay(image, mask)
    if view == "side by side":
        gap = np.full((image.shape[0], max(4, image.shape[1] // 64), 3), 255, np.uint8)
        return np.hstack([image, gap, mask_overlay(image, mask)])
    return image


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _label(value: Any, what: str) -> str:
    text = clean_text(_text(value), what)
    if len(text) > 200:
        raise InputError(f"The {what} is {len(text)} characters long; keep it under 200.")
    return text


# --------------------------------------------------------------------------- the studio
class Studio:
    """The callbacks of one studio process, bound to its shared :class:`StudioContext`."""

    def __init__(self, ctx: StudioContext, assets: Assets | None = None):
        self.ctx = ctx
        self.assets = assets if assets is not None else load_assets()
        _ENGINES.update(ctx.engines)
        self._session_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    # ------------------------------------------------------------------ core
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
        check_mask(mask)
        if reference_mask is not None:
            reference_mask = check_mask(reference_mask, "marked reference region") if reference_mask.any() else None
        engine = self.ctx.engine(_text(engine_name))
        request = SynthesisRequest.create(
            image, mask, _text(prompt),
            reference=reference, reference_mask=reference_mask, reference_text=_text(reference_text),
            num=num, seed=seed, params=params,
        )
        callback = progress_fn(progress)
        if callback:
            callback(0, request.num, f"{engine.name}: generating {request.num} candidate(s)")
        candidates = run_generate(engine.name, request, callback)
        session = ss.ensure_session(state, self.ctx.temp_root)
        self.ctx.prune("sessions", ss.SESSION_TTL_S)
        return ss.record_generation(session, request, candidates)

    def _explain(self, image, mask, reference, reference_mask, reference_text, prompt, asea_steps, engine_name, progress):
        if reference is None:
            raise InputError(NO_REFERENCE)
        if reference_mask is None or not reference_mask.any():
            raise InputError("Mark the anomaly on the reference image with the brush first (step 3).")
        check_mask(reference_mask, "marked reference region")
        if image is None or mask is None or not mask.any():
            image, mask = reference, reference_mask  # the preview needs only the reference side
        engine = self.ctx.attention_engine(_text(engine_name))
        request = SynthesisRequest.create(
            image, mask, _text(prompt), reference=reference, reference_mask=reference_mask,
            reference_text=_text(reference_text), num=1, seed=0, params=params_dict({"asea_steps": asea_steps}),
        )
        trace = run_explain(engine.name, request, progress_fn(progress))
        return engine, trace

    def _trace_outputs(self, engine: Any, trace: AttentionTrace, reference: np.ndarray, reference_mask: np.ndarray):
        """(gallery items (file, caption), note markdown, info dict) for an attention trace."""
        info = {"engine": engine.name, "weights": engine.profile, "skipped": trace.skipped, "note": trace.note,
                "inmask_fraction": [round(float(f), 4) for f in trace.inmask_fractions]}
        if trace.skipped:
            return [], f"**No attention maps.** {trace.skipped}" + (f"  \n{trace.note}" if trace.note else ""), info
        shown = fit(reference, 512)
        folder = self.ctx.temp_root / "attention"
        self.ctx.prune("attention", ss.SESSION_TTL_S)
        items = []
        for k, step in enumerate(trace.steps):
            overlay = outline(heatmap_overlay(shown, step.heatmap), reference_mask)
            items.append((ss.write_png_once(folder, overlay), f"step {k} · {step.inmask_fraction:.0%}"))
        notes = [f"ASEA on **{engine_label(engine)}**: share of the attention inside the marked region, per step: "
                 + " → ".join(f"{f:.0%}" for f in trace.inmask_fractions) + "."]
        if trace.note:
            notes.append(trace.note)
        elif engine.profile == "tiny":
            notes.append("The loaded CSM model is the tiny random one: the maps show the mechanism only, not real semantics.")
        return items, "  \n".join(notes), info

    def _accept(self, state: ss.Session | None, index: Any, defect_type: Any, category: Any, note: Any) -> tuple[str, bool]:
        """Accept candidate ``index`` into the store; returns (sample id, newly added)."""
        record = ss.candidate_record(state, index)
        with self._session_lock(state):
            if record["status"] == "accepted" and record.get("sample_id"):
                return record["sample_id"], False
            return self._store_candidate(state, record, defect_type, category, note), True

    def _session_lock(self, state: ss.Session | None) -> threading.Lock:
        with self._locks_guard:
            return self._session_locks.setdefault((state or {}).get("id", ""), threading.Lock())

    def _store_candidate(self, state: ss.Session, record: dict[str, Any], defect_type: Any, category: Any,
                         note: Any) -> str:
        defect = _label(defect_type, "defect type")
        cat = _label(category, "category")
        text = clean_text(_text(note), "note")
        candidate = ss.load_candidate(record)
        inputs = ss.load_inputs(state)
        sample_id = self.ctx.store.add(candidate, category=cat, defect_type=defect, note=text, **inputs)
        record["status"] = "accepted"
        record["sample_id"] = str(sample_id)
        return str(sample_id)

    def _stats(self) -> dict[str, Any]:
        return self.ctx.store.stats()

    def _records(self, defect_type: str = "") -> list[Any]:
        return list(self.ctx.store.list(defect_type=defect_type or None))

    def _export(self, fmt: Any, progress: Any) -> Path:
        fmt = _text(fmt).strip().lower()
        if fmt not in EXPORT_FORMATS:
            raise InputError(f"Unknown export format {fmt!r}; choose one of: {', '.join(EXPORT_FORMATS)}.")
        if self._stats().get("total", 0) == 0:
            raise InputError("The curated set is empty: accept some candidates first (step 7).")
        self.ctx.prune("exports", EXPORT_TTL_S)
        out = self.ctx.new_dir("exports")
        return Path(export_dataset(self.ctx.store, fmt, out / f"anomaly_studio_{fmt}", make_zip=True,
                                   progress=progress_fn(progress)))

    # ------------------------------------------------------------------ views
    def candidate_gallery(self, state: ss.Session | None, view: str = "image") -> list[tuple[str, str]]:
        """The session's visible candidates as gallery items (file, caption) in the chosen view."""
        view = view if view in VIEWS else "image"
        items = []
        for record in ss.visible_candidates(state):
            caption = f"#{record['index'] + 1} · seed {record['seed']}"
            if record["status"] == "accepted":
                caption += f" · ✓ accepted ({record['sample_id']})"
            items.append((self._view_file(record, view), caption))
        return items

    def _view_file(self, record: dict[str, Any], view: str) -> str:
        """A candidate drawn for display in ``view``, made once per candidate and view.

        Galleries get files, not arrays: Gradio copies a file into its cache once, atomically,
        but re-encodes an array and rewrites its cache file every time it is shown again."""
        width, height = (record.get("metadata") or {}).get("image_size") or (DISPLAY_MAX + 1, 0)
        if view == "image" and max(width, height) <= DISPLAY_MAX:
            return record["image"]
        path = Path(record["image"]).with_name(f"candidate_{record['index']:02d}_{view.replace(' ', '_')}.png")
        if not path.exists():
            image = load_image(record["image"], what="candidate image")
            mask = load_mask(record["mask"], (image.shape[1], image.shape[0]))
            ss.write_png(path, view_image(image, mask, view))
        return str(path)

    def _thumbnail(self, record: Any) -> str:
        """The curated sample's thumbnail with its label overlay, as a file (made once)."""
        image_path = Path(record.image_path)
        folder = self.ctx.temp_root / "thumbs"
        path = folder / f"{record.id}-{int(image_path.stat().st_mtime_ns)}.png"
        if not path.exists():
            image = fit(load_image(image_path, what="curated image"), THUMB_MAX)
            if record.mask_path and Path(record.mask_path).exists():
                image = mask_overlay(image, load_mask(record.mask_path, (image.shape[1], image.shape[0])))
            folder.mkdir(parents=True, exist_ok=True)
            ss.write_png(path, image)
        return str(path)

    def curated_view(self, defect_filter: str = "") -> tuple[list[tuple[str, str]], str, list[str]]:
        """(gallery items, counts markdown, ids in gallery order) of the curated set, newest first."""
        self.ctx.prune("thumbs", ss.SESSION_TTL_S)
        records = sorted(self._records(defect_filter), key=lambda r: str(r.accepted_at), reverse=True)
        items, ids = [], []
        for rec in records[:CURATED_SHOWN]:
            try:
                thumb = self._thumbnail(rec)
            except (StudioError, OSError):
                log.warning("curated sample %s has unreadable files", rec.id)
                continue
            items.append((thumb, f"{rec.defect_type or 'unlabelled'} · {rec.id}"))
            ids.append(str(rec.id))
        return items, self.counts_markdown(len(records), defect_filter), ids

    def counts_markdown(self, shown_total: int | None = None, defect_filter: str = "") -> str:
        stats = self._stats()
        total = stats.get("total", 0)
        if not total:
            return "The curated set is empty. Accept candidates to add them; they are kept in the data folder."
        rows = ["| defect type | samples |", "|---|---:|"]
        for name, count in sorted((stats.get("by_defect_type") or {}).items(), key=lambda kv: (-kv[1], kv[0])):
            rows.append(f"| {name or 'unlabelled'} | {count} |")
        rows.append(f"| **total** | **{total}** |")
        cats = stats.get("by_category") or {}
        extra = ""
        if len(cats) > 1 or (cats and next(iter(cats)) != ""):
            extra = "\n\nBy category: " + ", ".join(f"{k or 'none'} {v}" for k, v in sorted(cats.items()))
        shown = shown_total if shown_total is not None else total
        head = f"Showing the newest {min(shown, CURATED_SHOWN)} of {shown}"
        head += f" `{defect_filter}` samples." if defect_filter else " samples."
        return head + "\n\n" + "\n".join(rows) + extra

    def defect_types(self) -> list[str]:
        known = {"scratch", "crack", "hole", "stain", "contamination", "dent"}
        known |= {r.defect_type for r in self.assets.references if r.defect_type}
        known |= {k for k in (self._stats().get("by_defect_type") or {}) if k}
        return sorted(known)

    # =================================================================== API
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
        num_checked = _num(num)
        params = params_dict({"steps": steps, "strength": strength, "guidance": guidance,
                              "sga_scale": sga_scale, "asea_steps": asea_steps})
        state = self._generate(state, normal, region, prompt, ref, ref_mask, reference_text, num_checked,
                               resolve_seed(seed), params, engine, progress)
        records = state["candidates"]
        images = [(r["image"], f"#{r['index'] + 1} · seed {r['seed']}") for r in records]
        masks = [(r["mask"], f"#{r['index'] + 1} label mask") for r in records]
        info = {"candidates": [{"index": r["index"], "seed": r["seed"], "metadata": r["metadata"]} for r in records]}
        return images, masks, info, state

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
        engine_obj, trace = self._explain(None, None, ref, ref_mask, reference_text, prompt, asea_steps, engine, progress)
        items, _, info = self._trace_outputs(engine_obj, trace, ref, ref_mask)
        return items, info

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
        record = ss.candidate_record(state, index)
        if record["status"] == "accepted":
            raise InputError(f"Candidate {record['index']} is already accepted; remove it from the curated set instead.")
        record["status"] = "rejected"
        return {"remaining": [r["index"] for r in ss.visible_candidates(state)]}, state

    @friendly
    def api_curated(self, defect_type: str = ""):
        """The curated set (optionally one defect type): a list of samples and the counts."""
        records = self._records(_text(defect_type).strip())
        samples = [{"id": str(r.id), "defect_type": r.defect_type, "category": r.category, "note": r.note,
                    "accepted_at": str(r.accepted_at)} for r in records]
        return {"samples": samples, "stats": self._stats()}

    @friendly
    def api_remove(self, sample_id: str):
        """Remove one sample from the curated set by id; returns the new counts."""
        sample_id = _text(sample_id).strip()
        if not sample_id:
            raise InputError("Give the id of the curated sample to remove.")
        self.ctx.store.remove(sample_id)
        return {"removed": sample_id, "stats": self._stats()}

    @friendly
    def api_export(self, fmt: str = "mvtec", progress=gr.Progress()):
        """Export the curated set as ``mvtec``, ``coco`` or ``imagefolder``; returns a zip file."""
        return str(self._export(fmt, progress))

    @friendly
    def api_status(self):
        """The status line: loaded engines, weight profiles and how to get the full model."""
        return self.ctx.status_markdown()

    # =================================================================== UI
    def initial_sample(self) -> tuple[dict[str, Any] | None, ed.Source | None, str, str, int | None]:
        """The first shipped sample, preloaded so the page starts ready to sketch:
        (editor value, editor source, category, suggested description, sample index)."""
        if not self.assets.normals:
            return None, None, "", "", None
        sample = self.assets.normals[0]
        try:
            image = load_image(sample.path, what="sample image")
        except StudioError:
            log.warning("the shipped sample %s is unreadable", sample.path)
            return None, None, "", "", None
        value, source = ed.show(image, None, self.editor_dir, str(sample.path))
        return value, source, sample.category, sample.prompt, 0

    @property
    def editor_dir(self) -> Path:
        """Where clean editor images and preset masks are kept (pruned after a session's life)."""
        return self.ctx.temp_root / "editors"

    def _editor_files_pruned(self) -> Path:
        self.ctx.prune("editors", ss.SESSION_TTL_S)
        return self.editor_dir

    @friendly
    def ui_load(self):
        """Page load: status line, engine choices, defect types and the curated set."""
        items, counts, ids = self.curated_view()
        choices = self.ctx.engine_choices()
        return (self.ctx.status_markdown(), gr.update(choices=choices, value=choices[0][1]),
                gr.update(choices=self.defect_types()), items, counts, ids)

    @friendly
    def ui_pick_sample(self, prompt: str, evt: gr.SelectData):
        """A shipped normal image was clicked: load it into the sketch editor (and suggest a
        description when there is none yet). Returns (editor, source, category, prompt, index)."""
        index = evt.index if isinstance(evt.index, int) else None
        if index is None or not 0 <= index < len(self.assets.normals):
            raise InputError("That sample is not available.")
        sample = self.assets.normals[index]
        image = load_image(sample.path, what="sample image")
        value, source = ed.show(image, None, self._editor_files_pruned(), str(sample.path))
        suggested = gr.update(value=sample.prompt) if sample.prompt and not _text(prompt).strip() else gr.update()
        return value, source, sample.category, suggested, index

    @friendly
    def ui_add_suggested(self, value, source: ed.Source | None, picked: int | None):
        """Add the picked sample's suggested defect region to the sketch."""
        if picked is None or not 0 <= int(picked) < len(self.assets.normals):
            raise InputError("Suggested regions come with the shipped samples: click one in step 1 first.")
        sample = self.assets.normals[int(picked)]
        if sample.mask_path is None:
            raise InputError(f"The sample {sample.name} has no suggested region; sketch one with the brush.")
        return ed.bake(value, source, lambda size: load_mask(sample.mask_path, size), self.editor_dir,
                       "normal image", NO_IMAGE)

    @friendly
    def ui_upload_normal(self, path: str | None):
        """Validate an uploaded normal image and load it into the sketch editor."""
        if not path:
            raise InputError("No file was uploaded.")
        image = load_image(path, what="uploaded image")
        return (*ed.show(image, None, self._editor_files_pruned()), None)

    @friendly
    def ui_add_shape(self, value, source: ed.Source | None, shape: str, size: float, x: float, y: float):
        """Add a quick shape (ellipse, line, box) to the defect region."""
        return ed.bake(value, source, lambda dims: ed.shape_mask(dims, shape, size, x, y), self.editor_dir,
                       "normal image", NO_IMAGE)

    @friendly
    def ui_clear_sketch(self, value, source: ed.Source | None):
        """Remove the whole region (strokes, shapes, example region); keep the image."""
        return ed.clear(value, source, self.editor_dir, "image")

    @friendly
    def ui_pick_reference(self, evt: gr.SelectData):
        """A shipped reference anomaly was clicked: load it with its marked region and text."""
        index = evt.index if isinstance(evt.index, int) else None
        if index is None or not 0 <= index < len(self.assets.references):
            raise InputError("That reference example is not available.")
        example = self.assets.references[index]
        image = load_image(example.path, what="reference example")
        mask = load_mask(example.mask_path, (image.shape[1], image.shape[0])) if example.mask_path else None
        value, source = ed.show(image, mask, self._editor_files_pruned(), str(example.path))
        defect = gr.update(value=example.defect_type) if example.defect_type else gr.update()
        return value, source, example.text, defect

    @friendly
    def ui_upload_reference(self, path: str | None):
        """Validate an uploaded reference anomaly and load it for marking."""
        if not path:
            raise InputError("No file was uploaded.")
        return ed.show(load_image(path, what="uploaded reference"), None, self._editor_files_pruned())

    @friendly
    def ui_add_reference_shape(self, value, source: ed.Source | None, shape: str, size: float, x: float, y: float):
        """Mark the reference anomaly's region with a quick shape."""
        return ed.bake(value, source, lambda dims: ed.shape_mask(dims, shape, size, x, y), self.editor_dir,
                       "reference image", NO_REFERENCE)

    def _optional_editor(self, value, source, what: str, missing: str):
        """(image, mask) of an editor that may be empty: (None, None) when it is."""
        if ed.matches(value, source) or ed.editor_background(value, what) is not None:
            return ed.image_and_mask(value, what, missing, source)
        return None, None

    @friendly
    def ui_preview_attention(self, normal_value, normal_source, reference_value, reference_source,
                             reference_text: str, prompt: str, asea_steps: float, engine: str,
                             progress=gr.Progress()):
        """Run CSM+ASEA on the reference and show one heat map per step."""
        reference, ref_mask = ed.image_and_mask(reference_value, "reference image", NO_REFERENCE, reference_source)
        image, mask = self._optional_editor(normal_value, normal_source, "normal image", NO_IMAGE)
        engine_obj, trace = self._explain(image, mask, reference, ref_mask, reference_text, prompt,
                                          asea_steps, engine, progress)
        items, note, _ = self._trace_outputs(engine_obj, trace, reference, ref_mask)
        return gr.update(value=items, visible=bool(items)), note

    @friendly
    def ui_generate(self, state, normal_value, normal_source, reference_value, reference_source, prompt: str,
                    reference_text: str, num: float, seed: float, randomise: bool, steps: float, strength: float,
                    guidance: float, sga_scale: float, asea_steps: float, engine: str, view: str,
                    progress=gr.Progress()):
        """Generate N candidates from the sketch, reference and description."""
        image, mask = ed.image_and_mask(normal_value, "normal image", NO_IMAGE, normal_source)
        if not mask.any():
            raise InputError("The defect region is empty: sketch it on the image with the brush or add a quick shape (step 2).")
        reference, ref_mask = self._optional_editor(reference_value, reference_source, "reference image",
                                                    NO_REFERENCE)
        if reference is not None and not ref_mask.any():
            gr.Warning("The reference anomaly is not marked; the whole reference image is used as the anomaly.")
            ref_mask = None
        params = params_dict({"steps": steps, "strength": strength, "guidance": guidance,
                              "sga_scale": sga_scale, "asea_steps": asea_steps})
        used_seed = resolve_seed(seed, bool(randomise))
        state = self._generate(state, image, mask, prompt, reference, ref_mask, reference_text,
                               _num(num), used_seed, params, engine, progress)
        engine_obj = self.ctx.engine(_text(engine))
        message = (f"{len(state['candidates'])} candidate(s) from **{engine_label(engine_obj)}**, "
                   f"seed {used_seed}. Click one to select it, then accept or reject it.")
        return (state, self.candidate_gallery(state, view), used_seed, None,
                "Click a candidate to select it.", message)

    @friendly
    def ui_view(self, state, view: str):
        """Switch the candidates between image, overlay and side-by-side."""
        return self.candidate_gallery(state, view)

    @friendly
    def ui_select_candidate(self, state, evt: gr.SelectData):
        """A candidate was clicked: remember which one."""
        visible = ss.visible_candidates(state)
        index = evt.index if isinstance(evt.index, int) else None
        if index is None or not 0 <= index < len(visible):
            return None, "Click a candidate to select it."
        record = visible[index]
        status = f" (already accepted as `{record['sample_id']}`)" if record["status"] == "accepted" else ""
        return record["index"], f"Selected candidate **#{record['index'] + 1}** (seed {record['seed']}){status}."

    def _need_selection(self, selected: Any) -> int:
        if selected is None or selected == "":
            raise InputError("Select a candidate first: click one in the candidates gallery (step 6).")
        return int(selected)

    @friendly
    def ui_accept(self, state, selected, defect_type: str, category: str, note: str, view: str, defect_filter: str):
        """Accept the selected candidate into the curated set."""
        index = self._need_selection(selected)
        sample_id, new = self._accept(state, index, defect_type, category, note)
        if not new:
            gr.Warning(f"Candidate #{index + 1} is already in the curated set as {sample_id}.")
        items, counts, ids = self.curated_view(_text(defect_filter))
        message = f"Accepted candidate **#{index + 1}** as `{sample_id}`."
        return (state, self.candidate_gallery(state, view), items, counts, ids, message,
                gr.update(choices=self.defect_types()))

    @friendly
    def ui_reject(self, state, selected, view: str):
        """Reject the selected candidate: it leaves the gallery."""
        index = self._need_selection(selected)
        _, state = self.api_reject(index, state)
        return state, self.candidate_gallery(state, view), None, f"Rejected candidate **#{index + 1}**."

    @friendly
    def ui_refresh_curated(self, defect_filter: str):
        """Reload the curated set (it is shared by everyone using this data folder)."""
        items, counts, ids = self.curated_view(_text(defect_filter))
        return items, counts, ids

    @friendly
    def ui_select_curated(self, ids: list[str], evt: gr.SelectData):
        """A curated sample was clicked: remember its id for removal."""
        index = evt.index if isinstance(evt.index, int) else None
        if index is None or not ids or not 0 <= index < len(ids):
            return None, "Click a curated sample to select it."
        return ids[index], f"Selected curated sample `{ids[index]}`."

    @friendly
    def ui_remove(self, sample_id: str | None, defect_filter: str):
        """Remove the selected curated sample."""
        if not sample_id:
            raise InputError("Select a curated sample first: click one in the curated set.")
        self.api_remove(sample_id)
        items, counts, ids = self.curated_view(_text(defect_filter))
        return items, counts, ids, None, f"Removed `{sample_id}` from the curated set."

    @friendly
    def ui_export(self, fmt: str, progress=gr.Progress()):
        """Export the curated set and offer the zip for download."""
        path = self._export(fmt, progress)
        total = self._stats().get("total", 0)
        return (gr.update(value=str(path), visible=True),
                f"Exported {total} sample(s) as **{fmt}**: `{path.name}`.")


def _num(value: Any) -> int:
    """Number of candidates: a whole number from 1 to 8 (the page's and the API's limit)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"The number of candidates must be a whole number from 1 to 8, got {value!r}.") from None
    if not np.isfinite(number) or number != int(number) or not 1 <= number <= 8:
        raise InputError(f"The number of candidates must be a whole number from 1 to 8, got {value!r}.")
    return int(number)
