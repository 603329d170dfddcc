"""Pictures for the page's galleries: candidates in each view, curated thumbnails, attention maps.

Galleries get files, not arrays: Gradio copies a file into its cache once, atomically, but
re-encodes an array and rewrites its cache file every time it is shown again. So every picture
here is drawn once and written as a PNG next to its source (or under a given folder).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from studio.imaging import load_image, load_mask
from studio.types import AttentionTrace
from studio.ui import session as ss
from studio.visualize import heatmap_overlay, mask_outline, mask_overlay

#: How the candidates gallery can show a candidate.
VIEWS = ("image", "overlay", "side by side")
#: Longest side of images sent to galleries for display (accept always stores full size).
DISPLAY_MAX = 1024
THUMB_MAX = 256
ATTENTION_MAX = 512

GalleryItem = tuple[str, str]


def fit(image: np.ndarray, longest: int) -> np.ndarray:
    """Downscale so the longest side is at most ``longest`` (display only)."""
    height, width = image.shape[:2]
    scale = longest / max(height, width)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def view_image(image: np.ndarray, mask: np.ndarray, view: str) -> np.ndarray:
    """A candidate as shown: plain, with its label overlay, or both side by side."""
    image = fit(image, DISPLAY_MAX)
    if view == "overlay":
        return mask_overlay(image, mask)
    if view == "side by side":
        gap = np.full((image.shape[0], max(4, image.shape[1] // 64), 3), 255, np.uint8)
        return np.hstack([image, gap, mask_overlay(image, mask)])
    return image


def candidate_caption(record: dict[str, Any]) -> str:
    """``#n · seed s`` for a session candidate (numbered from 1)."""
    return f"#{record['index'] + 1} · seed {record['seed']}"


def candidate_gallery(state: ss.Session | None, view: str = "image") -> list[GalleryItem]:
    """The session's visible candidates as gallery items (file, caption) in the chosen view."""
    view = view if view in VIEWS else "image"
    items = []
    for record in ss.visible_candidates(state):
        caption = candidate_caption(record)
        if record["status"] == "accepted":
            caption += f" · ✓ accepted ({record['sample_id']})"
        items.append((candidate_file(record, view), caption))
    return items


def candidate_file(record: dict[str, Any], view: str) -> str:
    """A candidate drawn for display in ``view``, made once per candidate and view."""
    width, height = (record.get("metadata") or {}).get("image_size") or (DISPLAY_MAX + 1, 0)
    if view == "image" and max(width, height) <= DISPLAY_MAX:
        return record["image"]
    path = Path(record["image"]).with_name(f"candidate_{record['index']:02d}_{view.replace(' ', '_')}.png")
    if not path.exists():
        image = load_image(record["image"], what="candidate image")
        mask = load_mask(record["mask"], (image.shape[1], image.shape[0]))
        ss.write_png(path, view_image(image, mask, view))
    return str(path)


def thumbnail_file(record: Any, folder: Path) -> str:
    """A curated sample's thumbnail with its label overlay, as a file under ``folder`` (made once)."""
    image_path = Path(record.image_path)
    path = folder / f"{record.id}-{int(image_path.stat().st_mtime_ns)}.png"
    if not path.exists():
        image = fit(load_image(image_path, what="curated image"), THUMB_MAX)
        if record.mask_path and Path(record.mask_path).exists():
            image = mask_overlay(image, load_mask(record.mask_path, (image.shape[1], image.shape[0])))
        folder.mkdir(parents=True, exist_ok=True)
        ss.write_png(path, image)
    return str(path)


def percent(fraction: float) -> str:
    """A share as a whole percentage (``0.42`` -> ``42%``)."""
    return f"{fraction:.0%}"


def attention_items(trace: AttentionTrace, reference: np.ndarray, reference_mask: np.ndarray,
                    folder: Path) -> list[GalleryItem]:
    """One heat map per ASEA step over the reference, the marked region outlined in white,
    captioned with the share of attention inside it; files under ``folder`` (named by content)."""
    shown = fit(reference, ATTENTION_MAX)
    return [(ss.write_png_once(folder, mask_outline(heatmap_overlay(shown, step.heatmap), reference_mask)),
             f"step {k} · {percent(step.inmask_fraction)}") for k, step in enumerate(trace.steps)]
