"""The curated workspace tab: a filtered, paginated gallery of the store, a full view of one
sample with its metadata, relabel and remove (one or many), and export of the filter or all.

Every callback returns the workspace bundle (gallery, ids on the page, page, counts, picks)
first where it changes the set, and its message line last; on failure nothing but the message changes.
"""
from __future__ import annotations

import json
import logging
from typing import Any

import gradio as gr

from studio.errors import InputError, StudioError
from studio.ui import session as ss
from studio.ui.curated import Filters, caption, engine_of, page_of
from studio.ui.feedback import keeps_work
from studio.ui.page import clicked
from studio.ui.review_page import ReviewCallbacks
from studio.ui.views import OPENED_MAX, thumbnail_file

log = logging.getLogger(__name__)

#: The outputs a change of the curated set refreshes: gallery, ids, page, counts, picks.
WORKSPACE = 5
SCOPES = ("current filter", "whole store")


class CuratedCallbacks(ReviewCallbacks):
    """The curated workspace."""

    def workspace(self, filters: Filters, page: Any = 1) -> tuple[Any, ...]:
        """(gallery items, ids in gallery order, page, counts markdown, picks) for ``filters``."""
        self.ctx.prune("thumbs", ss.SESSION_TTL_S)
        records = self._records(filters)
        shown, number, pages = page_of(records, page)
        items, ids = [], []
        for rec in shown:
            try:
                items.append((thumbnail_file(rec, self.ctx.temp_root / "thumbs"), caption(rec)))
                ids.append(str(rec.id))
            except (StudioError, OSError):
                log.warning("curated sample %s has unreadable files", rec.id)
        choices = [(f"{caption(r)} · …{str(r.id)[-6:]}", str(r.id)) for r in shown if str(r.id) in ids]
        counts = self.counts_markdown(len(records), filters, number, pages)
        return items, ids, number, counts, gr.update(choices=choices, value=[])

    def counts_markdown(self, matching: int, filters: Filters, page: int = 1, pages: int = 1) -> str:
        """How many samples match, which page this is, and the store's counts per category · defect type."""
        stats = self._stats()
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
        stats = self._stats()
        engines = sorted({engine_of(r) for r in self._records()} - {""})
        return (gr.update(choices=sorted(k for k in stats.get("by_category") or {} if k)),
                gr.update(choices=sorted(k for k in stats.get("by_defect_type") or {} if k)),
                gr.update(choices=engines))

    # ------------------------------------------------------------------ browsing
    @keeps_work(WORKSPACE + 4)
    def ui_curated(self, category: str, defect_type: str, engine: str, date_from: str, date_to: str, page: float):
        """Show one page of the samples matching the filters (and refresh the filters' choices)."""
        bundle = self.workspace(Filters.of(category, defect_type, engine, date_from, date_to), page)
        return (*bundle, *self.filter_choices(), "")

    @keeps_work(WORKSPACE + 1)
    def ui_curated_page(self, category: str, defect_type: str, engine: str, date_from: str, date_to: str,
                        page: float, delta: int):
        """The previous or next page."""
        filters = Filters.of(category, defect_type, engine, date_from, date_to)
        return (*self.workspace(filters, int(page or 1) + delta), "")

    @keeps_work(6)
    def ui_select_curated(self, ids: list[str], evt: gr.SelectData):
        """A curated sample was clicked: its full-size view, metadata and labels to edit.
        Returns (image, metadata, selected id, category, defect type, message)."""
        index = clicked(evt, len(ids or []))
        if index is None:
            raise InputError("Click a curated sample to open it.")
        record = self.ctx.store.get(ids[index])
        meta = {"id": record.id, "category": record.category, "defect_type": record.defect_type,
                "note": record.note, "accepted_at": record.accepted_at, "size": [record.width, record.height],
                **{k: v for k, v in (record.metadata or {}).items() if k not in ("category", "defect_type", "note")}}
        shown = thumbnail_file(record, self.ctx.temp_root / "thumbs", OPENED_MAX)
        return (shown, json.dumps(meta, indent=1, default=str), record.id, record.category,
                record.defect_type, f"Opened `{record.id}`.")

    # ------------------------------------------------------------------ changing the set
    def _targets(self, picks: list[str] | None, selected: str | None) -> list[str]:
        ids = list(picks or []) or ([selected] if selected else [])
        if not ids:
            raise InputError("Tick samples in the list (or open one in the gallery) first.")
        return ids

    @keeps_work(WORKSPACE + 1)
    def ui_relabel(self, picks: list[str], selected: str | None, new_category: str, new_defect: str, new_note: str,
                   category: str, defect_type: str, engine: str, date_from: str, date_to: str, page: float):
        """Relabel the ticked samples (or the opened one); empty fields stay as they are."""
        ids = self._relabel(self._targets(picks, selected), new_category, new_defect, new_note)
        filters = Filters.of(category, defect_type, engine, date_from, date_to)
        return (*self.workspace(filters, page), f"Relabelled {len(ids)} sample(s).")

    @keeps_work(WORKSPACE + 1)
    def ui_remove(self, picks: list[str], selected: str | None, category: str, defect_type: str, engine: str,
                  date_from: str, date_to: str, page: float):
        """Remove the ticked samples (or the opened one) from the curated set."""
        ids = self._remove(self._targets(picks, selected))
        filters = Filters.of(category, defect_type, engine, date_from, date_to)
        return (*self.workspace(filters, page), f"Removed {len(ids)} sample(s) from the curated set.")

    @keeps_work(2)
    def ui_export(self, fmt: str, scope: str, category: str, defect_type: str, engine: str, date_from: str,
                  date_to: str, progress=gr.Progress()):
        """Export the current filter (or the whole store) and offer the zip for download."""
        filters = Filters.of(category, defect_type, engine, date_from, date_to) if scope == SCOPES[0] else Filters()
        path, count = self._export(fmt, progress, filters)
        return (gr.update(value=str(path), visible=True),
                f"Exported {count} sample(s) ({filters.describe()}) as **{fmt}**: `{path.name}`.")
