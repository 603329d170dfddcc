"""A region editor block: the image editor (brush), quick shapes, Clear region and the restore that keeps
the photo when the editor's own trash icon empties it. The normal image and the reference use one each.

The pixels' logic is :mod:`studio.ui.widgets.editor` (Gradio-free); this module holds the blocks, their
events and thin callbacks. Every callback keeps the editor as it was on failure and says why.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import gradio as gr

from studio.imaging import load_image, load_mask
from studio.ui.events import QUIET
from studio.ui.widgets import editor as ed
from studio.ui.widgets.feedback import keeps_work
from studio.visualize import STROKE_ALPHA, STROKE_RGB

#: Brush colour and opacity (as the server tints its presets): the surface stays visible under it.
BRUSH = ("#{:02x}{:02x}{:02x}".format(*STROKE_RGB), STROKE_ALPHA)
NO_IMAGE = "Pick an example or upload a normal image first (① Image)."


class RegionEditor:
    """One editor with its server-side source (``gr.State``) and its shape row."""

    def __init__(self, prefix: str, folder: Callable[[], Path], missing: str = NO_IMAGE, clear_id: str = "") -> None:
        """``prefix`` names the buttons' element ids (``<prefix>-shape-box`` …); ``clear_id`` that of Clear region
        (default ``<prefix>-clear``)."""
        self.prefix, self.folder, self.missing = prefix, folder, missing
        self.clear_id = clear_id or f"{prefix}-clear"
        self.editor: gr.ImageEditor
        self.source: gr.State
        self.suggested: gr.Button | None = None

    @property
    def pair(self) -> list[Any]:
        """The editor and its source, as event inputs/outputs."""
        return [self.editor, self.source]

    def render(self, label: str, elem_id: str, value: tuple[dict | None, ed.Source | None], height: int, *,
               suggested: bool = False) -> None:
        """The editor, the shape buttons (plus ``+ suggested`` when asked), Clear region and the shape sliders."""
        self.source = gr.State(value[1])
        self.editor = gr.ImageEditor(
            value=value[0], label=label, type="numpy", image_mode="RGBA", sources=(), transforms=(), layers=False,
            brush=gr.Brush(colors=[BRUSH], default_color=BRUSH, color_mode="fixed"), eraser=gr.Eraser(),
            height=height, format="png", placeholder="Pick an example or upload an image first", elem_id=elem_id,
        )
        with gr.Row(elem_classes=["tight"]):
            self.shapes = [(gr.Button(f"+ {shape}", size="sm", min_width=60, elem_id=f"{self.prefix}-shape-{shape}"),
                            shape) for shape in ed.SHAPES]
            if suggested:
                self.suggested = gr.Button("+ suggested", size="sm", min_width=60, elem_id=f"{self.prefix}-suggested")
            self.clear = gr.Button("Clear region", size="sm", variant="secondary", min_width=60,
                                   elem_id=self.clear_id)
        with gr.Accordion("Shape size and position", open=False):
            with gr.Row():
                self.sliders = [gr.Slider(2, 60, value=18, step=1, label="size (% of image)"),
                                gr.Slider(0, 100, value=50, step=1, label="centre x (%)"),
                                gr.Slider(0, 100, value=50, step=1, label="centre y (%)")]

    def wire(self, message: gr.Markdown) -> None:
        """Shapes, Clear region and the restore after the trash icon (each says what it did in ``message``)."""
        for button, shape in self.shapes:
            button.click(lambda v, src, s, x, y, _shape=shape: self.add_shape(v, src, _shape, s, x, y),
                         [*self.pair, *self.sliders], [*self.pair, message], api_name=f"ui_add_{shape}", **QUIET)
        self.clear.click(self.clear_region, self.pair, [*self.pair, message], api_name="ui_clear_region", **QUIET)
        self.editor.clear(self.restore_image, self.source, [*self.pair, message], api_name="ui_restore_image",
                          **QUIET)

    def show(self, image: Any, region: Any = None, path: str | None = None) -> tuple[dict, ed.Source]:
        """(editor value, source) showing ``image`` with ``region`` marked (see :func:`editor.show`)."""
        return ed.show(image, region, self.folder(), path)

    @keeps_work(3)
    def add_shape(self, value: Any, source: ed.Source | None, shape: str, size: float, x: float,
                  y: float) -> tuple[Any, ...]:
        """Add a quick shape (ellipse, line, box) to the region."""
        return (*ed.bake(value, source, lambda dims: ed.shape_mask(dims, shape, size, x, y), self.folder(),
                         "image", self.missing), "")

    @keeps_work(3)
    def add_mask(self, value: Any, source: ed.Source | None, mask_path: Path) -> tuple[Any, ...]:
        """Add the mask in the file ``mask_path`` to the region."""
        return (*ed.bake(value, source, lambda size: load_mask(mask_path, size), self.folder(), "image",
                         self.missing), "")

    @keeps_work(3)
    def clear_region(self, value: Any, source: ed.Source | None) -> tuple[Any, ...]:
        """Remove the whole region (strokes, shapes, example region); keep the image."""
        return (*ed.clear(value, source, self.folder(), "image"), "Region cleared; the image is kept.")

    @keeps_work(3)
    def restore_image(self, source: ed.Source | None) -> tuple[Any, ...]:
        """The editor's own trash icon emptied the canvas: bring the photo and the region the server marked
        back (only brush strokes go; the region is cleared with Clear region). Returns (editor, source, message)."""
        if not ed.has_image(source):
            return gr.skip(), gr.skip(), ""
        image = load_image(source["image"], what="image")
        preset = load_mask(source["preset"], (image.shape[1], image.shape[0])) if source.get("preset") else None
        value, restored = ed.show(image, preset, self.folder(), source["image"])
        return value, restored, ("The photo stays in the editor (the trash icon removes brush strokes only); "
                                 "use **Clear region** to remove the whole region.")
