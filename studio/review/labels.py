"""The labels a review queue stores, and the check that keeps free-text categories from splitting.

:class:`QueueLabels` are captured once, when a queue opens (the fields as typed, :func:`typed_labels`;
an accept refuses empty ones), and every accept of that queue stores exactly them; changing them is
:func:`studio.ui.review_queue.relabel_undecided`, never a side effect of a text field.

:func:`close_name` finds an existing name a new one is probably a typo of: the same after case and
``_``/``-``/space are ignored, or one edit (insert, delete, substitute) apart. The page asks before
it creates such a category.

API::

    typed_labels(category, defect_type, note="") -> QueueLabels    # as typed (empty allowed)
    close_name(name, existing) -> str | None                       # the existing name it is close to
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from studio.errors import InputError
from studio.types import clean_text

#: The longest category or defect type accepted (characters).
LABEL_MAX = 200
_SEPARATORS = re.compile(r"[\s_\-]+")


@dataclass(frozen=True)
class QueueLabels:
    """Category, defect type and note pinned to one queue: what its accepts store."""

    category: str
    defect_type: str
    note: str = ""

    def describe(self) -> str:
        """One line for the page: ``category · defect type`` (and the note)."""
        text = f"{self.category} · {self.defect_type}"
        return f"{text} · “{self.note}”" if self.note else text


def label_text(value: Any, what: str) -> str:
    """A cleaned category or defect type (empty allowed); InputError when it is not text or too long."""
    text = clean_text(value if value is None or isinstance(value, str) else str(value), what)
    if len(text) > LABEL_MAX:
        raise InputError(f"The {what} is {len(text)} characters long; keep it under {LABEL_MAX}.")
    return text


def typed_labels(category: Any, defect_type: Any, note: Any = "") -> QueueLabels:
    """The label fields as typed, cleaned (empty allowed: an accept refuses them later)."""
    return QueueLabels(label_text(category, "category"), label_text(defect_type, "defect type"),
                       clean_text(note if isinstance(note, str) or note is None else str(note), "note"))


def close_name(name: str, existing: Iterable[str]) -> str | None:
    """The first of ``existing`` that ``name`` nearly matches (None when it is new, or exactly one of them).

    Near: equal ignoring case and ``_``/``-``/spaces, or one edit apart after that.
    """
    names = list(existing)
    if name in names:
        return None
    key = _key(name)
    same = [n for n in names if _key(n) == key]
    if same:
        return same[0]
    return next((n for n in names if _one_edit(_key(n), key)), None)


def _key(name: str) -> str:
    return _SEPARATORS.sub("", name.casefold())


def _one_edit(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by exactly one insertion, deletion or substitution."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i + 1:] == b[i + 1:] if len(a) == len(b) else a[i:] == b[i + 1:]
