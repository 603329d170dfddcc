"""Pictures for the page: the viewer's views of a candidate, the strip's thumbnails (with their
decision drawn on them), curated thumbnails and attention maps.

Every picture is drawn once and written as a PNG next to its source (or under a given folder).
"""
from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from studio.errors import StudioError
from studio.imaging import label_mask, load_image, load_mask
from studio.types import AttentionTrace
from studio.ui.files import write_png, write_png_once
from studio.ui.session import ACCEPTED, REJECTED, CandidateRecord
from studio.visualize import heatmap_overlay, mask_outline, mask_overlay

#: How the viewer can show a candidate (``O`` cycles through them).
VIEWS = ("image", "overlay", "before / after", "mask")
THUMB_MAX = 256
#: Longest side the viewer shows (a screen's worth with room to zoom; larger candidates are downscaled).
VIEW_MAX = 2048
#: Longest side of a curated sample opened in the workspace (its full view).
OPENED_MAX = 2048
STRIP_MAX = 160
ATTENTION_MAX = 512
#: Frame colours of decided candidates on the strip.
FRAMES = {ACCEPTED: (22, 163, 74), REJECTED: (220, 38, 38)}
MARKS = {ACCEPTED: "✓", REJECTED: "✗"}

GalleryItem = tuple[str, str]


def fit(image: np.ndarray, longest: int) -> np.ndarray:
    """Downscale so the longest side is at most ``longest`` (display only)."""
    height, width = image.shape[:2]
    scale = longest / max(height, width)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def defect_crop(image: np.ndarray, mask: np.ndarray, least: int) -> np.ndarray:
    """A square around the defect (its box and as much again around it, at least ``least`` px; the whole
    image when there is no defect), so a thumbnail shows the defect, not the part."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return image
    h, w = image.shape[:2]
    side = min(max(least, 2 * int(max(np.ptp(xs), np.ptp(ys)) + 1)), h, w)
    cx, cy = int(xs.mean()), int(ys.mean())
    x0, y0 = min(max(cx - side // 2, 0), w - side), min(max(cy - side // 2, 0), h - side)
    return image[y0:y0 + side, x0:x0 + side]


def _drawn(record: CandidateRecord, suffix: str, draw: Any) -> str:
    """A picture of ``record`` drawn once by ``draw(image, mask)`` beside its image file."""
    return _drawn_from(record.image, record.mask, suffix, draw)


def _drawn_from(image_path: str, mask_path: str, suffix: str, draw: Any) -> str:
    """A picture of the candidate in these files, drawn once by ``draw(image, mask)`` beside the image (written
    atomically: a file that exists is whole, whichever thread drew it)."""
    path = Path(image_path).with_name(f"{Path(image_path).stem}_{suffix}.png")
    if not path.exists():
        image = load_image(image_path, what="candidate image")
        mask = load_mask(mask_path, (image.shape[1], image.shape[0]))
        write_png(path, draw(image, mask))
    return str(path)


def view_file(record: CandidateRecord, view: str) -> str:
    """The candidate as the viewer shows it in ``view`` (not before / after): at full resolution up to
    ``VIEW_MAX`` px (a larger one is shown downscaled; accept always stores the full size)."""
    large = max(_size(record.image)) > VIEW_MAX
    if view == "overlay":
        return _drawn(record, "overlay", lambda image, mask: mask_overlay(fit(image, VIEW_MAX), mask))
    if view == "mask":
        return _drawn(record, "mask_view", lambda _image, mask: fit(label_mask(mask), VIEW_MAX)) if large else record.mask
    return _drawn(record, "view", lambda image, _mask: fit(image, VIEW_MAX)) if large else record.image


def before_after(record: CandidateRecord, normal: str) -> tuple[str, str]:
    """(normal image, candidate) files for the before / after slider, at most ``VIEW_MAX`` px."""
    if max(_size(record.image)) <= VIEW_MAX:
        return normal, record.image
    shown = Path(record.image).with_name(f"{Path(normal).stem}_view_{VIEW_MAX}.png")
    if not shown.exists():
        write_png(shown, fit(load_image(normal, what="normal image"), VIEW_MAX))
    return str(shown), view_file(record, "image")


@functools.lru_cache(maxsize=1024)
def defect_box(mask_path: str) -> tuple[float, float, float, float] | None:
    """(centre x, centre y, width, height) of a candidate's defect as fractions of its image (the viewer opens a
    large photo zoomed on it); None without a defect. A session's mask files never change, so it is kept."""
    mask = load_image(mask_path, what="candidate mask")[..., 0] > 127
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    h, w = mask.shape
    return ((xs.min() + xs.max() + 1) / 2 / w, (ys.min() + ys.max() + 1) / 2 / h, (np.ptp(xs) + 1) / w,
            (np.ptp(ys) + 1) / h)


