"""The studio page: one working screen (inputs left; viewer, strip and decisions right) and the
curated workspace in its own tab, plus the plain-file API endpoints.

Only Gradio blocks and their wiring live here; what each button does is in the ``*_page``
modules and :mod:`studio.ui.api`, joined in :mod:`studio.ui.callbacks`. Engines are read
through the context at call time, so a default engine swapped in a running studio is used by
the next call (and named by the status line within ~2 s).
"""
from __future__ import annotations

import gradio as gr

from studio.types import PARAMETERS
from studio.ui import session as ss
from studio.ui.api_layout import api_endpoints
from studio.ui.assets import Assets, load_assets
from studio.ui.callbacks import Studio
from studio.ui.context import StudioContext
from studio.ui.curated_layout import curated_tab
from studio.ui.editor import SHAPES
from studio.ui.events import MODEL_CONCURRENCY, QUIET, REVIEW, UI
from studio.ui.keyboard import KEYS_HELP
from studio.ui.review_queue import STRIP_WINDOW
from studio.ui.session import ACCEPTED, REJECTED
from studio.ui.space import on_space
from studio.ui.views import VIEWS
from studio.visualize import STROKE_ALPHA, STROKE_RGB

#: Brush colour and opacity (as the server tints its presets): the surface stays visible under it.
BRUSH = ("#{:02x}{:02x}{:02x}".format(*STROKE_RGB), STROKE_ALPHA)

HEADER = "## AnomalyControl Studio"
#: The gallery keeps its last click highlighted through any update: an upload clears that in the browser.
UNHIGHLIGHT_EXAMPLES = ("() => document.querySelectorAll('#examples .thumbnail-item.selected')"
                        ".forEach((t) => t.classList.remove('selected'))")


def _editor(label: str, elem_id: str, value: dict | None, height: int) -> gr.ImageEditor:
    return gr.ImageEditor(
        value=value, label=label, type="numpy", image_mode="RGBA", sources=(), transforms=(), layers=False,
        brush=gr.Brush(colors=[BRUSH], default_color=BRUSH, color_mode="fixed"), eraser=gr.Eraser(),
        height=height, format="png", placeholder="Pick an example or upload an image first", elem_id=elem_id,
    )


def _shape_row(prefix: str, suggested: bool) -> tuple[list[tuple[gr.Button, str]], gr.Button, list[gr.Slider]]:
    """Quick-shape buttons (and the example's suggested region), Clear region, size/position sliders."""
    with gr.Row(elem_classes=["tight"]):
        buttons = [(gr.Button(f"+ {shape}", size="sm", min_width=60, elem_id=f"{prefix}-shape-{shape}"), shape)
                   for shape in SHAPES]
        if suggested:
            buttons.append((gr.Button("+ suggested", size="sm", min_width=60, elem_id=f"{prefix}-suggested"),
                            "suggested"))
        clear = gr.Button("Clear region", size="sm", variant="secondary", min_width=60, elem_id=f"{prefix}-clear")
    with gr.Accordion("Shape size and position", open=False):
        with gr.Row():
            sliders = [gr.Slider(2, 60, value=18, step=1, label="size (% of image)"),
                       gr.Slider(0, 100, value=50, step=1, label="centre x (%)"),
                       gr.Slider(0, 100, value=50, step=1, label="centre y (%)")]
    return buttons, clear, sliders


