"""Engines: the protocol every synthesis engine follows, the registry and auto-selection.

An engine takes one :class:`~studio.types.SynthesisRequest` and returns
:class:`~studio.types.Candidate` objects; the UI, CLI, store and exports never know
which engine ran. Engines are registered by name (:data:`REGISTRY`, imported lazily), created once per process and
held here (:func:`get_engine`, :func:`loaded_engine`): the one place that holds loaded engines.
"""
from __future__ import annotations

import importlib
import threading
from typing import Any, Protocol, runtime_checkable

from studio.errors import InputError
from studio.types import AttentionTrace, Candidate, EngineParameter, ProgressFn, SynthesisRequest

#: name -> "module:Class" of every engine (imported on first use; torch only when a diffusion engine is asked for).
REGISTRY: dict[str, str] = {
    "classic": "studio.engines.classic.engine:ClassicEngine",
    "anomalycontrol": "studio.engines.anomalycontrol.pipeline:AnomalyControlEngine",
}
#: name -> "module:NAME" of each engine's torch-free parameter declaration (CLI flags, batch keys).
DECLARATIONS: dict[str, str] = {
    "classic": "studio.engines.classic.engine:ClassicEngine",
    "anomalycontrol": "studio.engines.anomalycontrol.parameters:PARAMETERS",
}
ENGINE_NAMES = tuple(REGISTRY)


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
        """The request parameters this instance uses (ranges, defaults, whether the page shows them): the
        Advanced panel, the API, the CLI, batch keys and metadata all come from it. It may depend on how
        the instance was loaded (e.g. its guidance mode)."""

    def gpu_seconds(self, request: SynthesisRequest, work: str = "generate") -> int:
        """Seconds of GPU time ``work`` ("generate" or "explain") needs on ``request``; 0 = no GPU."""

    def generate(self, request: SynthesisRequest, progress: ProgressFn | None = None) -> list[Candidate]:
        """Synthesise ``request.num`` candidates (one batched call where the engine can).

        Every candidate's metadata carries ``score``: ``{"value": float, "method": str}``, a quality
        score where higher is better, and a sentence saying how it was computed.
        """

    def explain(self, request: SynthesisRequest, progress: ProgressFn | None = None) -> AttentionTrace:
        """The ASEA attention maps for the request's reference, or a trace saying why there are none."""

    def status(self) -> str:
        """One line for a status bar: engine, weights, and how to get more if something is missing."""


def _import(target: str) -> Any:
    module, attribute = target.split(":")
    return getattr(importlib.import_module(module), attribute)


def engine_class(name: str) -> type:
    """The class registered as ``name`` (imported now); it says ``needs_weights``, ``available()``,
    ``fetch()`` and ``declared_parameters()``, and ``load(weights)`` makes an instance."""
    if name not in REGISTRY:
        raise InputError(f"Unknown engine {name!r}; choose one of: auto, {', '.join(ENGINE_NAMES)}.")
    return _import(REGISTRY[name])


def declared_parameters(name: str | None = None) -> tuple[EngineParameter, ...]:
    """Every parameter engine ``name`` may use (None: of all engines, each name once), without loading weights."""
    names = ENGINE_NAMES if name in (None, "", "auto") else (name,)
    found: dict[str, EngineParameter] = {}
    for each in names:
        if each not in DECLARATIONS:
            raise InputError(f"Unknown engine {each!r}; choose one of: auto, {', '.join(ENGINE_NAMES)}.")
        declared = _import(DECLARATIONS[each])
        for parameter in (declared.declared_parameters() if isinstance(declared, type) else declared):
            found.setdefault(parameter.name, parameter)
    return tuple(found.values())


def auto_engine_name() -> str:
    """``anomalycontrol`` when the real diffusion weights are present locally, else ``classic``."""
    from studio.engines.anomalycontrol.weights import sd15_available  # file checks only, no torch

    return "anomalycontrol" if sd15_available() else "classic"


_lock = threading.Lock()
#: The one place that holds loaded engines: name -> the process's instance (one per name).
_loaded: dict[str, Engine] = {}
_weights: dict[str, str | None] = {}  # the weights each was loaded with


def get_engine(name: str | None = "auto", weights: str | None = None) -> Engine:
    """The process-wide engine ``name``, loaded (with ``weights``) on first use and shared afterwards;
    asking for other weights than the loaded ones loads those instead."""
    resolved = auto_engine_name() if name in (None, "", "auto") else name
    cls = engine_class(resolved)
    with _lock:
        engine = _loaded.get(resolved)
        if engine is None or (weights and cls.needs_weights and weights != _weights.get(resolved)):
            engine = cls.load(weights)
            _loaded[resolved], _weights[resolved] = engine, weights
        return engine


def register(engine: Engine) -> Engine:
    """Hold ``engine`` (one made elsewhere, e.g. a test double) as the process's engine of its name."""
    with _lock:
        _loaded[engine.name], _weights[engine.name] = engine, getattr(engine, "profile", None)
    return engine


def loaded_engine(name: str) -> Engine:
    """The loaded engine called ``name`` (for work that crosses a process boundary by name, e.g. ZeroGPU)."""
    engine = _loaded.get(name)
    if engine is None:
        raise InputError(f"The engine {name!r} is not loaded in this process; loaded: {', '.join(_loaded) or 'none'}.")
    return engine
