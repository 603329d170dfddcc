"""The Gradio studio: a page composed of panels over a Gradio-free service; engines, store and export do the work.

``build_context`` loads the engines once and opens the store; ``build_demo`` builds the page (and the
``gradio_client`` API) around that shared context; ``CSS`` and ``head_html()`` go to ``launch`` (the
layout and the keys).
"""
from __future__ import annotations

from studio.ui.context import StudioContext, build_context
from studio.ui.page import build_demo, head_html
from studio.ui.style import CSS

__all__ = ["CSS", "StudioContext", "build_context", "build_demo", "head_html"]