def build_demo(ctx: StudioContext, assets: Assets | None = None) -> gr.Blocks:
    """The studio page bound to ``ctx`` (engines, store and temp folders shared by all sessions)."""
    assets = assets if assets is not None else load_assets()
    studio = Studio(ctx, assets)
    (first, first_source), (first_ref, first_ref_source), first_cat, first_prompt, first_text, first_defect = (
        studio.initial_example())
    with gr.Blocks(title="AnomalyControl Studio", fill_width=True, delete_cache=(1800, 3 * 3600)) as demo:
        session = gr.State(None, time_to_live=ss.SESSION_TTL_S, delete_callback=ss.delete_session)
        picked = gr.State(0 if first is not None else None)
        # what the server marked on each editor (see studio.ui.editor): clean image + preset region
        normal_source = gr.State(first_source)
        reference_source = gr.State(first_ref_source)
        types = studio.defect_types()
        type_list = gr.State(types)  # what the number keys pick from: exactly the list the page shows

        with gr.Row(equal_height=False):
            gr.Markdown(HEADER, elem_id="title")
            status = gr.Markdown(ctx.status_markdown(), elem_id="status-line")
        timer = gr.Timer(2.0, active=on_space())  # only a Space's background fetch changes the status

        with gr.Tabs(elem_id="main-tabs"):
            with gr.Tab("Workstation", id="workstation", elem_id="workstation-tab"):
                with gr.Row(equal_height=False):
                    # ---------------------------------------------------- inputs (left)
                    with gr.Column(scale=2, min_width=340):
                        with gr.Tabs():
                            with gr.Tab("① Image & region", elem_id="image-tab"):
                                examples = gr.Gallery(
                                    value=studio.example_items() or None,
                                    label="Examples: one click fills every input and label", columns=5, height=112,
                                    allow_preview=False, object_fit="cover", fit_columns=False, elem_id="examples")
                                upload_normal = gr.UploadButton("Upload your own normal image", file_types=["image"],
                                                                type="filepath", size="sm", elem_id="upload-normal")
                                editor = _editor("Defect region: paint it with the brush", "defect-editor", first, 290)
                                shapes, clear, shape_sliders = _shape_row("defect", suggested=True)
                            with gr.Tab("② Reference", elem_id="reference-tab"):
                                ref_examples = gr.Gallery(
                                    value=[(str(r.path), r.text or r.name) for r in assets.references] or None,
                                    label="Reference anomalies", columns=5, height=110, allow_preview=False,
                                    object_fit="cover", fit_columns=False, elem_id="reference-examples")
                                upload_ref = gr.UploadButton("Upload a reference anomaly", file_types=["image"],
                                                             type="filepath", size="sm", elem_id="upload-reference")
                                ref_editor = _editor("Reference anomaly: mark the anomalous region", "reference-editor",
                                                     first_ref, 300)
                                ref_shapes, ref_clear, ref_sliders = _shape_row("reference", suggested=False)
                                ref_text = gr.Textbox(value=first_text, label="Reference text", max_lines=2,
                                                      placeholder="e.g. a red contamination stain",
                                                      elem_id="reference-text")
                                preview_btn = gr.Button("Preview attention (ASEA)", size="sm",
                                                        elem_id="preview-attention")
                                attention_hint = gr.Markdown("", elem_classes=["hint"], elem_id="attention-hint")
                                attention = gr.Gallery(label="Attention per ASEA step: % inside the marked region",
                                                       columns=3, height=260, object_fit="contain", visible=False,
                                                       fit_columns=False, elem_id="attention-gallery")
                                attention_note = gr.Markdown("", elem_id="attention-note")
                            with gr.Tab("Advanced", elem_id="advanced"):
                                engine = gr.Dropdown(choices=[("default engine", "")], value="", label="Engine",
                                                     elem_id="engine")
                                params_hint = gr.Markdown("", elem_classes=["hint"], elem_id="params-hint")
                                params = {p.name: gr.Slider(p.minimum, p.maximum, value=p.default, step=p.step,
                                                            label=p.label, info=p.help, elem_id=f"param-{p.name}")
                                          for p in PARAMETERS.values()}
                                with gr.Row():
                                    seed = gr.Number(value=0, precision=0, minimum=0, label="Seed", elem_id="seed")
                                    randomise = gr.Checkbox(value=True, label="random seed", elem_id="random-seed")
                            with gr.Tab("Batch jobs", elem_id="batch-tab"):
                                gr.Markdown("Candidates written by `anomaly-studio batch --review` into this data "
                                            "folder: open a job and review it with the same keys.",
                                            elem_classes=["hint"])
                                review_job = gr.Dropdown(choices=[], value=None, label="Batch review jobs",
                                                         elem_id="review-job")
                                with gr.Row():
                                    review_refresh = gr.Button("Refresh list", size="sm", elem_id="review-refresh")
                                    review_open = gr.Button("Open for review", size="sm", variant="primary",
                                                            elem_id="review-open")
                        with gr.Row(equal_height=True):
                            prompt = gr.Textbox(value=first_prompt, label="③ Target description", lines=1,
                                                max_lines=2, placeholder="e.g. a thin scratch on brushed metal",
                                                scale=4, elem_id="prompt")
                            num = gr.Number(value=4, precision=0, minimum=1, maximum=8, label="candidates",
                                            scale=1, min_width=80, elem_id="num")
                            generate_btn = gr.Button("Generate", variant="primary", scale=2, min_width=100,
                                                     elem_id="generate-btn")
                    # ---------------------------------------------------- review (right)
                    with gr.Column(scale=3, min_width=360):
                        with gr.Row(equal_height=False):
                            with gr.Column(scale=3, min_width=360, elem_id="candidate-viewer"):
                                viewer = gr.Image(value=None, type="filepath", format="png", label="④ Candidate",
                                                  height=520, interactive=False, buttons=["fullscreen", "download"],
                                                  elem_id="viewer-image")
                                slider = gr.ImageSlider(value=None, type="filepath", format="png",
                                                        label="④ Candidate: before / after", max_height=520,
                                                        visible=False, interactive=False, elem_id="viewer-slider")
                                strip = gr.Gallery(label="Candidates", columns=STRIP_WINDOW, height=116,
                                                   allow_preview=False, object_fit="contain", fit_columns=False,
                                                   format="png", elem_id="candidate-strip")
                            with gr.Column(scale=1, min_width=240, elem_id="decision-panel"):
                                details = gr.Markdown(studio.review_bundle(None, "image")[-1], elem_id="details")
                                with gr.Group():
                                    view = gr.Radio(list(VIEWS), value="image", label="View (O)", elem_id="view")
                                    best_first = gr.Checkbox(value=False, label="best score first",
                                                             elem_id="best-first")
                                with gr.Group():
                                    category = gr.Textbox(value=first_cat, label="Category (product)", max_lines=1,
                                                          placeholder="e.g. metal_plate", elem_id="category")
                                    defect_type = gr.Dropdown(choices=studio.defect_types(), value=first_defect or None,
                                                              allow_custom_value=True, label="Defect type (1–9)",
                                                              elem_id="defect-type")
                                    note = gr.Textbox(show_label=False, placeholder="note (optional)", max_lines=1,
                                                      elem_id="note")
                                type_keys = gr.Markdown(studio.type_keys_markdown(types), elem_classes=["hint"],
                                                        elem_id="type-keys")
                                will_store = gr.Markdown(studio.ui_will_store(first_cat, first_defect),
                                                         elem_id="will-store")
                                with gr.Row():
                                    accept_btn = gr.Button("Accept (A)", variant="primary", size="sm",
                                                           elem_id="accept-btn")
                                    reject_btn = gr.Button("Reject (R)", variant="stop", size="sm",
                                                           elem_id="reject-btn")
                                message = gr.Markdown("", elem_id="message")
                                with gr.Row():
                                    prev_btn = gr.Button("← prev", size="sm", elem_id="prev-btn")
                                    undo_btn = gr.Button("Undo (Z)", size="sm", elem_id="undo-btn")
                                    next_btn = gr.Button("next →", size="sm", elem_id="next-btn")
                                with gr.Row():
                                    accept_all = gr.Button("Accept all undecided", size="sm", elem_id="accept-all-btn")
                                    reject_all = gr.Button("Reject all undecided", size="sm", elem_id="reject-all-btn")
                        gr.Markdown(KEYS_HELP, elem_classes=["hint"], elem_id="keys-help")
                        type_buttons = [gr.Button(str(k), visible="hidden", elem_id=f"type-key-{k}")
                                        for k in range(1, 10)]
            refresh_curated = curated_tab(studio)

        # ================================================================ wiring: inputs
        normal, reference = [editor, normal_source], [ref_editor, reference_source]
        generated = [session, viewer, slider, strip, details]
        param_inputs = [params[n] for n in ("steps", "strength", "guidance", "sga_scale", "asea_steps", "asea_lr",
                                            "blur_sigma")]
        engine_outputs = [*params.values(), preview_btn, attention_hint, params_hint]
        demo.load(studio.ui_load, engine, [status, engine, defect_type, type_list, type_keys, *engine_outputs],
                  api_name="ui_load", **QUIET)
        timer.tick(studio.ui_status, status, status, api_name="ui_status", queue=False, **QUIET)
        engine.change(studio.ui_engine, engine, engine_outputs, api_name="ui_engine", **QUIET)
        examples.select(studio.ui_pick_example, [session, view],
                        [*generated, *normal, *reference, category, prompt, ref_text, defect_type, picked, message],
                        api_name="ui_pick_example", **REVIEW)
        upload_normal.upload(studio.ui_upload_normal, [upload_normal, session, view],
                             [*generated, *normal, category, prompt, defect_type, picked, examples, message],
                             api_name="ui_upload_normal", **REVIEW)
        upload_normal.upload(None, None, None, js=UNHIGHLIGHT_EXAMPLES, **QUIET)  # your own image: no example
        for widget, pair in ((editor, normal), (ref_editor, reference)):
            widget.clear(studio.ui_restore_image, pair[1], [*pair, message], api_name="ui_restore_image", **QUIET)
        for (button, shape), pair, sliders in [*((s, normal, shape_sliders) for s in shapes),
                                              *((s, reference, ref_sliders) for s in ref_shapes)]:
            if shape == "suggested":
                button.click(studio.ui_add_suggested, [*pair, picked], [*pair, message],
                             api_name="ui_add_suggested", **QUIET)
            else:
                button.click(lambda v, src, s, x, y, _shape=shape: studio.ui_add_shape(v, src, _shape, s, x, y),
                             [*pair, *sliders], [*pair, message], api_name=f"ui_add_{shape}", **QUIET)
        for button, pair in ((clear, normal), (ref_clear, reference)):
            button.click(studio.ui_clear_region, pair, [*pair, message], api_name="ui_clear_region", **QUIET)
        ref_examples.select(studio.ui_pick_reference, None, [*reference, ref_text, defect_type, message],
                            api_name="ui_pick_reference", **QUIET)
        upload_ref.upload(studio.ui_upload_reference, upload_ref, [*reference, ref_text, message],
                          api_name="ui_upload_reference", **QUIET)
        preview_btn.click(studio.ui_preview_attention,
                          [*normal, *reference, ref_text, prompt, params["asea_steps"], engine],
                          [attention, attention_note, message], api_name="ui_preview_attention",
                          show_progress_on=attention_note, **UI, **MODEL_CONCURRENCY)
        generate_btn.click(studio.ui_generate,
                           [session, *normal, *reference, prompt, ref_text, num, seed, randomise, engine, view,
                            *param_inputs],
                           [*generated, seed, message], api_name="ui_generate", show_progress_on=[viewer],
                           **UI, **MODEL_CONCURRENCY)
        for trigger in (demo.load, review_refresh.click):
            trigger(studio.ui_review_jobs, review_job, [review_job, message], api_name="ui_review_jobs", **QUIET)
        review_open.click(studio.ui_open_review, [session, review_job, view],
                          [*generated, category, defect_type, message], api_name="ui_open_review",
                          show_progress_on=[viewer], **UI)

        # ================================================================ wiring: review
        view.change(studio.ui_view, [session, view], [*generated, message], api_name="ui_view", **QUIET)
        best_first.change(studio.ui_best_first, [session, best_first, view], [*generated, message],
                          api_name="ui_best_first", **QUIET)
        strip.select(studio.ui_select_candidate, [session, view], [*generated, message],
                     api_name="ui_select_candidate", **REVIEW)
        for button, delta in ((prev_btn, -1), (next_btn, 1)):
            button.click(lambda s, v, _d=delta: studio.ui_step(s, v, _d), [session, view], [*generated, message],
                         api_name="ui_step", **REVIEW)
        labels = [defect_type, category, note]
        accepted = accept_btn.click(studio.ui_accept, [session, *labels, view], [*generated, message],
                                    api_name="ui_accept", **REVIEW)
        reject_btn.click(studio.ui_reject, [session, view], [*generated, message], api_name="ui_reject", **REVIEW)
        undone = undo_btn.click(studio.ui_undo, [session, view], [*generated, message], api_name="ui_undo", **REVIEW)
        all_accepted = accept_all.click(lambda s, d, c, n, v: studio.ui_decide_all(s, ACCEPTED, d, c, n, v),
                                        [session, *labels, view], [*generated, message], api_name="ui_accept_all",
                                        **REVIEW)
        reject_all.click(lambda s, d, c, n, v: studio.ui_decide_all(s, REJECTED, d, c, n, v),
                         [session, *labels, view], [*generated, message], api_name="ui_reject_all", **REVIEW)
        for event in (accepted, undone, all_accepted):
            event.then(*refresh_curated, api_name="ui_curated_after_decision", **QUIET)
        for k, button in enumerate(type_buttons, 1):
            button.click(lambda t, _k=k: studio.ui_type_key(_k, t), type_list, [defect_type, message],
                         api_name="ui_type_key", **QUIET)
        for field in (category, defect_type):
            field.change(studio.ui_will_store, [category, defect_type], will_store, api_name="ui_will_store",
                         queue=False, **QUIET)

        # ================================================================ wiring: API
        api_endpoints(studio, session)
    return demo
