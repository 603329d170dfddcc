"""What gives the weight-free engine's defects away, measured on real photographs (issue 22).

    .venv/bin/python -m bench.classic_realism [--photos DIR] [--seeds N] [--json PATH]

Photographs: the shipped real photos (brick, gravel, grass) and rendered products (metal disc,
fabric, PCB, wood, tile), plus scikit-image's coins and coffee photos when its package data is
found (``--photos`` pointing at a ``skimage/data`` folder, or an installed scikit-image); they are
read at run time, never copied. Sketches (:data:`SKETCHES`) are drawn across object edges: coins on
their background, brick joints, stones and their gaps, a cup on its saucer, rectangles included.

Prints, per family (targets from issue 22):
- geometric families: share of candidates keeping >= 85% of their visible change (> 12 grey
  levels) on one surface, on sketches spanning two surfaces (target >= 75%); surfaces here are the
  bench's own map (:func:`surface_map`: Otsu on the sigma-1 luminance of the sketch's box, parts of
  >= 20 px), not the engine's;
- median share of labelled pixels not visibly changed (target <= 25%);
- share of candidates whose sketch outline shows (> 8 grey levels on > 5% of its inner 2-px band;
  target <= 10%), rectangles included;
- dents labelled in one piece (target >= 90%); hole / chip floor detail vs the surround's
  (target 0.6-1.5) and its correlation with the host's pattern (target <= 0.3), the floor being the
  label less its outer 4 px (:data:`~studio.engines.classic.inspection.FLOOR_INSET`: rim and wall);
- label IoU of the same seed on two photos (target <= 0.5) and of 4 reference seeds (<= 0.7), and the
  reference path's share of candidates on two-surface sketches keeping >= 85% of their change on one;
- "a burn mark": core darkening (>= 25 grey levels) and difference from "discoloration";
- unknown words: largest share of the sketch the label covers (must not fill it).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

from studio import config
from studio.engines.classic import ClassicEngine
from studio.engines.classic.defects import GEOMETRIC_FAMILIES
from studio.engines.classic.inspection import (
    VISIBLE, change, floor_figures, label_parts, one_surface_share, outline_share, unchanged_share,
)
from studio.engines.classic.keywords import EXAMPLE_PROMPTS, GENERATORS
from studio.engines.classic.measures import iou
from studio.engines.classic.photometry import luminance
from studio.imaging import load_image, load_mask, mask_bbox
from studio.types import Candidate, SynthesisRequest

#: Photo -> (where it comes from, sketches). A sketch is ("ellipse", cx, cy, semi-axis x, semi-axis y,
#: angle in degrees) or ("rect", x0, y0, x1, y1), in the photo's own pixels.
SKETCHES: dict[str, tuple[str, list[tuple]]] = {
    "brick": ("asset:normal/brick_wall.png", [("ellipse", 256, 200, 52, 14, 0), ("rect", 100, 300, 175, 340),
                                              ("ellipse", 150, 420, 40, 16, -20)]),
    "gravel": ("asset:normal/gravel_bed.png", [("ellipse", 200, 200, 42, 16, 30), ("rect", 300, 100, 362, 150)]),
    "grass": ("asset:normal/grass_lawn.png", [("ellipse", 300, 300, 45, 18, 60)]),
    "metal": ("asset:normal/metal_disc.png", [("ellipse", 330, 160, 50, 14, -35)]),
    "fabric": ("asset:normal/fabric_weave.png", [("rect", 200, 200, 280, 250)]),
    "pcb": ("asset:normal/pcb_board.png", [("ellipse", 150, 100, 45, 14, 0)]),
    "wood": ("asset:normal/wood_plank.png", [("ellipse", 260, 260, 70, 12, 2)]),
    "coins": ("skimage:coins.png", [("ellipse", 62, 122, 26, 10, 0), ("ellipse", 183, 190, 24, 11, 15),
                                    ("ellipse", 128, 125, 28, 10, 0), ("rect", 252, 92, 302, 132)]),
    "coffee": ("skimage:coffee.png", [("ellipse", 100, 330, 40, 14, 30), ("ellipse", 300, 212, 34, 12, 0),
                                      ("rect", 440, 250, 500, 300)]),
}
#: Prompts naming no family the engine knows.
UNKNOWN_PROMPTS = ("a misprint", "efflorescence", "flux capacitor", "x")
#: Families measured (the DRAEM-style texture only when named, so not here).
FAMILIES = tuple(f for f in GENERATORS if f != "perlin")


@dataclass
class Sample:
    """One photo with one sketch."""

    photo: str
    index: int
    image: np.ndarray
    mask: np.ndarray
    rectangle: bool


def skimage_data(folder: str | None) -> Path | None:
    """scikit-image's photo folder: ``folder`` if given, else the installed package's, else None."""
    if folder:
        return Path(folder)
    try:
        import skimage  # noqa: PLC0415 (optional: only its package data is read)
    except ImportError:
        return None
    return Path(skimage.__file__).parent / "data"


def load_photo(source: str, photos: Path | None) -> np.ndarray | None:
    kind, name = source.split(":", 1)
    if kind == "asset":
        return load_image(config.ASSETS_DIR / name)
    if photos is None or not (photos / name).exists():
        return None
    return load_image(photos / name)


def sketch_mask(shape: tuple[int, ...], spec: tuple) -> np.ndarray:
    mask = np.zeros(shape[:2], np.uint8)
    if spec[0] == "ellipse":
        _, cx, cy, ax, ay, angle = spec
        cv2.ellipse(mask, (cx, cy), (ax, ay), angle, 0, 360, 1, -1)
    else:
        _, x0, y0, x1, y1 = spec
        mask[y0:y1, x0:x1] = 1
    return mask.astype(bool)


def samples(photos: Path | None) -> Iterator[Sample]:
    for name, (source, sketches) in SKETCHES.items():
        image = load_photo(source, photos)
        if image is None:
            continue
        for i, spec in enumerate(sketches):
            yield Sample(name, i, image, sketch_mask(image.shape, spec), spec[0] == "rect")


def surface_map(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The bench's own surfaces: Otsu split of the sigma-1 luminance over the sketch's box (+8 px),
    8-connected parts of each tone of at least 20 px (index >= 1; 0 for crumbs and outside the box)."""
    x0, y0, x1, y1 = mask_bbox(mask, 8)
    grey = cv2.GaussianBlur(luminance(image[y0:y1, x0:x1].astype(np.float32)).astype(np.float32), (0, 0), 1.0)
    scaled = cv2.normalize(grey, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    _, bright = cv2.threshold(scaled, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    out = np.zeros(mask.shape, np.int32)
    count = 0
    for tone in (bright, 1 - bright):
        n, parts, stats, _ = cv2.connectedComponentsWithStats(tone.astype(np.uint8), connectivity=8)
        big = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= 20) + 1
        lookup = np.zeros(n, np.int32)
        lookup[big] = np.arange(count + 1, count + 1 + big.size)
        out[y0:y1, x0:x1] += lookup[parts] * tone
        count += big.size
    return out


def spans_two(surfaces: np.ndarray, mask: np.ndarray) -> bool:
    """Whether the sketch spans two surfaces (two units of >= 15% of it each)."""
    areas = np.bincount(surfaces[mask].ravel())[1:]
    return int((areas >= 0.15 * mask.sum()).sum()) >= 2


def generate(engine: ClassicEngine, sample: Sample, prompt: str, seed: int, **extra: Any) -> Candidate:
    return engine.generate(SynthesisRequest.create(sample.image, sample.mask, prompt, seed=seed, **extra))[0]


def family_figures(engine: ClassicEngine, pool: list[Sample], seeds: int) -> dict[str, dict[str, Any]]:
    figures: dict[str, dict[str, Any]] = {}
    for family in FAMILIES:
        rows = []
        for sample in pool:
            surfaces = surface_map(sample.image, sample.mask)
            two = spans_two(surfaces, sample.mask)
            for seed in range(seeds):
                cand = generate(engine, sample, EXAMPLE_PROMPTS[family], seed)
                row = {"two": two, "rect": sample.rectangle,
                       "one_surface": one_surface_share(sample.image, cand.image, surfaces),
                       "unchanged": unchanged_share(sample.image, cand.image, cand.mask),
                       "outline": outline_share(sample.image, cand.image, sample.mask),
                       "parts": label_parts(cand.mask)}
                floor = floor_figures(sample.image, cand.image, cand.mask, sample.mask) \
                    if family in ("hole", "missing") else None
                row["floor"] = floor
                rows.append(row)
        two_rows = [r for r in rows if r["two"]]
        figures[family] = {
            "candidates": len(rows),
            "one_surface_85": (sum(r["one_surface"] >= 0.85 for r in two_rows) / len(two_rows)) if two_rows else None,
            "unchanged_median": statistics.median(r["unchanged"] for r in rows),
            "outline_visible": sum(r["outline"] > 0.05 for r in rows) / len(rows),
            "outline_visible_rect": (sum(r["outline"] > 0.05 for r in rows if r["rect"])
                                     / max(1, sum(r["rect"] for r in rows))),
            "one_piece": sum(r["parts"] == 1 for r in rows) / len(rows),
        }
        floors = [r["floor"] for r in rows if r["floor"] is not None]
        if floors:
            figures[family]["floor_ratio_within"] = sum(0.6 <= f[0] <= 1.5 for f in floors) / len(floors)
            figures[family]["floor_ratio_median"] = statistics.median(f[0] for f in floors)
            figures[family]["floor_corr_max"] = max(f[1] for f in floors)
            figures[family]["floor_corr_median"] = statistics.median(f[1] for f in floors)
            figures[family]["floor_corr_within"] = sum(f[1] <= 0.3 for f in floors) / len(floors)
            figures[family]["floors"] = len(floors)
    return figures


def cross_photo_iou(engine: ClassicEngine, seeds: int) -> tuple[float, float]:
    """(median, largest) label IoU of the same seed, prompt and sketch on two photos (brick, gravel)."""
    brick = load_image(config.ASSETS_DIR / "normal/brick_wall.png")
    gravel = load_image(config.ASSETS_DIR / "normal/gravel_bed.png")
    mask = sketch_mask(brick.shape, ("ellipse", 256, 256, 60, 24, 20))
    values = []
    for family in FAMILIES:
        for seed in range(seeds):
            a = generate(engine, Sample("brick", 0, brick, mask, False), EXAMPLE_PROMPTS[family], seed)
            b = generate(engine, Sample("gravel", 0, gravel, mask, False), EXAMPLE_PROMPTS[family], seed)
            values.append(iou(a.mask, b.mask))
    return statistics.median(values), max(values)


def reference_figures(engine: ClassicEngine, pool: list[Sample]) -> dict[str, float]:
    """The reference path over samples x shipped references, 4 seeds each: the median and the largest
    of their median pairwise label IoU, and the share of candidates on sketches spanning two surfaces
    that keep >= 85% of their visible change on one."""
    manifest = json.loads((config.ASSETS_DIR / "manifest.json").read_text(encoding="utf-8"))
    overlaps, shares = [], []
    for sample in pool:
        surfaces = surface_map(sample.image, sample.mask)
        two = spans_two(surfaces, sample.mask)
        for ref in manifest["references"]:
            reference = load_image(config.ASSETS_DIR / ref["image"])
            ref_mask = load_mask(config.ASSETS_DIR / ref["mask"], (reference.shape[1], reference.shape[0]))
            cands = [generate(engine, sample, ref["text"], seed, reference=reference, reference_mask=ref_mask,
                              reference_text=ref["text"]) for seed in range(4)]
            overlaps.append(statistics.median(iou(a.mask, b.mask) for i, a in enumerate(cands) for b in cands[i + 1:]))
            if two:
                shares += [one_surface_share(sample.image, cand.image, surfaces) for cand in cands]
    return {"iou_median": statistics.median(overlaps), "iou_max": max(overlaps),
            "one_surface_85": sum(v >= 0.85 for v in shares) / len(shares), "two_surface_candidates": len(shares)}


def burn_figures(engine: ClassicEngine, pool: list[Sample], seeds: int) -> dict[str, Any]:
    """Darkening of a burn's core (mean luminance drop over its 10% most darkened labelled pixels) and
    whether any burn equals the discoloration of the same inputs."""
    drops, identical = [], 0
    for sample in pool:
        for seed in range(seeds):
            burn = generate(engine, sample, "a burn mark", seed)
            other = generate(engine, sample, "discoloration", seed)
            identical += int(np.array_equal(burn.image, other.image))
            drop = (luminance(sample.image.astype(np.float32)) - luminance(burn.image.astype(np.float32)))[burn.mask > 0]
            drops.append(float(np.sort(drop)[-max(1, drop.size // 10):].mean()) if drop.size else 0.0)
    return {"core_drop_min": min(drops), "core_drop_median": statistics.median(drops),
            "core_drop_25": sum(d >= 25 for d in drops) / len(drops), "identical_to_discoloration": identical}


def unknown_figures(engine: ClassicEngine, pool: list[Sample], seeds: int) -> dict[str, Any]:
    """Largest share of the sketch covered by the label for prompts naming no family, and the notes."""
    shares, families = [], set()
    for sample in pool:
        for prompt in UNKNOWN_PROMPTS:
            for seed in range(seeds):
                cand = generate(engine, sample, prompt, seed)
                families.add(cand.metadata["generator"])
                shares.append(float((cand.mask > 0)[sample.mask].mean()))
                assert (change(sample.image, cand.image) > VISIBLE).any()
    return {"label_share_max": max(shares), "label_share_median": statistics.median(shares),
            "families": sorted(families)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", default=None, help="scikit-image's data folder (coins.png, coffee.png)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    photos = skimage_data(args.photos)
    pool = list(samples(photos))
    engine = ClassicEngine()
    print(f"{len(pool)} sketches on {len({s.photo for s in pool})} photos "
          f"({sum(spans_two(surface_map(s.image, s.mask), s.mask) for s in pool)} spanning two surfaces), "
          f"{args.seeds} seeds each")
    figures: dict[str, Any] = {"families": family_figures(engine, pool, args.seeds)}
    print("family          1-surface>=85%  unchanged(med)  outline shows (rect)  one piece  "
          "floor ratio in 0.6-1.5 (med) / corr with the host")
    for family, f in figures["families"].items():
        one = "       -" if f["one_surface_85"] is None else f"{f['one_surface_85']:8.0%}"
        floor = (f"  {f['floor_ratio_within']:.0%} ({f['floor_ratio_median']:.2f}) / "
                 f"{f['floor_corr_within']:.0%} <= 0.3, max {f['floor_corr_max']:.2f} ({f['floors']} floors)"
                 if "floor_ratio_within" in f else "")
        print(f"  {family:<14}{one if family in GEOMETRIC_FAMILIES else '       -'}        {f['unchanged_median']:6.0%}"
              f"         {f['outline_visible']:5.0%} ({f['outline_visible_rect']:4.0%})      {f['one_piece']:5.0%}{floor}")
    geometric = [figures["families"][f]["one_surface_85"] for f in GEOMETRIC_FAMILIES]
    print(f"geometric candidates keeping >= 85% of their visible change on one surface: "
          f"{min(geometric):.0%}..{max(geometric):.0%} per family (target >= 75%)")
    median, worst = cross_photo_iou(engine, args.seeds)
    figures["cross_photo_iou"] = {"median": median, "max": worst}
    print(f"label IoU, same seed on two photos: median {median:.2f}, max {worst:.2f} (target <= 0.5)")
    figures["reference"] = r = reference_figures(engine, pool)
    print(f"reference path, median label IoU of 4 seeds: median {r['iou_median']:.2f}, worst {r['iou_max']:.2f} "
          f"(target <= 0.7); on two-surface sketches {r['one_surface_85']:.0%} of {r['two_surface_candidates']} "
          f"keep >= 85% of their visible change on one surface")
    figures["burn"] = burn_figures(engine, pool, args.seeds)
    b = figures["burn"]
    print(f"burn core darkening: min {b['core_drop_min']:.0f}, median {b['core_drop_median']:.0f} grey levels "
          f"({b['core_drop_25']:.0%} >= 25); identical to discoloration: {b['identical_to_discoloration']}")
    figures["unknown"] = unknown_figures(engine, pool, args.seeds)
    u = figures["unknown"]
    print(f"unknown words {UNKNOWN_PROMPTS}: label covers at most {u['label_share_max']:.0%} of the sketch "
          f"(median {u['label_share_median']:.0%}); families drawn {u['families']}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
