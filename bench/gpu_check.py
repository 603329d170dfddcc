"""Issue 24's GPU check in one call: every figure of the full-size engine, stage by stage, into one JSON.

    bash bench/gpu_check.sh                                              # on a GPU machine (OUT=folder)
    python -m bench.gpu_check --weights tiny --quick --out /tmp/gc       # the same path on a CPU (minutes)

Each stage runs in its own process with its own time limit (what is left of ``--budget``), so a
crash, an out-of-memory or a hang is recorded in the JSON and the next stage still runs. Stages,
most important first:

1. ``models``: build the profile once, save it as safetensors (with and without the SGA adapter),
   time the load back from disk; the UNet's FLOPs and the measured matmul rate (the floor).
2. ``mode-sga`` / ``mode-text`` / ``mode-ip-adapter``: :func:`bench.bench_anomalycontrol.measure`
   per guidance mode (s/candidate at batch 1 and 4, ratio to plain diffusers, ASEA alone, peak
   memory, load time, host-device syncs in the denoising loop). The mode is what the engine
   reports (``engine.guidance``), chosen from the files: ``sga`` (adapter), ``ip-adapter``
   (random IP-Adapter files and image encoder in the real layout), ``text`` (neither).
3. ``chunk64``: 64 candidates in one request (the engine's chunk setting), peak
   memory, the largest batch the UNet saw.
4. ``precision``: fp16 and bf16 against fp32 on the same request and seed (UNet noise prediction
   on identical inputs, BLIP-2 ViT tokens, ASEA in-mask fractions, pixels) and a finite check on
   the output of every model called (UNet, VAE, text encoder, BLIP-2 ViT and Q-Former).
5. ``train`` / ``train-checkpointing``: :func:`bench.train_gpu.measure` (steps fitted to the time left).
6. ``compile``: :func:`bench.bench_compile.main` at batch 4, only with the time left.

The JSON is rewritten after every stage: ``OUT/<gpu>-<weights>.json``; ``bench.perf_table`` turns
it into the README's table.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

STAGES = ("models", "mode-sga", "mode-text", "mode-ip-adapter", "chunk64", "precision", "train",
          "train-checkpointing", "compile")
#: Longest each stage may run on the full-size profile (seconds); the budget left caps it further.
STAGE_CAP = {"models": 180, "mode-sga": 120, "mode-text": 100, "mode-ip-adapter": 120, "chunk64": 120,
             "precision": 150, "train": 180, "train-checkpointing": 180, "compile": 400}
#: A stage is not started with less than this many seconds of the budget left (the full-size profile's figures).
STAGE_MIN = {"train": 60, "train-checkpointing": 60, "compile": 150}
MIN_STAGE_S = 25
STEPS, STRENGTH = 30, 0.7
CHUNK = 4
#: Tolerances of the precision stage, relative L2 error against fp32 (unit roundoff fp16 4.9e-4, bf16 3.9e-3;
#: a deep network's output accumulates a few tens of roundings, normalisation layers keep it from growing further).
TOLERANCE = {"float16": {"rel_err": 1e-2, "inmask_abs": 0.01}, "bfloat16": {"rel_err": 5e-2, "inmask_abs": 0.03}}
#: Where the public IP-Adapter files lie in a weights folder (h94/IP-Adapter's own layout under ``ip-adapter/``).
IP_ADAPTER_FILE = "ip-adapter/models/ip-adapter_sd15.safetensors"
IP_IMAGE_ENCODER = "ip-adapter/models/image_encoder"


# --------------------------------------------------------------------------- shared helpers


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _reset_peak() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib() -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**30, 3) if torch.cuda.is_available() else None


def gpu_slug() -> str:
    """``h200``, ``h100``, ... from the CUDA device name; ``cpu`` without one."""
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    name = torch.cuda.get_device_name().lower()
    known = next((g for g in ("h200", "h100", "a100", "l40s", "l4", "a10g", "t4") if g in name), None)
    return known or re.sub(r"[^a-z0-9]+", "-", name.removeprefix("nvidia ")).strip("-")


def _request(num: int, params: dict | None = None):
    from bench.bench_anomalycontrol import _inputs
    from studio.types import SynthesisRequest

    image, mask, ref, ref_mask = _inputs()
    base = {"steps": STEPS, "strength": STRENGTH, "guidance": 7.0, "sga_scale": 1.0, "asea_steps": 5}
    return SynthesisRequest.create(image, mask, "a long scratch", reference=ref, reference_mask=ref_mask,
                                   reference_text="a scratch on metal", num=num, params={**base, **(params or {})})


def _tensors(value: Any) -> Iterator[Any]:
    """Every floating-point tensor inside a module's output (tensors, tuples, dicts, ModelOutputs)."""
    import torch

    if isinstance(value, torch.Tensor):
        if value.is_floating_point():
            yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _tensors(item)
    elif hasattr(value, "values"):
        for item in value.values():
            yield from _tensors(item)


