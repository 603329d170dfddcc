"""What the page's widgets call: the ``ui_*`` callbacks (editor values, gallery clicks, markdown).

Wired in :func:`studio.ui.layout.build_demo`; these endpoints are callable but undocumented.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from studio.errors import InputError, StudioError
from studio.imaging import load_image, load_mask
from studio.types import AttentionTrace
from studio.ui import editor as ed
from studio.ui import session as ss
from studio.ui.actions import NO_REFERENCE, Actions
from studio.ui.context import engine_label
from studio.ui.feedback import friendly
from studio.ui.inputs import as_text, candidate_count, params_dict, resolve_seed
from studio.ui.views import GalleryItem, candidate_gallery, percent, thumbnail_file

log = logging.getLogger(__name__)

#: How many curated samples the page shows (newest first); counts always cover all.
CURATED_SHOWN = 48
#: Defect types offered in the dropdown before any are in use.
COMMON_DEFECTS = frozenset({"scratch", "crack", "hole", "stain", "contamination", "dent"})

NO_IMAGE = "Pick a sample or upload a normal image first (step 1)."


def clicked(evt: gr.SelectData, count: int) -> int | None:
    """The index of the clicked gallery item when it is one of ``count`` shown, else None."""
    index = evt.index if isinstance(evt.index, int) else None
    return index if index is not None and 0 <= index < count else None


class PageCallbacks(Actions):
    """The page's ``ui_*`` callbacks and the views they fill."""

    # ------------------------------------------------------------------ steps 1-3: images and regions
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
        index = clicked(evt, len(self.assets.normals))
        if index is None:
            raise InputError("That sample is not available.")
        sample = self.assets.normals[index]
        image = load_image(sample.path, what="sample image")
        value, source = ed.show(image, None, self._editor_files_pruned(), str(sample.path))
        suggested = gr.update(value=sample.prompt) if sample.prompt and not as_text(prompt).strip() else gr.update()
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
        index = clicked(evt, len(self.assets.references))
        if index is None:
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

    def _optional_editor(self, value, source, what: str, missing: str) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(image, mask) of an editor that may be empty: (None, None) when it is."""
        if ed.matches(value, source) or ed.editor_background(value, what) is not None:
            return ed.image_and_mask(value, what, missing, source)
        return None, None

    # ------------------------------------------------------------------ steps 5-6: preview and generate
    @friendly
    def ui_preview_attention(self, normal_value, normal_source, reference_value, reference_source,
                             reference_text: str, prompt: str, asea_steps: float, engine: str,
                             progress=gr.Progress()):
        """Run CSM+ASEA on the reference and show one heat map per step."""
        reference, ref_mask = ed.image_and_mask(reference_value, "reference image", NO_REFERENCE, reference_source)
        image, mask = self._optional_editor(normal_value, normal_source, "normal image", NO_IMAGE)
        engine_obj, trace = self._explain(image, mask, reference, ref_mask, reference_text, prompt,
                                          asea_steps, engine, progress)
        items = self._attention_maps(trace, reference, ref_mask)
        return gr.update(value=items, visible=bool(items)), self._attention_note(engine_obj, trace)

    @staticmethod
    def _attention_note(engine: Any, trace: AttentionTrace) -> str:
        """The markdown under the attention gallery: per-step shares, or why there are no maps."""
        if trace.skipped:
            return f"**No attention maps.** {trace.skipped}" + (f"  \n{trace.note}" if trace.note else "")
        notes = [f"ASEA on **{engine_label(engine)}**: share of the attention inside the marked region, per step: "
                 + " → ".join(percent(f) for f in trace.inmask_fractions) + "."]
        if trace.note:
            notes.append(trace.note)
        elif engine.profile == "tiny":
            notes.append("The loaded CSM model is the tiny random one: the maps show the mechanism only, "
                         "not real semantics.")
        return "  \n".join(notes)

    @friendly
    def ui_generate(self, state, normal_value, normal_source, reference_value, reference_source, prompt: str,
                    reference_text: str, num: float, seed: float, randomise: bool, steps: float, strength: float,
                    guidance: float, sga_scale: float, asea_steps: float, engine: str, view: str,
                    progress=gr.Progress()):
        """Generate N candidates from the sketch, reference and description."""
        image, mask = ed.image_and_mask(normal_value, "normal image", NO_IMAGE, normal_source)
        if not mask.any():
            raise InputError("The defect region is empty: sketch it on the image with the brush "
                             "or add a quick shape (step 2).")
        reference, ref_mask = self._optional_editor(reference_value, reference_source, "reference image",
                                                    NO_REFERENCE)
        if reference is not None and not ref_mask.any():
            gr.Warning("The reference anomaly is not marked; the whole reference image is used as the anomaly.")
            ref_mask = None
        params = params_dict({"steps": steps, "strength": strength, "guidance": guidance,
                              "sga_scale": sga_scale, "asea_steps": asea_steps})
        used_seed = resolve_seed(seed, bool(randomise))
        state = self._generate(state, image, mask, prompt, reference, ref_mask, reference_text,
                               candidate_count(num), used_seed, params, engine, progress)
        engine_obj = self.ctx.engine(as_text(engine))
        message = (f"{len(state['candidates'])} candidate(s) from **{engine_label(engine_obj)}**, "
                   f"seed {used_seed}. Click one to select it, then accept or reject it.")
        return (state, candidate_gallery(state, view), used_seed, None,
                "Click a candidate to select it.", message)

    @friendly
    def ui_view(self, state, view: str):
        """Switch the candidates between image, overlay and side-by-side."""
        return candidate_gallery(state, view)

    @friendly
    def ui_select_candidate(self, state, evt: gr.SelectData):
        """A candidate was clicked: remember which one."""
        visible = ss.visible_candidates(state)
        index = clicked(evt, len(visible))
        if index is None:
            return None, "Click a candidate to select it."
        record = visible[index]
        status = f" (already accepted as `{record['sample_id']}`)" if record["status"] == "accepted" else ""
        return record["index"], f"Selected candidate **#{record['index'] + 1}** (seed {record['seed']}){status}."

    # ------------------------------------------------------------------ step 7: batch review jobs
    @friendly
    def ui_review_jobs(self, current: str | None = None):
        """The batch review jobs of the data folder as dropdown choices (keeping the chosen one)."""
        jobs = self._review_jobs()
        choices = [(f"{j['job_id'][:8]}… · {j['candidates']} candidate(s) · {j['prompt'][:48] or 'no prompt'}",
                    j["job_id"]) for j in jobs]
        ids = [j["job_id"] for j in jobs]
        value = current if current in ids else (ids[0] if ids else None)
        return gr.update(choices=choices, value=value, label=f"Batch review jobs ({len(jobs)})")

    @friendly
    def ui_open_review(self, state, job_id: str | None, view: str):
        """Load a batch review job's candidates into the gallery, its labels into the curate fields.
        Returns (session, candidates, selected, selection, message, defect type, category)."""
        state, job = self._open_review(state, job_id)
        message = (f"{len(job.candidates)} candidate(s) of batch review job `{job.job_id}` "
                   f"({as_text(job.info.get('prompt')) or 'no prompt'}). Select one, then accept or reject it.")
        return (state, candidate_gallery(state, view), None, "Click a candidate to select it.", message,
                gr.update(value=job.defect_type or None), job.category)

    # ------------------------------------------------------------------ steps 7-8: curate and export
    @staticmethod
    def _need_selection(selected: Any) -> int:
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
        items, counts, ids = self.curated_view(as_text(defect_filter))
        message = f"Accepted candidate **#{index + 1}** as `{sample_id}`."
        return (state, candidate_gallery(state, view), items, counts, ids, message,
                gr.update(choices=self.defect_types()))

    @friendly
    def ui_reject(self, state, selected, view: str):
        """Reject the selected candidate: it leaves the gallery."""
        index = self._need_selection(selected)
        self._reject(state, index)
        return state, candidate_gallery(state, view), None, f"Rejected candidate **#{index + 1}**."

    @friendly
    def ui_refresh_curated(self, defect_filter: str):
        """Reload the curated set (it is shared by everyone using this data folder)."""
        items, counts, ids = self.curated_view(as_text(defect_filter))
        return items, counts, ids

    @friendly
    def ui_select_curated(self, ids: list[str], evt: gr.SelectData):
        """A curated sample was clicked: remember its id for removal."""
        index = clicked(evt, len(ids or []))
        if index is None:
            return None, "Click a curated sample to select it."
        return ids[index], f"Selected curated sample `{ids[index]}`."

    @friendly
    def ui_remove(self, sample_id: str | None, defect_filter: str):
        """Remove the selected curated sample."""
        if not sample_id:
            raise InputError("Select a curated sample first: click one in the curated set.")
        self._remove(sample_id)
        items, counts, ids = self.curated_view(as_text(defect_filter))
        return items, counts, ids, None, f"Removed `{sample_id}` from the curated set."

    @friendly
    def ui_export(self, fmt: str, progress=gr.Progress()):
        """Export the curated set and offer the zip for download."""
        path = self._export(fmt, progress)
        total = self._stats().get("total", 0)
        return (gr.update(value=str(path), visible=True),
                f"Exported {total} sample(s) as **{fmt}**: `{path.name}`.")

    # ------------------------------------------------------------------ the curated set as shown
    def curated_view(self, defect_filter: str = "") -> tuple[list[GalleryItem], str, list[str]]:
        """(gallery items, counts markdown, ids in gallery order) of the curated set, newest first."""
        self.ctx.prune("thumbs", ss.SESSION_TTL_S)
        records = sorted(self._records(defect_filter), key=lambda r: str(r.accepted_at), reverse=True)
        items, ids = [], []
        for rec in records[:CURATED_SHOWN]:
            try:
                thumb = thumbnail_file(rec, self.ctx.temp_root / "thumbs")
            except (StudioError, OSError):
                log.warning("curated sample %s has unreadable files", rec.id)
                continue
            items.append((thumb, f"{rec.defect_type or 'unlabelled'} · {rec.id}"))
            ids.append(str(rec.id))
        return items, self.counts_markdown(len(records), defect_filter), ids

    def counts_markdown(self, shown_total: int | None = None, defect_filter: str = "") -> str:
        """Samples per defect type (and category) as a markdown table, headed by how many are shown."""
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
        """The defect-type dropdown's choices: common ones, the examples' and those in use."""
        known = set(COMMON_DEFECTS)
        known |= {r.defect_type for r in self.assets.references if r.defect_type}
        known |= {k for k in (self._stats().get("by_defect_type") or {}) if k}
        return sorted(known)
