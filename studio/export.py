"""Dataset exports of the curated store: MVTec (anomalib), COCO instance segmentation, HF imagefolder.

Every export is built in a hidden sibling of the destination (``.<name>.partial-<hex>``)
and renamed into place only when complete — a folder (or ``.zip``) at the destination
is always a whole export. The store is only read. Folder names made from user text
(category, defect type) go through :mod:`studio.naming`.

Layouts::

    mvtec        <out>/<category>/train/good/NNN.png               normal images
                 <out>/<category>/test/<defect_type>/NNN.png       composited samples
                 <out>/<category>/ground_truth/<defect_type>/NNN_mask.png
    coco         <out>/annotations.json  (RLE instance masks, one category per defect type)
                 <out>/images/<sample-id>.png
    imagefolder  <out>/metadata.jsonl  (file_name, mask_file_name, normal_file_name, prompt, ...)
                 <out>/images/  masks/  normals/  references/

Each export also holds ``export.json``: format, time, and which sample id became which file.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import zipfile
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from studio import __version__
from studio.errors import InputError, StudioError
from studio.naming import NameAllocator
from studio.store import DEFAULT_CATEGORY, DEFAULT_DEFECT_TYPE, SampleRecord, Store, fsync_dir
from studio.types import INT_PARAMS, PARAM_SPECS, ProgressFn

log = logging.getLogger(__name__)

EXPORT_FORMATS = ("mvtec", "coco", "imagefolder")
MANIFEST_FILE = "export.json"

_Writer = Callable[[list[SampleRecord], "_Sink", "_Progress"], dict[str, Any]]


def export_dataset(store: Store, fmt: str, out: str | os.PathLike, *, make_zip: bool = False,
                   progress: ProgressFn | None = None, overwrite: bool = False) -> Path:
    """Export every sample of ``store`` as ``fmt`` to ``out``; returns the folder, or the .zip when ``make_zip``.

    ``out`` must not exist yet (or be an empty folder) unless ``overwrite``; with ``make_zip``
    the archive is ``out`` if it ends in ``.zip``, else ``out`` + ``.zip``.
    """
    fmt = (fmt or "").strip().lower()
    if fmt not in _WRITERS:
        raise InputError(f"Unknown export format {fmt!r}; choose one of: {', '.join(EXPORT_FORMATS)}.")
    final = Path(out).expanduser().absolute()
    if make_zip and final.suffix.lower() != ".zip":
        final = final.with_name(final.name + ".zip")
    _check_destination(final, store, overwrite, make_zip)
    records = [rec for rec in store.list() if _present(rec)]
    if not records:
        raise InputError(f"The store at {store.root} has no samples yet; accept some before exporting.")
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.parent / f".{final.name[:100]}.partial-{secrets.token_hex(4)}{'.zip' if make_zip else ''}"
    sink: _Sink = _ZipSink(partial, final.stem) if make_zip else _FolderSink(partial)
    try:
        tracker = _Progress(progress, len(records), fmt)
        manifest = _WRITERS[fmt](records, sink, tracker)
        manifest.update({
            "format": fmt, "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "store": str(store.root), "anomaly_studio_version": __version__,
        })
        sink.write(MANIFEST_FILE, (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
        sink.finish()  # everything flushed to disk before the rename makes it visible
        _replace(partial, final, overwrite)
    except BaseException:
        sink.abort()
        raise
    fsync_dir(final.parent)
    return final


# --------------------------------------------------------------------- formats
def _export_mvtec(records: list[SampleRecord], sink: "_Sink", progress: "_Progress") -> dict[str, Any]:
    """anomalib MVTec/Folder layout: per category train/good, test/<defect>, ground_truth/<defect>."""
    categories = NameAllocator(DEFAULT_CATEGORY, reserved=(MANIFEST_FILE,))
    by_category: dict[str, list[SampleRecord]] = defaultdict(list)
    for rec in records:
        by_category[rec.category].append(rec)
    files: list[dict[str, Any]] = []
    for category, recs in by_category.items():
        cdir = categories(category)
        defects = NameAllocator(DEFAULT_DEFECT_TYPE, reserved=("good",))  # test/good means "normal"
        train = f"{cdir}/train/good"
        normals: dict[Path, str] = {}
        counters: dict[str, int] = defaultdict(int)
        for rec in recs:
            if rec.normal_path not in normals:
                normals[rec.normal_path] = f"{train}/{len(normals):03d}.png"
                sink.copy(rec.normal_path, normals[rec.normal_path])
            folder = defects(rec.defect_type)
            n = counters[folder]
            counters[folder] += 1
            image, mask = f"{cdir}/test/{folder}/{n:03d}.png", f"{cdir}/ground_truth/{folder}/{n:03d}_mask.png"
            sink.copy(rec.image_path, image)
            sink.copy(rec.mask_path, mask)
            files.append({"id": rec.id, "category": rec.category, "defect_type": rec.defect_type,
                          "image": image, "mask": mask, "normal": normals[rec.normal_path]})
            progress.step(rec.id)
    return {"samples": files}


def _export_coco(records: list[SampleRecord], sink: "_Sink", progress: "_Progress") -> dict[str, Any]:
    """COCO instance segmentation: one annotation (RLE) per sample, one category per defect type."""
    from pycocotools import mask as mask_utils

    defect_types = sorted({r.defect_type for r in records})
    category_ids = {name: i + 1 for i, name in enumerate(defect_types)}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    files: list[dict[str, Any]] = []
    for rec in records:
        mask = _read_mask(rec.mask_path)
        file_name = f"{rec.id}.png"
        sink.copy(rec.image_path, f"images/{file_name}")
        image_id = len(images) + 1
        height, width = mask.shape
        meta = rec.metadata
        images.append({
            "id": image_id, "file_name": file_name, "width": int(width), "height": int(height),
            "sample_id": rec.id, "product_category": rec.category, "defect_type": rec.defect_type,
            "prompt": meta.get("prompt", ""), "seed": meta.get("seed"), "engine": meta.get("engine"),
            "date_captured": rec.accepted_at,
        })
        if mask.any():
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id,
                "category_id": category_ids[rec.defect_type],
                "segmentation": {"size": [int(height), int(width)], "counts": rle["counts"].decode("ascii")},
                "area": float(mask_utils.area(rle)),
                "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                "iscrowd": 0,
            })
        files.append({"id": rec.id, "image": f"images/{file_name}", "image_id": image_id})
        progress.step(rec.id)
    coco = {
        "info": {"description": "AnomalyControl Studio synthetic defects", "version": __version__,
                 "date_created": datetime.now(timezone.utc).isoformat(timespec="seconds")},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": cid, "name": name, "supercategory": "defect"} for name, cid in category_ids.items()],
    }
    sink.write("annotations.json", json.dumps(coco, ensure_ascii=False).encode("utf-8"))
    return {"samples": files}


def _export_imagefolder(records: list[SampleRecord], sink: "_Sink", progress: "_Progress") -> dict[str, Any]:
    """Hugging Face ``imagefolder``: metadata.jsonl with one row per sample; image, mask, normal as Image columns."""
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
            "weights": str(meta.get("weights") or ""), "note": rec.note, "accepted_at": rec.accepted_at,
            "width": rec.width, "height": rec.height,
        })
        for name in PARAM_SPECS:  # typed columns, identical in every row (one Arrow schema)
            value = params.get(name)
            row[name] = None if value is None else (int(value) if name in INT_PARAMS else float(value))
        row["metadata"] = json.dumps(meta, sort_keys=True, ensure_ascii=False)
        lines.append(json.dumps(row, ensure_ascii=False) + "\n")
        files.append({"id": rec.id, "image": image, "mask": mask})
        progress.step(rec.id)
    sink.write("metadata.jsonl", "".join(lines).encode("utf-8"))
    return {"samples": files}


_WRITERS: dict[str, _Writer] = {"mvtec": _export_mvtec, "coco": _export_coco, "imagefolder": _export_imagefolder}


# --------------------------------------------------------------------- helpers
class _Progress:
    def __init__(self, fn: ProgressFn | None, total: int, fmt: str) -> None:
        self.fn, self.total, self.done, self.fmt = fn, total, 0, fmt

    def step(self, what: str) -> None:
        self.done += 1
        if self.fn is not None:
            self.fn(self.done, self.total, f"{self.fmt}: {what}")


def _check_destination(final: Path, store: Store, overwrite: bool, make_zip: bool) -> None:
    store_root = store.root.resolve()
    resolved = final.resolve()
    if resolved == store_root or store_root in resolved.parents or resolved in store_root.parents:
        raise InputError(f"Export somewhere outside the data folder {store.root} (and not around it).")
    if final.exists() or final.is_symlink():
        if final.is_dir() and not final.is_symlink() and not any(final.iterdir()):
            return
        if not overwrite:
            raise InputError(f"{final} already exists; choose a new destination or pass --overwrite.")
        previous = (final.is_file() and make_zip) or (final.is_dir() and (final / MANIFEST_FILE).is_file())
        if final.is_symlink() or not previous:  # --overwrite never deletes a folder we did not write
            raise InputError(f"{final} exists and is not a previous export; remove it yourself.")


def _replace(src: Path, final: Path, overwrite: bool) -> None:
    """Move the finished export into place; a previous export at ``final`` is replaced only when ``overwrite``."""
    if final.is_dir() and not final.is_symlink():
        if any(final.iterdir()):
            if not overwrite:  # appeared while we were exporting
                raise InputError(f"{final} appeared during the export; nothing was replaced.")
            old = final.with_name(f".{final.name[:100]}.old-{secrets.token_hex(4)}")
            os.rename(final, old)
            os.rename(src, final)
            shutil.rmtree(old, ignore_errors=True)
            return
        final.rmdir()
    elif final.exists() and not overwrite:
        raise InputError(f"{final} appeared during the export; nothing was replaced.")
    os.replace(src, final)


class _Sink:
    """Where an export's files go: a hidden folder or a hidden .zip next to the destination."""

    def copy(self, src: Path, rel: str) -> None:
        raise NotImplementedError

    def write(self, rel: str, data: bytes) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Make everything durable (the caller renames afterwards)."""

    def abort(self) -> None:
        """Remove whatever was written."""


class _FolderSink(_Sink):
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()
        self._dirs: set[Path] = {root}

    def _target(self, rel: str) -> Path:
        target = self.root / rel
        if target.parent not in self._dirs:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(target.parent)
        return target

    def copy(self, src: Path, rel: str) -> None:
        shutil.copyfile(src, self._target(rel))

    def write(self, rel: str, data: bytes) -> None:
        self._target(rel).write_bytes(data)

    def finish(self) -> None:
        if hasattr(os, "sync"):
            os.sync()

    def abort(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class _ZipSink(_Sink):
    """Files go straight into the archive under ``top/``: PNGs stored (already compressed), text deflated."""

    def __init__(self, path: Path, top: str) -> None:
        self.path, self.top = path, top
        self.zf = zipfile.ZipFile(path, "x", allowZip64=True)

    def copy(self, src: Path, rel: str) -> None:
        method = zipfile.ZIP_STORED if src.suffix.lower() == ".png" else zipfile.ZIP_DEFLATED
        self.zf.write(src, f"{self.top}/{rel}", compress_type=method)

    def write(self, rel: str, data: bytes) -> None:
        self.zf.writestr(f"{self.top}/{rel}", data, compress_type=zipfile.ZIP_DEFLATED)

    def finish(self) -> None:
        self.zf.close()
        with open(self.path, "rb+") as fh:
            os.fsync(fh.fileno())

    def abort(self) -> None:
        with contextlib.suppress(Exception):  # a broken archive is deleted anyway
            self.zf.close()
        self.path.unlink(missing_ok=True)


def _present(rec: SampleRecord) -> bool:
    """False (with a warning) for a sample whose files vanished (removed by hand, or just now)."""
    if rec.image_path.is_file() and rec.mask_path.is_file() and rec.normal_path.is_file():
        return True
    log.warning("sample %s has missing files (removed during the export?); skipped", rec.id)
    return False


def _read_mask(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            array = np.asarray(img)
    except OSError as exc:
        raise StudioError(f"The stored mask {path} is unreadable ({exc}).") from None
    return (array != 0) if array.ndim == 2 else (array != 0).any(axis=2)


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None
