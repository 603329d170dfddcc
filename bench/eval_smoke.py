"""Smoke run of the downstream protocol on CPU: classic-engine training set vs drawn test defects.

    python -m bench.eval_smoke [--side 256] [--resolution 128] [--epochs 20] [--out /tmp/eval_smoke]

Builds an MVTec-layout training folder (normal surfaces + classic-engine anomalies) and a held-out
test folder of differently drawn defects on unseen normals, runs ``anomaly-studio evaluate`` and
prints its wall time; ``metrics.json`` and ``report.png`` land in ``--out``. A smoke figure, not a claim.
"""
from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from studio.cli import main as cli
from tests.helpers.evaluation_data import make_classic_train, make_drawn_test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=256, help="image size of the generated data")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--out", default="/tmp/eval_smoke")
    args = parser.parse_args()
    root = Path(args.out)
    shutil.rmtree(root, ignore_errors=True)
    make_classic_train(root / "data" / "train" / "plate", seed=1, normals=20, anomalies=40, side=args.side)
    make_drawn_test(root / "data" / "test" / "plate", seed=2, good=10, anomalies=20, side=args.side)
    start = time.perf_counter()
    cli(["evaluate", "--train", str(root / "data" / "train"), "--test", str(root / "data" / "test"),
         "--out", str(root / "report"), "--resolution", str(args.resolution), "--epochs", str(args.epochs),
         "--seed", "0", "--device", "cpu"])
    print(f"evaluate wall time: {time.perf_counter() - start:.1f} s; report in {root / 'report'}")


if __name__ == "__main__":
    main()
