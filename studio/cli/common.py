"""Helpers shared by CLI commands: engine options, tqdm progress, writing candidates to disk."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Iterator

from contextlib import contextmanager
from tqdm import tqdm

from studio.imaging import to_png_bytes
from studio.types import PARAM_SPECS, AttentionTrace, Candidate, ProgressFn
from studio.visualize import heatmap_overlay

ENGINE_PARAM_FLAGS = {name: "--" + name.replace("_", "-") for name in PARAM_SPECS}


def add_engine_args(parser: argparse.ArgumentParser) -> None:
    """--engine, --weights and one flag per engine parameter (recorded in metadata)."""
    parser.add_argument("--engine", default="auto", help="classic, anomalycontrol or auto (default)")
    parser.add_argument("--weights", default=None, help="weight profile (tiny, sd15-random, sd15) or a folder")
    for name, flag in ENGINE_PARAM_FLAGS.items():
        default, lo, hi = PARAM_SPECS[name]
        parser.add_argument(flag, dest=name, type=float, default=None,
                            help=f"engine parameter (default {default:g}, range {lo:g}..{hi:g})")


def add_data_dir_arg(parser: argparse.ArgumentParser) -> None:
    """--data-dir: the store folder (studio.config.data_dir resolves the default)."""
    parser.add_argument("--data-dir", default=None,
                        help="the store folder (default $ANOMALY_STUDIO_DATA or ./studio_data)")


def params_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The engine parameters the user set on the command line."""
    return {name: getattr(args, name) for name in PARAM_SPECS if getattr(args, name, None) is not None}


@contextmanager
def tqdm_progress(desc: str) -> Iterator[ProgressFn]:
    """A ProgressFn drawing a tqdm bar on stderr, closed on exit."""
    bar: tqdm | None = None

    def update(done: int, total: int, what: str) -> None:
        nonlocal bar
        if bar is None or bar.total != total:
            if bar is not None:
                bar.close()
            bar = tqdm(total=total, desc=desc, unit="step", leave=False)
        bar.set_postfix_str(what[:40], refresh=False)
        bar.n = done
        bar.refresh()

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()


def write_json(path: Path, data: Any) -> None:
    """Pretty, deterministic JSON."""
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def write_candidates(out: Path, candidates: list[Candidate]) -> list[Path]:
    """candidate_NN.png, candidate_NN_mask.png and candidate_NN.json for each candidate."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, cand in enumerate(candidates):
        stem = out / f"candidate_{i:02d}"
        Path(f"{stem}.png").write_bytes(to_png_bytes(cand.image))
        Path(f"{stem}_mask.png").write_bytes(to_png_bytes(cand.mask))
        write_json(Path(f"{stem}.json"), cand.metadata)
        written.append(Path(f"{stem}.png"))
    return written


def write_attention(out: Path, reference: Any, trace: AttentionTrace) -> None:
    """attention_step_NN.png heat maps over the reference and attention.json with in-mask fractions."""
    out.mkdir(parents=True, exist_ok=True)
    for i, step in enumerate(trace.steps):
        (out / f"attention_step_{i:02d}.png").write_bytes(to_png_bytes(heatmap_overlay(reference, step.heatmap)))
    write_json(out / "attention.json", {
        "inmask_fraction": trace.inmask_fractions,
        "loss": [s.loss for s in trace.steps],
        "skipped": trace.skipped,
        "note": trace.note,
    })
