"""Batch generation from a job spec: unattended, resumable, deterministic, sharded across processes.

``spec`` parses and validates the YAML/JSON spec (and draws generated masks), ``shard`` splits
the jobs over launcher processes and GPUs, ``run`` generates and accepts them, ``review`` owns
the review folders that ``--review`` writes for a person to accept from.
"""
from __future__ import annotations

from studio.batch.review import (
    JOB_FILE, REVIEW_DIR, ReviewJob, ReviewSummary, accept_review, find_review_job, list_review_jobs,
    load_review_job, review_sample_id, review_summaries, review_summary, write_review_job,
)
from studio.batch.run import BatchResult, run_batch, run_job
from studio.batch.shard import distributed_env, shard, use_local_gpu
from studio.batch.spec import MASK_GENERATORS, BatchSpec, Job, generate_mask, job_id_for, load_spec

__all__ = [
    "JOB_FILE", "MASK_GENERATORS", "REVIEW_DIR", "BatchResult", "BatchSpec", "Job", "ReviewJob", "ReviewSummary",
    "accept_review", "distributed_env", "find_review_job", "generate_mask", "job_id_for", "list_review_jobs",
    "load_review_job", "load_spec", "review_sample_id", "review_summaries",
    "review_summary", "run_batch", "run_job", "shard", "use_local_gpu", "write_review_job",
]
