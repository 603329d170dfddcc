"""The model work of a request, run on the process-wide engines (on a ZeroGPU slot when on Spaces).

Engines are kept in a module-level registry so that GPU workers need not pickle them.
"""
from __future__ import annotations

from typing import Any, Callable

from studio.types import AttentionTrace, Candidate, ProgressFn, SynthesisRequest
from studio.ui.space import explain_seconds, generate_seconds

try:  # Hugging Face ZeroGPU: optional, never required
    import spaces  # type: ignore

    def _gpu(duration: Callable[..., int]) -> Callable[[Callable], Callable]:
        return spaces.GPU(duration=duration)  # a slot sized to each request's work

    ON_SPACES_GPU = True
except Exception:  # ImportError, or a broken install
    ON_SPACES_GPU = False

    def _gpu(duration: Callable[..., int]) -> Callable[[Callable], Callable]:
        return lambda fn: fn

#: name -> engine, filled by :func:`register_engines`.
_ENGINES: dict[str, Any] = {}


def register_engines(engines: dict[str, Any]) -> None:
    """Make ``engines`` (name -> engine) the ones :func:`run_generate` and :func:`run_explain` use."""
    _ENGINES.update(engines)


@_gpu(generate_seconds)
def run_generate(engine_name: str, request: SynthesisRequest, progress: ProgressFn | None = None) -> list[Candidate]:
    """Engine.generate on the process-wide engine (the model work of one request)."""
    return _ENGINES[engine_name].generate(request, progress)


@_gpu(explain_seconds)
def run_explain(engine_name: str, request: SynthesisRequest, progress: ProgressFn | None = None) -> AttentionTrace:
    """Engine.explain on the process-wide engine."""
    return _ENGINES[engine_name].explain(request, progress)
