"""Resumable training checkpoints: the adapter (engine-loadable) plus optimiser, LR schedule and loss-scaler state.

A run writing ``adapter.safetensors`` keeps its checkpoints in ``adapter-checkpoints/step-NNNNNN/``,
each written to a hidden partial folder and renamed into place, the oldest pruned.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import torch

from studio.atomic import staged_dir
from studio.engines.anomalycontrol.sga import SGAdapter, load_adapter, save_adapter
from studio.errors import InputError

log = logging.getLogger(__name__)

STATE_FILE = "training_state.pt"
ADAPTER_FILE = "adapter.safetensors"
#: Settings that decide which batches and draws each step sees (compared on resume).
ORDER_SETTINGS = ("seed", "batch_size", "grad_accum", "resolution", "processes", "pairing", "condition_dropout")


def checkpoint_root(out: Path) -> Path:
    """Checkpoints of a run writing ``adapter.safetensors`` go to ``adapter-checkpoints/step-NNNNNN/``."""
    return out.with_name(out.stem + "-checkpoints")


def save_checkpoint(root: Path, step: int, adapter: SGAdapter, optimizer, lr_schedule, scaler, meta: dict,
                    *, keep: int) -> Path:
    """Adapter (engine-loadable safetensors) + optimiser/schedule/scaler state, written atomically; prune old ones."""
    final = root / f"step-{step:06d}"
    for stale in root.glob(f".{final.name}.partial-*"):  # left by a run killed mid-write
        shutil.rmtree(stale, ignore_errors=True)
    shutil.rmtree(final, ignore_errors=True)
    with staged_dir(final) as partial:
        save_adapter(adapter, partial / ADAPTER_FILE)
        torch.save({
            "step": step, "optimizer": optimizer.state_dict(), "lr_schedule": lr_schedule.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None, "meta": meta,
        }, partial / STATE_FILE)
    for old in sorted(p for p in root.glob("step-*") if p.is_dir())[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def resolve_checkpoint(path: str | Path) -> Path:
    """A ``step-NNNNNN`` folder, or a checkpoints folder (its latest step)."""
    path = Path(path)
    if (path / STATE_FILE).is_file() and (path / ADAPTER_FILE).is_file():
        return path
    steps = sorted(p for p in path.glob("step-*") if (p / STATE_FILE).is_file()) if path.is_dir() else []
    if not steps:
        raise InputError(f"{str(path)!r} is not a training checkpoint: expected {STATE_FILE} and {ADAPTER_FILE} "
                         "in it (or step-NNNNNN folders holding them).")
    return steps[-1]


def load_checkpoint(folder: Path, adapter: SGAdapter, optimizer, lr_schedule, scaler, meta: dict) -> int:
    """Restore adapter and training state from ``folder``; returns its step (warns if the data order will differ)."""
    load_adapter(adapter, folder / ADAPTER_FILE)
    try:
        state = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        lr_schedule.load_state_dict(state["lr_schedule"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        step = int(state["step"])
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise InputError(f"The training state in {str(folder)!r} could not be restored "
                         f"({str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__}).") from None
    saved = state.get("meta") or {}
    changed = [k for k in (*ORDER_SETTINGS, "data") if saved.get(k) != meta.get(k)]
    if changed:
        log.warning("Resuming with different %s than the checkpoint: the batches will differ from an "
                    "uninterrupted run.", ", ".join(changed))
    return step

