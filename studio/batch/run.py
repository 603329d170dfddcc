"""Running a batch: this process's shard of a spec, job by job, into the store or review folders.

A job's samples (ids ``<job-id>-NN``) and its "finished" record are committed in one
transaction, so a re-run skips finished jobs and never duplicates. Under ``accelerate launch``
/ ``torchrun`` (RANK/WORLD_SIZE in the environment) process ``rank`` takes the jobs with
``index % world == rank`` and its own GPU.
"""
from __future__ import annotations

import functools
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from studio.batch.review import review_root, write_review_job
from studio.batch.shard import distributed_env, shard, use_local_gpu
from studio.batch.spec import BatchSpec, Job, generate_mask
from studio.errors import StudioError
from studio.requests import build_request
from studio.store import NewSample, Store

log = logging.getLogger(__name__)


@dataclass
class BatchResult:
    """What one process did with its shard."""

    rank: int
    world: int
    total: int  # jobs in this shard
    done: list[str] = field(default_factory=list)  # job ids finished by this run
    skipped: list[str] = field(default_factory=list)  # already finished before
    failed: list[tuple[str, str]] = field(default_factory=list)  # (job id, message)
    sample_ids: list[str] = field(default_factory=list)  # accepted into the store (store mode)
    candidates_written: int = 0  # written to review folders (review mode)


def run_batch(spec: BatchSpec, data_dir: str | os.PathLike, *, review: bool = False, rank: int | None = None,
              world: int | None = None, show_progress: bool = True, fail_fast: bool = False) -> BatchResult:
    """Run this process's shard of ``spec`` into the store at ``data_dir`` (or its review folder)."""
    env_rank, env_world, local_rank = distributed_env()
    rank = env_rank if rank is None else rank
    world = env_world if world is None else world
    mine = shard(spec.jobs, rank, world)
    if env_world > 1:  # started by a launcher: one GPU per local process
        use_local_gpu(local_rank)
    from tqdm import tqdm

    mode = "review" if review else "store"
    result = BatchResult(rank=rank, world=world, total=len(mine))
    with Store(data_dir) as store:
        finished = store.finished_jobs(mode)
        todo = [job for job in mine if job.job_id not in finished]
        result.skipped = [job.job_id for job in mine if job.job_id in finished]
        desc = "batch" if world == 1 else f"batch {rank + 1}/{world}"
        with tqdm(total=len(mine), initial=len(result.skipped), desc=desc, unit="job", file=sys.stderr,
                  disable=not show_progress, dynamic_ncols=True, mininterval=0.2, position=rank if world > 1 else None) as bar:
            for job in todo:
                bar.set_postfix_str(f"job {job.index + 1}", refresh=False)
                try:
                    ids = run_job(job, store, spec_path=spec.path, review=review, result=result)
                except Exception as exc:  # one bad job must not stop an unattended batch
                    if fail_fast:
                        raise
                    message = str(exc) if isinstance(exc, StudioError) else f"{type(exc).__name__}: {exc}"
                    log.error("job %d (%s) failed: %s", job.index + 1, job.job_id, message,
                              exc_info=not isinstance(exc, StudioError))
                    result.failed.append((job.job_id, f"job {job.index + 1}: {message}"))
                else:
                    result.done.append(job.job_id)
                    result.sample_ids.extend(ids)
                bar.update(1)
    return result


def run_job(job: Job, store: Store, *, spec_path: Path | None = None, review: bool = False,
            result: BatchResult | None = None) -> list[str]:
    """Generate one job's candidates and accept them all (or write them to the review folder, counted
    in ``result.candidates_written``); returns the ids accepted."""
    from studio.engines import get_engine

    engine = get_engine(job.engine, job.weights)
    generator = job.mask_generator or {}
    request = build_request(
        job.image, job.mask if job.mask is not None else functools.partial(generate_mask, generator),
        reference=job.reference, reference_mask=job.reference_mask, prompt=job.prompt,
        reference_text=job.reference_text, num=job.count, seed=job.seed, params=job.params,
        where=f" of job {job.index + 1}", engine=engine,
    )
    candidates = engine.generate(request)
    spec_name = spec_path.name if spec_path else None
    for i, cand in enumerate(candidates):
        cand.metadata = {**cand.metadata, "batch_job": job.job_id, "batch_index": job.index,
                         "batch_candidate": i, "batch_spec": spec_name}
    info = {"index": job.index, "spec": str(spec_path) if spec_path else None, "engine": engine.name,
            "weights": engine.profile, "count": len(candidates), "seed": job.seed}
    if review:
        labels = {"category": job.category, "defect_type": job.defect_type, "note": job.note,
                  "prompt": job.prompt, "reference_text": job.reference_text}
        folder = write_review_job(review_root(store.root), job.job_id, candidates, request.image,
                                  request.reference, request.reference_mask, {**info, **labels})
        store.mark_job_done(job.job_id, "review", [], {**info, "folder": str(folder)})
        if result is not None:
            result.candidates_written += len(candidates)
        return []
    ids = job.sample_ids()
    samples = [NewSample(c, request.image, request.reference, request.reference_mask, job.category,
                         job.defect_type, job.note, sample_id=sid)
               for c, sid in zip(candidates, ids) if sid not in store]  # some may be accepted from review
    store.add_many(samples, job_id=job.job_id, mode="store", job_info=info)
    return ids
