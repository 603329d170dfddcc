"""A contact sheet of the classic engine: every defect family x every shipped normal image x N seeds,
plus the reference path on each image, as 1:1 crops around the sample region.

    .venv/bin/python -m bench.contact_sheet --out sheet.png [--seeds 4] [--window 160] [--images a,b]

Columns: for each normal image, the untouched crop then one crop per seed; rows: one per family,
the last row the reference path (column k uses the k-th shipped reference). Look at it at 1:1.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from studio import config
from studio.engines.classic import ClassicEngine
from studio.engines.classic.keywords import EXAMPLE_PROMPTS, GENERATORS
from studio.imaging import load_image, load_mask
from studio.types import SynthesisRequest

GAP = 4
HEADER = 18


def manifest() -> dict[str, Any]:
    return json.loads((config.ASSETS_DIR / "manifest.json").read_text(encoding="utf-8"))


def window(image: np.ndarray, mask: np.ndarray, side: int) -> tuple[int, int]:
    """Top-left corner of a ``side``-px window centred on the mask's bounding box."""
    ys, xs = np.nonzero(mask)
    cy, cx = (int(ys.min()) + int(ys.max())) // 2, (int(xs.min()) + int(xs.max())) // 2
    h, w = mask.shape
    return min(max(cy - side // 2, 0), max(h - side, 0)), min(max(cx - side // 2, 0), max(w - side, 0))


def tile(image: np.ndarray, corner: tuple[int, int], side: int) -> np.ndarray:
    y, x = corner
    out = np.zeros((side, side, 3), np.uint8)
    part = image[y:y + side, x:x + side]
    out[:part.shape[0], :part.shape[1]] = part
    return out


def caption(canvas: np.ndarray, text: str, origin: tuple[int, int]) -> None:
    cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)


def sheet(seeds: int = 4, side: int = 160, images: list[str] | None = None,
          families: list[str] | None = None) -> np.ndarray:
    data = manifest()
    normals = [e for e in data["normal"] if images is None or e["name"] in images]
    rows = [f for f in GENERATORS if families is None or f in families] + ["reference"]
    references = [(load_image(config.ASSETS_DIR / r["image"]), r) for r in data["references"]]
    engine = ClassicEngine()
    cols = seeds + 1
    width = len(normals) * (cols * (side + GAP) + 3 * GAP)
    height = HEADER + len(rows) * (side + GAP)
    canvas = np.full((height, width, 3), 32, np.uint8)
    for n, entry in enumerate(normals):
        image = load_image(config.ASSETS_DIR / entry["image"])
        mask = load_mask(config.ASSETS_DIR / entry["mask"], (image.shape[1], image.shape[0]))
        corner = window(image, mask, side)
        left = n * (cols * (side + GAP) + 3 * GAP)
        caption(canvas, entry["name"], (left + 2, HEADER - 5))
        for r, family in enumerate(rows):
            top = HEADER + r * (side + GAP)
            canvas[top:top + side, left:left + side] = tile(image, corner, side)
            caption(canvas, family, (left + 3, top + 14))
            for k in range(seeds):
                if family == "reference":
                    ref, info = references[k % len(references)]
                    ref_mask = load_mask(config.ASSETS_DIR / info["mask"], (ref.shape[1], ref.shape[0]))
                    request = SynthesisRequest.create(image, mask, info["text"], reference=ref,
                                                      reference_mask=ref_mask, seed=k)
                else:
                    request = SynthesisRequest.create(image, mask, f"{EXAMPLE_PROMPTS[family]} on {entry['title']}", seed=k)
                (candidate,) = engine.generate(request)
                x = left + (k + 1) * (side + GAP)
                canvas[top:top + side, x:x + side] = tile(candidate.image, corner, side)
    return canvas


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="PNG (or JPEG) file to write")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--window", type=int, default=160, help="side (px) of each 1:1 crop")
    parser.add_argument("--images", default=None, help="comma-separated normal image names (default: all)")
    parser.add_argument("--families", default=None, help="comma-separated families (default: all)")
    parser.add_argument("--scale", type=float, default=1.0, help="downscale the written sheet (e.g. 0.5 for docs)")
    args = parser.parse_args(argv)
    canvas = sheet(args.seeds, args.window, args.images.split(",") if args.images else None,
                   args.families.split(",") if args.families else None)
    picture = Image.fromarray(canvas)
    if args.scale != 1.0:
        picture = picture.resize((round(picture.width * args.scale), round(picture.height * args.scale)),
                                 Image.Resampling.LANCZOS)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    picture.save(args.out, quality=80) if args.out.suffix.lower() in (".jpg", ".jpeg") else picture.save(args.out)
    print(f"wrote {args.out} ({picture.width}x{picture.height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
