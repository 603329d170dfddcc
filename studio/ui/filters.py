"""The curated workspace's view of the store: filters, pages, captions, and a filtered export source.

Category and defect type are filtered by the store itself; engine and date (the ``accepted_at``
day, ``YYYY-MM-DD``) on the records it returns.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from studio.errors import InputError
from studio.store import SampleRecord, Store
from studio.ui.inputs import as_text

#: Samples per page of the curated gallery.
PAGE_SIZE = 24
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Filters:
    """Which curated samples to show or export ("" = any)."""

    category: str = ""
    defect_type: str = ""
    engine: str = ""
    date_from: str = ""
    date_to: str = ""

    @classmethod
    def of(cls, category: Any = "", defect_type: Any = "", engine: Any = "", date_from: Any = "",
           date_to: Any = "") -> Filters:
        """Filters from widget/API values; a date must be ``YYYY-MM-DD``."""
        days = [as_text(d).strip() for d in (date_from, date_to)]
        for day in days:
            if day and not DAY.match(day):
                raise InputError(f"Dates are written YYYY-MM-DD, e.g. 2026-12-01; got {day[:40]!r}.")
        return cls(as_text(category).strip(), as_text(defect_type).strip(), as_text(engine).strip(), *days)


    def describe(self) -> str:
        """The filter in words, for counts and export messages."""
        parts = [f"{k} {v}" for k, v in (("category", self.category), ("defect type", self.defect_type),
                                         ("engine", self.engine), ("from", self.date_from), ("to", self.date_to)) if v]
        return ", ".join(parts) if parts else "all samples"


def engine_of(record: SampleRecord) -> str:
    """The engine that made a sample, from its metadata ("" when unknown)."""
    return str((record.metadata or {}).get("engine") or "")


def matches(record: SampleRecord, filters: Filters) -> bool:
    """Whether ``record`` passes the engine and date filters."""
    day = str(record.accepted_at)[:10]
    if filters.engine and engine_of(record) != filters.engine:
        return False
    if filters.date_from and day < filters.date_from:
        return False
    return not (filters.date_to and day > filters.date_to)


def filtered(store: Store, filters: Filters) -> list[SampleRecord]:
    """The samples of ``store`` passing ``filters``, oldest first."""
    records = store.list(category=filters.category or None, defect_type=filters.defect_type or None)
    return [r for r in records if matches(r, filters)]


def page_of(records: list[SampleRecord], page: Any, size: int = PAGE_SIZE) -> tuple[list[SampleRecord], int, int]:
    """(records on ``page`` (1-based, newest first), that page, the number of pages); a page past
    the end shows the last one."""
    pages = max(1, math.ceil(len(records) / size))
    try:
        number = int(float(page))
    except (TypeError, ValueError):
        number = 1
    number = min(max(number, 1), pages)
    newest = sorted(records, key=lambda r: (str(r.accepted_at), str(r.id)), reverse=True)
    return newest[(number - 1) * size:number * size], number, pages


def caption(record: SampleRecord) -> str:
    """``category · defect type`` of a curated sample."""
    return f"{record.category or 'no category'} · {record.defect_type or 'no defect type'}"

