"""Batch job specs: parsing and validation, and the seeded random mask generator.

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
and its index); its samples get ids ``<job-id>-NN``.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from studio import config
from studio.engines import ENGINE_NAMES, declared_parameters
from studio.errors import InputError
from studio.imaging import shape_mask, shape_name
from studio.types import SEED_MAX, clean_text, whole_number

MAX_SPEC_BYTES = 50 * 1024 * 1024
JOB_KEYS = frozenset({
    "image", "mask", "mask_generator", "prompt", "count", "seed", "category", "defect_type", "reference",
    "reference_mask", "reference_text", "engine", "weights", "params", "note",
})
#: Engine parameters a job may set at its top level (each engine refuses the ones it does not use).
PARAMETER_KEYS = frozenset(p.name for p in declared_parameters())
JOB_KEYS |= PARAMETER_KEYS
SPEC_KEYS = frozenset({"jobs", "defaults", "version", "name", "description"})
MASK_GENERATORS = ("ellipse", "rectangle")  # the shapes of studio.imaging.SHAPES a generator draws


def _params(params: dict[str, Any], declared: dict[str, Any], engine: str) -> dict[str, float | int]:
    """The parameters a job sets, range-checked; one its engine does not use is refused (with ``auto``,
    the engine that runs checks them again)."""
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise InputError(f"the {engine} engine does not use the parameter(s) {', '.join(unknown)}.")
    return {name: declared[name].resolve(value) for name, value in params.items()}


def review_sample_id(job_id: str, index: int) -> str:
    """The store id of candidate ``index`` of batch job ``job_id``, accepted directly or from review."""
    return f"{job_id}-{index:02d}"


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

    def sample_ids(self) -> list[str]:
        """The ids this job's samples get: deterministic, so any process (or re-run) agrees."""
        return [review_sample_id(self.job_id, i) for i in range(self.count)]


@dataclass
class BatchSpec:
    path: Path
    jobs: list[Job]


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
    declared = {p.name: p for p in declared_parameters(engine)}  # the job's engine's (auto: any engine's)
    params.update({k: entry[k] for k in PARAMETER_KEYS if k in entry})
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
            params=_params(params, declared, engine),
            note=clean_text(_str(entry.get("note", ""), "note"), "note"),
        )
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    return job


def _str(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InputError(f"'{what}' must be text.")
    return str(value)


def _int(value: Any, what: str, lo: int, hi: int) -> int:
    number = whole_number(value, lo, hi) if isinstance(value, (int, float, str)) else None
    if number is None:
        raise InputError(f"'{what}' must be a whole number from {lo} to {hi}, got {value!r}.")
    return number


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
    try:
        kind = shape_name(spec.get("type", "ellipse"))
    except InputError:
        kind = ""
    if kind not in MASK_GENERATORS:
        raise InputError(f"'mask_generator' type must be one of {', '.join(MASK_GENERATORS)}, "
                         f"got {spec.get('type')!r}.")
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
    mask = np.zeros((height, width), bool)
    for _ in range(generator["count"]):
        a = max(1.0, rng.uniform(generator["min_size"], generator["max_size"]) * short)
        b = max(1.0, a * rng.uniform(0.3, 1.0))
        cx = rng.uniform(a, max(a, width - a))
        cy = rng.uniform(a, max(a, height - a))
        angle = rng.uniform(0, 180)
        mask |= shape_mask(size, generator["type"], (cx, cy), (a, b), angle=angle)
    if not mask.any():
        mask[height // 2, width // 2] = True
    return mask
