"""The Gradio studio: a page composed of panels over a Gradio-free service; engines, store and export do the work.

``build_context`` loads the engines once and opens the store; ``build_demo`` builds the page (and the
``gradio_client`` API) around that shared context; ``CSS`` and ``head_html()`` go to ``launch`` (the
layout and the keys). They are imported on first use, so the service and the context import no Gradio.
"""
from __future__ import annotations

import importlib
from typing import Any

#: name -> the module that defines it.
EXPORTS = {"CSS": "studio.ui.style", "StudioContext": "studio.ui.context", "build_context": "studio.ui.context",
           "build_demo": "studio.ui.page", "head_html": "studio.ui.page"}
__all__ = sorted(EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(EXPORTS[name]), name)
