"""The reference panel (② Reference): shipped reference anomalies, an upload, the reference's region
editor and text, and the attention preview (CSM + ASEA) of the engine that can explain.

A reference is used only when chosen for this photo: picking one sets its text and mask (and the defect
type it shows), uploading one clears both.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr
import numpy as np

from studio.errors import InputError
from studio.imaging import load_image, load_mask
from studio.types import AttentionTrace
from studio.ui.events import MODEL_CONCURRENCY, QUIET, UI
from studio.ui.assets import ReferenceExample
from studio.ui.inputs import as_text
from studio.ui.service import NO_REFERENCE, StudioService
from studio.ui.widgets import editor as ed
from studio.ui.widgets.feedback import keeps_work, progress_fn
from studio.ui.widgets.region_editor import NO_IMAGE, RegionEditor
from studio.ui.widgets.selection import clicked
from studio.ui.widgets.views import percent

if TYPE_CHECKING:
    from studio.ui.panels.advanced import AdvancedPanel
    from studio.ui.panels.inputs import InputsPanel


def attention_note(label: str, trace: AttentionTrace) -> str:
    """The markdown under the attention gallery: per-step shares, or why there are no maps."""
    if trace.skipped:
        return f"**No attention maps.** {trace.skipped}" + (f"  \n{trace.note}" if trace.note else "")
    notes = [f"ASEA on **{label}**: share of the attention inside the marked region, per step: "
             + " → ".join(percent(f) for f in trace.inmask_fractions) + "."]
    if trace.note:
        notes.append(trace.note)
    return "  \n".join(notes)


class ReferencePanel:
    """② Reference."""

    def __init__(self, service: StudioService) -> None:
        self.service = service
        # (``reference-clear`` is the × beside Generate that removes the whole reference)
        self.editor = RegionEditor("reference", lambda: service.scratch("editors"), NO_REFERENCE,
                                   clear_id="reference-region-clear")

    # ------------------------------------------------------------------ blocks
    def render(self, first: tuple[dict | None, ed.Source | None], text: str) -> None:
        with gr.Tab("② Reference", elem_id="reference-tab"):
            self.examples = gr.Gallery(
                value=[(str(r.path), r.text or r.name) for r in self.service.assets.references] or None,
                label="Reference anomalies", columns=5, height=110, allow_preview=False, object_fit="cover",
                fit_columns=False, elem_id="reference-examples")
            self.upload = gr.UploadButton("Upload a reference anomaly", file_types=["image"], type="filepath",
                                          size="sm", elem_id="upload-reference")
            self.editor.render("Reference anomaly: mark the anomalous region", "reference-editor", first, 300)
            self.text = gr.Textbox(value=text, label="Reference text", max_lines=2,
                                   placeholder="e.g. a red contamination stain", elem_id="reference-text")
            self.preview_btn = gr.Button("Preview attention (ASEA)", size="sm", elem_id="preview-attention")
            self.attention_hint = gr.Markdown("", elem_classes=["hint"], elem_id="attention-hint")
            self.attention = gr.Gallery(label="Attention per ASEA step: % inside the marked region", columns=3,
                                        height=260, object_fit="contain", visible=False, fit_columns=False,
                                        elem_id="attention-gallery")
            self.attention_note = gr.Markdown("", elem_id="attention-note")

    # ------------------------------------------------------------------ events
    def wire(self, inputs: InputsPanel, advanced: AdvancedPanel, message: gr.Markdown,
             defect_type: gr.Dropdown) -> None:
        self.advanced = advanced
        self.editor.wire(message)
        self.examples.select(self.pick_reference, None, [*self.editor.pair, self.text, defect_type, message],
                             api_name="ui_pick_reference", **QUIET)
        self.upload.upload(self.upload_reference, self.upload, [*self.editor.pair, self.text, message],
                           api_name="ui_upload_reference", **QUIET)
        self.preview_btn.click(self.preview_attention,
                               [*inputs.normal.pair, *self.editor.pair, self.text, inputs.prompt, *advanced.inputs],
                               [self.attention, self.attention_note, message], api_name="ui_preview_attention",
                               show_progress_on=self.attention_note, **UI, **MODEL_CONCURRENCY)

    # ------------------------------------------------------------------ callbacks
    def show_example(self, example: ReferenceExample) -> tuple[dict, ed.Source]:
        """The editor value and source of a shipped reference anomaly (its mask marked)."""
        image = load_image(example.path, what="reference example")
        mask = load_mask(example.mask_path, (image.shape[1], image.shape[0])) if example.mask_path else None
        return self.editor.show(image, mask, str(example.path))

    def marked(self, value: Any, source: ed.Source | None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(reference, its mask) of the editor, or (None, None) when no reference is chosen."""
        if ed.matches(value, source) or ed.editor_background(value, "reference image") is not None:
            return ed.image_and_mask(value, "reference image", NO_REFERENCE, source)
        return None, None

    @keeps_work(5)
    def pick_reference(self, evt: gr.SelectData) -> tuple[Any, ...]:
        """A shipped reference anomaly was clicked: its marked region and text replace the old ones.
        Returns (editor, source, reference text, defect type, message)."""
        index = clicked(evt, len(self.service.assets.references))
        if index is None:
            raise InputError("That reference example is not available.")
        example = self.service.assets.references[index]
        value, source = self.show_example(example)
        defect = gr.update(value=example.defect_type) if example.defect_type else gr.update()
        return value, source, example.text, defect, (f"Reference **{example.name}** loaded with its text and mask; "
                                                     "an open queue keeps its labels.")

    @keeps_work(4)
    def upload_reference(self, path: str | None) -> tuple[Any, ...]:
        """An uploaded reference anomaly: no mask and no text yet. Returns (editor, source, text, message)."""
        if not path:
            raise InputError("No file was uploaded.")
        value, source = self.editor.show(load_image(path, what="uploaded reference"))
        return value, source, "", "Reference loaded: mark its anomaly with the brush and describe it."

    @keeps_work(3)
    def preview_attention(self, normal_value: Any, normal_source: ed.Source | None, reference_value: Any,
                          reference_source: ed.Source | None, reference_text: str, prompt: str, engine: str,
                          progress: Any = gr.Progress(), *params: Any) -> tuple[Any, ...]:
        """Run CSM+ASEA on the reference with the Advanced controls' values (``params``) and show one heat map
        per step. Returns (gallery, note, message)."""
        reference, ref_mask = ed.image_and_mask(reference_value, "reference image", NO_REFERENCE, reference_source)
        image, mask = (None, None)
        if ed.matches(normal_value, normal_source) or ed.editor_background(normal_value, "normal image") is not None:
            image, mask = ed.image_and_mask(normal_value, "normal image", NO_IMAGE, normal_source)
        explainer = self.service.explainer(as_text(engine))
        trace = self.service.explain(image, mask, reference, ref_mask, reference_text, prompt,
                                     self.advanced.values(explainer, params), explainer, progress_fn(progress))
        items = self.service.attention_maps(trace, reference, ref_mask)
        return gr.update(value=items, visible=bool(items)), attention_note(explainer.label, trace), ""