@contextmanager
def finite_watch(modules: dict[str, Any]) -> Iterator[dict[str, int]]:
    """Count, per module, the calls whose output held a NaN or an inf (filled in on exit; no sync per call)."""
    import torch

    flags: dict[str, list] = {name: [] for name in modules}
    counts: dict[str, int] = {}

    def hook(name):
        def record(module, args, output):
            flags[name].extend(torch.isfinite(t).all() for t in _tensors(output))
        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in modules.items()]
    try:
        yield counts
    finally:
        for h in handles:
            h.remove()
        for name, seen in flags.items():
            counts[name] = int((~torch.stack(seen).cpu()).sum()) if seen else 0
        counts["calls"] = sum(len(seen) for seen in flags.values())


def watched_modules(bundle) -> dict[str, Any]:
    return {"unet": bundle.unet, "vae.encoder": bundle.vae.encoder, "vae.decoder": bundle.vae.decoder,
            "text_encoder": bundle.text_encoder, "blip2.vision_model": bundle.blip2.vision_model,
            "blip2.qformer": bundle.blip2.qformer}


def _link_tree(src: Path, dst: Path, skip: str | None = None) -> Path:
    """A copy of ``src`` made of hard links (no bytes copied), leaving out the sub-folder ``skip``."""
    def copy(s, d):
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)
    shutil.copytree(src, dst, copy_function=copy, ignore=(lambda d, names: [skip] if skip and Path(d) == src else []))
    return dst


# --------------------------------------------------------------------------- stages


class Stage:
    """What a stage function gets: the profile, the work folder, quick mode and the seconds it may use."""

    def __init__(self, weights: str, work: Path, quick: bool, seconds: float):
        self.weights, self.work, self.quick, self.seconds = weights, work, quick, seconds

    @property
    def models(self) -> Path:
        return self.work / "models"

    def folder(self, mode: str) -> str:
        """The weights folder of a guidance mode (the saved profile when ``models`` did not get that far)."""
        path = self.work / {"sga": "models", "text": "models-text", "ip-adapter": "models-ip"}[mode]
        return str(path) if path.is_dir() else self.weights


