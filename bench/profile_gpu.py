"""Where one ``generate`` of the ``anomalycontrol`` engine spends its GPU time, phase by phase and op by op.

    python -m bench.profile_gpu [--weights sd15-random] [--batch 4] [--steps 30] [--out DIR]

Runs one warm-up generate, times one at λ=0 and one at λ=1 phase by phase (wall seconds, the
device synchronised at each phase's edges), then profiles one more with ``torch.profiler``. Each phase of the
request (CSM + ASEA, text encoding, reference tokens, the denoising loop, the BLIP-2 score) is
marked with ``record_function`` by wrapping the engine's methods here, so the engine holds no
profiling code. Prints the phase table and the top ops by device time; writes both to DIR.
"""
from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from bench.bench_anomalycontrol import _inputs

#: (object attribute path on the engine or the pipeline module, phase name)
PHASES = (
    ("engine._semantics", "csm+asea"),
    ("module.run_asea", "asea"),
    ("engine._text_embeddings", "text encoder"),
    ("engine._reference_tokens", "reference tokens"),
    ("engine.pipe.__call__", "denoising loop + vae"),
    ("module.region_match", "blip-2 score"),
)


#: Wall seconds per phase of the last timed run (device synchronised at each phase's edges).
WALL: dict[str, float] = {}


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _marked(name: str, fn: Callable) -> Callable:
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        with record_function(f"phase::{name}"):
            _sync()
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                _sync()
                WALL[name] = WALL.get(name, 0.0) + time.perf_counter() - start
    return run


def mark_phases(engine: Any, module: Any) -> None:
    """Wrap each phase's function in a ``record_function`` range (instance or module attributes)."""
    for path, name in PHASES:
        owner_name, attr = path.split(".", 1)
        owner = engine if owner_name == "engine" else module
        if attr == "pipe.__call__":
            pipe = engine.pipe
            cls = type(pipe)
            patched = type(cls.__name__ + "Marked", (cls,), {"__call__": _marked(name, cls.__call__)})
            pipe.__class__ = patched
            continue
        setattr(owner, attr, _marked(name, getattr(owner, attr)))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="sd15-random")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    from studio.engines.anomalycontrol import pipeline as module
    from studio.engines.anomalycontrol.parameters import PARAMETERS
    from studio.engines.anomalycontrol.pipeline import AnomalyControlEngine
    from studio.types import SynthesisRequest

    engine = AnomalyControlEngine.load(args.weights)
    mark_phases(engine, module)
    image, mask, ref, ref_mask = _inputs()
    request = SynthesisRequest.create(image, mask, "a long scratch", reference=ref, reference_mask=ref_mask,
                                      reference_text="a scratch on metal", num=args.batch, parameters=PARAMETERS,
                                      params={"steps": args.steps, "strength": 0.7, "asea_steps": 5})

    def run(req: SynthesisRequest = request) -> float:
        engine._asea_cache.clear()
        WALL.clear()
        _sync()
        start = time.perf_counter()
        engine.generate(req)
        _sync()
        return time.perf_counter() - start

    run()  # warm-up
    plain = SynthesisRequest.create(image, mask, "a long scratch", reference=ref, reference_mask=ref_mask,
                                    reference_text="a scratch on metal", num=args.batch, parameters=PARAMETERS,
                                    params={"steps": args.steps, "strength": 0.7, "asea_steps": 5, "sga_scale": 0})
    wall = {"lambda=0": {"total": run(plain), **WALL}, "lambda=1": {"total": run(), **WALL}}
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=activities) as prof:
        run()
    events = prof.key_averages()
    device_attr = "device_time_total" if hasattr(events[0], "device_time_total") else "cuda_time_total"
    phases = {e.key.removeprefix("phase::"): {"cpu_ms": e.cpu_time_total / 1e3,
                                               "device_ms": getattr(e, device_attr, 0) / 1e3, "calls": e.count}
              for e in events if e.key.startswith("phase::")}
    sort = device_attr if torch.cuda.is_available() else "cpu_time_total"
    table = events.table(sort_by=sort, row_limit=25)
    result = {"engine": engine.guidance, "batch": args.batch, "steps": args.steps, "wall_s": wall, "phases": phases,
              "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"}
    print(json.dumps(result, indent=1))
    print(table)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "profile_phases.json").write_text(json.dumps(result, indent=1))
        (out / "profile_ops.txt").write_text(table)
    return result


if __name__ == "__main__":
    main()
