"""Hugging Face ``imagefolder`` (the writer): ``metadata.jsonl`` plus images/, masks/, normals/, references/.

One row per sample; image, mask, normal (and reference, when any sample has one) are Image
columns; every engine parameter a sample records is a typed column, present in every row (one Arrow schema;
null where the sample's engine does not use it).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.datasets import guidance_mode
from studio.store import SampleRecord

if TYPE_CHECKING:
    from studio.datasets.sink import Progress, Sink


def write_imagefolder(records: list[SampleRecord], sink: "Sink", progress: "Progress") -> dict[str, Any]:
    """Write the files and ``metadata.jsonl``; returns the manifest's ``samples`` entry."""
    copied: set[str] = set()

    def shared(path: Path | None, sub: str) -> str | None:
        if path is None:
            return None
        rel = f"{sub}/{path.name}"
        if rel not in copied:
            sink.copy(path, rel)
            copied.add(rel)
        return rel

    has_reference = any(r.reference_path is not None for r in records)
    has_reference_mask = any(r.reference_mask_path is not None for r in records)
    columns = _param_columns(records)
    files: list[dict[str, Any]] = []
    lines: list[str] = []
    for rec in records:
        image, mask = f"images/{rec.id}.png", f"masks/{rec.id}.png"
        sink.copy(rec.image_path, image)
        sink.copy(rec.mask_path, mask)
        meta = rec.metadata
        row: dict[str, Any] = {"file_name": image, "mask_file_name": mask,  # file_name must come first
                               "normal_file_name": shared(rec.normal_path, "normals")}
        if has_reference:  # only when some sample has one: an all-null column would not be an image
            row["reference_file_name"] = shared(rec.reference_path, "references")
        if has_reference_mask:
            row["reference_mask_file_name"] = shared(rec.reference_mask_path, "references")
        params = meta.get("params") if isinstance(meta.get("params"), dict) else {}
        row.update({
            "sample_id": rec.id, "category": rec.category, "defect_type": rec.defect_type,
            "prompt": str(meta.get("prompt") or ""), "reference_text": str(meta.get("reference_text") or ""),
            "seed": _int_or_none(meta.get("seed")), "engine": str(meta.get("engine") or ""),
            "weights": str(meta.get("weights") or ""), "guidance_mode": guidance_mode(meta),
            "note": rec.note, "accepted_at": rec.accepted_at,
            "width": rec.width, "height": rec.height,
        })
        for name, integer in columns.items():
            value = params.get(name)
            row[name] = None if value is None else (int(value) if integer else float(value))
        row["metadata"] = json.dumps(meta, sort_keys=True, ensure_ascii=False)
        lines.append(json.dumps(row, ensure_ascii=False) + "\n")
        files.append({"id": rec.id, "image": image, "mask": mask})
        progress.step(rec.id)
    sink.write("metadata.jsonl", "".join(lines).encode("utf-8"))
    return {"samples": files}


def _param_columns(records: list[SampleRecord]) -> dict[str, bool]:
    """name -> whole-number column, for every engine parameter any of ``records`` recorded (sorted)."""
    seen: dict[str, bool] = {}
    for rec in records:
        params = rec.metadata.get("params") if isinstance(rec.metadata.get("params"), dict) else {}
        for name, value in params.items():
            whole = isinstance(value, int) and not isinstance(value, bool)
            seen[name] = seen.get(name, True) and whole
    return dict(sorted(seen.items()))


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None