def stage_models(st: Stage) -> dict:
    import torch

    from bench.run import matmul_rate, unet_flops_per_step
    from studio.engines.anomalycontrol.models import load_bundle, save_bundle

    _sync()
    start = time.perf_counter()
    bundle = load_bundle(st.weights)
    _sync()
    out: dict[str, Any] = {"build_s": round(time.perf_counter() - start, 2), "device": str(bundle.device),
                           "dtype": str(bundle.dtype).removeprefix("torch."), "resolution": bundle.resolution}
    out["params"] = {name: sum(p.numel() for p in m.parameters())
                     for name, m in (("unet", bundle.unet), ("vae", bundle.vae), ("text_encoder", bundle.text_encoder),
                                     ("blip2", bundle.blip2), ("sga_adapter", bundle.adapter))}
    out["matmul_tflops"] = round(matmul_rate(bundle.device, bundle.dtype) / 1e12, 2)
    out["unet_gflops_per_step"] = {b: round(unet_flops_per_step(bundle, b) / 1e9, 1) for b in (1, 4)}
    steps = int(STEPS * STRENGTH)
    out["floor_s_per_candidate"] = {b: round(g * 1e9 * steps / (out["matmul_tflops"] * 1e12) / b, 4)
                                    for b, g in out["unet_gflops_per_step"].items()}
    start = time.perf_counter()
    save_bundle(bundle, st.models)
    out["save_s"] = round(time.perf_counter() - start, 2)
    out["saved_gib"] = round(sum(f.stat().st_size for f in st.models.rglob("*") if f.is_file()) / 2**30, 2)
    _link_tree(st.models, st.work / "models-text", skip="sga")
    del bundle
    _reset_peak()
    start = time.perf_counter()
    load_bundle(str(st.models))
    _sync()
    out["load_s"] = round(time.perf_counter() - start, 2)
    out["versions"] = {"torch": torch.__version__, **_versions("diffusers", "transformers", "accelerate")}
    return out


def _versions(*names: str) -> dict[str, str]:
    from importlib.metadata import version

    return {n: version(n) for n in names}


def stage_mode(mode: str) -> Callable[[Stage], dict]:
    def run(st: Stage) -> dict:
        from bench.bench_anomalycontrol import measure

        if mode == "ip-adapter":
            reason = _prepare_ip_adapter(st)
            if reason:
                return {"status": "skipped", "reason": reason}
        figures = measure(st.folder(mode), (1, 4), STEPS, 1 if st.quick else 3, sync_check=_cuda())
        reported = figures["guidance_mode"]
        if reported != mode:
            figures["status"] = "mismatch"
            figures["reason"] = f"asked for {mode}, the engine ran {reported}"
        return figures
    return run


def _prepare_ip_adapter(st: Stage) -> str | None:
    """Random IP-Adapter files (its public layout, our adapter's shapes) in a copy of the adapter-less folder.

    Returns why the mode cannot run, or None when the engine reports ``ip-adapter`` for that folder.
    """
    import torch
    from safetensors.torch import save_file

    from studio.engines.anomalycontrol.ip_adapter import ip_adapter_keys
    from studio.engines.anomalycontrol.pipeline import AnomalyControlEngine

    text = st.work / "models-text"
    if not text.is_dir():
        return "the models stage did not save the weights"
    folder = _link_tree(text, st.work / "models-ip")
    engine = AnomalyControlEngine.load(str(text))
    adapter, gen = engine.bundle.adapter, torch.Generator().manual_seed(3)
    state = adapter.state_dict()
    tensors = {theirs: (torch.randn(state[ours].shape, generator=gen) * 0.02).half().contiguous()
               for theirs, ours in ip_adapter_keys(adapter).items()}
    (folder / IP_ADAPTER_FILE).parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / IP_ADAPTER_FILE))
    _save_random_image_encoder(folder / IP_IMAGE_ENCODER, adapter.embed_dim, full=not st.quick)
    del engine
    _reset_peak()
    mode = AnomalyControlEngine.load(str(folder)).guidance
    return None if mode == "ip-adapter" else (
        f"with random IP-Adapter files at {IP_ADAPTER_FILE} and {IP_IMAGE_ENCODER}/ the engine reports mode {mode!r}: "
        "set IP_ADAPTER_FILE / IP_IMAGE_ENCODER in bench/gpu_check.py to the layout the engine reads")


def _save_random_image_encoder(folder: Path, projection_dim: int, *, full: bool) -> None:
    """IP-Adapter SD-1.5's image encoder (OpenCLIP ViT-H/14 vision tower's public config), random weights."""
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    size = dict(hidden_size=1280, intermediate_size=5120, num_attention_heads=16, num_hidden_layers=32,
                patch_size=14, image_size=224) if full else dict(hidden_size=32, intermediate_size=64,
                                                                 num_attention_heads=2, num_hidden_layers=2,
                                                                 patch_size=14, image_size=224)
    config = CLIPVisionConfig(projection_dim=projection_dim, hidden_act="gelu", **size)
    with torch.device("cuda" if _cuda() else "cpu"):
        model = CLIPVisionModelWithProjection(config).half()
    model.save_pretrained(folder, safe_serialization=True)


