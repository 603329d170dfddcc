"""Speed and memory of the ``anomalycontrol`` engine against plain diffusers inpainting.

    python -m bench.bench_anomalycontrol --weights sd15-random [--batch 1 4] [--steps 30] [--json PATH]
                                          [--compile] [--load-from-disk DIR] [--sync-check]

At 512x512 and strength 0.7 it times, per batch size: (a) plain diffusers
``StableDiffusionInpaintPipeline`` on the same UNet/VAE/text encoder (stock attention
processors, prompt strings, PIL inputs), (b) the engine with a reference, ASEA (5 steps, cache
cleared before every run so ASEA is paid each time) and SGA at λ=1, (c) ASEA alone, plus the
model load time and the peak GPU memory. ``--sync-check`` counts host-device syncs inside the
engine's denoising loop with ``torch.cuda.set_sync_debug_mode``. ``--load-from-disk DIR`` saves
the bundle as safetensors under DIR and times loading it back through the real loader.
A larger harness imports :func:`measure`.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from typing import Any

import numpy as np
import torch

SIZE = 512


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _timed(fn, repeats: int) -> float:
    """Median wall seconds of ``fn`` over ``repeats`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        _sync()
        start = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _inputs(size: int = SIZE):
    rng = np.random.default_rng(0)
    image = np.clip(rng.normal(140, 15, (size, size, 3)), 0, 255).astype(np.uint8)
    mask = np.zeros((size, size), bool)
    mask[size // 3: size // 2, size // 4: 3 * size // 4] = True
    ref = np.clip(rng.normal(120, 25, (384, 384, 3)), 0, 255).astype(np.uint8)
    ref_mask = np.zeros((384, 384), bool)
    ref_mask[120:250, 100:300] = True
    return image, mask, ref, ref_mask


def _peak(fn) -> int:
    if not torch.cuda.is_available():
        return 0
    _sync()
    torch.cuda.reset_peak_memory_stats()
    fn()
    _sync()
    return int(torch.cuda.max_memory_allocated())


def measure(weights: str = "tiny", batches: tuple[int, ...] = (1, 4), steps: int = 30, repeats: int = 3,
            compile_unet: bool = False, sync_check: bool = False, load_from_disk: str | None = None) -> dict[str, Any]:
    """Figures for one weight profile on the current device (see the module docstring)."""
    from PIL import Image

    from diffusers import StableDiffusionInpaintPipeline
    from studio.engines.anomalycontrol import pipeline as pipeline_module
    from studio.engines.anomalycontrol.pipeline import AnomalyControlEngine
    from studio.engines.anomalycontrol.sga import plain_attention
    from studio.types import SynthesisRequest

    device = "cuda" if torch.cuda.is_available() else "cpu"
    _sync()
    start = time.perf_counter()
    engine = AnomalyControlEngine.load(weights, compile_unet=compile_unet)
    _sync()
    results: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "weights": weights, "size": SIZE, "steps": steps, "strength": 0.7, "compiled_unet": compile_unet,
        "load_s": time.perf_counter() - start, "torch": torch.__version__,
        "guidance_mode": engine.guidance, "guidance_source": engine.bundle.guidance_source,
    }
    if load_from_disk:
        from studio.engines.anomalycontrol.models import load_bundle, save_bundle

        save_bundle(engine.bundle, load_from_disk)
        _sync()
        start = time.perf_counter()
        load_bundle(load_from_disk)
        _sync()
        results["load_from_disk_s"] = time.perf_counter() - start
        torch.cuda.empty_cache() if device == "cuda" else None

    image, mask, ref, ref_mask = _inputs()
    params = {"steps": steps, "strength": 0.7, "guidance": 7.0, "sga_scale": 1.0, "asea_steps": 5}
    components = {k: v for k, v in engine.pipe.components.items()}
    plain = StableDiffusionInpaintPipeline(**components)
    plain.set_progress_bar_config(disable=True)
    res = engine.bundle.resolution  # plain diffusers works at the model's resolution, as the engine does
    pil_image = Image.fromarray(image).resize((res, res), Image.BICUBIC)
    pil_mask = Image.fromarray(mask.astype(np.uint8) * 255).resize((res, res), Image.NEAREST)

    def explain_fresh(request):
        engine._asea_cache.clear()
        return engine.explain(request)

    request1 = SynthesisRequest.create(image, mask, "a long scratch", reference=ref, reference_mask=ref_mask,
                                       reference_text="a scratch on metal", num=1, params=params)
    results["asea_s"] = _timed(lambda: explain_fresh(request1), repeats)
    per_batch = {}
    for batch in batches:
        request = SynthesisRequest.create(image, mask, "a long scratch", reference=ref, reference_mask=ref_mask,
                                          reference_text="a scratch on metal", num=batch, params=params)

        def run_ac():
            engine._asea_cache.clear()
            return engine.generate(request)

        def run_plain():
            gens = [torch.Generator(device).manual_seed(i) for i in range(batch)]
            with plain_attention(engine.bundle.unet):
                return plain(prompt="a long scratch", negative_prompt=engine.negative_prompt, image=pil_image,
                             mask_image=pil_mask, height=res, width=res, strength=0.7, num_inference_steps=steps,
                             guidance_scale=7.0, num_images_per_prompt=batch, generator=gens, output_type="np").images

        ac_s = _timed(run_ac, repeats)
        plain_s = _timed(run_plain, repeats)
        entry = {
            "plain_s_per_candidate": plain_s / batch, "ac_s_per_candidate": ac_s / batch,
            "ratio_ac_over_plain": ac_s / plain_s, "plain_s": plain_s, "ac_s": ac_s,
            "peak_mem_bytes": _peak(run_ac), "plain_peak_mem_bytes": _peak(run_plain),
        }
        if device == "cuda" and batch >= 2:
            saved = pipeline_module.VAE_SLICE_FROM
            pipeline_module.VAE_SLICE_FROM = 1
            entry["peak_mem_bytes_vae_sliced"] = _peak(run_ac)
            entry["ac_s_vae_sliced"] = _timed(run_ac, 1)
            pipeline_module.VAE_SLICE_FROM = saved
        per_batch[str(batch)] = entry
    results["batches"] = per_batch
    if sync_check and device == "cuda":
        results["syncs_in_denoising_loop"] = _count_loop_syncs(engine, request1)
    return results


def _count_loop_syncs(engine, request) -> int:
    """Synchronising CUDA calls between the end of the first and the end of the last denoising step."""
    def progress(done, total, what):
        if what != "denoising":
            return
        if done == 1:
            torch.cuda.set_sync_debug_mode("warn")
        if done == total:
            torch.cuda.set_sync_debug_mode("default")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        engine.generate(request, progress)
    torch.cuda.set_sync_debug_mode("default")
    # the mode's own notice ("Synchronization debug mode is a prototype feature ...") is not a sync
    return sum("called a synchronizing" in str(w.message) for w in caught)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="tiny")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="torch.compile the UNet")
    parser.add_argument("--sync-check", action="store_true")
    parser.add_argument("--load-from-disk", default=None, metavar="DIR")
    parser.add_argument("--json", default=None, metavar="PATH")
    args = parser.parse_args(argv)
    figures = measure(args.weights, tuple(args.batch), args.steps, args.repeats, args.compile, args.sync_check,
                      args.load_from_disk)
    print(f"{figures['device']} · weights {figures['weights']} · {SIZE}x{SIZE}, {args.steps} steps, strength 0.7")
    print(f"load {figures['load_s']:.2f} s" + (f" · load from disk {figures['load_from_disk_s']:.2f} s"
                                               if "load_from_disk_s" in figures else "")
          + f" · ASEA (5 steps) {figures['asea_s'] * 1000:.1f} ms")
    print(f"{'batch':>5} {'plain s/cand':>13} {'AC s/cand':>10} {'AC/plain':>9} {'peak GB':>8}")
    for batch, e in figures["batches"].items():
        print(f"{batch:>5} {e['plain_s_per_candidate']:>13.3f} {e['ac_s_per_candidate']:>10.3f} "
              f"{e['ratio_ac_over_plain']:>9.3f} {e['peak_mem_bytes'] / 1e9:>8.2f}")
    if "syncs_in_denoising_loop" in figures:
        print(f"host-device syncs inside the denoising loop: {figures['syncs_in_denoising_loop']}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(figures, fh, indent=2, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
