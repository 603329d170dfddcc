"""The studio page: eight numbered steps on one page, plus the plain-file API endpoints.

Only Gradio blocks and their wiring live here; what each button does is in
:mod:`studio.ui.page` (the page) and :mod:`studio.ui.api` (the API), joined in
:mod:`studio.ui.callbacks`.
"""
from __future__ import annotations

import gradio as gr

from studio.export import EXPORT_FORMATS
from studio.types import PARAM_SPECS
from studio.ui import session as ss
from studio.ui.assets import Assets, load_assets
from studio.ui.callbacks import Studio
from studio.ui.context import StudioContext
from studio.ui.editor import SHAPES, STROKE_ALPHA, STROKE_RGB
from studio.ui.views import VIEWS

#: Brush colour and opacity (as the server tints its presets): the surface stays visible under it.
BRUSH = ("#{:02x}{:02x}{:02x}".format(*STROKE_RGB), STROKE_ALPHA)
#: Events that run a model share one queue slot per process (one model instance, one GPU).
MODEL_CONCURRENCY = {"concurrency_limit": 1, "concurrency_id": "model"}
#: UI glue events: callable (for the page) but not listed in the API docs.
UI = {"api_visibility": "undocumented"}
#: Quick UI glue: no spinner and no error overlay on the outputs (errors still show as a toast).
QUIET = {**UI, "show_progress": "hidden"}

CSS = """
#status-line { font-size: 0.9em; padding: 6px 10px; border-radius: 6px;
               background: var(--block-background-fill); border: 1px solid var(--border-color-primary); }
.step-title h3 { margin: 0.2em 0 0.1em 0; }
.hint { color: var(--body-text-color-subdued); font-size: 0.88em; }
"""

INTRO = (
    "# AnomalyControl Studio\n"
    "Turn a normal product photo into realistic, pixel-labelled defect samples, keep the good ones "
    "and export them as a training set. Work through the steps from top to bottom."
)


def _param_slider(name: str, label: str, step: float) -> gr.Slider:
    default, lo, hi = PARAM_SPECS[name]
    return gr.Slider(lo, hi, value=default, step=step, label=label, elem_id=f"param-{name}")


def _step(title: str, hint: str = "") -> None:
    gr.Markdown(f"### {title}", elem_classes=["step-title"])
    if hint:
        gr.Markdown(hint, elem_classes=["hint"])


def _shape_controls(prefix: str, suggested: bool = False
                    ) -> tuple[list[tuple[gr.Button, str]], gr.Slider, gr.Slider, gr.Slider]:
    """Quick-shape buttons (and the sample's suggested region) with their size and position sliders."""
    with gr.Row():
        buttons = [(gr.Button(f"+ {shape}", size="sm", elem_id=f"{prefix}-shape-{shape}"), shape) for shape in SHAPES]
        if suggested:
            buttons.append((gr.Button("+ suggested region", size="sm", elem_id=f"{prefix}-suggested"), "suggested"))
        clear = gr.Button("Clear sketch", size="sm", variant="stop", elem_id=f"{prefix}-clear")
    with gr.Accordion("Shape size and position", open=False):
        with gr.Row():
            size = gr.Slider(2, 60, value=18, step=1, label="size (% of image)")
            x = gr.Slider(0, 100, value=50, step=1, label="centre x (%)")
            y = gr.Slider(0, 100, value=50, step=1, label="centre y (%)")
    buttons.append((clear, "clear"))
    return buttons, size, x, y


def _editor(label: str, elem_id: str, value: dict | None = None) -> gr.ImageEditor:
    return gr.ImageEditor(
        value=value,
        label=label,
        type="numpy",
        image_mode="RGBA",
        sources=(),
        transforms=(),
        layers=False,
        brush=gr.Brush(colors=[BRUSH], default_color=BRUSH, color_mode="fixed"),
        eraser=gr.Eraser(),
        height=460,
        format="png",
        placeholder="Pick or upload an image first",
        elem_id=elem_id,
    )


