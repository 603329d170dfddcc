"""Everything the studio's buttons do: one :class:`Studio` per process, built by the layout.

Two families share one core (:class:`~studio.ui.actions.Actions`):

- ``api_*`` methods (:mod:`studio.ui.api`) are the documented ``gradio_client`` surface
  (plain files, numbers, text);
- ``ui_*`` methods (:mod:`studio.ui.page`) are what the page's widgets call (editor values,
  gallery selections).

Every method turns a :class:`~studio.errors.StudioError` into a ``gr.Error`` with the same
sentence, and any other exception into a generic ``gr.Error`` (see :mod:`studio.ui.feedback`).
"""
from __future__ import annotations

from studio.ui.api import ApiEndpoints
from studio.ui.page import PageCallbacks


class Studio(PageCallbacks, ApiEndpoints):
    """The callbacks of one studio process, bound to its shared :class:`StudioContext`.

    One object serves both families, so the page and the API share its per-session accept locks."""
