"""Engines: the protocol every synthesis engine follows, the registry and auto-selection.

An engine takes one :class:`~studio.types.SynthesisRequest` and returns
:class:`~studio.types.Candidate` objects; the UI, CLI, store and exports never know
which engine ran. Engines are created once per process and shared (:func:`get_engine`).
"""
from __future__ import annotations

import threading
from typing import Protocol, runtime_checkable

from studio.errors import InputError
from studio.types import AttentionTrace, Candidate, EngineParameter, ProgressFn, SynthesisRequest

ENGINE_NAMES = ("classic", "anomalycontrol")


@runtime_checkable
class Engine(Protocol):
    """What every engine provides."""

    #: Registry name, e.g. "classic" (for the CLI and metadata; the UI never compares it).
    name: str
    #: Human label for menus, e.g. "classic (weight-free)" or "anomalycontrol · sd15".
    label: str
    #: Weight profile actually loaded, e.g. "none", "tiny", "sd15-random", "sd15" or a path.
    profile: str
    #: Whether :meth:`explain` returns real attention maps (ASEA) for a request with a reference.
    can_explain: bool
    #: One line telling the user how to get more out of the studio ("" when nothing to add),
    #: e.g. where the full model's weights go when only the weight-free engine runs.
    hint: str

    def parameters(self) -> tuple[EngineParameter, ...]:
        """The request parameters this engine uses (ranges and defaults), for the UI and CLI help."""

    def generate(self, request: SynthesisRequest, progress: ProgressFn | None = None) -> list[Candidate]:
        """Synthesise ``request.num`` candidates (one batched call where the engine can).

        Every candidate's metadata carries ``score``: ``{"value": float, "method": str}``, a quality
        score where higher is better, and a sentence saying how it was computed.
        """

    def explain(self, request: SynthesisRequest, progress: ProgressFn | None = None) -> AttentionTrace:
        """The ASEA attention maps for the request's reference, or a trace saying why there are none."""

    def status(self) -> str:
        """One line for a status bar: engine, weights, and how to get more if something is missing."""


def auto_engine_name() -> str:
    """``anomalycontrol`` when the real diffusion weights are present locally, else ``classic``."""
    from studio.engines.anomalycontrol.weights import sd15_available  # file checks only, no torch

    return "anomalycontrol" if sd15_available() else "classic"


_lock = threading.Lock()
_engines: dict[tuple[str, str | None], Engine] = {}


def get_engine(name: str | None = "auto", weights: str | None = None) -> Engine:
    """The process-wide engine for (name, weights), created on first use and shared afterwards."""
    resolved = auto_engine_name() if name in (None, "", "auto") else name
    if resolved not in ENGINE_NAMES:
        raise InputError(f"Unknown engine {name!r}; choose one of: auto, {', '.join(ENGINE_NAMES)}.")
    key = (resolved, None if resolved == "classic" else (weights or "auto"))
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _create(resolved, weights)
            _engines[key] = engine
        return engine


def _create(name: str, weights: str | None) -> Engine:
    if name == "classic":
        from studio.engines.classic import ClassicEngine

        return ClassicEngine()
    from studio.engines.anomalycontrol.pipeline import AnomalyControlEngine

    return AnomalyControlEngine.load(weights)