def _chunk_settings() -> tuple[str | None, str | None]:
    """(request parameter, environment variable) the engine reads its chunk size from."""
    from studio.engines.anomalycontrol.pipeline import UNET_CHUNK_ENV

    return None, UNET_CHUNK_ENV


def stage_chunk64(st: Stage) -> dict:
    import torch

    param, env = _chunk_settings()
    if env:
        os.environ[env] = str(CHUNK)
    from studio.engines.anomalycontrol.pipeline import AnomalyControlEngine

    engine = AnomalyControlEngine.load(st.folder("sga"))
    out: dict[str, Any] = {"chunk_param": param, "chunk_env": env, "chunk": CHUNK if (param or env) else None,
                           "chunking_supported": bool(param or env)}
    unet_batches: list[int] = []
    handle = engine.bundle.unet.register_forward_pre_hook(lambda m, args: unet_batches.append(int(args[0].shape[0])))
    try:
        for num in (4, 64):
            request = _request(num, {param: CHUNK} if param else None)
            if num == 4:
                engine.generate(request)  # warm-up and ASEA cache (the 64-candidate request reuses both)
            unet_batches.clear()
            _reset_peak()
            start = time.perf_counter()
            try:
                candidates = engine.generate(request)
            except torch.cuda.OutOfMemoryError as exc:
                out[f"n{num}"] = {"oom": True, "error": str(exc).splitlines()[0][:300]}
                continue
            _sync()
            seconds = time.perf_counter() - start
            out[f"n{num}"] = {"oom": False, "s": round(seconds, 3), "s_per_candidate": round(seconds / num, 4),
                              "peak_gib": _peak_gib(), "max_unet_batch": max(unet_batches),
                              "unet_calls": len(unet_batches), "candidates": len(candidates)}
    finally:
        handle.remove()
    if "peak_gib" in out.get("n64", {}) and out["n4"].get("peak_gib"):
        out["peak_ratio_64_over_4"] = round(out["n64"]["peak_gib"] / out["n4"]["peak_gib"], 3)
    return out


def _rel_err(x, ref) -> float:
    x, ref = x.double().cpu(), ref.double().cpu()
    return float((x - ref).norm() / ref.norm().clamp_min(1e-30))


