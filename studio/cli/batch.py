"""``anomaly-studio batch``: run a job spec into the store (or a review folder); resumable and shardable.

Several processes: ``accelerate launch --num_processes K -m studio batch ...`` or
``torchrun --nproc_per_node K -m studio batch ...``; each takes the jobs with
``index % K == rank`` and writes into the same store.
"""
from __future__ import annotations

import argparse
import sys

from studio import config
from studio.batch import load_spec, run_batch
from studio.cli.common import add_data_dir_arg
from studio.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("batch", help="generate many samples from a YAML/JSON job spec")
    p.add_argument("--spec", required=True, help="job spec (YAML or JSON) with a 'jobs:' list")
    add_data_dir_arg(p)
    p.add_argument("--review", action="store_true",
                   help="write candidates to <data-dir>/review/<job-id>/ for review instead of accepting them")
    p.add_argument("--shard", default=None, metavar="RANK/WORLD",
                   help="run only shard RANK of WORLD (0-based), e.g. 0/4; default from RANK/WORLD_SIZE")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first failing job")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _parse_shard(text: str | None) -> tuple[int | None, int | None]:
    if text is None:
        return None, None
    try:
        rank, world = (int(part) for part in text.split("/"))
    except ValueError:
        raise InputError(f"--shard must look like RANK/WORLD, e.g. 0/4; got {text!r}.") from None
    if world < 1 or not 0 <= rank < world:
        raise InputError(f"--shard {text}: RANK must be 0..WORLD-1.")
    return rank, world


def run(args: argparse.Namespace) -> int:
    rank, world = _parse_shard(args.shard)
    spec = load_spec(args.spec)
    data_dir = config.data_dir(args.data_dir)
    result = run_batch(spec, data_dir, review=args.review, rank=rank, world=world,
                       show_progress=not args.no_progress, fail_fast=args.fail_fast)
    shard = "" if result.world == 1 else f" (shard {result.rank + 1}/{result.world})"
    written = (f"{result.candidates_written} candidate(s) written to {data_dir}/review for review" if args.review
               else f"{len(result.sample_ids)} sample(s) written to {data_dir}")
    print(f"batch{shard}: {len(result.done)} job(s) done, {len(result.skipped)} already finished, "
          f"{len(result.failed)} failed; {written}", file=sys.stderr)
    for _, message in result.failed:
        print(f"error: {message}", file=sys.stderr)
    return 1 if result.failed else 0