def _size(path: str) -> tuple[int, int]:
    """(width, height) of an image file, from its header."""
    with Image.open(path) as image:
        return image.size


def strip_caption(record: CandidateRecord) -> str:
    """``#n 0.82 ✓`` for a candidate on the strip: number, score (— for none) and decision."""
    score = "—" if record.score is None else f"{record.score:.2f}"
    return f"#{record.index + 1} {score} {MARKS.get(record.status, '')}".rstrip()


def strip_file(record: CandidateRecord) -> str:
    """The candidate's strip thumbnail; a decided one is framed (green accepted, red rejected) and a
    rejected one dimmed, so the decision shows on the picture itself. The framed ones are drawn from the
    plain thumbnail (a decision decodes ``STRIP_MAX`` px, not the whole candidate)."""
    plain = _plain_strip_file(record.image, record.mask)
    status = record.status
    if status not in FRAMES:
        return plain
    path = Path(plain).with_name(Path(plain).name.replace("_strip_new", f"_strip_{status}"))
    if not path.exists():
        thumb = load_image(plain, what="strip thumbnail").copy()
        if status == REJECTED:
            thumb = (thumb.astype(np.float32) * 0.45 + 140).clip(0, 255).astype(np.uint8)
        border = max(4, thumb.shape[1] // 18)
        cv2.rectangle(thumb, (0, 0), (thumb.shape[1] - 1, thumb.shape[0] - 1), FRAMES[status], border * 2)
        write_png(path, thumb)
    return str(path)


def marked_thumbnail(image_path: str, mask_path: str | None, longest: int) -> np.ndarray:
    """A picture at most ``longest`` px with its marked region (``mask_path``, when given) outlined (the
    reference beside Generate). Drawn in memory: the source may lie in the read-only install (an example)."""
    image = load_image(image_path, what="reference image")
    shown = fit(image, longest)
    if mask_path and Path(mask_path).is_file():
        shown = mask_outline(shown, load_mask(mask_path, (image.shape[1], image.shape[0])), (255, 60, 60), 1)
    return shown


def _plain_strip_file(image_path: str, mask_path: str) -> str:
    """The undecided candidate's strip thumbnail: its defect, centred, at most ``STRIP_MAX`` px."""
    return _drawn_from(image_path, mask_path, "strip_new",
                       lambda image, mask: fit(defect_crop(image, mask, STRIP_MAX), STRIP_MAX))


def draw_ahead(records: list[CandidateRecord]) -> None:
    """Draw the plain strip thumbnails of ``records`` and locate their defects in a background thread, in queue
    order, so that a key press draws only what it changed (a decision's frame). Stops quietly when the queue's
    files go (closed meanwhile)."""
    files = [(r.image, r.mask) for r in records]

    def work() -> None:
        for image, mask in files:
            try:
                _plain_strip_file(image, mask)
                defect_box(mask)
            except (StudioError, OSError):
                return

    threading.Thread(target=work, name="strip-ahead", daemon=True).start()


def thumbnail_file(record: Any, folder: Path, longest: int = THUMB_MAX, crop: bool = True) -> str:
    """A curated sample at most ``longest`` px, as a file under ``folder`` (made once; the data folder itself
    is never served): with ``crop`` the defect, centred, its label outlined (the gallery); without, the
    whole image as stored (the opened view shows the image first)."""
    image_path = Path(record.image_path)
    path = folder / f"{record.id}-{int(image_path.stat().st_mtime_ns)}-{longest}-{'crop' if crop else 'whole'}.png"
    if not path.exists():
        image = load_image(image_path, what="curated image")
        if crop and record.mask_path and Path(record.mask_path).exists():
            mask = load_mask(record.mask_path, (image.shape[1], image.shape[0]))
            image = mask_outline(defect_crop(image, mask, longest), defect_crop(mask, mask, longest), (255, 60, 60))
        folder.mkdir(parents=True, exist_ok=True)
        write_png(path, fit(image, longest))
    return str(path)


def percent(fraction: float) -> str:
    """A share as a whole percentage (``0.42`` -> ``42%``)."""
    return f"{fraction:.0%}"


def attention_items(trace: AttentionTrace, reference: np.ndarray, reference_mask: np.ndarray,
                    folder: Path) -> list[GalleryItem]:
    """One heat map per ASEA step over the reference, the marked region outlined in white,
    captioned with the share of attention inside it; files under ``folder`` (named by content)."""
    shown = fit(reference, ATTENTION_MAX)
    return [(write_png_once(folder, mask_outline(heatmap_overlay(shown, step.heatmap), reference_mask)),
             f"step {k} · {percent(step.inmask_fraction)}") for k, step in enumerate(trace.steps)]
