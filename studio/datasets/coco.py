"""COCO instance segmentation (the writer): ``annotations.json`` with RLE masks and ``images/<sample-id>.png``.

One annotation per sample, one COCO category per defect type; sample id, product category,
prompt, seed and engine ride along on each image entry.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from studio import __version__
from studio.errors import StudioError
from studio.store import SampleRecord

if TYPE_CHECKING:
    from studio.datasets.sink import Progress, Sink


def write_coco(records: list[SampleRecord], sink: "Sink", progress: "Progress") -> dict[str, Any]:
    """Write the images and ``annotations.json``; returns the manifest's ``samples`` entry."""
    from pycocotools import mask as mask_utils

    defect_types = sorted({r.defect_type for r in records})
    category_ids = {name: i + 1 for i, name in enumerate(defect_types)}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    files: list[dict[str, Any]] = []
    for rec in records:
        mask = read_label_mask(rec.mask_path)
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


def read_label_mask(path: Path) -> np.ndarray:
    """A stored 0/255 label mask as bool (any non-zero channel is the defect)."""
    try:
        with Image.open(path) as img:
            array = np.asarray(img)
    except OSError as exc:
        raise StudioError(f"The stored mask {path} is unreadable ({exc}).") from None
    return (array != 0) if array.ndim == 2 else (array != 0).any(axis=2)
