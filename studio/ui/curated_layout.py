"""The "Curated set & export" tab: filters, a paginated gallery, the opened sample, bulk relabel /
remove and export (of the filter or the whole store). Blocks and wiring only (see :mod:`studio.ui.curated_page`)."""
from __future__ import annotations

from typing import Any

import gradio as gr

from studio.export import EXPORT_FORMATS
from studio.ui.callbacks import Studio
from studio.ui.curated_page import SCOPES
from studio.ui.events import QUIET, UI



def curated_tab(studio: Studio) -> tuple[Any, list[Any], list[Any]]:
    """Build the tab; returns (function, inputs, outputs) that refresh it (run after every accept)."""
    with gr.Tab("⑤ Curated set & export", id="curated", elem_id="curated-tab") as tab:
        with gr.Row(equal_height=False, elem_id="curated-filters"):
            f_category = gr.Dropdown(choices=[], value="", allow_custom_value=True, label="Category",
                                     elem_id="filter-category")
            f_defect = gr.Dropdown(choices=[], value="", allow_custom_value=True, label="Defect type",
                                   elem_id="filter-defect-type")
            f_engine = gr.Dropdown(choices=[], value="", allow_custom_value=True, label="Engine",
                                   elem_id="filter-engine")
            f_from = gr.Textbox(label="Accepted from", placeholder="YYYY-MM-DD", max_lines=1, elem_id="filter-from")
            f_to = gr.Textbox(label="to", placeholder="YYYY-MM-DD", max_lines=1, elem_id="filter-to")
            refresh = gr.Button("Apply / refresh", size="sm", scale=0, min_width=130, elem_id="refresh-curated")
        with gr.Row(equal_height=False, elem_id="curated-export"):
            fmt = gr.Radio(list(EXPORT_FORMATS), value=EXPORT_FORMATS[0], label="Export format", scale=2,
                           elem_id="export-format")
            scope = gr.Radio(list(SCOPES), value=SCOPES[0], label="Export what", scale=2, elem_id="export-scope")
            with gr.Column(scale=2, min_width=200):
                export_btn = gr.Button("Export zip", variant="primary", elem_id="export-btn")
                export_file = gr.File(label="Download", interactive=False, visible=False, height=60,
                                      elem_id="export-file")
            message = gr.Markdown("", elem_id="curated-message")
        ids = gr.State([])
        opened = gr.State(None)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=360):
                gallery = gr.Gallery(label="Curated samples (newest first; click one to open it)", columns=6,
                                     height=470, allow_preview=False, object_fit="cover", fit_columns=False,
                                     elem_id="curated-gallery")
                with gr.Row(equal_height=False, elem_id="curated-pages"):
                    prev_page = gr.Button("← page", size="sm", scale=0, min_width=90, elem_id="page-prev")
                    page = gr.Number(value=1, precision=0, minimum=1, show_label=False, container=False, scale=0,
                                     min_width=70, elem_id="page")
                    next_page = gr.Button("page →", size="sm", scale=0, min_width=90, elem_id="page-next")
                counts = gr.Markdown("", elem_id="counts")
            with gr.Column(scale=2, min_width=320):
                full = gr.Image(value=None, type="filepath", label="Opened sample", height=300, interactive=False,
                                buttons=["fullscreen", "download"], elem_id="curated-view")
                with gr.Accordion("Metadata", open=False):
                    metadata = gr.Code(value="", language="json", label="metadata", elem_id="curated-metadata")
                picks = gr.CheckboxGroup(choices=[], value=[], label="Tick samples of this page for bulk actions "
                                         "(none ticked = the opened one)", elem_id="curated-picks")
                with gr.Row():
                    new_category = gr.Textbox(label="new category", max_lines=1, elem_id="relabel-category")
                    new_defect = gr.Textbox(label="new defect type", max_lines=1, elem_id="relabel-defect-type")
                new_note = gr.Textbox(label="new note", max_lines=1, elem_id="relabel-note")
                with gr.Row():
                    relabel_btn = gr.Button("Relabel", size="sm", elem_id="relabel-btn")
                    remove_btn = gr.Button("Remove", size="sm", variant="stop", elem_id="remove-btn")

    filters = [f_category, f_defect, f_engine, f_from, f_to]
    workspace = [gallery, ids, page, counts, picks]
    show = (studio.ui_curated, [*filters, page], [*workspace, f_category, f_defect, f_engine, message])
    for trigger in (refresh.click, tab.select, page.submit, f_from.submit, f_to.submit):
        trigger(*show, api_name="ui_curated", **QUIET)
    for trigger in (f_category.select, f_defect.select, f_engine.select):
        trigger(*show, api_name="ui_curated", **QUIET)
    for button, delta in ((prev_page, -1), (next_page, 1)):
        button.click(lambda *a, _d=delta: studio.ui_curated_page(*a, _d), [*filters, page], [*workspace, message],
                     api_name="ui_curated_page", **QUIET)
    gallery.select(studio.ui_select_curated, ids, [full, metadata, opened, new_category, new_defect, message],
                   api_name="ui_select_curated", **QUIET)
    relabel_btn.click(studio.ui_relabel, [picks, opened, new_category, new_defect, new_note, *filters, page],
                      [*workspace, message], api_name="ui_relabel", **UI)
    remove_btn.click(studio.ui_remove, [picks, opened, *filters, page], [*workspace, message],
                     api_name="ui_remove", **UI)
    export_btn.click(studio.ui_export, [fmt, scope, *filters], [export_file, message], api_name="ui_export",
                     show_progress_on=message, concurrency_limit=2, concurrency_id="export", **UI)
    return show
