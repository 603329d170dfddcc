"""The Gradio studio: blocks and callbacks only; engines, store and export do the work.

``build_context`` loads the engines once and opens the store; ``build_demo`` builds the page
(and the ``gradio_client`` API) around that shared context; ``CSS`` and ``head_html()`` go to
``launch`` (the layout and the review keys).
"""
from __future__ import annotations

from studio.ui.context import StudioContext, build_context
from studio.ui.keyboard import head_html
from studio.ui.layout import build_demo
from studio.ui.style import CSS

__all__ = ["CSS", "StudioContext", "build_context", "build_demo", "head_html"]
