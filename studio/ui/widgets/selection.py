"""Reading a gallery click (``gr.SelectData``)."""
from __future__ import annotations

import gradio as gr


def clicked(evt: gr.SelectData, count: int) -> int | None:
    """The index of the clicked gallery item when it is one of ``count`` shown, else None."""
    index = evt.index if isinstance(evt.index, int) else None
    return index if index is not None and 0 <= index < count else None
