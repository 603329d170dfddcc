"""The Advanced panel: the engine, its own parameters and the seed.

The controls come from the engines' declarations (``engine.parameters()``): one per shown parameter
any offered engine declares, visible only while the chosen engine uses it. :meth:`AdvancedPanel.values`
hands a callback exactly the chosen engine's values, so every visible control is an input of the events
that use them (generate, the attention preview) and a hidden one never reaches an engine.
"""
from __future__ import annotations

from typing import Any

import gradio as gr

from studio.engines import Engine
from studio.ui.events import QUIET
from studio.ui.inputs import as_text
from studio.ui.service import StudioService


class AdvancedPanel:
    """Engine dropdown, parameter controls, seed."""

    def __init__(self, service: StudioService) -> None:
        self.service = service

    def render(self) -> None:
        """The tab's blocks (inside the inputs' tabs)."""
        self.engine = gr.Dropdown(choices=[("default engine", "")], value="", label="Engine", elem_id="engine")
        self.params_hint = gr.Markdown("", elem_classes=["hint"], elem_id="params-hint")
        self.controls = {p.name: gr.Slider(p.minimum, p.maximum, value=p.default, step=p.step, label=p.label,
                                           info=p.help, elem_id=f"param-{p.name}")
                         for p in self.service.offered_parameters() if p.shown}
        with gr.Row():
            self.seed = gr.Number(value=0, precision=0, minimum=0, label="Seed", elem_id="seed")
            self.randomise = gr.Checkbox(value=True, label="random seed", elem_id="random-seed")

    @property
    def inputs(self) -> list[Any]:
        """The engine dropdown and every parameter control, as event inputs (see :meth:`values`)."""
        return [self.engine, *self.controls.values()]

    def values(self, engine: Engine, given: tuple[Any, ...]) -> dict[str, Any]:
        """The controls' values (``given``, in :attr:`controls` order) of the parameters ``engine`` uses."""
        used = {p.name for p in engine.parameters()}
        return {name: value for name, value in zip(self.controls, given) if name in used}

    def wire(self, engine_outputs: list[Any]) -> None:
        """Choosing an engine shows its controls; ``engine_outputs`` (preview button, attention hint) follow."""
        self.engine.change(self.show_engine, self.engine, [*self.controls.values(), *engine_outputs,
                                                           self.params_hint], api_name="ui_engine", **QUIET)

    def show_engine(self, engine: str) -> tuple[Any, ...]:
        """Advanced lists exactly the chosen engine's parameters; the attention preview is offered only where
        an engine can explain, else one line says how to get one. Returns (controls..., preview button,
        attention hint, parameters hint)."""
        chosen = self.service.ctx.engine(as_text(engine))
        used = {p.name for p in chosen.parameters() if p.shown}
        explains = self.service.ctx.attention_engine(as_text(engine)) is not None
        controls = [gr.update(visible=name in used) for name in self.controls]
        hint = "" if explains else ("Attention preview: not available with the loaded engine. "
                                    f"{self.service.ctx.explain_hint()}")
        listed = (f"Parameters of **{chosen.label}**:" if used else f"**{chosen.label}** has no tunable parameters.")
        return (*controls, gr.update(visible=explains), hint, listed)

    def load(self, engine: str) -> tuple[Any, ...]:
        """At page load: the engine choices (default first) and what Advanced shows for the chosen one."""
        ctx = self.service.ctx
        choices = [(f"default: {ctx.engine(None).label}", ""),
                   *((label, name) for label, name in ctx.engine_choices()[1:])]
        current = engine if engine in {value for _, value in choices} else ""
        return (gr.update(choices=choices, value=current), *self.show_engine(current))
