"""Batch generation from a job spec: unattended, resumable, deterministic, sharded across processes.

A spec (YAML or JSON) holds ``jobs:``, a list of entries, and optionally ``defaults:``
merged under every entry::

    defaults: {engine: classic, count: 4, category: bottle}
    jobs:
      - image: normals/bottle_01.png      # relative paths resolve against the spec's folder
        mask: masks/bottle_01_neck.png    # or: mask_generator: {type: ellipse, seed: 3}
        prompt: a hairline crack in the glass
        seed: 100
        defect_type: crack
        reference: refs/crack.png          # optional, with reference_mask and reference_text
        strength: 0.7                      # engine parameters by name (or under params:)

Every job gets an id derived from its content and position (``sha256`` of the merged entry
and its index), its samples get ids ``<job-id>-NN``; a job's samples and its "finished"
record are committed in one transaction, so a re-run skips finished jobs and never
duplicates. Under ``accelerate launch`` / ``torchrun`` (RANK/WORLD_SIZE in the environment)
process ``rank`` takes the jobs with ``index % world == rank`` and its own GPU.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import secrets
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from studio import config
from studio.engines import ENGINE_NAMES
from studio.errors import InputError, StudioError
from studio.imaging import check_mask, load_image, load_mask
from studio.store import NewSample, Store, now_iso
from studio.types import PARAM_SPECS, SEED_MAX, Candidate, SynthesisRequest, clean_text, resolve_params

log = logging.getLogger(__name__)

MAX_SPEC_BYTES = 50 * 1024 * 1024
REVIEW_DIR = "review"
JOB_FILE = "job.json"
JOB_KEYS = frozenset({
    "image", "mask", "mask_generator", "prompt", "count", "seed", "category", "defect_type", "reference",
    "reference_mask", "reference_text", "engine", "weights", "params", "note",
}) | frozenset(PARAM_SPECS)
SPEC_KEYS = frozenset({"jobs", "defaults", "version", "name", "description"})
MASK_GENERATORS = ("ellipse", "rectangle")


@dataclass
class Job:
    """One validated entry of a spec."""

    index: int
    job_id: str
    image: Path
    prompt: str
    count: int
    seed: int
    category: str = ""
    defect_type: str = ""
    mask: Path | None = None
    mask_generator: dict[str, Any] | None = None
    reference: Path | None = None
    reference_mask: Path | None = None
    reference_text: str = ""
    engine: str = "auto"
    weights: str | None = None
    params: dict[str, float | int] = field(default_factory=dict)
    note: str = ""
    entry: dict[str, Any] = field(default_factory=dict)

    def sample_ids(self) -> list[str]:
        """The ids this job's samples get: deterministic, so any process (or re-run) agrees."""
        return [f"{self.job_id}-{i:02d}" for i in range(self.count)]


@dataclass
class BatchSpec:
    path: Path
    jobs: list[Job]


@dataclass
class BatchResult:
    """What one process did with its shard."""

    rank: int
    world: int
    total: int  # jobs in this shard
    done: list[str] = field(default_factory=list)  # job ids finished by this run
    skipped: list[str] = field(default_factory=list)  # already finished before
    failed: list[tuple[str, str]] = field(default_factory=list)  # (job id, message)
    sample_ids: list[str] = field(default_factory=list)


