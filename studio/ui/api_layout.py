"""The documented ``gradio_client`` surface: hidden widgets for plain files, numbers and text,
wired to :mod:`studio.ui.api` under stable ``api_name`` s (the README lists them with examples)."""
from __future__ import annotations

import gradio as gr

from studio.ui.callbacks import Studio
from studio.ui.events import MODEL_CONCURRENCY

#: Parameters ``generate`` takes after the seed, in order.
GENERATE_PARAMS = ("steps", "strength", "guidance", "sga_scale", "asea_steps")


def api_endpoints(studio: Studio, session: gr.State) -> None:
    """Hidden widgets and the API events (the session state is the page's, per client)."""
    with gr.Column(visible=False):
        image = gr.File(type="filepath", label="image")
        mask = gr.File(type="filepath", label="mask")
        prompt = gr.Textbox(value="", label="prompt")
        reference = gr.File(type="filepath", label="reference")
        reference_mask = gr.File(type="filepath", label="reference_mask")
        reference_text = gr.Textbox(value="", label="reference_text")
        num = gr.Number(value=1, label="num")
        seed = gr.Number(value=-1, label="seed")
        params = [gr.Number(value=None, label=name) for name in GENERATE_PARAMS]
        engine = gr.Textbox(value="", label="engine")
        images_out = gr.Gallery(label="candidates", format="png")
        masks_out = gr.Gallery(label="label masks", format="png")
        info_out = gr.JSON(label="info")
        heatmaps_out = gr.Gallery(label="attention maps", format="png")
        index = gr.Number(value=0, label="index")
        decision = gr.Textbox(value="accept", label="decision")
        defect_type = gr.Textbox(value="", label="defect_type")
        category = gr.Textbox(value="", label="category")
        note = gr.Textbox(value="", label="note")
        sample_id = gr.Textbox(value="", label="sample_id")
        sample_ids = gr.Textbox(value="", label="sample_ids")
        filter_engine = gr.Textbox(value="", label="engine")
        date_from = gr.Textbox(value="", label="date_from")
        date_to = gr.Textbox(value="", label="date_to")
        page = gr.Number(value=0, label="page")
        page_size = gr.Number(value=0, label="page_size")
        job_id = gr.Textbox(value="", label="job_id")
        fmt = gr.Textbox(value="mvtec", label="fmt")
        file_out = gr.File(label="zip")
        status_out = gr.Textbox(label="status")
        trigger = gr.Button()

    filters = [defect_type, category, filter_engine, date_from, date_to]
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
    trigger.click(studio.api_decide, [index, decision, defect_type, category, note, session], [info_out, session],
                  api_name="decide")
    trigger.click(studio.api_undo, [session], [info_out, session], api_name="undo")
    trigger.click(studio.api_curated, [*filters, page, page_size], info_out, api_name="curated")
    trigger.click(studio.api_relabel, [sample_ids, category, defect_type, note], info_out, api_name="relabel")
    trigger.click(studio.api_remove, [sample_id], info_out, api_name="remove")
    trigger.click(studio.api_export, [fmt, *filters], file_out, api_name="export", concurrency_limit=2,
                  concurrency_id="export")
    trigger.click(studio.api_status, None, status_out, api_name="status")