def build_demo(ctx: StudioContext, assets: Assets | None = None) -> gr.Blocks:
    """The studio page bound to ``ctx`` (engines, store and temp folders shared by all sessions)."""
    assets = assets if assets is not None else load_assets()
    studio = Studio(ctx, assets)
    with gr.Blocks(title="AnomalyControl Studio", delete_cache=(1800, 3 * 3600)) as demo:
        session = gr.State(None, time_to_live=ss.SESSION_TTL_S, delete_callback=ss.delete_session)
        selected = gr.State(None)
        curated_ids = gr.State([])
        selected_sample = gr.State(None)
        first_image, first_source, first_category, first_prompt, first_index = studio.initial_sample()
        picked_sample = gr.State(first_index)
        # what the server marked on each editor (see studio.ui.editor): clean image + preset region
        normal_source = gr.State(first_source)
        reference_source = gr.State(None)

        gr.Markdown(INTRO)
        status = gr.Markdown(ctx.status_markdown(), elem_id="status-line")

        # ---------------------------------------------------------------- 1 + 2
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=280):
                _step("1 · Normal image", "Click a shipped sample or upload your own photo of a defect-free part.")
                samples = gr.Gallery(
                    value=[(str(s.path), s.name.replace("_", " ")) for s in assets.normals] or None,
                    label="Shipped samples", columns=3, height=250, allow_preview=False,
                    object_fit="cover", fit_columns=False, elem_id="normal-samples",
                )
                upload_normal = gr.UploadButton("Upload a normal image", file_types=["image"], type="filepath",
                                                size="md", elem_id="upload-normal")
                category = gr.Textbox(value=first_category, label="Category (product)",
                                      placeholder="e.g. metal_plate", max_lines=1, elem_id="category")
            with gr.Column(scale=3, min_width=360):
                _step("2 · Defect region",
                      "Paint where the defect should appear (brush, eraser and undo are in the editor's toolbar), "
                      "or add a quick shape.")
                editor = _editor("Defect region", "defect-editor", first_image)
                shape_buttons, shape_size, shape_x, shape_y = _shape_controls("defect", suggested=True)

        # ---------------------------------------------------------------- 3 + 4 + 5
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=360):
                _step("3 · Reference anomaly (optional)",
                      "A picture of the kind of defect you want, with the anomaly marked by the brush, "
                      "and a sentence about it. Click an example or upload your own.")
                ref_examples = gr.Gallery(
                    value=[(str(r.path), r.text or r.name) for r in assets.references] or None,
                    label="Reference examples", columns=5, height=150, allow_preview=False,
                    object_fit="cover", fit_columns=False, elem_id="reference-examples",
                )
                upload_ref = gr.UploadButton("Upload a reference anomaly", file_types=["image"], type="filepath",
                                             size="md", elem_id="upload-reference")
                ref_editor = _editor("Reference anomaly: mark the anomalous region", "reference-editor")
                ref_shape_buttons, ref_size, ref_x, ref_y = _shape_controls("reference")
                ref_text = gr.Textbox(label="Reference text", placeholder="e.g. a red contamination stain",
                                      max_lines=2, elem_id="reference-text")
            with gr.Column(scale=2, min_width=320):
                _step("4 · Target description", "What the defect on your part should look like.")
                prompt = gr.Textbox(value=first_prompt, label="Target description",
                                    placeholder="e.g. a thin scratch on brushed metal", lines=2, elem_id="prompt")
                _step("5 · Attention preview (ASEA)",
                      "See where the cross-modal model looks on the reference, step by step: attention should "
                      "move onto the marked anomaly.")
                preview_btn = gr.Button("Preview attention", elem_id="preview-attention")
                attention = gr.Gallery(label="Attention per ASEA step: % inside the marked region (white outline)", columns=3,
                                       height=340, allow_preview=True,
                                       object_fit="contain", fit_columns=False, visible=False,
                                       elem_id="attention-gallery")
                attention_note = gr.Markdown("", elem_id="attention-note")

        # ---------------------------------------------------------------- 6
        _step("6 · Generate")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=280):
                num = gr.Slider(1, 8, value=4, step=1, label="Number of candidates", elem_id="num")
                with gr.Row():
                    seed = gr.Number(value=0, precision=0, minimum=0, label="Seed", elem_id="seed", scale=2)
                    randomise = gr.Checkbox(value=True, label="random seed", elem_id="random-seed", scale=1)
                with gr.Accordion("Advanced", open=False, elem_id="advanced"):
                    engine = gr.Dropdown(choices=ctx.engine_choices(), value=ctx.default_engine, label="Engine",
                                         elem_id="engine")
                    steps = _param_slider("steps", "Denoising steps", 1)
                    strength = _param_slider("strength", "Strength", 0.01)
                    guidance = _param_slider("guidance", "Guidance scale", 0.5)
                    sga_scale = _param_slider("sga_scale", "SGA scale (reference influence)", 0.05)
                    asea_steps = _param_slider("asea_steps", "ASEA steps", 1)
                    gr.Markdown("The classic engine uses strength and the reference; the diffusion settings "
                                "apply to AnomalyControl.", elem_classes=["hint"])
                generate_btn = gr.Button("Generate", variant="primary", elem_id="generate")
                message = gr.Markdown("", elem_id="message")
            with gr.Column(scale=3, min_width=400):
                view = gr.Radio(list(VIEWS), value="image", label="Show candidates as", elem_id="view")
                candidates = gr.Gallery(label="Candidates (click one to select it)", columns=3, height=400,
                                        allow_preview=False, object_fit="contain", format="png",
                                        fit_columns=False, elem_id="candidates")

        # ---------------------------------------------------------------- 7
        _step("7 · Curate", "Accept the good candidates into the curated set (kept in the data folder, "
                            "shared by everyone using it), reject the rest.")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=280):
                selection = gr.Markdown("Click a candidate to select it.", elem_id="selection")
                defect_type = gr.Dropdown(choices=studio.defect_types(), value=None, allow_custom_value=True,
                                          label="Defect type", elem_id="defect-type")
                note = gr.Textbox(label="Note (optional)", max_lines=2, elem_id="note")
                with gr.Row():
                    accept_btn = gr.Button("Accept", variant="primary", elem_id="accept")
                    reject_btn = gr.Button("Reject", variant="stop", elem_id="reject")
                with gr.Accordion("Batch review", open=False, elem_id="batch-review"):
                    gr.Markdown("Candidates written by `anomaly-studio batch --review` into this data folder: "
                                "load a job, then accept or reject its candidates as above.",
                                elem_classes=["hint"])
                    review_job = gr.Dropdown(choices=[], value=None, label="Batch review jobs",
                                             elem_id="review-job")
                    with gr.Row():
                        review_refresh_btn = gr.Button("Refresh list", size="sm", elem_id="review-refresh")
                        review_open_btn = gr.Button("Load for review", size="sm", variant="primary",
                                                    elem_id="review-open")
            with gr.Column(scale=3, min_width=400):
                with gr.Row():
                    defect_filter = gr.Textbox(label="Show only defect type", placeholder="all", max_lines=1,
                                               scale=3, elem_id="defect-filter")
                    refresh_btn = gr.Button("Refresh", size="sm", scale=1, elem_id="refresh-curated")
                curated = gr.Gallery(label="Curated set (newest first; click one to select it)", columns=6,
                                     height=280, allow_preview=False, object_fit="cover", fit_columns=False,
                                     elem_id="curated")
                counts = gr.Markdown("", elem_id="counts")
                with gr.Row():
                    curated_selection = gr.Markdown("", elem_id="curated-selection")
                    remove_btn = gr.Button("Remove from curated set", size="sm", elem_id="remove")

        # ---------------------------------------------------------------- 8
        _step("8 · Export")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=280):
                fmt = gr.Radio(list(EXPORT_FORMATS), value=EXPORT_FORMATS[0], label="Format",
                               info="mvtec: MVTec-AD folders · coco: COCO instances JSON · imagefolder: HF datasets",
                               elem_id="export-format")
                export_btn = gr.Button("Export zip", variant="primary", elem_id="export")
            with gr.Column(scale=3, min_width=400):
                export_file = gr.File(label="Download", interactive=False, visible=False, elem_id="export-file")
                export_message = gr.Markdown("", elem_id="export-message")

        # ================================================================ wiring: page
        demo.load(studio.ui_load, None, [status, engine, defect_type, curated, counts, curated_ids],
                  api_name="ui_load", **QUIET)
        normal = [editor, normal_source]
        reference = [ref_editor, reference_source]
        samples.select(studio.ui_pick_sample, prompt, [*normal, category, prompt, picked_sample],
                       api_name="ui_pick_sample", **QUIET)
        upload_normal.upload(studio.ui_upload_normal, upload_normal, [*normal, picked_sample],
                             api_name="ui_upload_normal", **QUIET)
        for button, shape in shape_buttons:
            if shape == "clear":
                button.click(studio.ui_clear_sketch, normal, normal, api_name="ui_clear_sketch", **QUIET)
            elif shape == "suggested":
                button.click(studio.ui_add_suggested, [*normal, picked_sample], normal,
                             api_name="ui_add_suggested", **QUIET)
            else:
                button.click(lambda v, src, s, x, y, _shape=shape: studio.ui_add_shape(v, src, _shape, s, x, y),
                             [*normal, shape_size, shape_x, shape_y], normal, api_name=f"ui_add_{shape}", **QUIET)
        ref_examples.select(studio.ui_pick_reference, None, [*reference, ref_text, defect_type],
                            api_name="ui_pick_reference", **QUIET)
        upload_ref.upload(studio.ui_upload_reference, upload_ref, reference, api_name="ui_upload_reference",
                          **QUIET)
        for button, shape in ref_shape_buttons:
            if shape == "clear":
                button.click(studio.ui_clear_sketch, reference, reference, api_name="ui_clear_reference", **QUIET)
            else:
                button.click(lambda v, src, s, x, y, _shape=shape: studio.ui_add_reference_shape(v, src, _shape, s, x, y),
                             [*reference, ref_size, ref_x, ref_y], reference, api_name=f"ui_mark_{shape}", **QUIET)
        preview_btn.click(studio.ui_preview_attention, [*normal, *reference, ref_text, prompt, asea_steps, engine],
                          [attention, attention_note], api_name="ui_preview_attention", show_progress_on=attention_note,
                          **UI, **MODEL_CONCURRENCY)
        generate_btn.click(
            studio.ui_generate,
            [session, *normal, *reference, prompt, ref_text, num, seed, randomise,
             steps, strength, guidance, sga_scale, asea_steps, engine, view],
            [session, candidates, seed, selected, selection, message],
            api_name="ui_generate", show_progress_on=candidates, **UI, **MODEL_CONCURRENCY,
        )
        view.change(studio.ui_view, [session, view], candidates, api_name="ui_view", **QUIET)
        candidates.select(studio.ui_select_candidate, session, [selected, selection],
                          api_name="ui_select_candidate", **QUIET)
        for trigger in (demo.load, review_refresh_btn.click):
            trigger(studio.ui_review_jobs, review_job, review_job, api_name="ui_review_jobs", **QUIET)
        review_open_btn.click(studio.ui_open_review, [session, review_job, view],
                              [session, candidates, selected, selection, message, defect_type, category],
                              api_name="ui_open_review", show_progress_on=candidates, **UI)
        accept_btn.click(studio.ui_accept, [session, selected, defect_type, category, note, view, defect_filter],
                         [session, candidates, curated, counts, curated_ids, selection, defect_type],
                         api_name="ui_accept", show_progress_on=curated, **UI)
        reject_btn.click(studio.ui_reject, [session, selected, view], [session, candidates, selected, selection],
                         api_name="ui_reject", show_progress_on=candidates, **UI)
        for trigger in (refresh_btn.click, defect_filter.submit):
            trigger(studio.ui_refresh_curated, defect_filter, [curated, counts, curated_ids],
                    api_name="ui_refresh_curated", **UI)
        curated.select(studio.ui_select_curated, curated_ids, [selected_sample, curated_selection],
                       api_name="ui_select_curated", **QUIET)
        remove_btn.click(studio.ui_remove, [selected_sample, defect_filter],
                         [curated, counts, curated_ids, selected_sample, curated_selection],
                         api_name="ui_remove", show_progress_on=curated, **UI)
        export_btn.click(studio.ui_export, fmt, [export_file, export_message], api_name="ui_export",
                         show_progress_on=export_message, concurrency_limit=2, concurrency_id="export", **UI)

        # ================================================================ wiring: API
        _api_endpoints(studio, session)
    return demo