# --------------------------------------------------------------------- spec
def load_spec(path: str | os.PathLike) -> BatchSpec:
    """Parse and validate a spec; every problem is an InputError naming the job."""
    spec_path = Path(path).expanduser().absolute()
    if not spec_path.is_file():
        raise InputError(f"The batch spec {str(spec_path)!r} does not exist.")
    if spec_path.stat().st_size > MAX_SPEC_BYTES:
        raise InputError(f"The batch spec is larger than {MAX_SPEC_BYTES // 2**20} MB.")
    text = spec_path.read_text(encoding="utf-8", errors="replace")
    try:
        if spec_path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # yaml/json errors: report position, not a traceback
        raise InputError(f"The batch spec {spec_path.name} is not valid YAML/JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
        raise InputError(f"The batch spec {spec_path.name} must be a mapping with a 'jobs:' list.")
    unknown = sorted(set(map(str, data)) - SPEC_KEYS)
    if unknown:
        raise InputError(f"The batch spec has unknown top-level key(s): {', '.join(unknown)}.")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise InputError("'defaults:' in the batch spec must be a mapping.")
    if not data["jobs"]:
        raise InputError(f"The batch spec {spec_path.name} has no jobs.")
    jobs = [_parse_job(i, {**defaults, **_mapping(entry, i)}, spec_path.parent) for i, entry in enumerate(data["jobs"])]
    return BatchSpec(spec_path, jobs)


def job_id_for(entry: dict[str, Any], index: int) -> str:
    """20 hex digits of sha256 over the (merged) entry and its index; user text only ever enters hashed."""
    canonical = json.dumps({"index": index, "job": entry}, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:20]


def _mapping(entry: Any, index: int) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise InputError(f"Job {index + 1} of the batch spec must be a mapping (image:, mask:, prompt:, ...).")
    return entry


def _parse_job(index: int, entry: dict[str, Any], base: Path) -> Job:
    where = f"Job {index + 1}"
    unknown = sorted(set(map(str, entry)) - JOB_KEYS)
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(JOB_KEYS))}.")
    if "image" not in entry:
        raise InputError(f"{where}: 'image' (the normal image) is missing.")
    if ("mask" in entry) == ("mask_generator" in entry):
        raise InputError(f"{where}: give exactly one of 'mask' and 'mask_generator'.")
    if "reference_mask" in entry and "reference" not in entry:
        raise InputError(f"{where}: 'reference_mask' needs 'reference' (the image it marks).")
    if not isinstance(entry.get("params") or {}, dict):
        raise InputError(f"{where}: 'params' must be a mapping of engine parameters.")
    params = dict(entry.get("params") or {})
    engine = entry.get("engine", "auto")
    if engine not in ("auto", *ENGINE_NAMES):
        raise InputError(f"{where}: unknown engine {engine!r}; choose one of: auto, {', '.join(ENGINE_NAMES)}.")
    params.update({k: entry[k] for k in PARAM_SPECS if k in entry})
    job_id = job_id_for(entry, index)
    try:
        count = _int(entry.get("count", 1), "count", 1, config.MAX_CANDIDATES)
        seed = _int(entry.get("seed", int(job_id[:8], 16)), "seed", 0, SEED_MAX)
        job = Job(
            index=index, job_id=job_id,
            image=_path(entry["image"], base, "image"),
            prompt=clean_text(_str(entry.get("prompt", ""), "prompt"), "prompt"),
            count=count, seed=seed,
            category=clean_text(_str(entry.get("category", ""), "category"), "category"),
            defect_type=clean_text(_str(entry.get("defect_type", ""), "defect_type"), "defect type"),
            mask=_path(entry["mask"], base, "mask") if "mask" in entry else None,
            mask_generator=_generator(entry["mask_generator"], seed) if "mask_generator" in entry else None,
            reference=_path(entry["reference"], base, "reference") if entry.get("reference") else None,
            reference_mask=_path(entry["reference_mask"], base, "reference_mask") if entry.get("reference_mask") else None,
            reference_text=clean_text(_str(entry.get("reference_text", ""), "reference_text"), "reference text"),
            engine=str(engine),
            weights=_str(entry["weights"], "weights") if entry.get("weights") not in (None, "") else None,
            params=resolve_params(params),
            note=clean_text(_str(entry.get("note", ""), "note"), "note"),
            entry=entry,
        )
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    return job


def _str(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InputError(f"'{what}' must be text.")
    return str(value)


def _int(value: Any, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InputError(f"'{what}' must be a whole number from {lo} to {hi}.")
    try:
        number = float(value)
    except ValueError:
        raise InputError(f"'{what}' must be a whole number from {lo} to {hi}, got {value!r}.") from None
    if not math.isfinite(number) or number != int(number) or not lo <= number <= hi:
        raise InputError(f"'{what}' must be a whole number from {lo} to {hi}, got {value!r}.")
    return int(number)


def _path(value: Any, base: Path, what: str) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"'{what}' must be a file path.")
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise InputError(f"the {what} file {str(path)!r} does not exist.")
    return path


def _generator(value: Any, job_seed: int) -> dict[str, Any]:
    spec = {"type": value} if isinstance(value, str) else value
    if not isinstance(spec, dict):
        raise InputError("'mask_generator' must be a type name (ellipse, rectangle) or a mapping with 'type'.")
    unknown = sorted(set(spec) - {"type", "seed", "count", "min_size", "max_size"})
    if unknown:
        raise InputError(f"'mask_generator' has unknown key(s): {', '.join(unknown)}.")
    kind = str(spec.get("type", "ellipse")).lower()
    if kind not in MASK_GENERATORS:
        raise InputError(f"'mask_generator' type must be one of {', '.join(MASK_GENERATORS)}, got {kind!r}.")
    sizes = {}
    for key, default in (("min_size", 0.06), ("max_size", 0.2)):
        value = spec.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"'mask_generator' {key} must be a number (a fraction of the image's shorter side).")
        sizes[key] = float(value)
    out = {
        "type": kind,
        "seed": _int(spec.get("seed", job_seed), "mask_generator seed", 0, SEED_MAX),
        "count": _int(spec.get("count", 1), "mask_generator count", 1, 20),
        **sizes,
    }
    if not 0.005 <= out["min_size"] <= out["max_size"] <= 0.45:
        raise InputError("'mask_generator' sizes must satisfy 0.005 <= min_size <= max_size <= 0.45 "
                         "(fractions of the image's shorter side).")
    return out


