"""Model work on a Hugging Face ZeroGPU slot: the one module that knows about ``spaces``.

On ZeroGPU a function decorated with ``spaces.GPU(duration=...)`` gets a GPU for that long and runs in
a worker process; its arguments cross the process boundary by pickling, so the model never travels:
the engine's *name* does, and the worker finds the process's engine in the registry
(:func:`studio.engines.loaded_engine`), loaded and placed at start-up in the main process as ZeroGPU
expects. The slot's duration is the engine's own estimate (``engine.gpu_seconds``); an engine that
estimates 0 (the weight-free one) never asks for a slot. Without ``spaces`` (any other machine) the
engine runs in place. Progress callbacks do not cross the boundary: on a slot there are none.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

from studio.engines import Engine, loaded_engine
from studio.types import AttentionTrace, Candidate, ProgressFn, SynthesisRequest


def _generate_seconds(engine_name: str, request: SynthesisRequest) -> int:
    return loaded_engine(engine_name).gpu_seconds(request, "generate")


def _explain_seconds(engine_name: str, request: SynthesisRequest) -> int:
    return loaded_engine(engine_name).gpu_seconds(request, "explain")


def _generate(engine_name: str, request: SynthesisRequest) -> list[Candidate]:
    return loaded_engine(engine_name).generate(request, None)


def _explain(engine_name: str, request: SynthesisRequest) -> AttentionTrace:
    return loaded_engine(engine_name).explain(request, None)


@functools.lru_cache(maxsize=1)
def slots() -> dict[str, Callable[..., Any]] | None:
    """The ``spaces.GPU``-wrapped work functions ("generate", "explain"), or None where ``spaces`` is
    not installed (decorated once, on first use)."""
    try:
        import spaces  # type: ignore
    except Exception:  # ImportError, or a broken install: run in place
        return None
    return {"generate": spaces.GPU(duration=_generate_seconds)(_generate),
            "explain": spaces.GPU(duration=_explain_seconds)(_explain)}


def on_zero_gpu() -> bool:
    """Whether model work goes through ``spaces.GPU`` in this process."""
    return slots() is not None


def generate(engine: Engine, request: SynthesisRequest, progress: ProgressFn | None = None) -> list[Candidate]:
    """``engine.generate`` on a GPU slot sized by the engine when it needs one, else in place."""
    gpu = slots()
    if gpu is None or not engine.gpu_seconds(request, "generate"):
        return engine.generate(request, progress)
    return gpu["generate"](engine.name, request)


def explain(engine: Engine, request: SynthesisRequest, progress: ProgressFn | None = None) -> AttentionTrace:
    """``engine.explain`` on a GPU slot sized by the engine when it needs one, else in place."""
    gpu = slots()
    if gpu is None or not engine.gpu_seconds(request, "explain"):
        return engine.explain(request, progress)
    return gpu["explain"](engine.name, request)