def _api_endpoints(studio: Studio, session: gr.State) -> None:
    """The documented ``gradio_client`` surface: plain files, numbers and text (hidden widgets)."""
    with gr.Column(visible=False):
        image = gr.File(type="filepath", label="image")
        mask = gr.File(type="filepath", label="mask")
        prompt = gr.Textbox(value="", label="prompt")
        reference = gr.File(type="filepath", label="reference")
        reference_mask = gr.File(type="filepath", label="reference_mask")
        reference_text = gr.Textbox(value="", label="reference_text")
        num = gr.Number(value=1, label="num")
        seed = gr.Number(value=-1, label="seed")
        params = [gr.Number(value=None, label=name) for name in ("steps", "strength", "guidance", "sga_scale",
                                                                 "asea_steps")]
        engine = gr.Textbox(value="", label="engine")
        images_out = gr.Gallery(label="candidates", format="png")
        masks_out = gr.Gallery(label="label masks", format="png")
        info_out = gr.JSON(label="info")
        heatmaps_out = gr.Gallery(label="attention maps", format="png")
        index = gr.Number(value=0, label="index")
        defect_type = gr.Textbox(value="", label="defect_type")
        category = gr.Textbox(value="", label="category")
        note = gr.Textbox(value="", label="note")
        sample_id = gr.Textbox(value="", label="sample_id")
        job_id = gr.Textbox(value="", label="job_id")
        fmt = gr.Textbox(value="mvtec", label="fmt")
        file_out = gr.File(label="zip")
        status_out = gr.Textbox(label="status")
        trigger = gr.Button()

    trigger.click(studio.api_generate,
                  [image, mask, prompt, reference, reference_mask, reference_text, num, seed, *params, engine, session],
                  [images_out, masks_out, info_out, session], api_name="generate", **MODEL_CONCURRENCY)
    trigger.click(studio.api_preview_attention,
                  [reference, reference_mask, reference_text, prompt, params[4], engine],
                  [heatmaps_out, info_out], api_name="preview_attention", **MODEL_CONCURRENCY)
    trigger.click(studio.api_review_jobs, None, info_out, api_name="review_jobs")
    trigger.click(studio.api_open_review, [job_id, session], [info_out, session], api_name="open_review")
    trigger.click(studio.api_accept, [index, defect_type, category, note, session], [info_out, session],
                  api_name="accept")
    trigger.click(studio.api_reject, [index, session], [info_out, session], api_name="reject")
    trigger.click(studio.api_curated, [defect_type], info_out, api_name="curated")
    trigger.click(studio.api_remove, [sample_id], info_out, api_name="remove")
    trigger.click(studio.api_export, [fmt], file_out, api_name="export", concurrency_limit=2,
                  concurrency_id="export")
    trigger.click(studio.api_status, None, status_out, api_name="status")
