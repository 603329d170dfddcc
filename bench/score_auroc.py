"""Does the classic engine's candidate score predict what a person accepts? AUROC on judged candidates.

    .venv/bin/python -m bench.score_auroc [--photos DIR] [--judgements PATH]
    .venv/bin/python -m bench.score_auroc --draw 224 --sheets DIR   # the judging sheets (no verdicts)

The judgements (``bench/judgements/classic_v2.jsonl``, one JSON object a line) hold only what
regenerates each candidate — photo, sketch (its spec), prompt, reference, seed — and the verdict
("pass" at a glance at 1:1, or "fail"); no images. ``classic_v1.jsonl`` is the first round, judged
on the engine's earlier pixels; in v2 the 119 candidates whose pixels changed since (scratches,
cracks, holes, tints, oil, the reference path) were judged again (``"round": 2``), the rest kept;
the 19 discolorations (texture-following edges) and the oils on matte surfaces (a wet look) were
judged again (``"round": 3``), the 12 rusts on greyscale photos (a grainy crust) in ``"round": 4``, the
9 scratches and cracks drawn again to lie on their host unit in ``"round": 6`` (two verdicts changed: a
scratch on a gravel stone now shows, one on the cup's rim fell back to a plain mark), 2 short scratches
on brick drawn as hairlines in ``"round": 7`` (now specks), the 45 drawn again to stand out from busy
surfaces in ``"round": 8`` (3 now pass), the 47 area defects drawn shorter in long, thin sketches in
``"round": 9`` (1 now fails), and the candidates whose pixels moved since without a new round
were looked at again, verdicts unchanged.
The candidates are regenerated here with the same engine, and the AUROC of
``metadata["score"]["value"]`` against the verdicts is printed (target >= 0.75), with each score
component's own AUROC. ``--draw N --sheets DIR`` draws N
candidates (seeded, over the photos of :mod:`bench.classic_realism`) and writes numbered sheets of
1:1 crops to judge; the rows to fill in go to ``DIR/draw.jsonl``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench.classic_realism import FAMILIES, SKETCHES, load_photo, sketch_mask, skimage_data
from studio import config
from studio.engines.classic import ClassicEngine
from studio.engines.classic.keywords import EXAMPLE_PROMPTS
from studio.imaging import load_image, load_mask, mask_bbox
from studio.types import Candidate, SynthesisRequest

JUDGEMENTS = Path(__file__).parent / "judgements" / "classic_v2.jsonl"
TILE = 128
COLUMNS = 8


def auroc(scores: list[float], passed: list[bool]) -> float:
    """Area under the ROC curve: the chance a passed candidate outscores a failed one (ties count half)."""
    pos = [s for s, p in zip(scores, passed) if p]
    neg = [s for s, p in zip(scores, passed) if not p]
    if not pos or not neg:
        return float("nan")
    wins = sum((a > b) + 0.5 * (a == b) for a in pos for b in neg)
    return wins / (len(pos) * len(neg))


def regenerate(row: dict[str, Any], photos: Path | None, engine: ClassicEngine) -> tuple[np.ndarray, Candidate] | None:
    """The judged candidate again (None when its photo is not available here)."""
    image = load_photo(SKETCHES[row["photo"]][0], photos)
    if image is None:
        return None
    mask = sketch_mask(image.shape, tuple(row["sketch"]))
    extra: dict[str, Any] = {}
    if row.get("reference"):
        manifest = json.loads((config.ASSETS_DIR / "manifest.json").read_text(encoding="utf-8"))
        ref = next(r for r in manifest["references"] if r["name"] == row["reference"])
        reference = load_image(config.ASSETS_DIR / ref["image"])
        extra = {"reference": reference, "reference_text": ref["text"],
                 "reference_mask": load_mask(config.ASSETS_DIR / ref["mask"], (reference.shape[1], reference.shape[0]))}
    request = SynthesisRequest.create(image, mask, row["prompt"], seed=row["seed"], **extra)
    return image, engine.generate(request)[0]


def draw_rows(count: int, seed: int = 22) -> list[dict[str, Any]]:
    """``count`` seeded (photo, sketch, prompt or reference, seed) rows over every photo and family."""
    rng = np.random.default_rng(seed)
    manifest = json.loads((config.ASSETS_DIR / "manifest.json").read_text(encoding="utf-8"))
    kinds = [("family", f) for f in FAMILIES] + [("reference", r["name"]) for r in manifest["references"][:2]]
    rows = []
    for i in range(count):
        photo = list(SKETCHES)[int(rng.integers(len(SKETCHES)))]
        sketch = SKETCHES[photo][1][int(rng.integers(len(SKETCHES[photo][1])))]
        kind, name = kinds[int(rng.integers(len(kinds)))]
        row = {"id": f"c{i:03d}", "photo": photo, "sketch": list(sketch), "seed": int(rng.integers(1000))}
        if kind == "family":
            row.update(family=name, prompt=EXAMPLE_PROMPTS[name])
        else:
            ref = next(r for r in manifest["references"] if r["name"] == name)
            row.update(family="reference", reference=name, prompt=ref["text"])
        rows.append(row)
    return rows


def write_sheets(rows: list[dict[str, Any]], photos: Path | None, folder: Path) -> None:
    """Numbered sheets of 1:1 crops (TILE px around each sketch), COLUMNS x 4 per sheet."""
    engine = ClassicEngine()
    folder.mkdir(parents=True, exist_ok=True)
    tiles = []
    kept = []
    for row in rows:
        made = regenerate(row, photos, engine)
        if made is None:
            continue
        image, cand = made
        x0, y0, x1, y1 = mask_bbox(cand.mask if cand.mask.any() else np.ones(image.shape[:2], bool), 0)
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        h, w = image.shape[:2]
        left, top = min(max(cx - TILE // 2, 0), max(w - TILE, 0)), min(max(cy - TILE // 2, 0), max(h - TILE, 0))
        tile = np.zeros((TILE, TILE, 3), np.uint8)
        part = cand.image[top:top + TILE, left:left + TILE]
        tile[:part.shape[0], :part.shape[1]] = part
        tiles.append((row["id"], tile))
        kept.append(row)
    per = COLUMNS * 4
    for s in range(0, len(tiles), per):
        canvas = np.full((4 * (TILE + 16), COLUMNS * (TILE + 4), 3), 40, np.uint8)
        for k, (ident, tile) in enumerate(tiles[s:s + per]):
            r, c = divmod(k, COLUMNS)
            y, x = r * (TILE + 16) + 14, c * (TILE + 4)
            canvas[y:y + TILE, x:x + TILE] = tile
            cv2.putText(canvas, ident, (x + 2, y - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1, cv2.LINE_AA)
        cv2.imwrite(str(folder / f"sheet_{s // per:02d}.png"), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    (folder / "draw.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", default=None, help="scikit-image's data folder (coins.png, coffee.png)")
    parser.add_argument("--judgements", type=Path, default=JUDGEMENTS)
    parser.add_argument("--draw", type=int, default=0, help="draw this many candidates to judge instead")
    parser.add_argument("--sheets", type=Path, default=None, help="folder for the judging sheets")
    args = parser.parse_args(argv)
    photos = skimage_data(args.photos)
    if args.draw:
        write_sheets(draw_rows(args.draw), photos, args.sheets or Path("judging"))
        print(f"wrote the judging sheets to {args.sheets or 'judging'}")
        return 0
    rows = [json.loads(line) for line in args.judgements.read_text(encoding="utf-8").splitlines() if line.strip()]
    engine = ClassicEngine()
    scores: dict[str, list[float]] = {}
    passed: list[bool] = []
    missing = 0
    for row in rows:
        made = regenerate(row, photos, engine)
        if made is None:
            missing += 1
            continue
        score = made[1].metadata["score"]
        passed.append(row["verdict"] == "pass")
        for key, value in score.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                # penalties (straddle, outline, halo, parts, texture): higher is worse, so negated
                sign = 1.0 if key in ("value", "visibility", "seam_ratio", "edge_definition") else -1.0
                scores.setdefault(key, []).append(sign * float(value))
    print(f"{len(passed)} judged candidates regenerated ({sum(passed)} passed at a glance, "
          f"{len(passed) - sum(passed)} failed; {missing} skipped: photo not available)")
    print(f"AUROC of the candidate score: {auroc(scores['value'], passed):.3f} (target >= 0.75)")
    for key, values in scores.items():
        if key != "value":
            print(f"  component {key:<12} AUROC {auroc(values, passed):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