def generate_mask(generator: dict[str, Any], size: tuple[int, int]) -> np.ndarray:
    """A seeded random defect region: ``count`` ellipses or rotated rectangles; ``size`` = (width, height)."""
    width, height = size
    rng = np.random.default_rng(generator["seed"])
    short = min(width, height)
    mask = np.zeros((height, width), np.uint8)
    for _ in range(generator["count"]):
        a = max(1.0, rng.uniform(generator["min_size"], generator["max_size"]) * short)
        b = max(1.0, a * rng.uniform(0.3, 1.0))
        cx = rng.uniform(a, max(a, width - a))
        cy = rng.uniform(a, max(a, height - a))
        angle = rng.uniform(0, 180)
        if generator["type"] == "ellipse":
            cv2.ellipse(mask, (round(cx), round(cy)), (round(a), round(b)), angle, 0, 360, 255, -1)
        else:
            box = cv2.boxPoints(((cx, cy), (2 * a, 2 * b), angle))
            cv2.fillPoly(mask, [np.rint(box).astype(np.int32)], 255)
    if not mask.any():
        mask[height // 2, width // 2] = 255
    return mask.astype(bool)


# --------------------------------------------------------------------- sharding
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


# --------------------------------------------------------------------- running
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
                    ids = run_job(job, store, spec_path=spec.path, review=review)
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


def run_job(job: Job, store: Store, *, spec_path: Path | None = None, review: bool = False) -> list[str]:
    """Generate one job's candidates and accept them all (or write them to the review folder)."""
    from studio.engines import get_engine

    n = job.index + 1
    image = load_image(job.image, what=f"image of job {n}")
    size = (image.shape[1], image.shape[0])
    if job.mask is not None:
        mask = check_mask(load_mask(job.mask, size, what=f"mask of job {n}"), f"mask of job {n}")
    else:
        mask = check_mask(generate_mask(job.mask_generator or {}, size), f"generated mask of job {n}")
    reference = load_image(job.reference, what=f"reference of job {n}") if job.reference else None
    ref_mask = None
    if job.reference_mask is not None and reference is not None:
        ref_size = (reference.shape[1], reference.shape[0])
        ref_mask = check_mask(load_mask(job.reference_mask, ref_size, what=f"reference mask of job {n}"),
                              f"reference mask of job {n}")
    request = SynthesisRequest.create(
        image, mask, job.prompt, reference=reference, reference_mask=ref_mask, reference_text=job.reference_text,
        num=job.count, seed=job.seed, params=job.params,
    )
    engine = get_engine(job.engine, job.weights)
    candidates = engine.generate(request)
    spec_name = spec_path.name if spec_path else None
    for i, cand in enumerate(candidates):
        cand.metadata = {**cand.metadata, "batch_job": job.job_id, "batch_index": job.index,
                         "batch_candidate": i, "batch_spec": spec_name}
    info = {"index": job.index, "spec": str(spec_path) if spec_path else None, "engine": engine.name,
            "weights": engine.profile, "count": len(candidates), "seed": job.seed}
    if review:
        folder = write_review_job(Path(store.root) / REVIEW_DIR, job, candidates, image, reference, ref_mask,
                                  info)
        store.mark_job_done(job.job_id, "review", [], {**info, "folder": str(folder)})
        return []
    ids = job.sample_ids()
    samples = [NewSample(c, image, reference, ref_mask, job.category, job.defect_type, job.note, sample_id=sid)
               for c, sid in zip(candidates, ids) if sid not in store]  # some may be accepted from review
    store.add_many(samples, job_id=job.job_id, mode="store", job_info=info)
    return ids


# --------------------------------------------------------------------- review folders
@dataclass
class ReviewJob:
    """A batch job's candidates waiting in ``<data-dir>/review/<job-id>/`` for a person to accept."""

    folder: Path
    job_id: str
    category: str
    defect_type: str
    note: str
    candidates: list[Candidate]
    normal_image: np.ndarray
    reference: np.ndarray | None
    reference_mask: np.ndarray | None
    info: dict[str, Any]


def write_review_job(review_root: Path, job: Job, candidates: list[Candidate], image: np.ndarray,
                     reference: np.ndarray | None, ref_mask: np.ndarray | None, info: dict[str, Any]) -> Path:
    """candidate_NN.{png,_mask.png,json} (studio.cli.common.write_candidates), normal.png, reference*.png, job.json.

    Written in a hidden ``.partial`` sibling and renamed, so a folder that exists is complete.
    """
    from studio.cli.common import write_candidates, write_json
    from studio.imaging import to_png_bytes

    review_root.mkdir(parents=True, exist_ok=True)
    final = review_root / job.job_id
    if final.is_dir():
        return final
    staging = review_root / f".{job.job_id}.partial-{secrets.token_hex(4)}"
    try:
        write_candidates(staging, candidates)
        (staging / "normal.png").write_bytes(to_png_bytes(image))
        if reference is not None:
            (staging / "reference.png").write_bytes(to_png_bytes(reference))
        if ref_mask is not None:
            (staging / "reference_mask.png").write_bytes(to_png_bytes(np.where(ref_mask, 255, 0).astype(np.uint8)))
        write_json(staging / JOB_FILE, {
            **info, "job_id": job.job_id, "category": job.category, "defect_type": job.defect_type,
            "note": job.note, "prompt": job.prompt, "reference_text": job.reference_text,
            "candidates": len(candidates), "written_at": now_iso(),
        })
        if hasattr(os, "sync"):
            os.sync()
        try:
            os.rename(staging, final)
        except OSError:
            if not final.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def list_review_jobs(data_dir: str | os.PathLike) -> list[Path]:
    """Complete review folders under ``<data-dir>/review`` (oldest first)."""
    root = Path(data_dir) / REVIEW_DIR
    if not root.is_dir():
        return []
    folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / JOB_FILE).is_file()]
    return sorted(folders, key=lambda p: (p.stat().st_mtime, p.name))


