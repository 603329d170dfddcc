"""``anomaly-studio generate``: synthesise candidates for one image and mask."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from studio.atomic import disk_space_guard
from studio.candidates import write_candidates
from studio.cli.common import add_engine_args, engine_from_args, params_from_args, tqdm_progress, write_attention
from studio.engines import Engine
from studio.errors import InputError
from studio.requests import build_request
from studio.types import SynthesisRequest


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="synthesise labelled defect candidates for one image")
    p.add_argument("--image", required=True, help="normal product image")
    p.add_argument("--mask", required=True, help="defect region mask (non-zero = defect)")
    p.add_argument("--ref", default=None, help="reference anomaly image")
    p.add_argument("--ref-mask", default=None, help="mask of the anomaly in the reference image")
    p.add_argument("--ref-text", default="", help="what the reference anomaly is")
    p.add_argument("--prompt", required=True, help="targeted description of the defect to synthesise")
    p.add_argument("--num", type=int, default=1, help="number of candidates")
    p.add_argument("--seed", type=int, default=0, help="seed of the first candidate")
    p.add_argument("--out", required=True, help="output folder")
    add_engine_args(p)
    p.set_defaults(func=run)


def request_from_args(args: argparse.Namespace, engine: Engine) -> SynthesisRequest:
    """Load and validate every input named on the command line (parameters: the ones ``engine`` uses)."""
    if args.ref_mask and not args.ref:
        raise InputError("--ref-mask needs --ref (the reference image it marks).")
    return build_request(
        args.image, args.mask, reference=args.ref or None, reference_mask=args.ref_mask or None,
        prompt=args.prompt, reference_text=args.ref_text, num=args.num, seed=args.seed,
        params=params_from_args(args), engine=engine,
    )


def run(args: argparse.Namespace) -> int:
    engine = engine_from_args(args)
    request = request_from_args(args, engine)
    out = Path(args.out)
    if request.reference is not None and request.reference_mask is not None:
        with tqdm_progress("ASEA") as progress:
            trace = engine.explain(request, progress)
        if trace.steps:
            write_attention(out, request.reference, trace)
    with tqdm_progress(f"generate ({engine.name})") as progress:
        candidates = engine.generate(request, progress)
    with disk_space_guard("Writing the candidates", out, "the output folder"):
        written = write_candidates(out, candidates)
    print(f"wrote {len(written)} candidate(s) to {out} with engine {engine.name} ({engine.profile})", file=sys.stderr)
    return 0
