"""The inputs panel: ① the normal image and its defect region (examples, upload, the region editor),
③ the target description, the number of candidates and Generate.

No label ever carries over silently: picking an example or uploading an image sets category, description
and region from it (or empties them) and closes the old review queue. Generate resolves the chosen
engine once, takes exactly its parameters from the Advanced panel and fills the review queue.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from studio.errors import InputError, StudioError
from studio.imaging import load_image, load_mask
from studio.naming import safe_name
from studio.requests import build_request
from studio.ui import review_queue as queue
from studio.ui import session as ss
from studio.ui.events import MODEL_CONCURRENCY, QUICK, QUIET, REVIEW, UI
from studio.review.labels import typed_labels
from studio.ui.review_queue import BUNDLE
from studio.ui.inputs import as_text, candidate_count, resolve_seed
from studio.ui.service import StudioService
from studio.ui.widgets import editor as ed
from studio.ui.widgets.feedback import keeps_work, progress_fn
from studio.ui.widgets.region_editor import NO_IMAGE, RegionEditor
from studio.ui.widgets.selection import clicked
from studio.ui.widgets.views import marked_thumbnail

if TYPE_CHECKING:
    from studio.ui.panels.advanced import AdvancedPanel
    from studio.ui.panels.reference import ReferencePanel
    from studio.ui.panels.review import ReviewPanel

log = logging.getLogger(__name__)

#: The gallery keeps its last click highlighted through any update: an upload clears that in the browser.
#: Side (px) of the reference's thumbnail beside Generate.
REFERENCE_THUMB = 44
UNHIGHLIGHT_EXAMPLES = ("() => document.querySelectorAll('#examples .thumbnail-item.selected')"
                        ".forEach((t) => t.classList.remove('selected'))")
EditorPair = tuple[dict[str, Any] | None, ed.Source | None]
#: What an example fills: (normal editor, reference editor, category, prompt, reference text, defect type).
Filled = tuple[EditorPair, EditorPair, str, str, str, str]


def reference_line(source: ed.Source | None) -> str:
    """The line beside Generate: which reference anomaly it uses, or none."""
    if not ed.has_image(source):
        return "**No reference**: Generate uses the description only."
    return f"**Reference:** `{Path(str(source['image'])).stem}` (used by Generate; × removes it)"


def reference_shown(source: ed.Source | None) -> tuple[str, Any]:
    """(line, thumbnail) beside Generate: the reference in use, its marked region outlined, or none (hidden)."""
    if not ed.has_image(source):
        return reference_line(source), gr.update(value=None, visible=False)
    thumb = marked_thumbnail(str(source["image"]), source.get("preset"), REFERENCE_THUMB)
    return reference_line(source), gr.update(value=thumb, visible=True)


class InputsPanel:
    """The left side of the workstation (with the reference and Advanced tabs beside ① Image)."""

    def __init__(self, service: StudioService, reference: ReferencePanel, advanced: AdvancedPanel,
                 review: ReviewPanel) -> None:
        self.service, self.reference, self.advanced, self.review = service, reference, advanced, review
        self.normal = RegionEditor("defect", lambda: service.scratch("editors"))

    # ------------------------------------------------------------------ blocks
    def render_image_tab(self, first: EditorPair) -> None:
        """① Image & region."""
        with gr.Tab("① Image & region", elem_id="image-tab"):  # (a State outside a Tab would shift the tab buttons)
            self.picked = gr.State(0 if first[0] is not None else None)
            self.examples = gr.Gallery(value=self.example_items() or None,
                                       label="Examples: one click fills every input and label", columns=5,
                                       height=112, allow_preview=False, object_fit="cover", fit_columns=False,
                                       elem_id="examples")
            self.upload = gr.UploadButton("Upload your own normal image", file_types=["image"], type="filepath",
                                          size="sm", elem_id="upload-normal")
            self.normal.render("Defect region: paint it with the brush", "defect-editor", first, 290, suggested=True)

    def render_generate_row(self, prompt: str, reference_source: ed.Source | None) -> None:
        """③ the description, the number of candidates and Generate."""
        with gr.Row(equal_height=True):
            self.prompt = gr.Textbox(value=prompt, label="③ Target description", lines=1, max_lines=2,
                                     placeholder="e.g. a thin scratch on brushed metal", scale=4, elem_id="prompt")
            self.num = gr.Number(value=4, precision=0, minimum=1, maximum=8, label="candidates", scale=1,
                                 min_width=80, elem_id="num")
            self.generate_btn = gr.Button("Generate", variant="primary", scale=2, min_width=100,
                                          elem_id="generate-btn")
        with gr.Row(equal_height=True, elem_id="reference-row"):
            line, thumb = reference_shown(reference_source)
            self.reference_thumb = gr.Image(thumb["value"], type="numpy", show_label=False, container=False,
                                            interactive=False, buttons=[], height=REFERENCE_THUMB,
                                            width=REFERENCE_THUMB, scale=0, min_width=REFERENCE_THUMB,
                                            visible=thumb["visible"],
                                            elem_id="reference-thumb")
            self.reference_status = gr.Markdown(line, elem_id="reference-status")
            self.reference_clear = gr.Button("× no reference", size="sm", scale=0, min_width=120,
                                             elem_id="reference-clear")

    # ------------------------------------------------------------------ events
    def wire(self) -> None:
        review, reference, message = self.review, self.reference, self.review.message
        self.normal.wire(message)
        self.examples.select(self.pick_example, [review.session, review.view],
                             [*review.bundle, *self.normal.pair, *reference.editor.pair, review.category,
                              self.prompt, reference.text, review.defect_type, self.picked, review.note, message],
                             api_name="ui_pick_example", **REVIEW).then(*review.will_store_event, **QUICK)
        self.upload.upload(self.upload_normal, [self.upload, review.session, review.view, review.keep_labels],
                           [*review.bundle, *self.normal.pair, review.category, self.prompt, review.defect_type,
                            self.picked, self.examples, *reference.editor.pair, reference.text, review.note, message],
                           api_name="ui_upload_normal", **REVIEW).then(*review.will_store_event, **QUICK)
        reference.editor.source.change(reference_shown, reference.editor.source,
                                       [self.reference_status, self.reference_thumb], **QUIET)
        self.reference_clear.click(lambda: (None, None, "", "No reference: Generate uses the description only."),
                                   None, [*reference.editor.pair, reference.text, message],
                                   api_name="ui_clear_reference", **QUIET)
        self.upload.upload(None, None, None, js=UNHIGHLIGHT_EXAMPLES, **QUIET)  # your own image: no example
        self.normal.suggested.click(self.add_suggested, [*self.normal.pair, self.picked], [*self.normal.pair, message],
                                    api_name="ui_add_suggested", **QUIET)
        self.generate_btn.click(self.generate, self.generate_inputs, [*review.bundle, self.advanced.seed, message],
                                api_name="ui_generate", show_progress_on=[review.viewer], **UI,
                                **MODEL_CONCURRENCY).then(*review.will_store_event, **QUICK)

    @property
    def generate_inputs(self) -> list[Any]:
        """The inputs of Generate, in :meth:`generate` 's order (the Advanced panel's controls last)."""
        return [self.review.session, *self.normal.pair, *self.reference.editor.pair, self.prompt, self.reference.text,
                self.num, self.advanced.seed, self.advanced.randomise, self.review.view, *self.review.labels,
                *self.advanced.inputs]

    # ------------------------------------------------------------------ examples
    def example_items(self) -> list[tuple[str, str]]:
        """The examples row: each sample's picture, captioned ``name · defect type``."""
        return [(str(e.normal.path), f"{e.normal.name.replace('_', ' ')} · {e.defect_type}")
                for e in self.service.assets.examples()]

    def show_example(self, index: int) -> Filled:
        """Everything example ``index`` fills."""
        example = self.service.assets.examples()[index]
        sample = example.normal
        image = load_image(sample.path, what="sample image")
        region = load_mask(sample.mask_path, (image.shape[1], image.shape[0])) if sample.mask_path else None
        normal = self.normal.show(image, region, str(sample.path))
        reference: EditorPair = (None, None)
        text = ""
        if example.reference is not None:
            reference, text = self.reference.show_example(example.reference), example.reference.text
        return normal, reference, sample.category or sample.name, sample.prompt, text, example.defect_type

    def initial_example(self) -> Filled:
        """The first example, preloaded so the page starts ready to generate (empty when unreadable)."""
        if self.service.assets.examples():
            try:
                return self.show_example(0)
            except StudioError:
                log.warning("the first shipped example is unreadable")
        return (None, None), (None, None), "", "", "", ""

    @keeps_work(BUNDLE + 11)
    def pick_example(self, state: ss.Session | None, view: str, evt: gr.SelectData) -> tuple[Any, ...]:
        """An example was clicked: it fills image, region, reference, its mask, both texts, category and
        defect type at once, and closes the old queue. Returns the review bundle, those, the sample index
        and a message."""
        index = clicked(evt, len(self.service.assets.examples()))
        if index is None:
            raise InputError("That example is not available.")
        (value, source), (ref_value, ref_source), category, prompt, text, defect = self.show_example(index)
        name = self.service.assets.examples()[index].normal.name
        bundle, note = self.review.close_queue(state, view)
        return (*bundle, value, source, ref_value, ref_source, category, prompt, text,
                gr.update(value=defect or None), index, "",
                f"Example **{name}** loaded: every input and label below comes from it (the note is cleared).{note}")

    @keeps_work(BUNDLE + 11)
    def upload_normal(self, path: str | None, state: ss.Session | None, view: str,
                      keep: bool = False) -> tuple[Any, ...]:
        """Your own normal image: category from its file name (editable), no description, no region, no
        defect type, no note, no reference (``keep``: labels and reference stay), no example highlighted;
        closes the old queue. Returns the review bundle, (editor, source, category, prompt, defect type,
        sample, examples, reference editor, its source, reference text, note) and a message."""
        if not path:
            raise InputError("No file was uploaded.")
        value, source = self.normal.show(load_image(path, what="uploaded image"))
        category = safe_name(Path(path).stem.lower().replace(" ", "_"), default="")
        bundle, note = self.review.close_queue(state, view)
        if keep:
            kept = gr.skip()
            return (*bundle, value, source, kept, "", kept, None, gr.update(selected_index=None), kept, kept, kept,
                    kept, f"Loaded **{Path(path).name}**: labels and reference kept, as you asked.{note}")
        message = (f"Loaded **{Path(path).name}**: category set to `{category or '?'}` from the file name (edit it "
                   "if wrong); description, defect type, note and **reference** were cleared (no reference). "
                   "Sketch the defect region next.")
        return (*bundle, value, source, category, "", gr.update(value=None), None, gr.update(selected_index=None),
                None, None, "", "", message + note)

    @keeps_work(3)
    def add_suggested(self, value: Any, source: ed.Source | None, picked: int | None) -> tuple[Any, ...]:
        """Add the picked example's suggested defect region to the sketch."""
        examples = self.service.assets.examples()
        if picked is None or not 0 <= int(picked) < len(examples):
            raise InputError("Suggested regions come with the examples: click one first.")
        sample = examples[int(picked)].normal
        if sample.mask_path is None:
            raise InputError(f"The sample {sample.name} has no suggested region; sketch one with the brush.")
        return self.normal.add_mask(value, source, sample.mask_path)

    # ------------------------------------------------------------------ generate
    @keeps_work(BUNDLE + 2)
    def generate(self, state: ss.Session | None, normal_value: Any, normal_source: ed.Source | None,
                 reference_value: Any, reference_source: ed.Source | None, prompt: str, reference_text: str,
                 num: float, seed: float, randomise: bool, view: str, defect_type: str | None, category: str | None,
                 note: str | None, engine: str, progress: Any = gr.Progress(), *params: Any) -> tuple[Any, ...]:
        """Generate N candidates from the sketch, reference and description with the parameters the chosen
        engine uses (``params``: the Advanced controls' values), the label fields pinned to the new queue
        (None: none pinned); the first undecided (best, when sorted) is under review. Returns the review
        bundle, the seed used and a message."""
        chosen = self.service.ctx.engine(as_text(engine))  # resolved once: filters, runs and names the same one
        image, mask = ed.image_and_mask(normal_value, "normal image", NO_IMAGE, normal_source)
        if not mask.any():
            raise InputError("The defect region is empty: sketch it on the image with the brush "
                             "or add a quick shape (① Image).")
        reference, ref_mask = self.reference.marked(reference_value, reference_source)
        if reference is not None and not ref_mask.any():
            gr.Warning("The reference anomaly is not marked; the whole reference image is used as the anomaly.")
        used_seed = resolve_seed(seed, bool(randomise))
        request = build_request(image, mask, reference=reference, reference_mask=ref_mask, prompt=as_text(prompt),
                                reference_text=as_text(reference_text), num=candidate_count(num), seed=used_seed,
                                params=self.advanced.values(chosen, params), empty_reference_mask_is_none=True,
                                engine=chosen)
        labels = None if defect_type is None and category is None else typed_labels(category, defect_type, note)
        left = queue.tally(state)["undecided"] if isinstance(state, ss.Session) and state.candidates else 0
        state = self.service.generate(state, request, chosen, progress_fn(progress), labels)
        dropped = f" The previous queue's {left} undecided candidate(s) were dropped." if left else ""
        pinned = f" Labels: {labels.describe()}." if labels else ""
        message = (f"{len(state.candidates)} candidate(s) from **{chosen.label}**, seed {used_seed}, reference "
                   f"{'used' if reference is not None else 'none'}:{pinned} **A** accept · **R** reject · "
                   f"**→** skip · **Z** undo.{dropped}")
        return (*self.review.show(state, view), used_seed, message)