def load_review_job(folder: str | os.PathLike) -> ReviewJob:
    """Read a review folder back: candidates (image, 0/255 mask, seed, metadata), normal image, reference."""
    folder = Path(folder)
    try:
        info = json.loads((folder / JOB_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise InputError(f"{folder} is not a batch review folder (no readable {JOB_FILE}).") from None
    normal = load_image(folder / "normal.png", what="normal image")
    size = (normal.shape[1], normal.shape[0])
    candidates = []
    for i in range(int(info.get("candidates", 0))):
        stem = folder / f"candidate_{i:02d}"
        meta = json.loads(Path(f"{stem}.json").read_text(encoding="utf-8"))
        mask = load_mask(Path(f"{stem}_mask.png"), size)
        candidates.append(Candidate(image=load_image(Path(f"{stem}.png")), mask=np.where(mask, 255, 0).astype(np.uint8),
                                    seed=int(meta.get("seed", 0)), metadata=meta))
    reference = load_image(folder / "reference.png") if (folder / "reference.png").is_file() else None
    ref_mask = None
    if reference is not None and (folder / "reference_mask.png").is_file():
        ref_mask = load_mask(folder / "reference_mask.png", (reference.shape[1], reference.shape[0]))
    return ReviewJob(folder, str(info.get("job_id", folder.name)), str(info.get("category", "")),
                     str(info.get("defect_type", "")), str(info.get("note", "")), candidates, normal, reference,
                     ref_mask, info)


def accept_review(store: Store, job: ReviewJob, indices: list[int] | None = None) -> list[str]:
    """Accept some (default: all) candidates of a review job into the store; ids are ``<job-id>-NN``."""
    chosen = range(len(job.candidates)) if indices is None else indices
    samples = []
    for i in chosen:
        if not 0 <= i < len(job.candidates):
            raise InputError(f"Candidate {i} does not exist in review job {job.job_id}.")
        sid = f"{job.job_id}-{i:02d}"
        if sid in store:
            continue
        samples.append(NewSample(job.candidates[i], job.normal_image, job.reference, job.reference_mask,
                                 job.category, job.defect_type, job.note, sample_id=sid))
    return store.add_many(samples) if samples else []
