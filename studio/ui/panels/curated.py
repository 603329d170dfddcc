"""The curated panel ("⑤ Curated set & export"): filters, a paginated gallery of the store, the opened
sample with its metadata, bulk relabel / remove, and export of the filter or the whole store.

Every callback returns the workspace (gallery, ids on the page, page, counts, picks) first where it
changes the set, and its message line last; on failure nothing but the message changes.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Callable

import gradio as gr

from studio.errors import InputError, StudioError
from studio.export import EXPORT_FORMATS
from studio.ui.events import QUIET, UI
from studio.ui.filters import Filters, caption, engine_of, page_of
from studio.ui.service import StudioService
from studio.ui.widgets.feedback import keeps_work, progress_fn
from studio.ui.widgets.selection import clicked
from studio.ui.widgets.views import OPENED_MAX, thumbnail_file

log = logging.getLogger(__name__)

#: The outputs a change of the curated set refreshes: gallery, ids, page, counts, picks.
WORKSPACE = 5
SCOPES = ("current filter", "whole store")


def targets(picks: list[str] | None, selected: str | None) -> list[str]:
    """The ticked samples, else the opened one."""
    ids = list(picks or []) or ([selected] if selected else [])
    if not ids:
        raise InputError("Tick samples in the list (or open one in the gallery) first.")
    return ids


class CuratedPanel:
    """The curated workspace tab."""

    def __init__(self, service: StudioService) -> None:
        self.service = service

    # ------------------------------------------------------------------ blocks
    def render(self) -> None:
        with gr.Tab("⑤ Curated set & export", id="curated", elem_id="curated-tab") as self.tab:
            self._render_bars()
            self.ids = gr.State([])
            self.opened = gr.State(None)
            self.armed = gr.State([])  # the ids a first click on Remove asked about
            with gr.Row(equal_height=False):
                with gr.Column(scale=3, min_width=360):
                    self.gallery = gr.Gallery(label="Curated samples (newest first; click one to open it)",
                                              columns=6, height=470, allow_preview=False, object_fit="cover",
                                              fit_columns=False, elem_id="curated-gallery")
                    with gr.Row(equal_height=False, elem_id="curated-pages"):
                        self.prev_page_btn = gr.Button("← page", size="sm", scale=0, min_width=90, elem_id="page-prev")
                        self.page = gr.Number(value=1, precision=0, minimum=1, show_label=False, container=False,
                                              scale=0, min_width=70, elem_id="page")
                        self.next_page_btn = gr.Button("page →", size="sm", scale=0, min_width=90, elem_id="page-next")
                    self.counts = gr.Markdown("", elem_id="counts")
                with gr.Column(scale=2, min_width=320):
                    self._render_opened()

    def _render_bars(self) -> None:
        """The filter row and the export row."""
        with gr.Row(equal_height=False, elem_id="curated-filters"):
            self.f_category = gr.Dropdown(choices=[], value="", allow_custom_value=True, label="Category",
                                          elem_id="filter-category")
            self.f_defect = gr.Dropdown(choices=[], value="", allow_custom_value=True, label="Defect type",
                                        elem_id="filter-defect-type")
            self.f_engine = gr.Dropdown(choices=[], value="", allow_custom_value=True, label="Engine",
                                        elem_id="filter-engine")
            self.f_from = gr.Textbox(label="Accepted from", placeholder="YYYY-MM-DD", max_lines=1, elem_id="filter-from")
            self.f_to = gr.Textbox(label="to", placeholder="YYYY-MM-DD", max_lines=1, elem_id="filter-to")
            self.refresh = gr.Button("Apply / refresh", size="sm", scale=0, min_width=130, elem_id="refresh-curated")
        with gr.Row(equal_height=False, elem_id="curated-export"):
            self.fmt = gr.Radio(list(EXPORT_FORMATS), value=EXPORT_FORMATS[0], label="Export format", scale=2,
                                elem_id="export-format")
            self.scope = gr.Radio(list(SCOPES), value=SCOPES[0], label="Export what", scale=2, elem_id="export-scope")
            with gr.Column(scale=2, min_width=200):
                self.export_btn = gr.Button("Export zip", variant="primary", elem_id="export-btn")
                self.export_file = gr.File(label="Download", interactive=False, visible=False, height=60,
                                           elem_id="export-file")
            self.export_message = gr.Markdown("", elem_id="export-message")

    def _render_opened(self) -> None:
        """The opened sample, its metadata, the picks and the relabel / remove fields."""
        self.full = gr.Image(value=None, type="filepath", label="Opened sample", height=260, interactive=False,
                             buttons=["fullscreen", "download"], elem_id="curated-view")
        # relabel / remove right under the image (in the 1440×900 screen); empty fields leave a label as it is
        with gr.Row():
            self.new_category = gr.Textbox(label="new category", max_lines=1, elem_id="relabel-category")
            self.new_defect = gr.Textbox(label="new defect type", max_lines=1, elem_id="relabel-defect-type")
            self.new_note = gr.Textbox(label="new note", max_lines=1, elem_id="relabel-note")
        with gr.Row():
            self.relabel_btn = gr.Button("Relabel", size="sm", elem_id="relabel-btn")
            self.remove_btn = gr.Button("Remove", size="sm", variant="stop", elem_id="remove-btn")
        # what opening, relabelling and removing say, right under their buttons (export says its own beside it)
        self.message = gr.Markdown("", elem_id="curated-message")
        self.picks = gr.CheckboxGroup(choices=[], value=[], label="Tick samples of this page for bulk actions "
                                      "(none ticked = the opened one)", elem_id="curated-picks")
        with gr.Accordion("Metadata", open=False):
            self.metadata = gr.Code(value="", language="json", label="metadata", elem_id="curated-metadata")

    # ------------------------------------------------------------------ events
    @property
    def filters(self) -> list[Any]:
        return [self.f_category, self.f_defect, self.f_engine, self.f_from, self.f_to]

    @property
    def workspace_outputs(self) -> list[Any]:
        return [self.gallery, self.ids, self.page, self.counts, self.picks]

    @property
    def refresh_event(self) -> tuple[Callable, list[Any], list[Any]]:
        """(fn, inputs, outputs) that refresh the tab (run when it is shown and on its own controls)."""
        return (self.browse, [*self.filters, self.page],
                [*self.workspace_outputs, self.f_category, self.f_defect, self.f_engine, self.message])

    def wire(self) -> None:
        outputs = [*self.workspace_outputs, self.message]
        for trigger in (self.refresh.click, self.tab.select, self.page.submit, self.f_from.submit, self.f_to.submit,
                        self.f_category.select, self.f_defect.select, self.f_engine.select):
            trigger(*self.refresh_event, api_name="ui_curated", **QUIET)
        self.prev_page_btn.click(self.previous_page, [*self.filters, self.page], outputs, api_name="ui_curated_page",
                             **QUIET)
        self.next_page_btn.click(self.next_page, [*self.filters, self.page], outputs, api_name="ui_curated_page",
                             **QUIET)
        self.gallery.select(self.open_sample, self.ids,
                            [self.full, self.metadata, self.opened, self.new_category, self.new_defect, self.message],
                            api_name="ui_select_curated", **QUIET)
        self.relabel_btn.click(self.relabel, [self.picks, self.opened, self.new_category, self.new_defect,
                                              self.new_note, *self.filters, self.page], outputs,
                               api_name="ui_relabel", **UI)
        self.remove_btn.click(self.remove, [self.picks, self.opened, self.armed, *self.filters, self.page],
                              [*outputs[:-1], self.full, self.metadata, self.opened, self.armed, outputs[-1]],
                              api_name="ui_remove", **UI)
        self.export_btn.click(self.export, [self.fmt, self.scope, *self.filters],
                              [self.export_file, self.export_message], api_name="ui_export",
                              show_progress_on=self.export_message, concurrency_limit=2,
                              concurrency_id="export", **UI)

    # ------------------------------------------------------------------ what the tab shows
    def workspace(self, filters: Filters, page: Any = 1) -> tuple[Any, ...]:
        """(gallery items, ids in gallery order, page, counts markdown, picks) for ``filters``."""
        records = self.service.records(filters)
        shown, number, pages = page_of(records, page)
        folder = self.service.scratch("thumbs")
        items, ids = [], []
        for rec in shown:
            try:
                items.append((thumbnail_file(rec, folder), caption(rec)))
                ids.append(str(rec.id))
            except (StudioError, OSError):
                log.warning("curated sample %s has unreadable files", rec.id)
        choices = [(f"{caption(r)} · …{str(r.id)[-6:]}", str(r.id)) for r in shown if str(r.id) in ids]
        counts = self.counts_markdown(len(records), filters, number, pages)
        return items, ids, number, counts, gr.update(choices=choices, value=[])

    def counts_markdown(self, matching: int, filters: Filters, page: int = 1, pages: int = 1) -> str:
        """How many samples match, which page this is, and the store's counts per category · defect type."""
        stats = self.service.stats()
        total = stats.get("total", 0)
        if not total:
            return "The curated set is empty. Accept candidates on the Workstation tab; they are kept in the data folder."
        nested = stats.get("by_category_and_defect_type") or {}
        pairs = ", ".join(f"{c or '?'} · {d or '?'} **{n}**" for c, defects in sorted(nested.items())
                          for d, n in sorted(defects.items()))
        head = f"**{matching}** of {total} sample(s) match ({filters.describe()}) · page {page} of {pages}"
        return f"{head}  \nIn the store: {pairs}"

    def filter_choices(self) -> tuple[Any, Any, Any]:
        """Choices of the category, defect type and engine filters (what is in the store)."""
        stats = self.service.stats()
        engines = sorted({engine_of(r) for r in self.service.records()} - {""})
        return (gr.update(choices=sorted(k for k in stats.get("by_category") or {} if k)),
                gr.update(choices=sorted(k for k in stats.get("by_defect_type") or {} if k)),
                gr.update(choices=engines))

    # ------------------------------------------------------------------ browsing
    @keeps_work(WORKSPACE + 4)
    def browse(self, category: str, defect_type: str, engine: str, date_from: str, date_to: str,
               page: float) -> tuple[Any, ...]:
        """Show one page of the samples matching the filters (and refresh the filters' choices)."""
        bundle = self.workspace(Filters.of(category, defect_type, engine, date_from, date_to), page)
        return (*bundle, *self.filter_choices(), "")

    def _turn(self, filters: tuple[Any, ...], page: float, delta: int) -> tuple[Any, ...]:
        return (*self.workspace(Filters.of(*filters), int(page or 1) + delta), "")

    @keeps_work(WORKSPACE + 1)
    def previous_page(self, category: str, defect_type: str, engine: str, date_from: str, date_to: str,
                      page: float) -> tuple[Any, ...]:
        """The previous page."""
        return self._turn((category, defect_type, engine, date_from, date_to), page, -1)

    @keeps_work(WORKSPACE + 1)
    def next_page(self, category: str, defect_type: str, engine: str, date_from: str, date_to: str,
                   page: float) -> tuple[Any, ...]:
        """The next page."""
        return self._turn((category, defect_type, engine, date_from, date_to), page, 1)

    @keeps_work(6)
    def open_sample(self, ids: list[str], evt: gr.SelectData) -> tuple[Any, ...]:
        """A curated sample was clicked: its full-size view, metadata and labels to edit.
        Returns (image, metadata, selected id, category, defect type, message)."""
        index = clicked(evt, len(ids or []))
        if index is None:
            raise InputError("Click a curated sample to open it.")
        record = self.service.ctx.store.get(ids[index])
        meta = {"id": record.id, "category": record.category, "defect_type": record.defect_type,
                "note": record.note, "accepted_at": record.accepted_at, "size": [record.width, record.height],
                **{k: v for k, v in (record.metadata or {}).items() if k not in ("category", "defect_type", "note")}}
        shown = thumbnail_file(record, self.service.scratch("thumbs"), OPENED_MAX, crop=False)
        # the relabel fields stay empty (= leave as it is), so a bulk relabel never writes this sample's labels
        return (shown, json.dumps(meta, indent=1, default=str), record.id,
                gr.update(value="", placeholder=f"now: {record.category}"),
                gr.update(value="", placeholder=f"now: {record.defect_type}"), f"Opened `{record.id}`.")

    # ------------------------------------------------------------------ changing the set
    @keeps_work(WORKSPACE + 1)
    def relabel(self, picks: list[str], selected: str | None, new_category: str, new_defect: str, new_note: str,
                category: str, defect_type: str, engine: str, date_from: str, date_to: str,
                page: float) -> tuple[Any, ...]:
        """Relabel the ticked samples (or the opened one); empty fields stay as they are."""
        ids = self.service.relabel(targets(picks, selected), new_category, new_defect, new_note)
        filters = Filters.of(category, defect_type, engine, date_from, date_to)
        return (*self.workspace(filters, page), f"Relabelled {len(ids)} sample(s).")

    @keeps_work(WORKSPACE + 5)
    def remove(self, picks: list[str], selected: str | None, armed: list[str], category: str, defect_type: str,
               engine: str, date_from: str, date_to: str, page: float) -> tuple[Any, ...]:
        """Remove the ticked samples (or the opened one) from the curated set, on a second click on the same
        ones (the first asks); the opened view closes when its sample went. Returns the workspace, (view,
        metadata, opened id, armed ids) and a message."""
        ids = targets(picks, selected)
        named = ", ".join(f"`{i}`" for i in ids[:5]) + (" …" if len(ids) > 5 else "")
        if sorted(ids) != sorted(armed or []):
            keep = [gr.skip()] * (WORKSPACE + 3)
            return (*keep, ids, f"Remove {len(ids)} sample(s) ({named}) from the curated set? "
                                "Press **Remove** again to confirm.")
        self.service.remove(ids)
        filters = Filters.of(category, defect_type, engine, date_from, date_to)
        closed = (None, "", None) if selected in ids else (gr.skip(), gr.skip(), gr.skip())
        return (*self.workspace(filters, page), *closed, [],
                f"Removed {len(ids)} sample(s) from the curated set: {named}.")

    @keeps_work(2)
    def export(self, fmt: str, scope: str, category: str, defect_type: str, engine: str, date_from: str,
               date_to: str, progress: Any = gr.Progress()) -> tuple[Any, str]:
        """Export the current filter (or the whole store) and offer the zip for download."""
        filters = Filters.of(category, defect_type, engine, date_from, date_to) if scope == SCOPES[0] else Filters()
        path, count = self.service.export(fmt, filters, progress_fn(progress))
        return (gr.update(value=str(path), visible=True),
                f"Exported {count} sample(s) ({filters.describe()}) as **{fmt}**: `{path.name}`.")
