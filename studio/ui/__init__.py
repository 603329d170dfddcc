"""The Gradio studio: blocks and callbacks only; engines, store and export do the work.

``build_context`` loads the engines once and opens the store; ``build_demo`` builds the page
(and the ``gradio_client`` API) around that shared context.
"""
from __future__ import annotations

from studio.ui.context import StudioContext, build_context
from studio.ui.layout import CSS, build_demo

__all__ = ["CSS", "StudioContext", "build_context", "build_demo"]
