"""Helpers shared by CLI commands: engine options, tqdm progress, attention maps on disk."""
from __future__ import annotations

import argparse
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from tqdm import tqdm

from studio.errors import InputError
from studio.imaging import write_png
from studio.jsonfile import write_json
from studio.engines import declared_parameters
from studio.types import AttentionTrace, ProgressFn
from studio.visualize import heatmap_overlay

#: The changed-pixel threshold ``--label changed`` uses when ``--label-threshold`` is not given.
CHANGED_LABEL_THRESHOLD = 16


def add_engine_args(parser: argparse.ArgumentParser) -> None:
    """--engine, --weights and one flag per parameter an engine declares (the chosen engine refuses the
    ones it does not use)."""
    parser.add_argument("--engine", default="auto", help="classic, anomalycontrol or auto (default)")
    parser.add_argument("--weights", default=None, help="weight profile (tiny, sd15-random, sd15) or a folder")
    parser.add_argument("--sga", default=None, metavar="ADAPTER",
                        help="SGA adapter for the anomalycontrol engine (guidance mode sga): a .safetensors file or "
                             "a hub id user/repo[/file] (default: $ANOMALY_STUDIO_SGA, else the weights folder's)")
    for p in declared_parameters():
        parser.add_argument(p.flag, dest=p.name, type=float, default=None,
                            help=f"{p.help} (default {p.default:g}, range {p.minimum:g}..{p.maximum:g})")
    parser.add_argument("--label", choices=("sketch", "changed"), default=None,
                        help="label mask: the sketch (default, as in the paper) or the sketched pixels that changed "
                             f"(threshold --label-threshold, default {CHANGED_LABEL_THRESHOLD} grey levels)")


def engine_from_args(args: argparse.Namespace):
    """The engine ``--engine``/``--weights``/``--sga`` name: the shared one, or with ``--sga`` an anomalycontrol
    engine loaded with that adapter."""
    from studio.engines import get_engine

    if not getattr(args, "sga", None):
        return get_engine(args.engine, args.weights)
    if args.engine not in ("auto", "anomalycontrol"):
        raise InputError(f"--sga is an adapter of the anomalycontrol engine; it does not apply to --engine {args.engine}.")
    from studio.engines.anomalycontrol.pipeline import AnomalyControlEngine

    return AnomalyControlEngine.load(args.weights, sga=args.sga)


def add_data_dir_arg(parser: argparse.ArgumentParser) -> None:
    """--data-dir: the store folder (studio.config.data_dir resolves the default)."""
    parser.add_argument("--data-dir", default=None,
                        help="the store folder (default $ANOMALY_STUDIO_DATA or ./studio_data)")


def params_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The engine parameters the user set on the command line (``--label`` sets ``label_threshold``)."""
    params = {p.name: getattr(args, p.name) for p in declared_parameters() if getattr(args, p.name, None) is not None}
    label = getattr(args, "label", None)
    if label == "sketch":
        params["label_threshold"] = 0
    elif label == "changed" and not params.get("label_threshold"):
        params["label_threshold"] = CHANGED_LABEL_THRESHOLD
    return params


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


def write_attention(out: Path, reference: Any, trace: AttentionTrace) -> None:
    """attention_step_NN.png heat maps over the reference and attention.json with in-mask fractions."""
    out.mkdir(parents=True, exist_ok=True)
    for i, step in enumerate(trace.steps):
        write_png(out / f"attention_step_{i:02d}.png", heatmap_overlay(reference, step.heatmap))
    write_json(out / "attention.json", {
        "inmask_fraction": trace.inmask_fractions,
        "loss": [s.loss for s in trace.steps],
        "skipped": trace.skipped,
        "note": trace.note,
    })
