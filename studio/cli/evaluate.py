"""``anomaly-studio evaluate``: the paper's downstream protocol on the user's own data."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from studio.cli.common import tqdm_progress

METRIC_ORDER = ("pixel_auroc", "pixel_ap", "pixel_f1_max", "image_auroc", "aupro")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="train a small U-Net on synthetic defects and measure it on held-out real ones",
        description="Train a U-Net segmenter on an MVTec-layout folder of normal images and synthesised "
                    "anomalies (--train), test it on another MVTec-layout folder (--test, its test/ split) and "
                    "write metrics.json and report.png: pixel AUROC, AP, F1-max, image AUROC, AUPRO.",
    )
    p.add_argument("--train", required=True, help="MVTec-layout root or category folder with synthesised defects")
    p.add_argument("--test", required=True, help="MVTec-layout root or category folder with real (held-out) defects")
    p.add_argument("--out", required=True, help="output folder for metrics.json and report.png")
    p.add_argument("--epochs", type=int, default=30, help="training epochs (default 30)")
    p.add_argument("--batch-size", type=int, default=8, help="batch size (default 8)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate, cosine-decayed (default 1e-3)")
    p.add_argument("--resolution", type=int, default=256, help="square side images are resized to (default 256)")
    p.add_argument("--seed", type=int, default=0, help="seed for initialisation, shuffling and flips (default 0); the same seed, "
                        "device and thread count give the same numbers")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--adapter", default=None, metavar="SGA_FILE",
                   help="the SGA adapter that synthesised --train: test images it was trained on (recorded in it by "
                        "`anomaly-studio train`) are refused, since measuring on them would leak")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from studio.evaluation.protocol import EvalSettings, evaluate  # torch loads only for this command

    if args.adapter:
        refuse_seen_test_images(args.test, args.adapter)
    settings = EvalSettings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                            resolution=args.resolution, seed=args.seed, device=args.device)
    document = evaluate(args.train, args.test, args.out, settings, progress=tqdm_progress)
    rows = [(name, entry["metrics"]) for name, entry in document["categories"].items()]
    if len(rows) > 1:
        rows.append(("mean", document["mean"]))
    print("category".ljust(20) + "".join(m.rjust(14) for m in METRIC_ORDER))
    for name, metrics in rows:
        print(name[:20].ljust(20) + "".join(_fmt(metrics.get(m)).rjust(14) for m in METRIC_ORDER))
    out = Path(args.out)
    print(f"wrote {out / 'metrics.json'} and {out / 'report.png'} "
          f"({document['settings']['seconds_total']:.0f} s on {document['settings']['device']})", file=sys.stderr)
    return 0


def refuse_seen_test_images(test: str, adapter: str) -> None:
    """An InputError when any anomalous test image of ``test`` is among the images ``adapter`` was trained on."""
    import hashlib

    from studio.datasets.mvtec import find_categories
    from studio.engines.anomalycontrol.sga import adapter_training_images
    from studio.errors import InputError

    seen = adapter_training_images(adapter)
    if not seen:
        print(f"warning: the adapter {adapter} records no training images; leakage into --test cannot be checked",
              file=sys.stderr)
        return
    leaked = [s.image for c in find_categories(test, what="test folder") for s in c.test_anomalous
              if hashlib.sha256(s.image.read_bytes()).hexdigest() in seen]
    if leaked:
        raise InputError(
            f"{len(leaked)} test image(s) (e.g. {leaked[0]}) trained the adapter {adapter}: metrics on them would "
            "leak. Test on images it did not see: train with --split authors (the default: the first third of each "
            "defect type trains, the rest stays for testing) and test on a folder without those images."
        )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"