def stage_precision(st: Stage) -> dict:
    """fp16 / bf16 against fp32 on one request and seed (see the module docstring); folder weights (fp16 values)."""
    import numpy as np
    import torch

    from studio.engines.anomalycontrol.pipeline import AnomalyControlEngine

    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 here (cuDNN's convolutions default to TF32)
    torch.backends.cudnn.allow_tf32 = False
    request = _request(1)
    ref_image = request.reference
    captured: dict[str, Any] = {}
    saved = st.folder("sga") != st.weights
    results: dict[str, Any] = {"tolerance": TOLERANCE, "weights_note": (
        "weights saved in fp16: every dtype holds the same values (bf16 rounds them), the differences are arithmetic"
        if saved else f"{st.weights} built per dtype: fp16/bf16 also round the weights")}
    reference: dict[str, Any] = {}
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        name = str(dtype).removeprefix("torch.")
        entry: dict[str, Any] = {}
        try:
            engine = AnomalyControlEngine.load(st.folder("sga"), dtype=dtype)
            b = engine.bundle

            def capture(module, args, kwargs):
                if "sample" not in captured:
                    captured.update(sample=args[0].detach().float().cpu(), t=args[1],
                                    context=kwargs["encoder_hidden_states"].detach().float().cpu())
            handle = b.unet.register_forward_pre_hook(capture, with_kwargs=True) if dtype == torch.float32 else None
            with finite_watch(watched_modules(b)) as nonfinite:
                trace = engine.explain(request)
                candidates = engine.generate(request)
            if handle:
                handle.remove()
            with torch.no_grad():
                t = captured["t"]
                eps = b.unet(captured["sample"].to(b.device, dtype), t.to(b.device) if torch.is_tensor(t) else t,
                             encoder_hidden_states=captured["context"].to(b.device, dtype), return_dict=False)[0]
                vit = engine.csm.encode_image(ref_image)
            fractions = np.array(trace.inmask_fractions, dtype=np.float64)
            pixels = candidates[0].image.astype(np.float64)
            score = float(candidates[0].metadata["score"]["value"])
            entry.update(nonfinite_outputs=nonfinite, eps_finite=bool(torch.isfinite(eps).all()),
                         vit_finite=bool(torch.isfinite(vit).all()), score=score, score_finite=bool(np.isfinite(score)),
                         inmask_fractions=[round(float(f), 5) for f in fractions])
            if dtype == torch.float32:
                reference.update(eps=eps.float().cpu(), vit=vit.float().cpu(), fractions=fractions, pixels=pixels)
            else:
                tol = TOLERANCE[name]
                entry.update(
                    unet_eps_rel_err=_rel_err(eps, reference["eps"]), vit_rel_err=_rel_err(vit, reference["vit"]),
                    inmask_max_abs_diff=float(np.abs(fractions - reference["fractions"]).max()),
                    pixels_mean_abs_diff=float(np.abs(pixels - reference["pixels"]).mean()),
                )
                finite = entry["eps_finite"] and entry["vit_finite"] and entry["score_finite"] and not any(
                    v for k, v in nonfinite.items() if k != "calls")
                entry["finite"] = finite
                entry["pass"] = bool(finite and entry["unet_eps_rel_err"] <= tol["rel_err"]
                                     and entry["vit_rel_err"] <= tol["rel_err"]
                                     and entry["inmask_max_abs_diff"] <= tol["inmask_abs"])
            del engine, b
        except Exception as exc:  # one dtype failing (e.g. unsupported on a CPU) must not hide the others
            entry = {"status": "failed", "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"}
        results[name] = entry
        _reset_peak()
    return results


def _train(checkpointing: bool) -> Callable[[Stage], dict]:
    def run(st: Stage) -> dict:
        from bench.train_gpu import measure

        steps, batch, resolution = (4, 2, 64) if st.quick else (_train_steps(st, checkpointing), 8, 512)
        out = measure(st.folder("sga"), steps, batch, resolution, "fp16" if _cuda() else "no", 1, 16, True,
                      min(10, steps - 1), checkpointing)
        out["steps_requested"] = 200
        return out
    return run


def _train_steps(st: Stage, checkpointing: bool) -> int:
    """200 steps when the stage has the time for it, else fewer (at least 20), from the plain run's speed."""
    plain = st.work / "train.json"
    rate = json.loads(plain.read_text()).get("steps_per_s") if plain.is_file() and checkpointing else None
    overhead = 35.0  # imports, load, synthetic set, feature cache, first step
    rate = rate * 0.7 if rate else 2.0  # checkpointing recomputes the forward (~0.7x); 2 steps/s a guess
    return int(max(20, min(200, (st.seconds - overhead) * rate * 0.8)))


def stage_compile(st: Stage) -> dict:
    from bench.bench_compile import main as compile_main

    return compile_main(["--weights", st.folder("sga"), "--batch", "4", "--repeats", "1" if st.quick else "2"])


RUNNERS: dict[str, Callable[[Stage], dict]] = {
    "models": stage_models, "mode-sga": stage_mode("sga"), "mode-text": stage_mode("text"),
    "mode-ip-adapter": stage_mode("ip-adapter"), "chunk64": stage_chunk64, "precision": stage_precision,
    "train": _train(False), "train-checkpointing": _train(True), "compile": stage_compile,
}


# --------------------------------------------------------------------------- orchestration


def run_stage(name: str, weights: str, work: Path, quick: bool, seconds: float) -> int:
    """Child process: one stage, its figures (or its error) into ``work/<name>.json``."""
    start = time.perf_counter()
    try:
        figures = RUNNERS[name](Stage(weights, work, quick, seconds))
        figures.setdefault("status", "ok")
    except Exception as exc:
        traceback.print_exc()
        figures = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:1000]}
    figures["seconds"] = round(time.perf_counter() - start, 1)
    (work / f"{name}.json").write_text(json.dumps(figures, indent=2, default=str))
    return 0


