"""Splitting a batch over processes: the launcher's rank and world size, the shard, the local GPU."""
from __future__ import annotations

import os

from studio.batch.spec import Job
from studio.errors import InputError


def distributed_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun / accelerate / MPI / SLURM-style variables; (0, 1, 0) alone."""
    def first(*names: str, default: int) -> int:
        for name in names:
            value = os.environ.get(name, "").strip()
            if value.lstrip("-").isdigit():
                return int(value)
        return default

    world = first("WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE", default=1)
    rank = first("RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "MV2_COMM_WORLD_RANK", default=0)
    local = first("LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "MV2_COMM_WORLD_LOCAL_RANK",
                  default=rank if world > 1 else 0)
    return rank, max(world, 1), local


def shard(jobs: list[Job], rank: int, world: int) -> list[Job]:
    """The jobs process ``rank`` of ``world`` runs: index % world == rank (disjoint, covering)."""
    if world < 1 or not 0 <= rank < world:
        raise InputError(f"Rank {rank} is outside a world of {world} process(es).")
    return [job for job in jobs if job.index % world == rank]


def use_local_gpu(local_rank: int) -> str | None:
    """Make GPU ``local_rank`` (mod count) the current CUDA device, if torch and a GPU are there."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    device = local_rank % torch.cuda.device_count()
    torch.cuda.set_device(device)
    return f"cuda:{device}"
