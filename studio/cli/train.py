"""``anomaly-studio train``: train the Semantic Guided Adapter on the user's own defects (MVTec layout)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from studio import config
from studio.cli.common import tqdm_progress


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train the Semantic Guided Adapter (SGA) on your own anomaly images",
        description="Train AnomalyControl's Semantic Guided Adapter on an MVTec-layout folder "
                    "(<category>/test/<defect>/*.png + ground_truth/<defect>/*_mask.png). Only the adapter "
                    "trains; the diffusion model and BLIP-2 stay frozen. Runs on a CPU, a GPU or several "
                    "(accelerate launch -m studio train ...).",
    )
    p.add_argument("--data", required=True, help="MVTec-layout root or category folder with anomalies and masks")
    p.add_argument("--captions", default=None,
                   help="JSON object: image path (absolute or relative to --data) -> caption; "
                        "default caption: 'a <category> with a <defect> defect'")
    p.add_argument("--weights", default=None, help="weight profile (tiny, sd15-random, sd15) or a folder (default sd15)")
    p.add_argument("--out", required=True,
                   help="adapter file to write (.safetensors); <weights folder>/sga/adapter.safetensors makes "
                        "the engine load it with those weights")
    p.add_argument("--steps", type=int, default=10000, help="optimiser steps (default 10000; see the README recipe)")
    p.add_argument("--batch-size", type=int, default=8, help="images per micro-batch and process (default 8)")
    p.add_argument("--grad-accum", type=int, default=2, help="micro-batches per optimiser step (default 2)")
    p.add_argument("--lr", type=float, default=1e-4, help="AdamW learning rate (default 1e-4)")
    p.add_argument("--weight-decay", type=float, default=1e-2, help="AdamW weight decay (default 1e-2)")
    p.add_argument("--lr-warmup", type=int, default=500, help="linear warm-up steps (default 500)")
    p.add_argument("--resolution", type=int, default=None,
                   help="square training side in pixels (default: the model's own, 512 for SD-1.5)")
    p.add_argument("--mixed-precision", default="auto", choices=("auto", "no", "fp16", "bf16"),
                   help="auto (default) = fp16 on a GPU, no (fp32) on a CPU")
    p.add_argument("--seed", type=int, default=0, help="seed of the adapter init, data order and noise (default 0)")
    p.add_argument("--cache-features", action=argparse.BooleanOptionalAction, default=True,
                   help="encode each reference (CSM + ASEA) once and reuse its features (default on; exact, "
                        "ASEA is deterministic)")
    p.add_argument("--pairing", default="self", choices=("self", "same-category", "same-defect"),
                   help="reference each anomaly's BLIP-2 feature is computed from: itself with its own caption and "
                        "mask (default, the authors'); or (our options, not the authors') another image of its defect "
                        "type in its category, or of its defect name in any category")
    p.add_argument("--split", default="authors", choices=("authors", "all"),
                   help="which anomalies train: the first third of each defect type by file name (default, the "
                        "authors' split; the other two thirds stay for testing) or all of them (ours: then do not "
                        "evaluate on the same folder; evaluate --adapter refuses it)")
    p.add_argument("--condition-dropout", type=float, default=0.05,
                   help="probability of dropping the reference image, the caption, and both, each (default 0.05)")
    p.add_argument("--gradient-checkpointing", action="store_true",
                   help="recompute the frozen UNet's activations in the backward pass: far less GPU memory, "
                        "~30%% slower (needed for batch 8 at 512 px on a 24 GB GPU)")
    p.add_argument("--asea-steps", type=int, default=5, help="ASEA Adam steps per reference (default 5; 0 = plain CSM)")
    p.add_argument("--asea-lr", type=float, default=0.1, help="ASEA learning rate (default 0.1)")
    p.add_argument("--log", default=None, help="append one JSON line per step: {\"step\": n, \"loss\": x}")
    p.add_argument("--checkpoint-every", type=int, default=500,
                   help="save a resumable checkpoint every N steps next to --out (default 500; 0 = never)")
    p.add_argument("--keep-checkpoints", type=int, default=3, help="how many recent checkpoints to keep (default 3)")
    p.add_argument("--resume", default=None,
                   help="checkpoint folder (step-NNNNNN, or the -checkpoints folder for the latest) to continue from")
    p.add_argument("--init-adapter", default=None, help="start from this adapter file instead of a fresh one")
    p.add_argument("--init-ip-adapter", default=None,
                   help="start from IP-Adapter's SD-1.5 weights (h94/IP-Adapter models/ip-adapter_sd15.safetensors), "
                        "as the authors do")
    p.add_argument("--workers", type=int, default=2, help="image-decoding worker processes (default 2)")
    p.add_argument("--cpu", action="store_true", help="train on the CPU even when a GPU is present")
    p.add_argument("--push-to-hub", default=None, metavar="REPO",
                   help="upload the trained adapter to the hub model repo REPO (user/name) with a model card")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from studio.engines.anomalycontrol.training.data import read_training_set
    from studio.engines.anomalycontrol.training.train import TrainSettings, train  # torch loads only for this command

    settings = TrainSettings(
        steps=args.steps, batch_size=args.batch_size, grad_accum=args.grad_accum, lr=args.lr,
        weight_decay=args.weight_decay, lr_warmup=args.lr_warmup, resolution=args.resolution,
        mixed_precision=args.mixed_precision, seed=args.seed, asea_steps=args.asea_steps, asea_lr=args.asea_lr,
        cache_features=args.cache_features, condition_dropout=args.condition_dropout, pairing=args.pairing,
        split=args.split, gradient_checkpointing=args.gradient_checkpointing, checkpoint_every=args.checkpoint_every,
        keep_checkpoints=args.keep_checkpoints, workers=args.workers, cpu=args.cpu,
    )
    settings.validate()
    if args.push_to_hub:
        from studio.engines.anomalycontrol.hub import check_adapter_push

        check_adapter_push(args.push_to_hub)  # before hours of training, not after
    data = read_training_set(args.data, args.captions, args.pairing, args.split)
    print(f"training on {data.summary()}", file=sys.stderr)
    with tqdm_progress("train SGA") as progress:
        result = train(data, args.weights, args.out, settings, resume=args.resume, init_adapter=args.init_adapter,
                       init_ip_adapter=args.init_ip_adapter, log_file=args.log, progress=progress)
    last = f", last loss {result.losses[-1]:.4f}" if result.losses else ""
    print(f"wrote {result.out} (step {result.step}{last}); {load_hint(result.out)}", file=sys.stderr)
    if args.push_to_hub:
        from studio.engines.anomalycontrol.hub import push_trained_adapter

        url = push_trained_adapter(result.out, args.push_to_hub, weights=args.weights, data_summary=data.summary(),
                                   steps=result.step, final_loss=result.losses[-1] if result.losses else None,
                                   command=args.argv)
        print(f"pushed to {url}", file=sys.stderr)
    return 0


def load_hint(out: Path) -> str:
    """How to use the adapter: generate with the weights folder it sits in, or where to put it."""
    from studio.engines.anomalycontrol.weights import SD_DIR

    use = "anomaly-studio generate --engine anomalycontrol --weights"
    folder = out.parent.parent
    if out.name == "adapter.safetensors" and out.parent.name == "sga":
        if folder.resolve() == config.WEIGHTS_DIR.resolve():
            return f"use it with: {use} sd15 ..."
        if (folder / SD_DIR).is_dir():
            return f"use it with: {use} {folder} ..."
    return (f"to use it, put it at <weights folder>/sga/adapter.safetensors (weights/sga/adapter.safetensors for "
            f"the sd15 profile) and run: {use} <weights folder or sd15> ...")
