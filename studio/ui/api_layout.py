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
        image, mask, reference, reference_mask = (gr.File(type="filepath", label=name)
                                                  for name in ("image", "mask", "reference", "reference_mask"))
        text = {name: gr.Textbox(value=default, label=name.removeprefix("filter_")) for name, default in (
            ("prompt", ""), ("reference_text", ""), ("engine", ""), ("decision", "accept"), ("defect_type", ""),
            ("category", ""), ("note", ""), ("sample_id", ""), ("sample_ids", ""), ("filter_engine", ""),
            ("date_from", ""), ("date_to", ""), ("job_id", ""), ("fmt", "mvtec"))}
        number = {name: gr.Number(value=default, label=name) for name, default in (
            ("num", 1), ("seed", -1), ("index", 0), ("page", 0), ("page_size", 0))}
        params = [gr.Number(value=None, label=name) for name in GENERATE_PARAMS]
        images_out = gr.Gallery(label="candidates", format="png")
        masks_out = gr.Gallery(label="label masks", format="png")
        info_out = gr.JSON(label="info")
        heatmaps_out = gr.Gallery(label="attention maps", format="png")
        file_out = gr.File(label="zip")
        status_out = gr.Textbox(label="status")
        trigger = gr.Button()

    prompt, reference_text, engine, decision, defect_type, category, note, sample_id, sample_ids = (
        text[k] for k in ("prompt", "reference_text", "engine", "decision", "defect_type", "category", "note",
                          "sample_id", "sample_ids"))
    filter_engine, date_from, date_to, job_id, fmt = (text[k] for k in ("filter_engine", "date_from", "date_to",
                                                                         "job_id", "fmt"))
    num, seed, index, page, page_size = (number[k] for k in ("num", "seed", "index", "page", "page_size"))
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
