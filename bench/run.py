"""One benchmark run, one table, one JSON: AnomalyControl vs plain diffusers inpainting, ASEA, load, memory.

    python -m bench.run --weights tiny --json bench/results/latest.json          # CPU (make bench)
    python -m bench.run --weights sd15-random --record                            # GPU: bench/results/<gpu>-sd15-random.json

(a) plain diffusers ``StableDiffusionInpaintPipeline`` (stock attention) on the same UNet/VAE/text encoder,
(b) the ``anomalycontrol`` engine with SGA (lambda=1) and ASEA (5 steps), its ASEA cache cleared before
every repetition so ASEA is paid each time, (c) ASEA alone, (d) load time from local safetensors,
(e) peak GPU memory; plus the classic engine per 512x512 candidate and, when gradio is installed, the
studio's click-to-first-candidate latency through ``gradio_client``. The floor is the UNet's FLOPs per
step x denoising steps x CFG over the measured matmul rate.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).resolve().parent / "results"
SIZE, STEPS, STRENGTH = 512, 30, 0.7
PER_BATCH_KEYS = ("plain_s_per_candidate", "ac_s_per_candidate", "ratio_ac_over_plain", "peak_mem_bytes")


def matmul_rate(device: torch.device, dtype: torch.dtype) -> float:
    """Measured dense matmul rate in FLOP/s, the ceiling the floor is computed against."""
    n = 8192 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(10):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return 10 * 2 * n**3 / (time.perf_counter() - start)


def unet_flops_per_step(bundle, batch: int) -> int:
    """FLOPs of one UNet forward on the CFG batch (2 x batch) at the model's resolution, 77 text + SGA tokens."""
    from torch.utils.flop_counter import FlopCounterMode

    unet = bundle.unet
    latent = bundle.resolution // bundle.vae_scale_factor
    x = torch.randn(2 * batch, unet.config.in_channels, latent, latent, device=bundle.device, dtype=bundle.dtype)
    ctx = torch.randn(2 * batch, 77 + bundle.adapter.num_tokens, unet.config.cross_attention_dim,
                      device=bundle.device, dtype=bundle.dtype)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        unet(x, torch.tensor(500, device=bundle.device), encoder_hidden_states=ctx)
    return int(counter.get_total_flops())


def studio_click_latency() -> float | None:
    """Click-to-first-candidate through gradio_client against a live classic studio; None without gradio."""
    try:
        from bench.studio_latency import click_to_first_candidate
    except ImportError:
        return None
    return click_to_first_candidate()


def run(weights: str, batches: list[int], repeats: int, with_studio: bool, compile_unet: bool) -> dict[str, Any]:
    """Everything issue 7 asks for, in one dict (per-batch figures keyed by batch size)."""
    from bench.bench_anomalycontrol import measure
    from bench.bench_classic import seconds_per_candidate
    from studio.engines.anomalycontrol.pipeline import AnomalyControlEngine

    with tempfile.TemporaryDirectory() as folder:
        figures = measure(weights, tuple(batches), STEPS, repeats, compile_unet=compile_unet,
                          sync_check=torch.cuda.is_available(), load_from_disk=folder)
    out: dict[str, Any] = {k: v for k, v in figures.items() if k != "batches"}
    out["build_s"] = out.pop("load_s")  # sd15-random/tiny build random weights; loading is timed from disk
    out["load_s"] = out.pop("load_from_disk_s")
    if out["device"] == "cpu":
        out["device"] = f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"
    for key in PER_BATCH_KEYS:
        out[key] = {b: e[key] for b, e in figures["batches"].items()}
    out["batches"] = figures["batches"]
    out["denoising_steps"] = int(STEPS * STRENGTH)

    engine = AnomalyControlEngine.load(weights)
    bundle = engine.bundle
    rate = matmul_rate(bundle.device, bundle.dtype)
    out["matmul_flops_per_s"] = rate
    out["unet_flops_per_step"] = {str(b): unet_flops_per_step(bundle, b) for b in batches}
    out["floor_s_per_candidate"] = {
        b: flops * out["denoising_steps"] / rate / int(b) for b, flops in out["unet_flops_per_step"].items()
    }
    classic = seconds_per_candidate()
    out["classic_s_per_candidate"] = classic["overall"]
    out["classic_s_per_candidate_by_path"] = classic
    out["studio_click_to_first_candidate_s"] = studio_click_latency() if with_studio else None
    return out


def table(r: dict[str, Any]) -> str:
    """The human-readable summary printed at the end of a run."""
    rows = [f"device {r['device']} · weights {r['weights']} · {SIZE}² · {STEPS} steps × strength {STRENGTH} "
            f"= {r['denoising_steps']} denoising steps" + (" · compiled UNet" if r.get("compiled_unet") else "")]
    rows.append(f"{'batch':>5} | {'plain s/cand':>12} | {'AC s/cand':>10} | {'AC/plain':>8} | "
                f"{'floor s/cand':>12} | {'peak mem':>10}")
    for key in r["plain_s_per_candidate"]:
        mem = r["peak_mem_bytes"][key]
        rows.append(f"{key:>5} | {r['plain_s_per_candidate'][key]:>12.4f} | {r['ac_s_per_candidate'][key]:>10.4f} | "
                    f"{r['ratio_ac_over_plain'][key]:>8.3f} | {r['floor_s_per_candidate'][key]:>12.4f} | "
                    f"{'-' if not mem else f'{mem / 2**30:.2f} GiB':>10}")
    rows.append(f"ASEA (5 steps) {r['asea_s'] * 1000:.1f} ms · load from safetensors {r['load_s']:.2f} s · "
                f"classic {r['classic_s_per_candidate']:.4f} s/cand (512²) · "
                f"matmul {r['matmul_flops_per_s'] / 1e12:.2f} TFLOP/s")
    if "syncs_in_denoising_loop" in r:
        rows.append(f"host-device syncs inside the denoising loop: {r['syncs_in_denoising_loop']}")
    click = r.get("studio_click_to_first_candidate_s")
    rows.append(f"studio click-to-first-candidate (classic): {'n/a' if click is None else f'{click:.3f} s'}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="tiny", help="tiny (CPU), sd15-random (GPU) or a folder")
    parser.add_argument("--batches", default="1,4")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="write the figures here")
    parser.add_argument("--record", action="store_true", help="also write bench/results/<gpu>-<weights>.json")
    parser.add_argument("--no-studio", action="store_true", help="skip the gradio_client latency")
    parser.add_argument("--compile", action="store_true", help="torch.compile the UNet (ANOMALY_STUDIO_COMPILE)")
    args = parser.parse_args(argv)
    result = run(args.weights, [int(b) for b in args.batches.split(",")], args.repeats, not args.no_studio,
                 args.compile)
    print(table(result))
    paths = [Path(args.json)] if args.json else []
    if args.record:
        gpu = next((g for g in ("h100", "h200", "a100", "l4", "t4") if g in result["device"].lower()), "gpu")
        paths.append(RESULTS / f"{gpu}-{args.weights}{'-compiled' if args.compile else ''}.json")
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
