"""``torch.compile`` of the UNet: compile time and steady-state gain against eager, same request.

    python -m bench.bench_compile --weights tiny          # CPU
    python -m bench.bench_compile --weights sd15-random   # GPU

First call = compile (plus one generation); steady state = median of the following calls.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from studio.engines.anomalycontrol.pipeline import AnomalyControlEngine
from studio.types import SynthesisRequest


def _timings(engine: AnomalyControlEngine, request: SynthesisRequest, repeats: int) -> tuple[float, float]:
    def once() -> float:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        engine.generate(request)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return time.perf_counter() - start

    first = once()
    return first, statistics.median(once() for _ in range(repeats))


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Print the comparison; returns the figures (seconds; ``gain`` = eager steady / compiled steady)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="tiny")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    image = rng.integers(80, 180, (512, 512, 3), dtype=np.uint8)
    mask = np.zeros((512, 512), bool)
    mask[180:300, 120:400] = True
    request = SynthesisRequest.create(image, mask, "a dark scratch", num=args.batch,
                                      params={"steps": args.steps, "strength": 0.7})
    rows = {}
    for compiled in (False, True):
        engine = AnomalyControlEngine.load(args.weights, compile_unet=compiled)
        rows["compiled" if compiled else "eager"] = _timings(engine, request, args.repeats)
        del engine
    (e_first, e_steady), (c_first, c_steady) = rows["eager"], rows["compiled"]
    print(f"weights {args.weights} · batch {args.batch} · {args.steps} steps x 0.7")
    print(f"eager:    first call {e_first:.2f} s, steady {e_steady:.3f} s")
    print(f"compiled: first call {c_first:.2f} s (compile ≈ {c_first - c_steady:.1f} s), steady {c_steady:.3f} s")
    print(f"steady-state gain: {e_steady / c_steady:.2f}x")
    return {"batch": args.batch, "eager_first_s": e_first, "eager_steady_s": e_steady, "compiled_first_s": c_first,
            "compiled_steady_s": c_steady, "compile_s": c_first - c_steady, "gain": e_steady / c_steady}

if __name__ == "__main__":
    main()
