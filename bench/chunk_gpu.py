"""GPU check of chunked denoising on the full-size architecture (``sd15-random``): peak memory and the largest
UNet batch for a 64-candidate request at each chunk size, fp16 and bf16 finite, the mode and the GPU estimate.

    python -m bench.chunk_gpu [--num 64] [--steps 4] [--chunks 4 16]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def main() -> None:
    from studio.engines.anomalycontrol.models import load_bundle
    from studio.engines.anomalycontrol.pipeline import AnomalyControlEngine
    from studio.types import SynthesisRequest

    parser = argparse.ArgumentParser()
    parser.add_argument("--num", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--chunks", type=int, nargs="+", default=[4, 16])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    image = rng.integers(60, 200, (512, 512, 3), dtype=np.uint8)
    mask = np.zeros((512, 512), bool)
    mask[200:300, 180:340] = True
    rows = []
    for dtype in (torch.float16, torch.bfloat16):
        bundle = load_bundle("sd15-random", device="cuda", dtype=dtype)
        for chunk in args.chunks:
            engine = AnomalyControlEngine(bundle, unet_chunk=chunk)
            request = SynthesisRequest.create(image, mask, "a scratch", reference=image, reference_mask=mask,
                                              reference_text="scratch", num=args.num,
                                              params={"steps": args.steps, "asea_steps": 1})
            batches: list[int] = []
            handle = bundle.unet.register_forward_pre_hook(lambda m, a: batches.append(a[0].shape[0]))
            torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            candidates = engine.generate(request)
            torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            handle.remove()
            scores = [c.metadata["score"]["value"] for c in candidates]
            rows.append({
                "dtype": str(dtype).removeprefix("torch."), "chunk": chunk, "num": args.num,
                "max_unet_batch": max(batches), "unet_calls": len(batches),
                "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2), "seconds": round(seconds, 1),
                "finite": bool(np.isfinite(scores).all()), "guidance": engine.guidance,
                "gpu_seconds_estimate": round(engine.gpu_seconds(request), 1),
            })
            print(json.dumps(rows[-1]), flush=True)
        del bundle, engine
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
