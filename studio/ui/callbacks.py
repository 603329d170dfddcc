"""Everything the studio's buttons do: one :class:`Studio` per process, built by the layout.

Two families share one core (:class:`~studio.ui.actions.Actions`):

- ``api_*`` methods (:mod:`studio.ui.api`) are the documented ``gradio_client`` surface
  (plain files, numbers, text);
- ``ui_*`` methods are what the page's widgets call: the inputs (:mod:`studio.ui.page`), the
  review queue (:mod:`studio.ui.review_page`) and the curated workspace (:mod:`studio.ui.curated_page`).

API methods turn a :class:`~studio.errors.StudioError` into a ``gr.Error`` with the same sentence;
page methods never raise: they leave their outputs as they were and say what went wrong
(see :mod:`studio.ui.feedback`).
"""
from __future__ import annotations

from studio.ui.api import ApiEndpoints
from studio.ui.curated_page import CuratedCallbacks


class Studio(CuratedCallbacks, ApiEndpoints):
    """The callbacks of one studio process, bound to its shared :class:`StudioContext`.

    One object serves both families, so the page and the API share its per-session accept locks."""