def _run_child(name: str, weights: str, work: Path, quick: bool, limit: float) -> dict[str, Any]:
    """One stage in a child process, killed at ``limit`` seconds; its report, or why there is none."""
    cmd = [sys.executable, "-m", "bench.gpu_check", "--stage", name, "--weights", weights, "--work", str(work),
           "--seconds", str(int(limit))] + (["--quick"] if quick else [])
    start = time.perf_counter()
    report = work / f"{name}.json"
    try:
        rc = subprocess.run(cmd, timeout=limit).returncode
        figures = json.loads(report.read_text()) if report.is_file() else {
            "status": "failed", "rc": rc, "error": "the stage died without a report (see the log)"}
    except subprocess.TimeoutExpired:
        figures = {"status": "timeout", "limit_s": round(limit)}
    figures["wall_s"] = round(time.perf_counter() - start, 1)
    return figures


def orchestrate(weights: str, out: Path, work: Path, budget: float, quick: bool, only: list[str],
                previous: dict | None = None) -> dict:
    """Run the stages in order, each in a child with what is left of the budget; rewrite the JSON after each.

    ``previous`` (an earlier run's JSON) keeps the stages this run does not repeat.
    """
    t0 = time.perf_counter()
    kept = {k: v for k, v in (previous or {}).get("stages", {}).items() if k not in only}
    result: dict[str, Any] = {"gpu": gpu_slug(), "weights": weights, "budget_s": budget, "quick": quick,
                              "size": 512, "steps": STEPS, "strength": STRENGTH, "stages": kept}
    if _cuda():
        import torch

        result["device_name"] = torch.cuda.get_device_name()
    path = out / f"{result['gpu']}-{weights}.json"
    for name in only:
        left = budget - (time.perf_counter() - t0)
        limit = min(left, STAGE_CAP[name] * (1 if not quick else 3))
        if limit < (MIN_STAGE_S if quick else STAGE_MIN.get(name, MIN_STAGE_S)):
            figures: dict[str, Any] = {"status": "skipped", "reason": f"{max(left, 0):.0f} s of the budget left"}
        else:
            print(f"\n=== {name} (limit {limit:.0f} s, {left:.0f} s left) ===", flush=True)
            figures = _run_child(name, weights, work, quick, limit)
        result["stages"][name] = figures
        result["elapsed_s"] = round(time.perf_counter() - t0, 1)
        path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nwrote {path}", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="sd15-random", help="sd15-random (GPU) or tiny (a CPU dry run)")
    parser.add_argument("--out", default=os.environ.get("OUT", "."), help="folder for the JSON (default $OUT)")
    parser.add_argument("--work", default=None, help="scratch folder for the saved models (default: a temp folder)")
    parser.add_argument("--budget", type=float, default=450.0, help="seconds for all stages together")
    parser.add_argument("--quick", action="store_true", help="tiny sizes everywhere (CPU dry run)")
    parser.add_argument("--only", default=",".join(STAGES), help=f"comma-separated stages, in order: {','.join(STAGES)}")
    parser.add_argument("--previous", default=None, help="an earlier run's JSON: keep its stages that are not rerun")
    parser.add_argument("--stage", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stage:
        return run_stage(args.stage, args.weights, Path(args.work), args.quick, args.seconds)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(STAGES))
    if unknown:
        parser.error(f"unknown stage(s): {', '.join(unknown)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import tempfile

    with tempfile.TemporaryDirectory(dir=args.work) as work:
        previous = json.loads(Path(args.previous).read_text()) if args.previous else None
        result = orchestrate(args.weights, out, Path(work), args.budget, args.quick, only, previous)
    from bench.perf_table import summary

    print(summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
