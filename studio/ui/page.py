"""The page's input side: examples, images and regions, the attention preview, generate and
opening batch review jobs (the ``ui_*`` callbacks; wired in :mod:`studio.ui.layout`).

No label ever carries over silently: picking an example or uploading an image sets category,
description and region from it (or empties them), and picking or uploading a reference sets
its text and mask. Every callback keeps the page's work on failure (:func:`keeps_work`).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from studio.errors import InputError, StudioError
from studio.imaging import load_image, load_mask
from studio.naming import safe_name
from studio.requests import build_request
from studio.types import PARAMETERS, AttentionTrace
from studio.ui import editor as ed
from studio.ui import session as ss
from studio.ui.actions import NO_REFERENCE, Actions
from studio.ui.assets import COMMON_DEFECTS, ReferenceExample
from studio.ui.feedback import keeps_work
from studio.ui.inputs import as_text, candidate_count, params_dict, resolve_seed
from studio.ui.views import percent

log = logging.getLogger(__name__)

NO_IMAGE = "Pick an example or upload a normal image first (① Image)."
EditorPair = tuple[dict[str, Any] | None, ed.Source | None]


def clicked(evt: gr.SelectData, count: int) -> int | None:
    """The index of the clicked gallery item when it is one of ``count`` shown, else None."""
    index = evt.index if isinstance(evt.index, int) else None
    return index if index is not None and 0 <= index < count else None


class PageCallbacks(Actions):
    """The input side of the page."""

    @property
    def editor_dir(self) -> Path:
        """Where clean editor images and preset masks are kept (pruned after a session's life)."""
        return self.ctx.temp_root / "editors"

    def _editor_files_pruned(self) -> Path:
        self.ctx.prune("editors", ss.SESSION_TTL_S)
        return self.editor_dir

    def defect_types(self) -> list[str]:
        """The defect types ``1``–``9`` pick from: common ones, the examples' and those in use, sorted."""
        known = set(COMMON_DEFECTS)
        known |= {r.defect_type for r in self.assets.references if r.defect_type}
        known |= {k for k in (self._stats().get("by_defect_type") or {}) if k}
        return sorted(known)

    def engine_parameters(self, engine: Any) -> list[str]:
        """Names of the parameters the engine chosen in Advanced uses (what Advanced shows)."""
        return [p.name for p in self.ctx.engine(as_text(engine)).parameters()]

    def can_explain(self, engine: Any) -> bool:
        """Whether the attention preview can run for the engine chosen in Advanced."""
        return self.ctx.attention_engine(as_text(engine)) is not None

    # ------------------------------------------------------------------ page load, status, engine
    def ui_status(self, shown: str = "") -> Any:
        """The status line (a timer refreshes it: a default engine swapped in a running studio shows up);
        unchanged when it says what the page already shows."""
        text = self.ctx.status_markdown()
        return gr.skip() if text == shown else text

    def ui_engine(self, engine: str) -> tuple[Any, ...]:
        """Advanced lists exactly the chosen engine's parameters; the attention preview is offered
        only where an engine can explain, else one line says how to get one."""
        used = set(self.engine_parameters(engine))
        explains = self.can_explain(engine)
        sliders = [gr.update(visible=name in used) for name in PARAMETERS]
        hint = "" if explains else f"Attention preview: not available with the loaded engine. {self.ctx.explain_hint()}"
        label = self.ctx.engine(as_text(engine)).label
        listed = f"Parameters of **{label}**:" if used else f"**{label}** has no tunable parameters."
        return (*sliders, gr.update(visible=explains), hint, listed)

    def ui_load(self, engine: str) -> tuple[Any, ...]:
        """Page load: status line, engine choices, the defect types (the list the number keys pick
        from, with the line that shows it: both change together, only here) and what Advanced shows."""
        choices = [(f"default: {self.ctx.engine(None).label}", ""),
                   *((label, name) for label, name in self.ctx.engine_choices()[1:])]
        current = engine if engine in {value for _, value in choices} else ""
        types = self.defect_types()
        return (self.ctx.status_markdown(), gr.update(choices=choices, value=current), gr.update(choices=types),
                types, self.type_keys_markdown(types), *self.ui_engine(current))

    @staticmethod
    def type_keys_markdown(types: list[str]) -> str:
        """``1 crack · 2 dent · …``: the defect types the number keys pick."""
        return "Keys: " + " · ".join(f"**{k}** {name}" for k, name in enumerate(types[:9], 1))

    # ------------------------------------------------------------------ ① image, ② reference
    def example_items(self) -> list[tuple[str, str]]:
        """The examples row: each sample's picture, captioned ``name · defect type``."""
        return [(str(e.normal.path), f"{e.normal.name.replace('_', ' ')} · {e.defect_type}")
                for e in self.assets.examples()]

    def _show_example(self, index: int) -> tuple[EditorPair, EditorPair, str, str, str, str]:
        """(normal editor, reference editor, category, prompt, reference text, defect type) of example ``index``."""
        example = self.assets.examples()[index]
        sample = example.normal
        image = load_image(sample.path, what="sample image")
        region = load_mask(sample.mask_path, (image.shape[1], image.shape[0])) if sample.mask_path else None
        normal = ed.show(image, region, self._editor_files_pruned(), str(sample.path))
        reference: EditorPair = (None, None)
        text = ""
        if example.reference is not None:
            reference, text = self._reference_editor(example.reference), example.reference.text
        return normal, reference, sample.category or sample.name, sample.prompt, text, example.defect_type

    def _reference_editor(self, example: ReferenceExample) -> EditorPair:
        image = load_image(example.path, what="reference example")
        mask = load_mask(example.mask_path, (image.shape[1], image.shape[0])) if example.mask_path else None
        return ed.show(image, mask, self._editor_files_pruned(), str(example.path))

    def initial_example(self) -> tuple[EditorPair, EditorPair, str, str, str, str]:
        """The first example, preloaded so the page starts ready to generate (empty when unreadable)."""
        if self.assets.examples():
            try:
                return self._show_example(0)
            except StudioError:
                log.warning("the first shipped example is unreadable")
        return (None, None), (None, None), "", "", "", ""

    def pick_example(self, evt: gr.SelectData) -> tuple[Any, ...]:
        """An example was clicked: it fills image, region, reference, its mask, both texts, category
        and defect type at once. Returns those (editor values with their sources), the sample index, message."""
        index = clicked(evt, len(self.assets.examples()))
        if index is None:
            raise InputError("That example is not available.")
        (value, source), (ref_value, ref_source), category, prompt, text, defect = self._show_example(index)
        name = self.assets.examples()[index].normal.name
        return (value, source, ref_value, ref_source, category, prompt, text, gr.update(value=defect or None),
                index, f"Example **{name}** loaded: every input and label below comes from it.")

    def upload_normal(self, path: str | None) -> tuple[Any, ...]:
        """An uploaded normal image: category from its file name (editable), no description, no
        region, no defect type, no example highlighted. Returns (editor, source, category, prompt,
        defect type, sample, examples, message)."""
        if not path:
            raise InputError("No file was uploaded.")
        image = load_image(path, what="uploaded image")
        value, source = ed.show(image, None, self._editor_files_pruned())
        category = safe_name(Path(path).stem.lower().replace(" ", "_"), default="")
        message = (f"Loaded **{Path(path).name}**: category set to `{category or '?'}` from the file name (edit it "
                   "if wrong); description and defect type were cleared. Sketch the defect region next.")
        return value, source, category, "", gr.update(value=None), None, gr.update(selected_index=None), message

    @keeps_work(3)
    def ui_add_suggested(self, value, source: ed.Source | None, picked: int | None):
        """Add the picked example's suggested defect region to the sketch."""
        examples = self.assets.examples()
        if picked is None or not 0 <= int(picked) < len(examples):
            raise InputError("Suggested regions come with the examples: click one first.")
        sample = examples[int(picked)].normal
        if sample.mask_path is None:
            raise InputError(f"The sample {sample.name} has no suggested region; sketch one with the brush.")
        return (*ed.bake(value, source, lambda size: load_mask(sample.mask_path, size), self.editor_dir,
                         "normal image", NO_IMAGE), "")

    @keeps_work(3)
    def ui_add_shape(self, value, source: ed.Source | None, shape: str, size: float, x: float, y: float):
        """Add a quick shape (ellipse, line, box) to an editor's region."""
        return (*ed.bake(value, source, lambda dims: ed.shape_mask(dims, shape, size, x, y), self.editor_dir,
                         "image", NO_IMAGE), "")

    @keeps_work(3)
    def ui_clear_region(self, value, source: ed.Source | None):
        """Remove the whole region (strokes, shapes, example region); keep the image."""
        return (*ed.clear(value, source, self.editor_dir, "image"), "Region cleared; the image is kept.")

    @keeps_work(3)
    def ui_restore_image(self, source: ed.Source | None):
        """The editor's own trash icon emptied the canvas: bring the photo and the region the server marked
        back (only brush strokes go; the region is cleared with Clear region). Returns (editor, source, message)."""
        if not ed.has_image(source):
            return gr.skip(), gr.skip(), ""
        image = load_image(source["image"], what="image")
        preset = load_mask(source["preset"], (image.shape[1], image.shape[0])) if source.get("preset") else None
        value, restored = ed.show(image, preset, self.editor_dir, source["image"])
        return value, restored, "The photo stays in the editor (the trash icon removes brush strokes only); " \
                                "use **Clear region** to remove the whole region."

    @keeps_work(5)
    def ui_pick_reference(self, evt: gr.SelectData):
        """A shipped reference anomaly was clicked: its marked region and text replace the old ones.
        Returns (editor, source, reference text, defect type, message)."""
        index = clicked(evt, len(self.assets.references))
        if index is None:
            raise InputError("That reference example is not available.")
        example = self.assets.references[index]
        value, source = self._reference_editor(example)
        defect = gr.update(value=example.defect_type) if example.defect_type else gr.update()
        return value, source, example.text, defect, f"Reference **{example.name}** loaded with its text and mask."

    @keeps_work(4)
    def ui_upload_reference(self, path: str | None):
        """An uploaded reference anomaly: no mask and no text yet. Returns (editor, source, text, message)."""
        if not path:
            raise InputError("No file was uploaded.")
        value, source = ed.show(load_image(path, what="uploaded reference"), None, self._editor_files_pruned())
        return value, source, "", "Reference loaded: mark its anomaly with the brush and describe it."

    def _optional_editor(self, value, source, what: str, missing: str) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(image, mask) of an editor that may be empty: (None, None) when it is."""
        if ed.matches(value, source) or ed.editor_background(value, what) is not None:
            return ed.image_and_mask(value, what, missing, source)
        return None, None

    # ------------------------------------------------------------------ attention preview and generate
    @keeps_work(3)
    def ui_preview_attention(self, normal_value, normal_source, reference_value, reference_source,
                             reference_text: str, prompt: str, asea_steps: float, engine: str,
                             progress=gr.Progress()):
        """Run CSM+ASEA on the reference and show one heat map per step. Returns (gallery, note, message)."""
        reference, ref_mask = ed.image_and_mask(reference_value, "reference image", NO_REFERENCE, reference_source)
        image, mask = self._optional_editor(normal_value, normal_source, "normal image", NO_IMAGE)
        engine_obj, trace = self._explain(image, mask, reference, ref_mask, reference_text, prompt,
                                          asea_steps, engine, progress)
        items = self._attention_maps(trace, reference, ref_mask)
        return gr.update(value=items, visible=bool(items)), self._attention_note(engine_obj.label, trace), ""

    @staticmethod
    def _attention_note(label: str, trace: AttentionTrace) -> str:
        """The markdown under the attention gallery: per-step shares, or why there are no maps."""
        if trace.skipped:
            return f"**No attention maps.** {trace.skipped}" + (f"  \n{trace.note}" if trace.note else "")
        notes = [f"ASEA on **{label}**: share of the attention inside the marked region, per step: "
                 + " → ".join(percent(f) for f in trace.inmask_fractions) + "."]
        if trace.note:
            notes.append(trace.note)
        return "  \n".join(notes)

    def _generate_page(self, state, normal_value, normal_source, reference_value, reference_source, prompt,
                       reference_text, num, seed, randomise, params: dict[str, Any], engine,
                       progress) -> tuple[ss.Session, int]:
        """Read the editors and settings, generate; returns (session, seed used)."""
        image, mask = ed.image_and_mask(normal_value, "normal image", NO_IMAGE, normal_source)
        if not mask.any():
            raise InputError("The defect region is empty: sketch it on the image with the brush "
                             "or add a quick shape (① Image).")
        reference, ref_mask = self._optional_editor(reference_value, reference_source, "reference image",
                                                    NO_REFERENCE)
        if reference is not None and not ref_mask.any():
            gr.Warning("The reference anomaly is not marked; the whole reference image is used as the anomaly.")
        used_seed = resolve_seed(seed, bool(randomise))
        request = build_request(image, mask, reference=reference, reference_mask=ref_mask, prompt=as_text(prompt),
                                reference_text=as_text(reference_text), num=candidate_count(num), seed=used_seed,
                                params=params_dict(params), empty_reference_mask_is_none=True)
        return self._generate(state, request, engine, progress), used_seed

    # ------------------------------------------------------------------ batch review jobs
    @keeps_work(2)
    def ui_review_jobs(self, current: str | None = None):
        """The batch review jobs of the data folder as dropdown choices (keeping the chosen one)."""
        jobs = self._review_jobs()
        choices = [(f"{j.job_id[:8]}… · {j.candidates} candidate(s) · {j.prompt[:48] or 'no prompt'}", j.job_id)
                   for j in jobs]
        ids = [j.job_id for j in jobs]
        value = current if current in ids else (ids[0] if ids else None)
        return gr.update(choices=choices, value=value, label=f"Batch review jobs ({len(jobs)})"), ""
